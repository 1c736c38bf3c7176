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

from dataclasses import dataclass, fields
from typing import Iterator, Optional, Union


class Node:
    """Base class of every query node. ``str(node)`` gives the canonical query text.

    Equality, hashing, ``repr`` and :meth:`leaves` walk the tree with an explicit stack, so
    a tree of any depth (``a NOT b NOT c ...`` ten thousand times) works without recursion.
    """

    def __str__(self) -> str:
        from blockgen.formatter import format_query

        return format_query(self)

    def _fields(self) -> tuple:
        """The node's own values, children excluded (what equality compares besides them)."""
        return tuple(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def _children(self) -> tuple["Node", ...]:
        return ()

    def leaves(self) -> Iterator["Leaf"]:
        """All leaves (terms, phrases, fields, comparisons) left to right."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            kids = node._children()
            if kids:
                stack.extend(reversed(kids))
            else:
                yield node  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        stack: list[tuple[Node, Node]] = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a is b:
                continue
            if type(a) is not type(b):
                return False
            ka, kb = a._children(), b._children()
            if not ka:
                if a._fields() != b._fields():
                    return False
                continue
            if len(ka) != len(kb):
                return False
            stack.extend(zip(ka, kb))
        return True

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __getstate__(self) -> dict:
        # a remembered hash is not pickled: string hashes differ between processes
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __hash__(self) -> int:
        # bottom-up with an explicit stack; inner nodes remember theirs, so a deep tree is
        # hashed once
        values: list[int] = []
        stack: list[tuple[Node, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            kids = node._children()
            if not kids:
                values.append(hash((type(node).__name__,) + node._fields()))
                continue
            known = node.__dict__.get("_hash")
            if known is not None:
                values.append(known)
                continue
            if not done:
                stack.append((node, True))
                stack.extend((kid, False) for kid in kids)
                continue
            mine = tuple(values[len(values) - len(kids) :])
            del values[len(values) - len(kids) :]
            value = hash((type(node).__name__,) + mine)
            object.__setattr__(node, "_hash", value)  # frozen: remembered beside the fields
            values.append(value)
        return values[0]

    def __repr__(self) -> str:
        parts: list[str] = []
        stack: list[object] = [self]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, (Or, And)):
                parts.append(f"{type(item).__name__}(items=(")
                stack.append(",))" if len(item.items) == 1 else "))")
                for k in range(len(item.items) - 1, -1, -1):
                    stack.append(item.items[k])
                    if k:
                        stack.append(", ")
            elif isinstance(item, Not):
                parts.append("Not(positive=")
                stack.extend([")", item.negative, ", negative=", item.positive])
            else:
                values = ", ".join(f"{f.name}={getattr(item, f.name)!r}" for f in fields(item))  # type: ignore[arg-type]
                parts.append(f"{type(item).__name__}({values})")
        return "".join(parts)


@dataclass(frozen=True, eq=False, repr=False)
class Term(Node):
    """Bare words side by side, e.g. ``climate change`` or ``child*``; ``tag`` is a PubMed tag."""

    text: str
    tag: Optional[str] = None


@dataclass(frozen=True, eq=False, repr=False)
class Phrase(Node):
    """A quoted phrase, e.g. ``"global warming"`` or ``"Acne Vulgaris"[Mesh]``."""

    text: str
    tag: Optional[str] = None


@dataclass(frozen=True, eq=False, repr=False)
class Field(Node):
    """A CORE field filter ``name:value``, e.g. ``fieldsOfStudy:"biology"``."""

    name: str
    value: str
    quoted: bool = True


@dataclass(frozen=True, eq=False, repr=False)
class Comparison(Node):
    """A field comparison ``name op value``, e.g. ``yearPublished>=2019``."""

    name: str
    op: str
    value: str
    quoted: bool = False


Leaf = Union[Term, Phrase, Field, Comparison]


@dataclass(frozen=True, eq=False, repr=False)
class Or(Node):
    """Synonyms of one concept: any of ``items`` (two or more)."""

    items: tuple[Node, ...]

    def _children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, eq=False, repr=False)
class And(Node):
    """All of ``items`` (two or more concept blocks)."""

    items: tuple[Node, ...]

    def _children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, eq=False, repr=False)
class Not(Node):
    """``positive NOT negative``: what matches ``positive`` but not ``negative``."""

    positive: Node
    negative: Node

    def _children(self) -> tuple[Node, ...]:
        return (self.positive, self.negative)


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
    A query without AND/NOT is one block. Any depth (an explicit stack, no recursion).
    """
    out: list[Block] = []
    stack: list[Union[Node, Block]] = [query]
    while stack:
        item = stack.pop()
        if isinstance(item, Block):
            out.append(item)
        elif isinstance(item, And):
            stack.extend(it if isinstance(it, Not) else Block(it) for it in reversed(item.items))
        elif isinstance(item, Not):
            stack.append(Block(item.negative, negated=True))
            stack.append(item.positive)
        else:
            out.append(Block(item))
    return out


def terms(query: Node) -> list[Leaf]:
    """All leaves of ``query`` (terms, phrases, fields, comparisons), left to right."""
    return list(query.leaves())
