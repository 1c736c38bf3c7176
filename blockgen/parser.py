"""Parse and validate Boolean block queries with the grammar's lark parser."""

from __future__ import annotations

from typing import Optional

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from blockgen.grammar import lark_parser
from blockgen.query import Comparison, Field, Node, Not, Phrase, Term, make_and, make_or

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

    def __init__(self, text: str, position: int, expected: list[str], found: str):
        self.text = text
        self.position = position
        before = text[:position]
        self.line = before.count("\n") + 1
        self.column = position - (before.rfind("\n") + 1) + 1
        self.expected = expected
        self.found = found
        super().__init__(self._message())

    def caret(self) -> str:
        """The offending line of the query with a ``^`` under the error position."""
        lines = self.text.split("\n")
        line = lines[self.line - 1] if lines else ""
        return f"{line}\n{' ' * (self.column - 1)}^"

    def _message(self) -> str:
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


@v_args(inline=True)
class _ToQuery(Transformer):
    """Turn lark's parse tree into :mod:`blockgen.query` nodes."""

    def start(self, query):
        return query

    def query(self, first, *rest):
        node = first
        pending: list[Node] = [first]
        # AND and NOT share one level and associate to the left.
        for op, operand in zip(rest[0::2], rest[1::2]):
            if op.type == "AND":
                pending.append(operand)
            else:
                node = Not(make_and(pending), operand)
                pending = [node]
        return make_and(pending)

    def block(self, *units):
        return make_or(u for u in units if not (isinstance(u, Token) and u.type == "OR"))

    def group(self, query):
        return query

    def term(self, first, tag=None):
        if isinstance(first, Token) and first.type == "PHRASE":
            return Phrase(_unquote(first), _tag(tag))
        return Term(first, _tag(tag))

    def words(self, *words):
        return " ".join(str(w) for w in words)

    def field(self, name, value):
        quoted = value.type == "PHRASE"
        return Field(str(name), _unquote(value) if quoted else str(value), quoted)

    def comparison(self, name, op, value):
        quoted = value.type == "PHRASE"
        return Comparison(str(name), str(op), _unquote(value) if quoted else str(value), quoted)


def parse(text: str) -> Node:
    """Parse a Boolean block query into its syntax tree.

    Raises :class:`QuerySyntaxError` (a ``ValueError``) when ``text`` is not a valid
    query, and ``TypeError`` when it is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"a query must be a str, not {type(text).__name__}")
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as err:
        raise _to_syntax_error(text, err) from None
    return _ToQuery().transform(tree)


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
