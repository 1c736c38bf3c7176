"""Repeated terms in one query (``outcome OR outcome``): find them, drop them.

A STAND-IN, private: the public module ``blockgen.repeats`` (same three functions, with the
repeat ban enforced while decoding) is being built in the decoder's branch. When it lands,
import from there and delete this file. Pure functions of the query tree.
"""

from __future__ import annotations

from typing import Optional

from blockgen.query import And, Comparison, Field, Node, Not, Or, make_and, make_or


def term_key(leaf: Node) -> str:
    """What makes two leaves the same search term: lower-case text with blanks squeezed, and
    the field tag (``Term`` and ``Phrase`` of the same words are the same term)."""
    if isinstance(leaf, Field):
        return f"{leaf.name.lower()}:{' '.join(leaf.value.lower().split())}"
    if isinstance(leaf, Comparison):
        return f"{leaf.name.lower()}{leaf.op}{leaf.value.lower()}"
    text = " ".join(leaf.text.lower().split())  # type: ignore[attr-defined]
    tag = getattr(leaf, "tag", None)
    return f"{text}[{tag.lower()}]" if tag else text


def repeated_terms(query: Node) -> list[str]:
    """The keys (:func:`term_key`) that occur more than once in ``query``, in order of first repeat."""
    seen: set[str] = set()
    out: list[str] = []
    for leaf in query.leaves():
        key = term_key(leaf)
        if key in seen and key not in out:
            out.append(key)
        seen.add(key)
    return out


def drop_repeated_terms(query: Node) -> Node:
    """``query`` without the second and later occurrences of a term; a group left empty goes,
    and ``a NOT b`` whose excluded side is all repeats becomes ``a``. The first leaf always stays."""
    seen: set[str] = set()

    def walk(node: Node) -> Optional[Node]:
        if isinstance(node, Or):
            items = [x for x in (walk(i) for i in node.items) if x is not None]
            return make_or(items) if items else None
        if isinstance(node, And):
            items = [x for x in (walk(i) for i in node.items) if x is not None]
            return make_and(items) if items else None
        if isinstance(node, Not):
            positive, negative = walk(node.positive), walk(node.negative)
            if positive is None:
                return None
            return positive if negative is None else Not(positive, negative)
        key = term_key(node)
        if key in seen:
            return None
        seen.add(key)
        return node

    result = walk(query)
    assert result is not None  # the first leaf is never a repeat
    return result
