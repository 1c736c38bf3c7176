"""What a half-written query still needs, computed incrementally, token by token.

Grammar-constrained decoding keeps every prefix *viable* (it can still become a valid
query), but a viable prefix is not a valid query: when ``max_new_tokens`` runs out in the
middle of ``("climate change" OR "global warm`` the output does not parse. blockgen keeps
a reserve instead. For a viable prefix it computes the :class:`Need`:

* ``open_bytes``: bytes still missing from a UTF-8 character cut in the middle,
* ``head``: the rest of an operator cut in the middle (``R`` after ``(a) O``), forced first,
* ``terms``: terms (or characters of a term) that must still be written, for example after
  ``a OR`` or ``(`` or inside ``"`` with nothing in it yet: each costs one *content* token
  (a token that is a whole word by itself, picked by the model),
* ``closers``: the characters that close what is open once that is done (``"``, ``]``, ``)``),
  forced as the tokens the tokenizer gives for them.

:class:`Prefix` holds a generated prefix as the grammar's LALR parser sees it: the parser
state after every lexeme that can no longer change, plus the short pending text after it
(the last lexeme, which the next bytes may still extend, and anything not yet lexable).
``Prefix.extend(bytes)`` lexes only that pending text plus the new bytes, so a step costs
the same at token 100 as at token 1 (no re-parse of the whole prefix).

Everything here is derived from the grammar (:func:`blockgen.grammar.analysed_parser`): its
terminals, its literal terminals (operators and brackets), its LALR table and its lexer.
The only names used are the content terminal ``WORD`` (what a content token writes), the
leaf rule ``term`` (for :mod:`blockgen.repeats`) and lark's end marker ``$END``.
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional, Sequence

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import LexerThread
from lark.parsers.lalr_analysis import Shift

from blockgen.grammar import analysed_parser, terminal_regex

#: The terminal a content token writes (a whole word).
CONTENT = "WORD"
#: The grammar rule whose reductions are the leaves of the query tree (terms, phrases, fields).
LEAF_RULE = "term"
END = "$END"
#: A letter standing for a character or term not written yet.
PLACEHOLDER = "x"
#: Characters tried to close a half-written lexeme (a phrase needs ``"``, a tag ``]``).
_CLOSE_CANDIDATES = tuple(string.punctuation)


@dataclass(frozen=True)
class Need:
    """What a viable prefix still needs to become a valid query."""

    open_bytes: int
    terms: int
    closers: str
    head: str = ""

    def tokens(self, encode: Callable[[str], Sequence[int]]) -> int:
        """Tokens that finish the query, with ``encode`` turning forced text into token ids."""
        forced = sum(len(encode(text)) for text in (self.head, self.closers) if text)
        return self.open_bytes + self.terms + forced

    @property
    def complete(self) -> bool:
        """The prefix is a valid query as it stands."""
        return self.open_bytes == 0 and self.terms == 0 and not self.closers and not self.head


# --------------------------------------------------------------------------- the grammar, derived
class _Grammar:
    """Facts derived once from the grammar's lark parser."""

    def __init__(self) -> None:
        import regex  # partial matching: is this text the start of a terminal?

        from copy import copy

        parser = analysed_parser()
        probe = parser.parse_interactive("")
        conf = probe.parser_state.parse_conf
        self.lexer = probe.lexer_thread.lexer
        self.states = conf.parse_table.states
        self.start_state = conf.start_state
        self.end_state = conf.end_state
        self.plain = copy(conf)
        self.plain.callbacks = {}
        self.capture = copy(conf)
        self.capture.callbacks = {
            rule: (_capture_leaf if rule.origin.name == LEAF_RULE else _children) for rule in conf.callbacks
        }
        terminals = {t.name: t for t in parser.terminals}
        self.literals = {name: t.pattern.value for name, t in terminals.items() if type(t.pattern).__name__ == "PatternStr"}
        self.partial = {
            name: regex.compile(terminal_regex(name).pattern, _regex_flags(terminal_regex(name).flags))
            for name in terminals
            if name not in self.literals
        }
        # Closing literals: the last symbol of a rule with more than one symbol, e.g. ")" of a group.
        closing = set()
        for rule in parser.rules:
            symbols = [s.name for s in rule.expansion]
            if len(symbols) > 1 and symbols[-1] in self.literals and symbols[0] != symbols[-1]:
                closing.add(symbols[-1])
        self.closing = frozenset(closing)


