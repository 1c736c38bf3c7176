"""Parse and validate Boolean block queries with the grammar's lark parser."""

from __future__ import annotations

import re
from copy import copy
from functools import lru_cache
from typing import Callable, Optional

from lark import Token, Tree
from lark.grammar import Rule
from lark.lexer import LexerThread
from lark.parsers.lalr_parser_state import ParserState
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from blockgen.grammar import lark_parser
from blockgen.query import Comparison, Field, Node, Not, Phrase, Term, make_and, make_or
from blockgen.text import lone_surrogates, normalise

_SURROGATE = re.compile("[\ud800-\udfff]")

#: How a terminal of the grammar is named in error messages.
TERMINAL_NAMES = {
    "WORD": "a word",
    "PHRASE": 'a "quoted phrase"',
    "TAG": "a [field tag]",
    "CMP": "a comparison (>=, <=, >, <, =)",
    "COLON": '":"',
    "LPAR": '"("',
    "RPAR": '")"',
    "AND": "AND",
    "OR": "OR",
    "NOT": "NOT",
    "$END": "the end of the query",
}


class QuerySyntaxError(ValueError):
    """A query that does not follow the grammar.

    Attributes: ``text`` (the input), ``position`` (0-based character offset),
    ``line`` and ``column`` (1-based), ``expected`` (readable names of what would have
    been accepted there) and ``found`` (what was there instead).
    """

    def __init__(self, text: str, position: int, expected: list[str], found: str, reason: str = ""):
        self.text = text
        self.position = position
        self.line = text.count("\n", 0, position) + 1
        self.column = position - (text.rfind("\n", 0, position) + 1) + 1
        self.expected = expected
        self.found = found
        self.reason = reason
        super().__init__(self._message())

    def caret(self) -> str:
        """The offending line of the query with a ``^`` under the error position (at most 80
        characters around it; a lone surrogate shown as U+FFFD, so the message can be printed)."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start : len(self.text) if end < 0 else end]
        column = self.column - 1
        if len(line) > 80:
            cut = max(0, min(column - 40, len(line) - 80))
            line, column = line[cut : cut + 80], column - cut
        line = _SURROGATE.sub("\ufffd", line)
        return f"{line}\n{' ' * column}^"

    def _message(self) -> str:
        if self.reason:
            return f"invalid query at line {self.line}, column {self.column}: {self.reason}\n{self.caret()}"
        expected = ", ".join(self.expected) if self.expected else "nothing more"
        hint = ""
        if self.found.startswith(("'\"", '"\"')):
            hint = " (a quote that is never closed?)"
        elif self.found.startswith(("'[", '"[')):
            hint = " (a field tag is [letters], directly after a word or phrase)"
        return (
            f"invalid query at line {self.line}, column {self.column}: found {self.found}{hint}, "
            f"expected {expected}\n{self.caret()}"
        )


def _describe_found(text: str, pos: int) -> str:
    if pos >= len(text):
        return "the end of the query"
    snippet = text[pos : pos + 12].split("\n")[0]
    return repr(snippet) if snippet else repr(text[pos])


def _expected_names(names) -> list[str]:
    terminals = [n for n in names if n.isupper() or n == "$END"]  # drop rule names
    return sorted({TERMINAL_NAMES.get(n, n) for n in terminals if not n.startswith("__")})


def _to_syntax_error(text: str, err: UnexpectedInput) -> QuerySyntaxError:
    if isinstance(err, UnexpectedToken):
        pos = len(text) if err.token.type == "$END" else err.token.start_pos
        return QuerySyntaxError(text, pos, _expected_names(err.accepts or err.expected), _describe_found(text, pos))
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream
        allowed = err.allowed or ()
        state = getattr(err, "state", None)
        if state is not None:  # what the parser accepts here, not every terminal of the lexer
            allowed = state.parse_conf.states[state.position].keys()
        return QuerySyntaxError(text, pos, _expected_names(allowed), _describe_found(text, pos))
    if isinstance(err, UnexpectedEOF):
        return QuerySyntaxError(text, len(text), _expected_names(err.expected), "the end of the query")
    return QuerySyntaxError(text, getattr(err, "pos_in_stream", 0) or 0, [], "?")  # pragma: no cover


def _squeeze(inner: str) -> str:
    """Blanks (any Unicode whitespace) made single spaces, ends trimmed. The grammar's PHRASE
    needs a character that is not a blank, so a phrase never becomes empty here."""
    return " ".join(inner.split())


def _unquote(token: str) -> str:
    return _squeeze(token[1:-1])


def _tag(token: Optional[Token]) -> Optional[str]:
    return None if token is None else _squeeze(token[1:-1])


def _query(children: list) -> Node:
    # AND and NOT share one level and associate to the left.
    pending: list[Node] = [children[0]]
    for op, operand in zip(children[1::2], children[2::2]):
        if op.type == "AND":
            pending.append(operand)
        else:
            pending = [Not(make_and(pending), operand)]
    return make_and(pending)


def _term(children: list) -> Node:
    first, tag = children[0], (children[1] if len(children) > 1 else None)
    if isinstance(first, Token) and first.type == "PHRASE":
        return Phrase(_unquote(first), _tag(tag))
    return Term(first, _tag(tag))


def _filter(children: list) -> Node:
    name, value = children[0], children[-1]
    quoted = value.type == "PHRASE"
    text = _unquote(value) if quoted else str(value)
    if len(children) == 2:
        return Field(str(name), text, quoted)
    return Comparison(str(name), str(children[1]), text, quoted)


#: How each rule of the grammar becomes a query node, given its already converted children.
_RULES: dict[str, Callable[[list], object]] = {
    "start": lambda children: children[-1],
    "query": _query,
    "block": lambda children: make_or(u for u in children if not (isinstance(u, Token) and u.type == "OR")),
    "group": lambda children: children[0],
    "term": _term,
    "words": lambda children: " ".join(str(w) for w in children),
    "field": _filter,
    "comparison": _filter,
}


def _converting(callback: Callable[[list], object]) -> Callable[[list], object]:
    """Wrap one of lark's tree-building rule callbacks: a rule of :data:`_RULES` becomes its
    query node at once, so no parse tree is kept (the LALR loop is iterative: any depth)."""

    def call(children: list) -> object:
        value = callback(children)
        if isinstance(value, Tree) and value.data in _RULES:
            return _RULES[value.data](value.children)
        return value

    return call


@lru_cache(maxsize=1)
def _query_parser() -> tuple[object, object]:
    """The grammar's parse table with callbacks that build query nodes, and its lexer."""
    probe = lark_parser().parse_interactive("")
    conf = copy(probe.parser_state.parse_conf)
    conf.callbacks = {key: (_converting(cb) if isinstance(key, Rule) else cb) for key, cb in conf.callbacks.items()}
    return conf, probe.lexer_thread.lexer


