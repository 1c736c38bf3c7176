"""Deterministic automata over Unicode characters, built from :mod:`blockgen.regex_tree` trees.

They answer the questions a lexer raises about its terminals:

* :meth:`DFA.first` -- the characters a token can start with;
* :func:`extensions` -- after a whole token of one terminal, which next characters would
  let the lexer go on (the text so far plus that character is still the start of some
  terminal it is looking for), for some or for all tokens of the terminal;
* whether two terminals share a token (also from :func:`extensions`).

Transitions are labelled with :data:`blockgen.charset.Ranges`; every state of a built DFA
can still reach an accepting state (dead states are pruned), so "the DFA has a transition"
means "the text read so far is still the start of a token".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from blockgen import charset
from blockgen.charset import Ranges
from blockgen.regex_tree import Alt, Chars, Node, Repeat, Seq


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[Ranges, int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node: Node, start: int) -> int:
        """Add ``node`` from ``start``; returns its end state."""
        if isinstance(node, Chars):
            end = self.state()
            if node.ranges:
                self.edges[start].append((node.ranges, end))
            return end
        if isinstance(node, Seq):
            for item in node.items:
                start = self.build(item, start)
            return start
        if isinstance(node, Alt):
            end = self.state()
            for option in node.options:
                self.eps[self.build(option, start)].append(end)
            return end
        if isinstance(node, Repeat):
            for _ in range(node.min):
                start = self.build(node.item, start)
            if node.max is None:
                loop = self.state()
                self.eps[start].append(loop)
                self.eps[self.build(node.item, loop)].append(loop)
                return loop
            end = self.state()
            for _ in range(node.max - node.min):
                self.eps[start].append(end)
                start = self.build(node.item, start)
            self.eps[start].append(end)
            return end
        raise TypeError(f"not a regex tree node: {node!r}")

    def closure(self, states) -> frozenset[int]:
        todo = list(states)
        seen = set(todo)
        while todo:
            for t in self.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)


@dataclass
class DFA:
    """``trans[s]``: disjoint ``(characters, next state)`` pairs; state 0 is the start."""

    trans: list[list[tuple[Ranges, int]]]
    accept: frozenset[int]

    @classmethod
    def from_tree(cls, node: Node) -> "DFA":
        nfa = _NFA()
        start = nfa.state()
        final = nfa.build(node, start)
        first = nfa.closure([start])
        index = {first: 0}
        subsets, trans = [first], [[]]
        k = 0
        while k < len(subsets):
            edges = [(label, target) for s in subsets[k] for label, target in nfa.edges[s]]
            for piece, members in charset.partition([label for label, _ in edges]):
                target = nfa.closure(edges[m][1] for m in members)
                if target not in index:
                    index[target] = len(subsets)
                    subsets.append(target)
                    trans.append([])
                trans[k].append((piece, index[target]))
            k += 1
        accept = frozenset(i for i, subset in enumerate(subsets) if final in subset)
        return cls(trans, accept)._pruned()

    def _pruned(self) -> "DFA":
        live = set(self.accept)
        changed = True
        while changed:
            changed = False
            for s, edges in enumerate(self.trans):
                if s not in live and any(t in live for _, t in edges):
                    live.add(s)
                    changed = True
        if 0 not in live:  # the empty language: keep a start state with no way out
            return DFA([[]], frozenset())
        order = sorted(live)
        renumber = {s: i for i, s in enumerate(order)}
        trans = [[(label, renumber[t]) for label, t in self.trans[s] if t in live] for s in order]
        return DFA(trans, frozenset(renumber[s] for s in self.accept))

    def out(self, state: int) -> Ranges:
        """The characters that can follow in ``state`` (the text stays the start of a token)."""
        return charset.union(*(label for label, _ in self.trans[state]))

    def first(self) -> Ranges:
        """The characters a token can start with."""
        return self.out(0)

    def empty(self) -> bool:
        return not self.accept

    def matches(self, text: str) -> bool:
        state: Optional[int] = 0
        for ch in text:
            state = self.step(state, ord(ch))
            if state is None:
                return False
        return state in self.accept

    def step(self, state: int, cp: int) -> Optional[int]:
        for label, target in self.trans[state]:
            for lo, hi in label:
                if lo <= cp <= hi:
                    return target
        return None


@dataclass(frozen=True)
class Extension:
    """What may follow a whole token of a terminal without ending it, in one lexing context.

    ``some``: characters that continue some token of the terminal into a longer possible
    token of the context; ``every``: characters that do so after every token of it;
    ``overlaps``: indices of the other context terminals that have a token in common with it.
    """

    some: Ranges
    every: Ranges
    overlaps: frozenset[int]


def extensions(token: DFA, context: Sequence[DFA], itself: Optional[int] = None) -> Extension:
    """Read every token of ``token`` while running the ``context`` DFAs on the same text.

    ``itself``: the index of ``token`` within ``context`` (excluded from ``overlaps``).
    """
    start = (0, tuple(0 for _ in context))
    seen, todo = {start}, [start]
    some: Ranges = charset.EMPTY
    every: Optional[Ranges] = None
    overlaps: set[int] = set()
    while todo:
        t, cs = todo.pop()
        if t in token.accept:
            following = charset.union(*(context[i].out(c) for i, c in enumerate(cs) if c is not None))
            some = charset.union(some, following)
            every = following if every is None else charset.intersect(every, following)
            overlaps |= {i for i, c in enumerate(cs) if c is not None and c in context[i].accept and i != itself}
        for label, t2 in token.trans[t]:
            for piece, targets in _refine(label, context, cs):
                nxt = (t2, targets)
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    return Extension(some, every or charset.EMPTY, frozenset(overlaps))


def _refine(label: Ranges, context: Sequence[DFA], states: tuple) -> list[tuple[Ranges, tuple]]:
    """Split ``label`` by where each context DFA goes on it (``None``: no longer a token start)."""
    pieces: list[tuple[Ranges, tuple]] = [(label, ())]
    for i, dfa in enumerate(context):
        state = states[i]
        refined = []
        for piece, targets in pieces:
            rest = piece
            if state is not None:
                for edge, target in dfa.trans[state]:
                    common = charset.intersect(piece, edge)
                    if common:
                        refined.append((common, targets + (target,)))
                        rest = charset.subtract(rest, edge)
            if rest:
                refined.append((rest, targets + (None,)))
        pieces = refined
    return pieces