def _regex_flags(flags: int) -> int:
    import re

    import regex

    out = 0
    for name in ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"):
        if flags & getattr(re, name, 0):
            out |= getattr(regex, name)
    return out


_GRAMMAR: Optional[_Grammar] = None
_GRAMMAR_LOCK = threading.Lock()


def _grammar() -> _Grammar:
    """The derived grammar facts, built once per process (thread-safe: see :func:`warm_up`)."""
    global _GRAMMAR
    if _GRAMMAR is None:
        with _GRAMMAR_LOCK:
            if _GRAMMAR is None:
                _GRAMMAR = _Grammar()
    return _GRAMMAR


def warm_up() -> threading.Thread:
    """Build the grammar's parser in a background thread (it overlaps llguidance's tokenizer build)."""
    thread = threading.Thread(target=lambda: Prefix.empty(), name="blockgen-grammar", daemon=True)
    thread.start()
    return thread


def literal_terminals() -> dict[str, str]:
    """The grammar's literal terminals by name, e.g. ``{"AND": "AND", "LPAR": "(", ...}``."""
    return dict(_grammar().literals)


_sink = threading.local()


def _children(children):
    return children


def _capture_leaf(children):
    """Reduction of a leaf: record its source text (the lexemes joined by blanks, which the grammar ignores)."""
    leaves = getattr(_sink, "leaves", None)
    if leaves is not None:
        leaves.append(" ".join(_flat_tokens(children)))
    return children


def _flat_tokens(value) -> list[str]:
    if isinstance(value, Token):
        return [str(value)]
    out: list[str] = []
    for item in value:
        out.extend(_flat_tokens(item))
    return out


def _feed(states, stack: list, name: str) -> bool:
    """Feed terminal ``name`` to an LALR state stack in place (no values); False if not accepted."""
    is_end = name == END
    g = _grammar()
    while True:
        action = states[stack[-1]].get(name)
        if action is None:
            return False
        kind, arg = action
        if kind is Shift:
            if is_end:  # pragma: no cover - $END is never shifted
                return False
            stack.append(arg)
            return True
        size = len(arg.expansion)
        if size:
            del stack[-size:]
        goto = states[stack[-1]][arg.origin.name]
        stack.append(goto[1])
        if is_end and stack[-1] == g.end_state:
            return True


@lru_cache(maxsize=65536)
def _accepts(stack: tuple) -> frozenset:
    """The terminals an LALR state stack accepts next (lark's ``InteractiveParser.accepts``)."""
    states = _grammar().states
    return frozenset(name for name in states[stack[-1]] if (name.isupper() or name == END) and _feed(states, list(stack), name))


@lru_cache(maxsize=65536)
def _finish(stack: tuple) -> Optional[tuple[int, str]]:
    """Finish the parse with the fewest tokens: a closing literal where it fits, else one term.

    Returns ``(terms, closers)``, or ``None`` if the grammar offers neither (a bug).
    """
    g = _grammar()
    current = list(stack)
    terms, closers = 0, ""
    for _ in range(10_000):
        accepts = _accepts(tuple(current))
        if END in accepts:
            return terms, closers
        closing = sorted(accepts & g.closing)
        if closing:
            _feed(g.states, current, closing[0])
            closers += g.literals[closing[0]]
        elif CONTENT in accepts:
            _feed(g.states, current, CONTENT)
            terms += 1
        else:
            return None
    return None  # pragma: no cover - a grammar loop would be a bug


