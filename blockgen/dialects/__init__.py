"""Query dialects: read and write queries the way real search engines do.

One module per dialect behind one small interface (:class:`~blockgen.dialects.base.Dialect`:
``read(text) -> Reading``, ``write(query) -> Writing``), as Outlines keeps one module per
backend:

========  ====================================================================
name      engine
========  ====================================================================
blockgen  blockgen's grammar (the default): OR binds tighter than AND/NOT
pubmed    PubMed: AND/OR/NOT left to right, implicit AND, [tags], #n history
ovid      Ovid MEDLINE: numbered lines, adjN, $, .ti,ab., exp X/
lucene    Lucene / Elasticsearch query_string: AND binds tighter than OR, field:
========  ====================================================================

>>> from blockgen.dialects import translate
>>> translate("a AND b OR c", "pubmed", "blockgen").text
'(a AND b) OR c'
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Union

from blockgen.dialects.base import Dialect, DialectError, DialectSyntaxError, DialectWarning, Note, Reading, Writing
from blockgen.query import Node

__all__ = [
    "DIALECTS", "Dialect", "DialectError", "DialectSyntaxError", "DialectWarning", "Note", "Reading",
    "Translation", "Writing", "get_dialect", "read", "translate", "warn", "write",
]

#: Dialect name -> (module, class) under blockgen.dialects.
_REGISTRY = {
    "blockgen": ("blockgen.dialects.blockgen", "Blockgen"),
    "pubmed": ("blockgen.dialects.pubmed", "PubMed"),
    "ovid": ("blockgen.dialects.ovid", "Ovid"),
    "lucene": ("blockgen.dialects.lucene", "Lucene"),
}
#: The names of the dialects, the default first.
DIALECTS = tuple(_REGISTRY)

_INSTANCES: dict[str, Dialect] = {}


def get_dialect(dialect: Union[str, Dialect]) -> Dialect:
    """The dialect called ``dialect`` (a :class:`Dialect` instance is returned as is)."""
    if isinstance(dialect, Dialect):
        return dialect
    if dialect not in _REGISTRY:
        raise ValueError(f"unknown dialect {dialect!r}; choose one of {', '.join(DIALECTS)}")
    if dialect not in _INSTANCES:
        module, cls = _REGISTRY[dialect]
        _INSTANCES[dialect] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[dialect]


def read(text: str, dialect: Union[str, Dialect] = "blockgen") -> Reading:
    """Read ``text`` in ``dialect``: the tree and the notes of what the reader decided."""
    return get_dialect(dialect).read(text)


def write(query: Node, dialect: Union[str, Dialect] = "blockgen") -> Writing:
    """Write ``query`` in ``dialect``: the text and the notes of what it cannot express."""
    return get_dialect(dialect).write(query)


@dataclass(frozen=True)
class Translation:
    """A query read in one dialect and written in another: the ``text``, the ``query`` tree
    between them, and the notes of reading (``read_notes``) and writing (``write_notes``)."""

    text: str
    query: Node
    read_notes: tuple[Note, ...] = ()
    write_notes: tuple[Note, ...] = ()

    @property
    def notes(self) -> tuple[Note, ...]:
        return self.read_notes + self.write_notes

    @property
    def exact(self) -> bool:
        """True when the written text finds what the read tree means (see :attr:`Writing.exact`)."""
        return Writing(self.text, self.write_notes).exact


def translate(text: str, source: Union[str, Dialect], target: Union[str, Dialect]) -> Translation:
    """Read ``text`` in ``source`` and write it in ``target``."""
    reading = read(text, source)
    writing = write(reading.query, target)
    return Translation(writing.text, reading.query, reading.notes, writing.notes)


def warn(dialect: Union[str, Dialect], notes, stacklevel: int = 3) -> None:
    """Issue each note as a :class:`DialectWarning`."""
    name = get_dialect(dialect).name
    for note in notes:
        warnings.warn(DialectWarning(name, note), stacklevel=stacklevel)
