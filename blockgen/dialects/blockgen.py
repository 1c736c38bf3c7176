"""blockgen's own syntax as a dialect: the grammar's parser and the canonical formatter.

Reading is :func:`blockgen.parse` and writing is :func:`blockgen.format_query`, unchanged:
OR binds tighter than AND and NOT (the "block reading"), operators are upper case, tags are
written as PubMed writes them. Every tree the other dialects read can be written exactly
(proximity is the tag ``[tiab:~3]``, MeSH explosion the tag ``[Mesh]`` / ``[Mesh:NoExp]``),
with one exception: a term whose words the grammar's ``WORD`` terminal cannot hold
(``C++``, ``2010:2020``) is written as a quoted phrase of each such word, which means the same
for a single word (noted when it does not).
"""

from __future__ import annotations

from blockgen.dialects._walk import map_leaves
from blockgen.dialects.base import Dialect, Note, Reading, Writing
from blockgen.formatter import STYLES, format_query
from blockgen.grammar import terminal_regex
from blockgen.parser import parse
from blockgen.query import Node, Phrase, Term, make_and

__all__ = ["Blockgen"]

NAME = "blockgen"


class Blockgen(Dialect):
    """The blockgen grammar (``grammar/boolean_block.lark``): OR binds tighter than AND/NOT."""

    name = NAME
    description = "blockgen: OR binds tighter than AND/NOT, upper-case operators (the grammar)"

    def __init__(self, style: str = "canonical"):
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        self.style = style

    def read(self, text: str) -> Reading:
        return Reading(parse(text))

    def write(self, query: Node) -> Writing:
        if not isinstance(query, Node):
            raise TypeError(f"format() needs a parsed query, not {type(query).__name__}; use parse() first")
        notes: list[Note] = []
        fitted = map_leaves(query, lambda leaf: _fit(leaf, notes))
        assert fitted is not None  # _fit never drops a leaf
        return Writing(format_query(fitted, self.style), tuple(notes))


def _fits(word: str) -> bool:
    # WORD itself excludes the upper-case operators; "or", "and", "not" are words of the grammar
    return terminal_regex("WORD").fullmatch(word) is not None


def _fit(leaf: Node, notes: list[Note]) -> Node:
    """A Term whose words the grammar cannot hold: each such word quoted (the same meaning,
    as a one-word phrase is the word); a heading or proximity term becomes a phrase."""
    if not isinstance(leaf, Term) or all(_fits(w) for w in leaf.text.split()):
        return leaf
    from blockgen.dialects.tags import parse_tag

    tag = parse_tag(leaf.tag)
    words = leaf.text.split()
    if tag.heading or tag.proximity is not None or len(words) == 1:
        return Phrase(leaf.text, leaf.tag)
    plain = [w for w in words if _fits(w)]
    odd = [w for w in words if not _fits(w)]
    notes.append(Note("term split", None, f"{leaf.text!r}: words {odd} quoted one by one (the same meaning: all words)"))
    return make_and(([Term(" ".join(plain), leaf.tag)] if plain else []) + [Phrase(w, leaf.tag) for w in odd])