@lru_cache(maxsize=65536)
def _complete_tail(stack: tuple, tail: str) -> Optional[tuple[str, int, str, str]]:
    """The cheapest way to finish a half-written lexeme ``tail`` after state ``stack``.

    Returns ``(terminal, terms, closer, head)``: the terminal it becomes, terms still needed
    inside it (a placeholder letter), the character that closes it, and the rest of a
    literal (an operator cut in the middle). ``None`` when no terminal can start with ``tail``.
    """
    g = _grammar()
    best: Optional[tuple[int, tuple[str, int, str, str]]] = None
    for name in sorted(_accepts(stack)):
        if name in g.literals:
            value = g.literals[name]
            if value.startswith(tail) and value != tail:
                option = (len(value) - len(tail), (name, 0, "", value[len(tail):]))
                best = option if best is None or option[0] < best[0] else best
            continue
        rx = g.partial.get(name)
        if rx is None or rx.fullmatch(tail, partial=True) is None:
            continue
        # the characters written in the terminal's pattern first (a phrase's '"'), then all others
        for completions in (_completions(name, True), _completions(name, False)):
            for cost, (terms, closer) in completions:
                if best is not None and cost >= best[0]:
                    break
                if rx.fullmatch(tail + PLACEHOLDER * terms + closer) is not None:
                    best = (cost, (name, terms, closer, ""))
                    break
    return None if best is None else best[1]


@lru_cache(maxsize=None)
def _completions(name: str, likely: bool) -> list[tuple[int, tuple[int, str]]]:
    """Completions of a lexeme of terminal ``name`` in order of cost: nothing, a closer, a
    letter, a letter and a closer. ``likely``: closers that appear in the terminal's pattern
    (tried first: cheap); else the other punctuation characters."""
    pattern = terminal_regex(name).pattern
    closers = [c for c in _CLOSE_CANDIDATES if (c in pattern) == likely]
    out = [(0, (0, ""))] if likely else []
    out += [(1, (0, c)) for c in closers]
    out += [(1, (1, ""))] if likely else []
    out += [(2, (1, c)) for c in closers]
    return out


def _need_after(stack: tuple, tail: str, open_bytes: int) -> Optional[Need]:
    """The need of the parse state ``stack`` followed by the unlexed ``tail``."""
    g = _grammar()
    terms, closers, head = 0, "", ""
    if tail:
        done = _complete_tail(stack, tail)
        if done is None:
            return None
        name, terms, closer, head = done
        current = list(stack)
        if not _feed(g.states, current, name):  # pragma: no cover - accepts() said it would
            return None
        stack, closers = tuple(current), closer
    finished = _finish(stack)
    if finished is None:
        return None
    more_terms, more_closers = finished
    return Need(open_bytes=open_bytes, terms=terms + more_terms, closers=closers + more_closers, head=head)


def _split_utf8(data: bytes) -> Optional[tuple[str, bytes]]:
    """Decode ``data``; a character cut at the end is returned as its bytes. ``None`` if not UTF-8."""
    try:
        return data.decode("utf-8"), b""
    except UnicodeDecodeError as err:
        if err.start < len(data) - 3 or err.reason != "unexpected end of data":
            return None
        try:
            return data[: err.start].decode("utf-8"), data[err.start :]
        except UnicodeDecodeError:
            return None


def _missing(partial: bytes) -> int:
    if not partial:
        return 0
    lead = partial[0]
    width = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
    return width - len(partial)


