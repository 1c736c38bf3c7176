"""Bottom-up walks of query trees with an explicit stack (any depth, no recursion)."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from blockgen.query import And, Node, Not, Or

__all__ = ["BOTH_SIDES", "children", "flatten", "fold_nodes", "is_inner", "map_leaves", "not_with_dropped_side"]

T = TypeVar("T")


def is_inner(node: Node) -> bool:
    """Whether ``node`` is an inner node (``Or``, ``And``, ``Not``)."""
    return isinstance(node, (Or, And, Not))


def children(node: Node) -> tuple[Node, ...]:
    """The operands of an inner node (``positive, negative`` for ``Not``); () for a leaf."""
    if isinstance(node, (Or, And)):
        return node.items
    if isinstance(node, Not):
        return (node.positive, node.negative)
    return ()


def fold_nodes(query: Node, leaf: Callable[[Node], T], inner: Callable[[Node, list[T]], T]) -> T:
    """``leaf(node)`` for every leaf, ``inner(node, values of its children)`` for every inner
    node, bottom-up; returns the value of ``query``."""
    values: list[T] = []
    stack: list[tuple[Node, bool]] = [(query, False)]
    while stack:
        node, done = stack.pop()
        kids = children(node)
        if not kids:
            values.append(leaf(node))
            continue
        if not done:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
            continue
        mine = values[len(values) - len(kids) :]
        del values[len(values) - len(kids) :]
        values.append(inner(node, mine))
    return values[0]


def flatten(query: Node) -> Node:
    """``query`` with every OR inside an OR and every AND inside an AND merged into it (what
    ``make_or``/``make_and`` do at each step), top-down: linear in the size of the tree even
    for a 100,000-long chain ``((a OR b) OR c) OR ...`` (bottom-up merging would copy each
    level's items again)."""

    def run(node: Node) -> tuple[Node, ...]:
        kind = type(node)
        out: list[Node] = []
        stack = [node]
        while stack:
            item = stack.pop()
            if type(item) is kind and kind in (Or, And):
                stack.extend(reversed(item.items))  # type: ignore[attr-defined]
            else:
                out.append(item)
        return tuple(out)

    values: list[Node] = []
    stack: list[tuple[Node, bool, tuple[Node, ...]]] = [(query, False, ())]
    while stack:
        node, done, kids = stack.pop()
        if not done:
            kids = run(node) if isinstance(node, (Or, And)) else children(node)
            if not kids:
                values.append(node)
                continue
            stack.append((node, True, kids))
            stack.extend((kid, False, ()) for kid in reversed(kids))
            continue
        mine = values[len(values) - len(kids) :]
        del values[len(values) - len(kids) :]
        if isinstance(node, Not):
            same = mine[0] is node.positive and mine[1] is node.negative
            values.append(node if same else Not(mine[0], mine[1]))
        else:
            same = len(mine) == len(node.items) and all(a is b for a, b in zip(mine, node.items))  # type: ignore[attr-defined]
            values.append(node if same else type(node)(tuple(mine)))
    return values[0]


def map_leaves(query: Node, fn: Callable[[Node], Optional[Node]]) -> Optional[Node]:
    """``query`` with every leaf replaced by ``fn(leaf)``; a leaf mapped to None is dropped
    (an OR/AND without items is dropped, a NOT without its negative is its positive, a NOT
    without its positive is dropped). Groups are rebuilt flat (``make_or``/``make_and``)."""
    from blockgen.query import make_and, make_or

    def inner(node: Node, kids: list[Optional[Node]]) -> Optional[Node]:
        if isinstance(node, Not):
            positive, negative = kids
            if positive is None:
                return None
            if negative is None:
                return positive
            return node if (positive is node.positive and negative is node.negative) else Not(positive, negative)
        kept = [k for k in kids if k is not None]
        if not kept:
            return None
        original = children(node)
        if len(kept) == len(original) and all(a is b for a, b in zip(kept, original)):
            return node  # unchanged: keep the node (no deep comparison)
        return make_or(kept) if isinstance(node, Or) else make_and(kept)

    return fold_nodes(query, fn, inner)


#: What :func:`not_with_dropped_side` returns when a NOT kept both its sides.
BOTH_SIDES = object()


def not_with_dropped_side(kids: list, note: Callable[[str, str], None]) -> Any:
    """What a writer keeps of a NOT whose written sides are ``kids`` (``None``: dropped): nothing
    when its left side was dropped, its left side when its right side was dropped (each noted
    through ``note(kind, detail)``), :data:`BOTH_SIDES` when neither was."""
    if kids[0] is None:
        note("term dropped", "a NOT whose left side was dropped is dropped")
        return None
    if kids[1] is None:
        note("term dropped", "a NOT whose right side was dropped keeps only its left side")
        return kids[0]
    return BOTH_SIDES