def _to_query(text: str) -> Node:
    conf, lexer = _query_parser()
    state = ParserState(conf, LexerThread.from_text(lexer, text))
    token = None
    for token in state.lexer.lex(state):
        state.feed_token(token)
    end = Token.new_borrow_pos("$END", "", token) if token is not None else Token("$END", "", 0, 1, 1)
    return state.feed_token(end, True)  # type: ignore[no-any-return]


def parse(text: str) -> Node:
    """Parse a Boolean block query into its syntax tree.

    The text is first put in Unicode normal form C (:func:`blockgen.text.normalise`). Any
    depth of parentheses and any length is read (no recursion; linear time).
    Raises :class:`QuerySyntaxError` (a ``ValueError``) when ``text`` is not a valid
    query (also when it holds a lone surrogate, which cannot be encoded), and ``TypeError``
    when it is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"a query must be a str, not {type(text).__name__}")
    text = normalise(text)
    surrogates = lone_surrogates(text)
    if surrogates:
        pos = surrogates[0]
        reason = (
            f"found {text[pos]!r}, a lone surrogate: no character, so the text cannot be encoded "
            "(was it decoded with errors='surrogateescape', or built from a \\ud800-style escape?)"
        )
        raise QuerySyntaxError(text, pos, [], repr(text[pos]), reason)
    try:
        return _to_query(text)
    except UnexpectedInput as err:
        raise _to_syntax_error(text, err) from None


def validate(text: str) -> Node:
    """Check ``text``; return its syntax tree, or raise :class:`QuerySyntaxError`."""
    return parse(text)


def is_valid(text: str) -> bool:
    """Whether ``text`` is a valid Boolean block query."""
    try:
        parse(text)
    except (QuerySyntaxError, TypeError):
        return False
    return True