# --------------------------------------------------------------------------- the prefix
@dataclass(frozen=True)
class Prefix:
    """A viable prefix of generated text, ready to be extended byte by byte.

    ``stack``/``values``: the parser after every lexeme that can no longer change;
    ``pending``: the text after them; ``partial``: the bytes of a cut UTF-8 character;
    ``committed_leaves``: source text of the leaves completed inside the committed part;
    ``leaves``: all leaves completed so far (committed and pending); ``need``: :class:`Need`.
    """

    stack: tuple
    values: tuple
    pending: str
    partial: bytes
    committed_leaves: tuple
    leaves: tuple
    need: Need
    text: bytes = field(default=b"", compare=False)

    @staticmethod
    def empty() -> "Prefix":
        """The prefix of nothing written yet (it needs one term)."""
        g = _grammar()
        stack = (g.start_state,)
        need = _need_after(stack, "", 0)
        assert need is not None
        return Prefix(stack, (), "", b"", (), (), need)

    def extend(self, data: bytes) -> Optional["Prefix"]:
        """This prefix followed by ``data``, or ``None`` if that can no longer become a valid query."""
        if not data:
            return self
        split = _split_utf8(self.partial + data)
        if split is None:
            return None
        decoded, partial = split
        pending = self.pending + decoded
        return _lex(self, pending, partial, self.text + data)

    @property
    def complete(self) -> bool:
        """The text so far is a valid query."""
        return self.need.complete

    def leaves_at_end(self) -> Optional[tuple]:
        """Source text of every leaf if the query ended here (``None`` if it cannot end here)."""
        if not self.need.complete:
            return None
        from lark.parsers.lalr_parser_state import ParserState

        g = _grammar()
        leaves = list(self.committed_leaves)
        _sink.leaves = leaves
        try:
            ps = ParserState(g.capture, None, list(self.stack), list(self.values))
            for tok in LexerThread.from_text(g.lexer, self.pending).lex(ps):
                ps.feed_token(tok)
            ps.feed_token(Token(END, ""), True)
        except UnexpectedInput:  # pragma: no cover - a complete prefix always ends
            return None
        finally:
            _sink.leaves = None
        return tuple(leaves)


def _lex(prefix: Prefix, pending: str, partial: bytes, text_bytes: bytes) -> Optional[Prefix]:
    from lark.parsers.lalr_parser_state import ParserState

    g = _grammar()
    open_bytes = _missing(partial)
    lex_text = pending + (PLACEHOLDER if partial else "")
    leaves: list[str] = list(prefix.committed_leaves)
    _sink.leaves = leaves
    # snapshots[i]: (stack, values, leaves so far, start of token i) before token i was fed
    snapshots: list[tuple[tuple, tuple, int, int]] = []
    tail = ""
    try:
        ps = ParserState(g.capture, None, list(prefix.stack), list(prefix.values))
        thread = LexerThread.from_text(g.lexer, lex_text)
        try:
            for tok in thread.lex(ps):
                snapshots.append((tuple(ps.state_stack), tuple(ps.value_stack), len(leaves), tok.start_pos))
                ps.feed_token(tok)
        except UnexpectedCharacters as err:
            tail = lex_text[err.pos_in_stream :]
        except UnexpectedToken as err:
            tok = err.token
            if tok.type == END:  # pragma: no cover - $END is never lexed
                return None
            if snapshots and snapshots[-1][3] == tok.start_pos:  # the parser refused it: undo its reductions
                stack, values, n_leaves, _ = snapshots.pop()
                ps.state_stack[:], ps.value_stack[:] = list(stack), list(values)
                del leaves[n_leaves:]
            tail = lex_text[tok.start_pos :]
        except UnexpectedInput:
            return None
    finally:
        _sink.leaves = None

    stack = tuple(ps.state_stack)
    need = _need_after(stack, tail, open_bytes)
    if need is None and snapshots:
        # The last lexeme may go on through the tail: "a" + "-" is the start of the word "a-b".
        stack, _values, _n, start = snapshots[-1]
        need = _need_after(stack, lex_text[start:], open_bytes)
    if need is None:
        return None
    # Commit every lexeme but the last one (the next bytes may still extend it).
    if snapshots:
        c_stack, c_values, c_leaves, start = snapshots[-1]
        committed = (c_stack, c_values, tuple(leaves[:c_leaves]))
        new_pending = pending[start:]
    else:
        committed = (prefix.stack, prefix.values, prefix.committed_leaves)
        new_pending = pending
    return Prefix(committed[0], committed[1], new_pending, partial, committed[2], tuple(leaves), need, text_bytes)


@lru_cache(maxsize=4096)
def need_of(prefix: bytes) -> Optional[Need]:
    """The :class:`Need` of a generated prefix (UTF-8 bytes), or ``None`` if it is not viable."""
    state = Prefix.empty().extend(prefix)
    return None if state is None else state.need
