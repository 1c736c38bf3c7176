"""The typed syntax tree of a Boolean block query.

A query is a tree of small frozen dataclasses::

    And(items=(Or(items=(Phrase("climate change"), Phrase("global warming"))),
               Or(items=(Phrase("social media"), Term("Twitter")))))

Leaves: :class:`Term` (bare words), :class:`Phrase` (quoted), :class:`Field`
(``language:"en"``) and :class:`Comparison` (``yearPublished>=2019``).
Inner nodes: :class:`Or`, :class:`And` (both flat, two or more items) and :class:`Not`
(``positive NOT negative``). ``str(query)`` is the canonical text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Union


class Node:
    """Base class of every query node. ``str(node)`` gives the canonical query text."""

    def __str__(self) -> str:
        from blockgen.formatter import format_query

        return format_query(self)

    def leaves(self) -> Iterator["Leaf"]:
        """All leaves (terms, phrases, fields, comparisons) left to right."""
        raise NotImplementedError


@dataclass(frozen=True, eq=True)
class Term(Node):
    """Bare words side by side, e.g. ``climate change`` or ``child*``; ``tag`` is a PubMed tag."""

    text: str
    tag: Optional[str] = None

    def leaves(self):
        yield self


@dataclass(frozen=True, eq=True)
class Phrase(Node):
    """A quoted phrase, e.g. ``"global warming"`` or ``"Acne Vulgaris"[Mesh]``."""

    text: str
    tag: Optional[str] = None

    def leaves(self):
        yield self


@dataclass(frozen=True, eq=True)
class Field(Node):
    """A CORE field filter ``name:value``, e.g. ``fieldsOfStudy:"biology"``."""

    name: str
    value: str
    quoted: bool = True

    def leaves(self):
        yield self


@dataclass(frozen=True, eq=True)
class Comparison(Node):
    """A field comparison ``name op value``, e.g. ``yearPublished>=2019``."""

    name: str
    op: str
    value: str
    quoted: bool = False

    def leaves(self):
        yield self


Leaf = Union[Term, Phrase, Field, Comparison]


@dataclass(frozen=True, eq=True)
class Or(Node):
    """Synonyms of one concept: any of ``items`` (two or more)."""

    items: tuple[Node, ...]

    def leaves(self):
        for item in self.items:
            yield from item.leaves()


@dataclass(frozen=True, eq=True)
class And(Node):
    """All of ``items`` (two or more concept blocks)."""

    items: tuple[Node, ...]

    def leaves(self):
        for item in self.items:
            yield from item.leaves()


@dataclass(frozen=True, eq=True)
class Not(Node):
    """``positive NOT negative``: what matches ``positive`` but not ``negative``."""

    positive: Node
    negative: Node

    def leaves(self):
        yield from self.positive.leaves()
        yield from self.negative.leaves()


#: The type ``parse`` returns: any node.
Query = Node


def make_or(items) -> Node:
    """An :class:`Or` of ``items``, flattened; a single item is returned as is."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Or) else (item,))
    if not flat:
        raise ValueError("an OR group needs at least one item")
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def make_and(items) -> Node:
    """An :class:`And` of ``items``, flattened; a single item is returned as is."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, And) else (item,))
    if not flat:
        raise ValueError("an AND group needs at least one item")
    return flat[0] if len(flat) == 1 else And(tuple(flat))


@dataclass(frozen=True)
class Block:
    """One concept block of a query: ``node`` (often an :class:`Or`), and whether it is excluded."""

    node: Node
    negated: bool = False

    def terms(self) -> list[Leaf]:
        return list(self.node.leaves())


def blocks(query: Node) -> list[Block]:
    """The concept blocks of ``query``: the operands joined by AND, and those excluded by NOT.

    ``(a OR b) AND c NOT (d OR e)`` has blocks ``a OR b``, ``c`` and the negated ``d OR e``.
    A query without AND/NOT is one block.
    """
    if isinstance(query, And):
        out: list[Block] = []
        for item in query.items:
            if isinstance(item, Not):
                out.extend(blocks(item))
            else:
                out.append(Block(item))
        return out
    if isinstance(query, Not):
        return blocks(query.positive) + [Block(query.negative, negated=True)]
    return [Block(query)]


def terms(query: Node) -> list[Leaf]:
    """All leaves of ``query`` (terms, phrases, fields, comparisons), left to right."""
    return list(query.leaves())
