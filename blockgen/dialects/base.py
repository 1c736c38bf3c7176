"""The interface every dialect implements, and what reading and writing return.

A :class:`Dialect` reads text by its engine's rules into the query tree
(:meth:`Dialect.read` -> :class:`Reading`) and writes a tree so that the engine executes
what the tree means (:meth:`Dialect.write` -> :class:`Writing`). Whatever a reader had to
decide or a writer could not express is a :class:`Note`; nothing is dropped silently.
Text that cannot be read raises :class:`DialectSyntaxError`, which names the position.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from blockgen.parser import QuerySyntaxError
from blockgen.query import Node

__all__ = ["Dialect", "DialectError", "DialectSyntaxError", "DialectWarning", "LOSS_KINDS", "Note", "Reading", "Writing"]


@dataclass(frozen=True)
class Note:
    """Something a reader decided or a writer could not express exactly.

    ``kind`` is a short fixed label (e.g. ``"proximity approximated"``), ``line`` the 1-based
    line of the input it concerns (None for notes of a writer), ``detail`` a readable sentence.
    """

    kind: str
    line: Optional[int]
    detail: str

    def __str__(self) -> str:
        return (f"line {self.line}: " if self.line is not None else "") + self.detail

    def as_dict(self) -> dict:
        return {"kind": self.kind, "line": self.line, "detail": self.detail}


#: Note kinds of writers that mean the written query finds a different set of records than
#: the tree (the others only say how something was spelled).
LOSS_KINDS = frozenset(
    {
        "proximity approximated", "tag dropped", "tag approximated", "explosion lost",
        "truncation approximated", "wildcard approximated", "term dropped", "term quoted",
        "characters dropped", "comparison approximated",
    }
)


@dataclass(frozen=True)
class Reading:
    """The tree read from a text, and the notes of what the reader decided or dropped."""

    query: Node
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Writing:
    """The text written for a tree, and the notes of what the target cannot express.

    ``exact`` is True when no note says that the text finds other records than the tree.
    """

    text: str
    notes: tuple[Note, ...] = ()

    @property
    def exact(self) -> bool:
        return not any(note.kind in LOSS_KINDS for note in self.notes)


class DialectError(ValueError):
    """A query that a dialect cannot read or write at all."""


class DialectSyntaxError(QuerySyntaxError):
    """Text a dialect cannot read, with the position (``line``, ``column``, ``position``)."""

    def __init__(self, dialect: str, text: str, position: int, expected: list[str], found: str, hint: str = ""):
        self.dialect = dialect
        self.hint = hint
        super().__init__(text, position, expected, found)

    def _message(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        expected = f", expected {', '.join(self.expected)}" if self.expected else ""
        return f"invalid {self.dialect} query at line {self.line}, column {self.column}: found {self.found}{hint}{expected}\n{self.caret()}"


class DialectWarning(UserWarning):
    """A note issued as a Python warning by :func:`blockgen.parse` / :func:`blockgen.format`
    with a ``dialect``: ``warning.note`` is the :class:`Note`."""

    def __init__(self, dialect: str, note: Note):
        self.dialect = dialect
        self.note = note
        super().__init__(f"{dialect}: {note}")


class Dialect(ABC):
    """One search engine's query syntax: how to read it and how to write it."""

    #: The name used in ``parse(text, dialect=NAME)``.
    name: str = ""
    #: One line about the engine, for help texts.
    description: str = ""

    @abstractmethod
    def read(self, text: str) -> Reading:
        """Read ``text`` by the engine's rules; raise :class:`DialectSyntaxError` if it cannot be read."""

    @abstractmethod
    def write(self, query: Node) -> Writing:
        """Write ``query`` so that the engine executes what it means, noting what it cannot express."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
