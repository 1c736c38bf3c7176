"""Repeated terms in one query: what counts as "the same term", finding and dropping repeats.

A query such as ``(outcome OR outcome) AND trial`` searches for nothing more than
``outcome AND trial``: the second ``outcome`` is a repeat. Two leaves are *the same term*
when their :func:`term_key` is equal. The key is the leaf's canonical text with

* case ignored (Unicode case folding: ``COVID`` = ``covid``),
* blanks squeezed (runs of spaces, tabs and line breaks are one space, ends trimmed),
* quotes ignored: a phrase and the same bare words are the same term
  (``"climate change"`` = ``climate change``),

and with these kept as part of the term:

* a PubMed field tag: ``acne[tiab]``, ``acne[Mesh]`` and ``acne`` are three different terms
  (a text word and a heading search different fields); the tag itself is compared
  case-insensitively with blanks squeezed (``acne[TIAB]`` = ``acne[tiab]``);
* truncation and wildcards: ``child*`` and ``child`` are different terms (one is broader);
* fields and comparisons: ``language:en``, ``language:"en"`` and ``yearPublished>=2019`` are
  keyed by name, operator and value (``en`` alone is another term).

Pure functions on :mod:`blockgen.query` trees; :func:`drop_repeated_terms` is what
constrained decoding applies last when the token budget forced a repeat.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

from blockgen.query import And, Comparison, Field, Leaf, Node, Not, Or, Phrase, Term, make_and, make_or

__all__ = ["term_key", "repeated_terms", "drop_repeated_terms", "has_repeated_terms", "source_key"]


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def term_key(leaf: Leaf) -> str:
    """The key under which two leaves are the same term (see the module docstring).

    >>> term_key(Phrase("Climate  Change")) == term_key(Term("climate change"))
    True
    >>> term_key(Term("acne", "tiab")) == term_key(Term("acne", "Mesh"))
    False
    """
    if isinstance(leaf, (Term, Phrase)):
        return _fold(leaf.text) + (f"[{_fold(leaf.tag)}]" if leaf.tag else "")
    if isinstance(leaf, Field):
        return f"{_fold(leaf.name)}:{_fold(leaf.value)}"
    if isinstance(leaf, Comparison):
        return f"{_fold(leaf.name)}{leaf.op}{_fold(leaf.value)}"
    raise TypeError(f"not a leaf of a query: {leaf!r}")


def repeated_terms(query: Node) -> list[Leaf]:
    """Every leaf whose term already occurred earlier in ``query`` (reading order), in order.

    ``repeated_terms(parse("(outcome OR Outcome) AND trial"))`` is ``[Term("Outcome")]``;
    an empty list means the query repeats no term.
    """
    seen: set[str] = set()
    out: list[Leaf] = []
    for leaf in query.leaves():
        key = term_key(leaf)
        if key in seen:
            out.append(leaf)
        seen.add(key)
    return out


def has_repeated_terms(query: Node) -> bool:
    """Whether some term occurs twice in ``query``."""
    return bool(repeated_terms(query))


def drop_repeated_terms(query: Node) -> Node:
    """``query`` with every repeated term dropped; the first occurrence of each term stays.

    An OR-group left with one item becomes that item; an AND left with one operand becomes
    that operand; ``x NOT y`` whose excluded side ``y`` is all repeats becomes ``x``, and
    whose kept side ``x`` is all repeats is dropped whole (``y`` excludes nothing by itself).
    The result has no repeated term, parses, and is ``query`` itself when nothing repeats.
    The first leaf is never dropped, so a result always exists.
    """
    if not repeated_terms(query):
        return query
    seen: set[str] = set()
    kept = _drop(query, seen)
    assert kept is not None  # the first leaf is always kept
    return kept


def _drop(node: Node, seen: set[str]) -> Optional[Node]:
    if isinstance(node, (Term, Phrase, Field, Comparison)):
        key = term_key(node)
        if key in seen:
            return None
        seen.add(key)
        return node
    if isinstance(node, (Or, And)):
        items = [kept for kept in (_drop(item, seen) for item in node.items) if kept is not None]
        if not items:
            return None
        return make_or(items) if isinstance(node, Or) else make_and(items)
    if isinstance(node, Not):
        positive = _drop(node.positive, seen)
        if positive is None:
            # nothing left to exclude from: the excluded side goes too, but its terms count as seen
            _drop(node.negative, seen)
            return None
        negative = _drop(node.negative, seen)
        return positive if negative is None else Not(positive, negative)
    raise TypeError(f"not a query node: {node!r}")


@lru_cache(maxsize=65536)
def source_key(leaf_text: str) -> str:
    """:func:`term_key` of a leaf given as query text, e.g. ``'"Global  warming"[tiab]'``."""
    from blockgen.parser import parse

    leaves = list(parse(leaf_text).leaves())
    if len(leaves) != 1:
        raise ValueError(f"not a single term: {leaf_text!r}")
    return term_key(leaves[0])
