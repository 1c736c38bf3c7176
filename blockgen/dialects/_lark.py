"""Shared machinery of the dialects with a Lark grammar (``grammar/<dialect>.lark``).

A reader works in three steps, each with positions kept for errors and notes:

1. :func:`lex` the text with the grammar's terminals (lark's basic lexer);
2. rewrite the token list by the engine's rules (implicit operators, operator case ...);
3. :func:`parse_tokens` feeds the tokens to the grammar's LALR parser (lark's interactive
   parser), and :func:`fold` turns lark's tree into query nodes with an explicit stack
   (any depth, no recursion).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Iterable, Optional

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from blockgen.dialects.base import DialectSyntaxError
from blockgen.grammar import grammar_path

__all__ = ["fold", "lex", "line_of", "load", "parse_tokens", "syntax_error"]


@lru_cache(maxsize=None)
def load(name: str) -> Lark:
    """The LALR parser of ``grammar/<name>.lark`` (built once per process)."""
    text = grammar_path(f"{name}.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", lexer="basic", maybe_placeholders=False)


def line_of(text: str, pos: int) -> int:
    """The 1-based line of character ``pos``."""
    return text.count("\n", 0, pos) + 1


def _found(text: str, pos: int) -> str:
    if pos >= len(text):
        return "the end of the query"
    snippet = text[pos : pos + 12].split("\n")[0]
    return repr(snippet) if snippet else repr(text[pos])


def syntax_error(
    dialect: str, text: str, pos: int, expected: Iterable[str] = (), hint: str = "", names: Optional[dict] = None
) -> DialectSyntaxError:
    """A :class:`DialectSyntaxError` at ``pos``; ``names`` spell terminal names for people."""
    names = names or {}
    shown = sorted({names.get(n, n) for n in expected if (n.isupper() or n == "$END") and not n.startswith("__")})
    return DialectSyntaxError(dialect, text, pos, shown, _found(text, pos), hint)


def lex(dialect: str, text: str, names: Optional[dict] = None, hints: Optional[dict] = None) -> list[Token]:
    """The tokens of ``text`` by the dialect's grammar; a character no terminal takes is an
    error at its position (``hints`` maps such a character to a readable hint)."""
    try:
        return list(load(dialect).lex(text))
    except UnexpectedCharacters as err:
        pos = err.pos_in_stream
        ch = text[pos] if pos < len(text) else ""
        hint = (hints or {}).get(ch, "")
        raise syntax_error(dialect, text, pos, err.allowed or (), hint, names) from None


def parse_tokens(dialect: str, text: str, tokens: list[Token], names: Optional[dict] = None) -> Tree:
    """Feed ``tokens`` to the dialect's LALR parser; an unexpected token is an error at its position."""
    ip = load(dialect).parse_interactive("")
    for tok in tokens:
        try:
            ip.feed_token(tok)
        except UnexpectedToken as err:
            raise syntax_error(dialect, text, tok.start_pos, err.accepts or err.expected, "", names) from None
    try:
        return ip.feed_eof()
    except (UnexpectedToken, UnexpectedEOF) as err:
        expected = getattr(err, "accepts", None) or getattr(err, "expected", ())
        raise syntax_error(dialect, text, len(text), expected, "", names) from None
    except UnexpectedInput as err:  # pragma: no cover - lark raises the two above
        raise syntax_error(dialect, text, len(text), (), str(err), names) from None


def fold(tree: Tree, rules: dict[str, Callable[[Tree, list], object]]) -> object:
    """Turn ``tree`` into a value bottom-up with an explicit stack: ``rules[tree.data](tree,
    children)`` gets the already folded children (tokens stay tokens)."""
    values: list[object] = []
    stack: list[tuple[object, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, Tree):
            values.append(node)
            continue
        if not done:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
            continue
        n = len(node.children)
        children = values[len(values) - n :] if n else []
        if n:
            del values[len(values) - n :]
        values.append(rules[node.data](node, children))
    return values[0]
