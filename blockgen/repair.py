"""Parser-repair fallback: turn any string into a valid Boolean block query, saying what changed.

>>> r = repair('(climate change or "global warming) and')
>>> r.text
'climate change OR "global warming"'
>>> [e.kind for e in r.edits]
['closed quote', 'normalised operator', 'normalised operator', 'dropped dangling operator']
>>> shortest_completion('(a OR "b')
'")'

A valid query comes back as it is (canonically formatted, ``edits == ()``). Anything else
goes through three pure steps:

1. **lex** with the grammar's own terminals (longest match, as the parser does) and a
   tolerant fallback where no terminal fits:

   * an unclosed quote is closed before the first ``)`` that it did not open, upper-case
     operator (``AND``/``OR``/``NOT``) or next quote after it, else at the end of the text.
     With an odd number of quotes every candidate for "the unclosed one" is tried and the
     one needing the fewest edits wins (a phrase that spans a line break or has an operator,
     parenthesis or ``:`` at its edge counts as three more, closing the open phrase before
     the end of the text as two more; ties: the later quote), so
     ``("climate change OR "global warming")`` becomes
     ``"climate change" OR "global warming"``;
   * a cut-off phrase is closed, not dropped (``a AND "clim`` -> ``a AND "clim"``): a word
     cut at the very end cannot be told from a complete one, so it is kept. Pass
     ``cut_off=True`` when the text is known to be cut (a token budget ran out): then the
     last word touching the end is dropped (a one-word cut phrase with it), even when the
     text is valid as it stands; a quote with nothing after it is dropped;
   * the text is first put in Unicode NFC (:mod:`blockgen.text`; edit positions refer to
     it), and a lone surrogate (no character) becomes a blank, with an edit;
   * as the grammar's contextual lexer reads: after ``)``, a phrase or a tag no word can
     follow, so ``(a)ANDb`` is ``(a) AND b``;
   * characters no terminal can hold (``,`` ``;`` ``!`` a trailing ``.``, a leading ``-``,
     stray ``]``) are dropped, each run recorded as an edit; in a word, Ovid's ``$``
     truncation becomes ``*`` and a curly apostrophe ``'``; typographic double quotes
     (“ ” „ ‟ « ») become ``"``, also beside straight ones; a run of letters the grammar's
     words cannot hold is kept as a quoted phrase; blanks inside a tag are removed
     (``"a" [ Mesh ]`` -> ``"a"[Mesh]``); an unclosed tag at the very
     end (``acne[tiab``, ``[MeSH Terms``: at most two words, no operator) is closed, any
     other ``[`` is dropped.

2. **rewrite operators** on the token list:

   * ``and``/``or``/``not`` in lower or mixed case are plain words in the grammar; when one
     of them stands where only an operator can (next to a parenthesis or a phrase), all of
     them become operators (``(a or b) and (c or d)``), else they stay words;
   * NOT is binary. A leading ``NOT x AND rest`` becomes ``rest NOT x`` (same meaning; the
     edit records the dropped ``AND``);
     ``a AND (NOT b)`` and ``a OR (NOT b)`` become ``a NOT (b)``; any other NOT with
     nothing before it is dropped.

3. **drive the grammar's LALR table** token by token (on a persistent stack, so a trial or a
   taken-back token copies nothing: linear time at any depth): a token
   the parser accepts is fed; otherwise, in this order: ``AND`` is inserted between two
   operands that cannot stand side by side (``"a" "b"``, ``(a) b``: only bare words may);
   ``AND NOT`` and ``OR NOT`` become ``NOT`` (the exclusion is kept); any other doubled,
   leading or dangling operator is dropped (the first of two is kept); a
   ``)`` without ``(`` is dropped; an empty group ``()`` is dropped; a ``:`` or comparison
   without a value is dropped (its field name stays a word); a misplaced tag is dropped. At
   the end, dangling operators go and every open ``(`` is closed. The text so built parses
   by construction.

Every term of the input is kept (apart from the characters of it that no word can hold,
and, with ``cut_off=True``, the cut last word); every change is an :class:`Edit`. When no
term at all is left (an empty string, only punctuation or operators), :func:`repair` raises
:class:`RepairError` (a ``ValueError``); :func:`try_repair` returns ``None`` instead. Nothing
else is ever raised for a ``str`` (a non-``str`` is a ``TypeError``).

:func:`shortest_completion` is the pure "what closes this prefix" question used while
generating: the shortest string of closers (``"`` ``]`` ``)``) that makes a viable prefix valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Union

from lark.parsers.lalr_analysis import Shift

from blockgen.answers import AnswerError, Extraction, extract_query
from blockgen.formatter import format_query
from blockgen.grammar import OPERATORS, lark_parser, terminal_regex
from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node
from blockgen.text import lone_surrogates, normalise

__all__ = ["Edit", "RepairError", "RepairResult", "repair", "shortest_completion", "try_repair"]

#: At most this many candidates for "the unclosed quote" are tried (the last ones).
MAX_QUOTE_CANDIDATES = 8

_BLANKS = " \t\r\n"  # what the grammar ignores
_OPERAND_START = ("WORD", "PHRASE", "LPAR")
_OPS = ("AND", "OR", "NOT")
_CLOSERS = ("RPAR", "PHRASE", "TAG")  # after these the grammar takes no word: only what _follow says
_OPEN_TAG = re.compile(r"\[[A-Za-z][A-Za-z \/:~0-9-]*")
_OPEN_PHRASE = re.compile(r'"[^"\x00-\x1f\x7f]*')
_CURLY_QUOTES = "\u201c\u201d\u201e\u201f\u00ab\u00bb"
#: Inside a word: Ovid's truncation ``$`` is the grammar's ``*``; a curly apostrophe is ``'``.
_IN_WORD = {"$": "*", "\u2019": "'", "\u2018": "'"}
# an upper-case operator standing alone: where an unclosed phrase ends
_OPERATOR_WORD = re.compile(r"(?<![^\s(])(?:AND|OR|NOT)(?![^\s)])")


class RepairError(ValueError):
    """Nothing usable is left in the text: no term at all."""


@dataclass(frozen=True)
class Edit:
    """One change repair made.

    ``kind`` (e.g. ``"closed quote"``), the character ``position`` in the input, a readable
    ``detail``, and ``removed``: the input text this edit took out of the query ("" if none),
    so no character disappears without a record.
    """

    kind: str
    position: int
    detail: str = ""
    removed: str = ""

    def __str__(self) -> str:
        return f"{self.kind} at {self.position}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class RepairResult:
    """The repaired ``query`` (a tree), its canonical ``text`` and the ``edits`` made.

    ``edits`` is empty exactly when the input is returned as it was (valid; ``text`` is then
    only its canonical formatting).
    """

    query: Node
    text: str
    edits: tuple[Edit, ...] = ()

    @property
    def repaired(self) -> bool:
        """Whether repair changed the input beyond formatting: always when it was not valid as given."""
        return bool(self.edits)

    changed = repaired


# ---------------------------------------------------------------- step 1: lex


@dataclass
class _Lx:
    """A lexeme: a grammar terminal ``type`` with the ``text`` to emit, from ``pos`` in the input."""

    type: str
    text: str
    pos: int
    end: int
    lower_op: bool = False  # an and/or/not word in lower or mixed case
    closed: bool = False  # a phrase or tag whose closer repair added
    misquoted: bool = False  # a phrase that looks like its quotes were paired the wrong way


@lru_cache(maxsize=1)
def _terminals() -> list[tuple[str, "re.Pattern[str]"]]:
    """The grammar's terminals in lark's order (ties of the longest match go to the first)."""
    return [(t.name, terminal_regex(t.name)) for t in lark_parser().terminals if not t.name.startswith("__")]


def _longest_match(text: str, pos: int, allowed: Optional[frozenset] = None) -> Optional[tuple[str, str]]:
    """The grammar lexer's token at ``pos``: (type, text), or None if no terminal matches.

    ``allowed``: only these terminals (and the ignored blank), as the contextual lexer reads.
    """
    best: Optional[tuple[str, str]] = None
    for name, rx in _terminals():
        if allowed is not None and name not in allowed and name != "BLANK":
            continue
        m = rx.match(text, pos)
        if m and m.end() > pos and (best is None or len(m.group()) > len(best[1])):
            best = (name, m.group())
    return best


def _normalise(text: str, edits: list[Edit]) -> str:
    """Same-length rewrites: typographic double quotes (also beside straight ones; inside a
    phrase opened by a straight quote they are its text), odd blanks, lone surrogates (no
    character: a blank), and outside phrases, within a word, Ovid's truncation ``$`` (``*``)
    and a curly apostrophe (``'``) where the grammar's word goes on with them."""
    out = []
    opener = ""  # what opened the phrase we are in: "", '"' or "curly"
    surrogates = set(lone_surrogates(text))
    for i, ch in enumerate(text):
        if i in surrogates:
            edits.append(Edit("dropped characters", i, f"{ch!r}: a lone surrogate is no character (cannot be encoded)", ch))
            ch = " "
        elif ch in _IN_WORD and not opener and out and _continues_word(out[-1], ch, text[i + 1 : i + 2]):
            kind = "converted truncation" if ch == "$" else "normalised apostrophe"
            edits.append(Edit(kind, i, f"{ch} -> {_IN_WORD[ch]}"))
            ch = _IN_WORD[ch]
        elif ch == '"':
            opener = "" if opener else '"'
        elif ch in _CURLY_QUOTES and opener != '"':
            edits.append(Edit("normalised quote", i, f"typographic quote {ch} read as \""))
            opener = "" if opener else "curly"
            ch = '"'
        elif ch.isspace() and ch not in _BLANKS:
            edits.append(Edit("replaced blank", i, f"{ch!r} -> ' '"))
            ch = " "
        out.append(ch)
    return "".join(out)


def _continues_word(before: str, ch: str, after: str) -> bool:
    """Whether ``ch`` (``$`` or a curly apostrophe), read as the grammar's ``*`` or ``'``, goes
    on with the word whose last character is ``before`` (an apostrophe also needs the letter
    ``after`` it), by the grammar's WORD."""
    return _word_piece("a" + before + _IN_WORD[ch] + (after if ch != "$" else ""))


@lru_cache(maxsize=4096)
def _word_piece(piece: str) -> bool:
    return terminal_regex("WORD").fullmatch(piece) is not None


def _phrase_content(raw: str) -> str:
    """A phrase's text as the grammar can hold it: no control characters, single spaces."""
    return " ".join("".join(" " if ord(c) < 0x20 or c == "\x7f" else c for c in raw).split())


def _open_phrase_end(text: str, start: int) -> int:
    """Where an unclosed phrase opened at ``start`` ends (see the module docstring)."""
    depth = 0
    n = len(text)
    i = start + 1
    while i < n:
        ch = text[i]
        if ch == '"':
            return i
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i
            depth -= 1
        elif ch in "ANO" and _OPERATOR_WORD.match(text, i):
            return i
        i += 1
    return n


def _lex(text: str, unpaired: Optional[int], edits: list[Edit]) -> list[_Lx]:
    """Tolerant lexing; ``unpaired`` is the position of the quote that is never closed, if any."""
    out: list[_Lx] = []
    n = len(text)
    i = 0
    dropped_at, dropped = -1, ""

    def flush_dropped():
        nonlocal dropped_at, dropped
        if dropped:
            edits.append(Edit("dropped characters", dropped_at, repr(dropped), dropped))
        dropped_at, dropped = -1, ""

    def drop(ch: str, pos: int):
        nonlocal dropped_at, dropped
        if dropped and dropped_at + len(dropped) != pos:
            flush_dropped()
        if not dropped:
            dropped_at = pos
        dropped += ch

    while i < n:
        ch = text[i]
        if ch in _BLANKS:
            i += 1
            continue
        if ch == '"':
            if i == unpaired:
                end = _open_phrase_end(text, i)
                nxt = end
                edits.append(Edit("closed quote", i, "the phrase was never closed"))
            else:
                end = text.find('"', i + 1)
                nxt = end + 1
                if end < 0:  # pragma: no cover - the quotes are paired before lexing
                    end = nxt = n
            raw = text[i + 1 : end]
            content = _phrase_content(raw)
            if not content:
                if i == unpaired:
                    edits.pop()  # "closed quote": it is dropped instead
                    edits.append(Edit("dropped unclosed quote", i, repr(text[i:nxt]), text[i:nxt]))
                else:
                    edits.append(Edit("dropped empty phrase", i, repr(text[i:nxt]), text[i:nxt]))
            else:
                if content != " ".join(raw.split()):
                    controls = "".join(c for c in raw if ord(c) < 0x20 or c == "\x7f")
                    edits.append(Edit("dropped characters", i, "control characters in a phrase", controls))
                suspect = _misquoted(raw, content)
                out.append(_Lx("PHRASE", f'"{content}"', i, nxt, closed=i == unpaired, misquoted=suspect))
            i = nxt
            continue
        # as the contextual lexer reads: after ")", a phrase or a tag, "ANDb" is "AND b"
        match = None
        if out and out[-1].type in _CLOSERS:
            match = _longest_match(text, i, _follow(out[-1].type))
        if match is None:
            match = _longest_match(text, i)
        if match is not None:
            kind, lexeme = match
            flush_dropped()
            lower = kind == "WORD" and lexeme.upper() in OPERATORS
            out.append(_Lx(kind, lexeme, i, i + len(lexeme), lower_op=lower))
            i += len(lexeme)
            continue
        if ch == "[":
            tag = _blank_edged_tag(text, i)
            if tag is not None:
                flush_dropped()
                edits.append(Edit("removed blanks in tag", i, f"{text[i:tag[1]]!r} -> {tag[0]!r}", ""))
                out.append(_Lx("TAG", tag[0], i, tag[1]))
                i = tag[1]
                continue
            m = _OPEN_TAG.match(text, i)
            words = m.group()[1:].split() if m else []
            # A tag cut at the very end is closed when it still looks like a tag: at most two
            # words (``[MeSH Terms``), no operator. ``[Mesh: lung cancer OR`` is not one: its
            # ``[`` is dropped and the words stay terms.
            looks_like_tag = 0 < len(words) <= 2 and not any(w in OPERATORS for w in words)
            if m and m.end() == n and looks_like_tag:
                flush_dropped()
                tag = "[" + " ".join(m.group()[1:].split()) + "]"
                edits.append(Edit("closed tag", i, tag))
                out.append(_Lx("TAG", tag, i, n, closed=True))
                i = n
                continue
        if ch.isalnum():  # letters no grammar word can hold: keep them as a phrase
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"[]':
                j += 1
            content = _phrase_content(text[i:j])
            flush_dropped()
            edits.append(Edit("quoted", i, f"{content!r} holds letters a bare word cannot"))
            out.append(_Lx("PHRASE", f'"{content}"', i, j))
            i = j
            continue
        drop(ch, i)
        i += 1
    flush_dropped()
    return out


#: How far a tag with blanks inside (``[ Mesh ]``) is looked for.
_TAG_WINDOW = 80


def _blank_edged_tag(text: str, i: int) -> Optional[tuple[str, int]]:
    """A tag with blanks after ``[`` or before ``]`` (``[ Mesh ]``): (the grammar's tag, end)."""
    end = text.find("]", i, i + _TAG_WINDOW)
    if end < 0:
        return None
    tag = "[" + text[i + 1 : end].strip(_BLANKS) + "]"
    if terminal_regex("TAG").fullmatch(tag) is None:
        return None
    return tag, end + 1


def _drop_cut_word(text: str, lexemes: list[_Lx], edits: list[Edit]) -> None:
    """``cut_off``: the last word, if it touches the end of the text, may be half-written."""
    if not lexemes or not text or text[-1] in _BLANKS:
        return
    last = lexemes[-1]
    if last.end != len(text):
        return
    if last.type == "WORD":
        edits.append(Edit("dropped cut-off word", last.pos, repr(last.text), last.text))
        lexemes.pop()
    elif last.type == "TAG" and last.closed:
        edits.append(Edit("dropped cut-off tag", last.pos, repr(last.text), last.text))
        lexemes.pop()
    elif last.type == "PHRASE" and last.closed:
        words = last.text[1:-1].split()
        if len(words) > 1:
            edits.append(Edit("dropped cut-off word", last.pos, repr(words[-1]), words[-1]))
            last.text = '"' + " ".join(words[:-1]) + '"'
        else:
            edits.append(Edit("dropped cut-off phrase", last.pos, repr(last.text), last.text))
            lexemes.pop()


# ---------------------------------------------------------------- step 2: operators


def _normalise_operators(lexemes: list[_Lx], edits: list[Edit]) -> None:
    """Lower/mixed-case and/or/not become operators if one of them stands where only an operator can."""
    candidates = [i for i, lx in enumerate(lexemes) if lx.lower_op]

    def operator_only(i: int) -> bool:
        prev = lexemes[i - 1].type if i > 0 else None
        nxt = lexemes[i + 1].type if i + 1 < len(lexemes) else None
        return prev in ("RPAR", "PHRASE", "TAG") or nxt in ("LPAR", "PHRASE")

    if any(operator_only(i) for i in candidates):
        for i in candidates:
            lx = lexemes[i]
            edits.append(Edit("normalised operator", lx.pos, f"{lx.text} -> {lx.text.upper()}"))
            lexemes[i] = _Lx(lx.text.upper(), lx.text.upper(), lx.pos, lx.end)


@dataclass
class _Group:
    open: _Lx
    items: list = field(default_factory=list)
    close: Optional[_Lx] = None


_Item = Union[_Lx, _Group]


def _nest(lexemes: list[_Lx]) -> list[_Item]:
    top: list[_Item] = []
    stack: list[list[_Item]] = [top]
    groups: list[_Group] = []
    for lx in lexemes:
        if lx.type == "LPAR":
            g = _Group(lx)
            stack[-1].append(g)
            stack.append(g.items)
            groups.append(g)
        elif lx.type == "RPAR" and groups:
            groups.pop().close = lx
            stack.pop()
        else:
            stack[-1].append(lx)
    return top


def _flatten(items: list[_Item]) -> list[_Lx]:
    out: list[_Lx] = []
    stack: list[object] = list(reversed(items))
    while stack:
        it = stack.pop()
        if isinstance(it, _Group):
            if it.close is not None:
                stack.append(it.close)
            stack.extend(reversed(it.items))
            out.append(it.open)
        else:
            out.append(it)  # type: ignore[arg-type]
    return out


def _is_op(it: _Item, *types: str) -> bool:
    return isinstance(it, _Lx) and it.type in (types or _OPS)


def _fix_unary_not(items: list[_Item], edits: list[Edit]) -> list[_Item]:
    """Rewrite NOTs with nothing before them in every (sub)query (see the module docstring).

    Groups are visited with an explicit stack (any depth), each group's NOTs in one pass.
    """
    top = _Group(_Lx("LPAR", "(", -1, -1), items)
    stack: list[tuple[_Group, bool]] = [(top, False)]
    while stack:
        group, done = stack.pop()
        if done:
            group.items = _fix_leading_not(group.items, edits)
            continue
        _move_not_out_of_groups(group.items, edits)
        stack.append((group, True))
        stack.extend((it, False) for it in reversed(group.items) if isinstance(it, _Group))
    return top.items


def _move_not_out_of_groups(items: list[_Item], edits: list[Edit]) -> None:
    """``a AND (NOT b)`` -> ``a NOT (b)`` in one (sub)query."""
    for k, it in enumerate(items):
        if (
            isinstance(it, _Group)
            and k > 0
            and _is_op(items[k - 1], "AND", "OR")
            and it.items
            and _is_op(it.items[0], "NOT")
            and not any(_is_op(x, "AND", "NOT") for x in it.items[1:])
        ):
            op = items[k - 1].type
            edits.append(Edit("moved NOT out of a group", it.items[0].pos, f"x {op} (NOT y) -> x NOT (y)", op))
            items[k - 1] = _Lx("NOT", "NOT", items[k - 1].pos, items[k - 1].end)
            it.items = it.items[1:]


def _fix_leading_not(items: list[_Item], edits: list[Edit]) -> list[_Item]:
    """A leading ``NOT x AND rest`` becomes ``rest NOT x``; any other leading NOT is dropped."""
    i = 0
    n = len(items)
    while i < n and _is_op(items[i], "NOT"):
        not_lx = items[i]
        j = next((m for m in range(i + 1, n) if _is_op(items[m], "AND", "NOT")), None)
        if j is not None and _is_op(items[j], "AND") and j > i + 1 and j + 1 < n:
            and_lx = items[j]
            assert isinstance(not_lx, _Lx) and isinstance(and_lx, _Lx)
            edits.append(
                Edit("moved leading NOT", not_lx.pos, f"NOT x {and_lx.text} y -> y NOT x (the {and_lx.text} is dropped)", and_lx.text)
            )
            return items[j + 1 :] + [not_lx] + items[i + 1 : j]
        assert isinstance(not_lx, _Lx)
        edits.append(Edit("dropped leading NOT", not_lx.pos, "NOT is binary (x NOT y): nothing comes before it", "NOT"))
        i += 1
    return items[i:] if i else items


# ---------------------------------------------------------------- step 3: the parser decides


@lru_cache(maxsize=1)
def _table() -> tuple[dict, int, int, frozenset]:
    """The grammar's LALR table: (states, start state, end state, terminal names)."""
    conf = lark_parser().parse_interactive("").parser_state.parse_conf
    terminals = frozenset(t.name for t in lark_parser().terminals) | {"$END"}
    return conf.states, conf.start_state, conf.end_state, terminals


@lru_cache(maxsize=None)
def _follow(kind: str) -> frozenset:
    """The terminals that can come right after a token of ``kind``, by the parse table (after
    ``)`` only an operator or ``)``: the contextual lexer then reads ``ANDb`` as ``AND b``)."""
    states, _, _, terminals = _table()
    out: set = set()
    for actions in states.values():
        action, target = actions.get(kind, (None, None))
        if action is Shift:
            out.update(name for name in states[target] if name in terminals)
    return frozenset(out)


class _Feeder:
    """The grammar's LALR parser driven token by token, with a history so fed tokens can be
    taken back.

    The parser's state stack is a persistent linked list (``(state, rest)`` pairs): feeding
    shares it, so a trial (:meth:`accepts`) or a taken-back token costs no copy, and repair
    stays linear at any nesting depth. Only token types matter to an LALR table.
    """

    def __init__(self) -> None:
        states, start, self.end_state, self.terminals = _table()
        self.states = states
        self.stack: tuple = (start, None)
        self.history: list[tuple[str, str, int, tuple]] = []  # (type, text, pos, stack before)
        self.depth = 0

    def _step(self, stack: tuple, kind: str) -> Optional[tuple]:
        """The stack after feeding ``kind``, or None if the parser does not take it there."""
        states = self.states
        while True:
            action = states[stack[0]].get(kind)
            if action is None:
                return None
            what, arg = action
            if what is Shift:
                return (arg, stack)
            for _ in range(len(arg.expansion)):
                stack = stack[1]
            stack = (states[stack[0]][arg.origin.name][1], stack)
            if kind == "$END" and stack[0] == self.end_state:
                return stack

    def expected(self) -> frozenset:
        """The terminals the parser takes next (what the contextual lexer looks for)."""
        return frozenset(name for name in self.states[self.stack[0]] if name in self.terminals)

    def accepts(self, kind: str, text: str = "") -> bool:
        return self._step(self.stack, kind) is not None

    def feed(self, kind: str, text: str, pos: int) -> None:
        after = self._step(self.stack, kind)
        if after is None:  # pragma: no cover - callers ask accepts() first
            raise ValueError(f"the parser does not take {kind} here")
        self.history.append((kind, text, pos, self.stack))
        self.stack = after
        self.depth += {"LPAR": 1, "RPAR": -1}.get(kind, 0)

    def last(self) -> Optional[str]:
        return self.history[-1][0] if self.history else None

    def take_back(self) -> tuple[str, str, int]:
        kind, text, pos, before = self.history.pop()
        self.stack = before
        self.depth -= {"LPAR": 1, "RPAR": -1}.get(kind, 0)
        return kind, text, pos

    def texts(self) -> list[str]:
        return [text for _, text, _, _ in self.history]


def _feed(f: _Feeder, lx: _Lx, edits: list[Edit]) -> None:
    """Feed one lexeme, repairing around it when the parser does not accept it here."""
    kind = lx.type
    if f.accepts(kind, lx.text):
        f.feed(kind, lx.text, lx.pos)
        return
    last = f.last()
    if last in ("COLON", "CMP"):  # a filter whose value never came: its name stays a word
        _, text, pos = f.take_back()
        edits.append(Edit("dropped empty filter", pos, f"{text!r} without a value", text))
        _feed(f, lx, edits)
        return
    if kind in _OPERAND_START:
        if f.accepts("AND"):
            edits.append(Edit("inserted AND", lx.pos, "between two operands"))
            f.feed("AND", "AND", lx.pos)
            _feed(f, lx, edits)
            return
    elif kind in _OPS:
        if last in ("AND", "OR") and kind == "NOT":
            f.take_back()
            edits.append(Edit(f"replaced {last} NOT by NOT", lx.pos, "NOT is binary: x NOT y", last))
            f.feed("NOT", "NOT", lx.pos)
            return
        if last in _OPS:
            edits.append(Edit("dropped doubled operator", lx.pos, repr(lx.text), lx.text))
            return
        if last in (None, "LPAR"):
            edits.append(Edit("dropped leading operator", lx.pos, repr(lx.text), lx.text))
            return
    elif kind == "RPAR":
        if f.depth == 0:
            edits.append(Edit("dropped parenthesis", lx.pos, "')' without '('", ")"))
            return
        if last in _OPS:
            _, text, pos = f.take_back()
            edits.append(Edit("dropped dangling operator", pos, repr(text), text))
            _feed(f, lx, edits)
            return
        if last == "LPAR":
            _, _, pos = f.take_back()
            edits.append(Edit("dropped empty group", pos, "()", "()"))
            return
    what = {"TAG": "dropped tag", "COLON": "dropped characters", "CMP": "dropped characters"}.get(kind, "dropped token")
    edits.append(Edit(what, lx.pos, repr(lx.text), lx.text))


def _finish(f: _Feeder, end: int, edits: list[Edit]) -> None:
    """Make the fed tokens a whole query: no dangling operator or empty group, every group closed."""
    closed = 0
    run, run_at = 0, -1  # a run of unclosed "(" taken back: one edit, spelled out when it ends

    def end_run() -> None:
        nonlocal run, run_at
        if run > 1:
            e = edits[run_at]
            edits[run_at] = Edit(e.kind, e.position, "(" * run + " never closed", "(" * run)
        run, run_at = 0, -1

    while not f.accepts("$END"):
        last = f.last()
        if last is None:
            break
        if last in _OPS or last in ("COLON", "CMP"):
            end_run()
            _, text, pos = f.take_back()
            edits.append(Edit("dropped dangling operator" if last in _OPS else "dropped empty filter", pos, repr(text), text))
        elif last == "LPAR":
            _, _, pos = f.take_back()
            if run and run_at == len(edits) - 1:
                run += 1
                edits[run_at] = Edit("dropped empty group", pos, "( never closed", "(")
            else:
                end_run()
                edits.append(Edit("dropped empty group", pos, "( never closed", "("))
                run, run_at = 1, len(edits) - 1
        elif f.accepts("RPAR", ")"):
            end_run()
            f.feed("RPAR", ")", end)
            closed += 1
        else:  # pragma: no cover - the grammar has no other way to be incomplete
            break
    end_run()
    if closed:
        edits.append(Edit("closed parenthesis", end, f"{closed} ')' added"))


def _attempt(text: str, unpaired: Optional[int], cut_off: bool, base_edits: list[Edit]) -> tuple[int, list[str], list[Edit]]:
    """Repair ``text`` taking the quote at ``unpaired`` as the unclosed one; (cost, tokens, edits)."""
    edits = list(base_edits)
    lexemes = _lex(text, unpaired, edits)
    suspects = sum(lx.misquoted for lx in lexemes)
    if cut_off:
        _drop_cut_word(text, lexemes, edits)
    _normalise_operators(lexemes, edits)
    lexemes = _flatten(_fix_unary_not(_nest(lexemes), edits))
    f = _Feeder()
    for lx in lexemes:
        _feed(f, lx, edits)
    _finish(f, len(text), edits)
    return len(edits) + 3 * suspects + 2 * _closed_early(text, unpaired), f.texts(), edits


def _closed_early(text: str, unpaired: Optional[int]) -> bool:
    """Whether the quote taken as the unclosed one is closed before the end of the text.

    A query cut short leaves its last phrase open to the end; closing one in the middle adds
    a quote the writer did not write, so it weighs like two more edits (``("0)" AND "``: the
    last quote is the open one, not the first, which ``)`` would close at once).
    """
    return unpaired is not None and _open_phrase_end(text, unpaired) < len(text)


def _misquoted(raw: str, content: str) -> bool:
    """Whether a phrase looks like quotes paired the wrong way.

    Real phrases hold no line break and have no operator, parenthesis, ``:`` or comparison
    at their edges.
    """
    words = content.split()
    return (
        any(ord(c) < 0x20 or c == "\x7f" for c in raw)
        or words[0] in OPERATORS
        or words[-1] in OPERATORS
        or content[0] in "):<>="
        or content[-1] in "(:<>="
        or content.count("(") != content.count(")")
    )


def _unpaired_candidates(text: str) -> list[Optional[int]]:
    quotes = [i for i, ch in enumerate(text) if ch == '"']
    if len(quotes) % 2 == 0:
        return [None]
    # the quotes before the unpaired one pair up, so it has an even index
    return [quotes[k] for k in range(0, len(quotes), 2)][-MAX_QUOTE_CANDIDATES:]


def repair(text: str, *, cut_off: bool = False) -> RepairResult:
    """Repair ``text`` into a valid query; see the module docstring for what it does.

    A valid query comes back as it is, so repair is idempotent (one exception: a valid text
    that reads as a prose answer, ``Query: heart`` with a blank after the colon, is the
    answer's query ``heart``; ``Query:heart`` is the field filter). Otherwise the query is
    first pulled out of a model's answer (:func:`blockgen.answers.extract_query`:
    code fences, ``Query:`` prose, ``{"query": ...}`` wrappers, Elasticsearch bool queries),
    recorded as an ``"extracted query"`` edit. ``cut_off=True`` says the text was cut (e.g.
    by a token budget): its last word, when it touches the end, is dropped as possibly
    half-written. The text is first put in Unicode normal form C (:func:`blockgen.text.normalise`;
    edit positions refer to it). Linear time, any depth. Raises :class:`RepairError` when no
    term is left or the answer's query cannot be taken out, ``TypeError`` for a non-string.
    """
    if not isinstance(text, str):
        raise TypeError(f"repair() needs a str, not {type(text).__name__}")
    text = normalise(text)
    same = _as_it_is(text, cut_off)
    try:
        answer = extract_query(text)
    except AnswerError as err:
        if same is not None:
            return same
        raise RepairError(str(err)) from None
    if same is not None and not _prose_label(text, answer):
        return same  # a valid query is kept as it is: "Query:o" is a field filter
    if not answer.extracted:
        return _repair_query(text, cut_off)
    result = _repair_query(answer.text, cut_off)
    taken = Edit("extracted query", 0, answer.detail, "" if answer.source == "elasticsearch" else text.replace(answer.text, "", 1))
    return RepairResult(result.query, result.text, (taken,) + result.edits)


def _repair_query(text: str, cut_off: bool) -> RepairResult:
    """:func:`repair` of a query (the answer's wrapper already taken away)."""
    same = _as_it_is(text, cut_off)
    if same is not None:
        return same
    base: list[Edit] = []
    normal = _normalise(text, base)
    best: Optional[tuple[int, list[str], list[Edit]]] = None
    for unpaired in _unpaired_candidates(normal):
        attempt = _attempt(normal, unpaired, cut_off, base)
        if best is None or attempt[0] <= best[0]:
            best = attempt
    assert best is not None
    _, tokens, edits = best
    if not tokens:
        raise RepairError(f"nothing usable to repair: the text holds no term ({_preview(text)})")
    rebuilt = " ".join(tokens)
    try:
        query = parse(rebuilt)
    except QuerySyntaxError as err:  # pragma: no cover - would be a bug in the steps above
        raise RepairError(f"repair produced an invalid query {rebuilt!r}: {err}") from None
    if not edits:  # pragma: no cover - every deviation from the grammar is an edit
        edits.append(Edit("reformatted", 0))
    return RepairResult(query, format_query(query), tuple(edits))


def _prose_label(text: str, answer: Extraction) -> bool:
    """Whether a valid ``text`` reads as an answer's prose label with a blank after its colon
    (``Query: heart``): the model's answer, not the field filter ``Query:heart``."""
    if answer.source != "prose":
        return False
    start = text.find(answer.text)
    # a label inside the query's own group (`(Query: "x")`) is a field filter, no prose
    return start > 0 and text[start - 1] in " \t" and not any(c in "()" for c in text[:start])


def _as_it_is(text: str, cut_off: bool) -> Optional[RepairResult]:
    """``text`` unchanged (canonically formatted, no edits) if it is a valid query, else None."""
    try:
        query = parse(text)
    except QuerySyntaxError:
        return None
    formatted = format_query(query)
    if _parses_to(formatted, query) and not (cut_off and _ends_in_word(text)):
        return RepairResult(query, formatted, ())
    return None


def _ends_in_word(text: str) -> bool:
    """Whether ``text`` ends with a bare word (no blank, quote, bracket or parenthesis after it)."""
    i = len(text)
    while i > 0 and not text[i - 1].isspace():  # the last run of non-blanks (linear)
        i -= 1
    if i == len(text):
        return False
    match = None
    while i < len(text):  # the grammar lexer's last token of the run
        match = _longest_match(text, i)
        if match is None:
            return False
        i += len(match[1])
    return match is not None and match[0] == "WORD"


def _parses_to(text: str, query: Node) -> bool:
    try:
        return parse(text) == query
    except QuerySyntaxError:
        return False


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def try_repair(text: str, *, cut_off: bool = False) -> Optional[RepairResult]:
    """Like :func:`repair`, but ``None`` instead of :class:`RepairError` when nothing usable is left."""
    try:
        return repair(text, cut_off=cut_off)
    except RepairError:
        return None


# ---------------------------------------------------------------- completion


def shortest_completion(prefix: str) -> Optional[str]:
    """The shortest text to append to ``prefix`` to make it a valid query, or ``None``.

    Only closers are appended: ``"`` for an open phrase, ``]`` for an open tag, ``)`` for
    each open group, e.g. ``'(a OR "b'`` -> ``'")'``; a valid query gives ``""``. ``None``
    when closers alone cannot do it: the prefix needs a new term (it is empty, or ends with
    an operator, ``(``, ``:`` or a comparison), ends inside a word that cannot end there
    (``COVID-``), or is not the beginning of any valid query at all.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"shortest_completion() needs a str, not {type(prefix).__name__}")
    prefix = normalise(prefix)
    if lone_surrogates(prefix):
        return None
    f = _Feeder()
    completion = ""
    n = len(prefix)
    i = 0
    while i < n:
        if prefix[i] in _BLANKS:
            i += 1
            continue
        # the contextual lexer: only the terminals the parser takes here ("(a)ANDb" is "(a) AND b")
        match = _longest_match(prefix, i, f.expected())
        if match is not None and match[0] == "WORD" and _word_goes_on(prefix, i + len(match[1])):
            match = None  # the lexer never ends a word before a letter that could extend it
        if match is not None:
            kind, lexeme = match
            if not f.accepts(kind, lexeme):
                return None
            f.feed(kind, lexeme, i)
            i += len(lexeme)
            continue
        for rx, closer, kind in ((_OPEN_PHRASE, '"', "PHRASE"), (_OPEN_TAG, "]", "TAG")):
            m = rx.fullmatch(prefix, i)
            if m and terminal_regex(kind).fullmatch(m.group() + closer) and f.accepts(kind, m.group() + closer):
                f.feed(kind, m.group() + closer, i)
                completion = closer
                i = n
                break
        else:
            return None
    while not f.accepts("$END"):
        if not f.accepts("RPAR", ")"):
            return None
        f.feed("RPAR", ")", n)
        completion += ")"
    return completion


def _word_goes_on(text: str, end: int) -> bool:
    """Whether the character at ``end`` is a word by itself, so a word cannot end before it
    (the rule of :class:`blockgen.grammar.LongestMatchContextualLexer`)."""
    return end < len(text) and _word_piece(text[end])
