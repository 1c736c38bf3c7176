"""Anchoring: a generated query rebuilt on the prompt's own concepts, with the model's close synonyms.

A small model finds good alternative terms but drifts in structure: for ``Metal injection molding
pratt whitney`` it writes ``"metal injection" AND "pratt whitney railway"``. Anchoring keeps what
the searcher asked for and adds only what means the same:

1. the prompt's concepts (:func:`blockgen.concepts.concepts`) are the blocks, in the prompt's
   order, each led by the prompt's own words: ``"metal injection molding" AND "pratt whitney"``;
2. every term of a generated candidate (outside NOT) joins the block of the concept it is closest
   to in meaning, when that cosine is at least ``direct`` (all-MiniLM-L6-v2 embeddings, the
   encoder :class:`blockgen.rerank.Reranker` holds): ``"metal injection"`` joins the first block;
3. a term is left out when it only narrows its concept (it holds every word of the concept and
   more: ``"pratt whitney railway"`` finds nothing ``"pratt whitney"`` does not), when it repeats a term
   of the query, when it is another concept of the prompt or borrows a word of one, when it repeats
   a word (``stainless stainless``) or spells an operator inside a phrase; at most ``max_alternatives`` per
   block, the closest first; terms close to no concept (the drift) are dropped.

    ("metal injection molding" OR "metal injection") AND "pratt whitney"

Each candidate gives one anchored query, so ``n`` candidates give up to ``n`` distinct queries
that differ in their synonyms. A prompt without concepts (only function words) leaves the
candidates as they are. Pure given ``embed`` (``texts -> unit vectors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from blockgen.concepts import MAX_BLOCKS, concepts, in_place, leaf, split_filters
from blockgen.dialects.tags import parse_tag
from blockgen.query import Node, Not, Phrase, Term, make_and, make_or
from blockgen.repeats import term_key

__all__ = ["AnchorSettings", "Skeleton", "anchor_queries", "skeleton"]

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class AnchorSettings:
    """How a candidate is anchored (``generation_config.json``'s ``"rerank": {"anchor": {...}}``).

    ``direct``: the least cosine between a term and a concept for the term to join that concept's
    block; ``in_context``: when set, also the least cosine between the prompt and the prompt with
    the term in place of the concept (the term must mean the concept *here*: ``people`` ->
    ``multitude`` is close alone, not in a title); ``max_alternatives``: the most terms added to
    one block; ``max_blocks``: the most concepts of the prompt made blocks (the rest are left out,
    as a searcher keeps a query short).
    """

    direct: float = 0.6
    max_alternatives: int = 3
    max_blocks: int = MAX_BLOCKS
    in_context: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("direct", "in_context"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a cosine between -1 and 1, not {value!r}")
        if self.max_alternatives < 0 or self.max_blocks < 1:
            raise ValueError("max_alternatives must be >= 0 and max_blocks >= 1")

    @classmethod
    def from_dict(cls, settings: dict) -> "AnchorSettings":
        """From a JSON object; unknown keys are an error (a typo must not pass unnoticed)."""
        known = {"direct", "max_alternatives", "max_blocks", "in_context"}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown anchor setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**settings)


@dataclass(frozen=True)
class Skeleton:
    """The prompt's concepts as block leaders, and its CORE filters (blocks of their own, last)."""

    concepts: tuple[Node, ...]
    filters: tuple[Node, ...]
    #: the prompt without its filters (what a synonym is put into for the in-context check)
    text: str = ""


def skeleton(prompt: str, heads: frozenset, max_blocks: int = MAX_BLOCKS) -> Skeleton:
    """The concepts of ``prompt`` as leaves (at most ``max_blocks``), and its filters."""
    clean, filters = split_filters(prompt)
    leaders: list[Node] = []
    for concept, _abbreviation in concepts(clean, heads):
        node = leaf(concept)
        if node is not None and len(leaders) < max_blocks:
            leaders.append(node)
    return Skeleton(tuple(leaders), tuple(filters), clean)


def _plain(text: str) -> str:
    """A leaf's text as the encoder should read it: no wildcards, no hyphen noise."""
    return " ".join(re.sub(r"[*?]", "", text).split())


def _alternatives(query: Node) -> list[Node]:
    """The terms and phrases of ``query`` outside NOT, left to right, with tags PubMed does not know dropped."""
    out: list[Node] = []
    stack = [query]
    while stack:
        node = stack.pop()
        if isinstance(node, Not):
            stack.append(node.positive)
        elif isinstance(node, (Term, Phrase)):
            tag = node.tag if node.tag is None or parse_tag(node.tag).known else None
            out.append(type(node)(node.text, tag))
        else:
            stack.extend(reversed(node._children()))
    return out


def _key(term: Node) -> str:
    """The repeat key of a term without its tag: ``acne[tiab]`` repeats ``acne``."""
    return term_key(type(term)(term.text))


def _narrows(term: str, concept: str) -> bool:
    """Whether ``term`` holds every word of ``concept`` (or a longer form of it: ``changes`` for
    ``change``) and more words besides: under OR it adds no document the concept does not find."""
    words = _plain(term).lower().split()
    needed = _plain(concept).lower().split()
    if not needed or len(words) <= len(needed):
        return False
    return all(any(w.startswith(n) for w in words) for n in needed)


_OPERATOR_WORD = re.compile(r"(?<!\w)(?:AND|OR|NOT)(?!\w)")


def _parts(text: str) -> list[str]:
    """The words of a leaf text, lower case, split at blanks and slashes (``treatment-resistant`` is one)."""
    return [w for w in re.split(r"[\s/]+", _plain(text).lower()) if w]


def _malformed(term: Node, concept: int, leader_words: Sequence[frozenset]) -> bool:
    """Whether ``term`` cannot be a synonym of concept number ``concept`` (``leader_words``: each
    concept's :func:`_parts`) whatever its embedding: it repeats a word (``stainless stainless``),
    spells an operator inside a phrase (``"psychological AND treatment"``) or borrows a word of
    another concept of the prompt (``"stainless passivation"`` for ``stainless steel`` when
    ``passivation`` is a concept of its own)."""
    words = _parts(term.text)
    if len(words) != len(set(words)) or _OPERATOR_WORD.search(term.text):
        return True
    own = leader_words[concept]
    return any(w not in own and any(w in other for i, other in enumerate(leader_words) if i != concept) for w in words)


def _in_context(frame: Skeleton, pairs: Sequence[tuple[int, str]], embed: Embed) -> dict[tuple[int, str], float]:
    """For each ``(concept, term)``: the cosine between the prompt and the prompt with ``term`` in
    place of the concept (1.0 when the concept is not in the prompt as written)."""
    out: dict[tuple[int, str], float] = {}
    changed: list[tuple[tuple[int, str], str]] = []
    for concept, term in pairs:
        text = in_place(frame.text, frame.concepts[concept].text, term)
        if text is None:
            out[(concept, term)] = 1.0
        else:
            changed.append(((concept, term), text))
    if changed:
        vectors = embed([frame.text] + [t for _k, t in changed])
        for (key, _t), v in zip(changed, vectors[1:]):
            out[key] = float(v @ vectors[0])
    return out


def anchor_queries(skeleton: Skeleton, queries: Sequence[Optional[Node]], embed: Embed,
                   settings: AnchorSettings = AnchorSettings()) -> list[Optional[Node]]:
    """Each of ``queries`` anchored on ``skeleton`` (see the module docstring); ``None`` stays ``None``.

    All terms of all queries are embedded in one batch with the concepts.
    """
    leaders = skeleton.concepts
    if not leaders:
        return list(queries)
    per_query = [_alternatives(q) if q is not None else [] for q in queries]
    texts = sorted({_plain(t.text) for terms in per_query for t in terms} - {""})
    vectors = embed([_plain(c.text) for c in leaders] + texts) if texts else None
    index = {t: i for i, t in enumerate(texts)}
    leader_keys = {_key(c) for c in leaders}
    leader_words = [frozenset(_parts(c.text)) for c in leaders]
    found_per_query: list[Optional[list[list[tuple[float, Node]]]]] = []
    for query, terms in zip(queries, per_query):
        if query is None:
            found_per_query.append(None)
            continue
        groups: list[list[tuple[float, Node]]] = [[] for _ in leaders]
        for term in terms:
            text = _plain(term.text)
            if not text or _key(term) in leader_keys:
                continue
            sims = vectors[len(leaders) + index[text]] @ vectors[: len(leaders)].T
            best = int(np.argmax(sims))
            if (sims[best] >= settings.direct and not _narrows(term.text, leaders[best].text)
                    and not _malformed(term, best, leader_words)):
                groups[best].append((float(sims[best]), term))
        found_per_query.append(groups)
    if settings.in_context is not None:
        pairs = sorted({(i, _plain(t.text)) for groups in found_per_query if groups is not None
                        for i, g in enumerate(groups) for _s, t in g})
        fits = _in_context(skeleton, pairs, embed)
        found_per_query = [None if groups is None else
                           [[(s, t) for s, t in g if fits[(i, _plain(t.text))] >= settings.in_context]
                            for i, g in enumerate(groups)] for groups in found_per_query]
    out: list[Optional[Node]] = []
    for groups in found_per_query:
        if groups is None:
            out.append(None)
            continue
        seen = set(leader_keys)
        blocks = []
        for leader, found in zip(leaders, groups):
            kept = [leader]
            for _sim, term in sorted(found, key=lambda x: -x[0]):
                if len(kept) > settings.max_alternatives:
                    break
                if _key(term) not in seen:
                    seen.add(_key(term))
                    kept.append(term)
            blocks.append(make_or(kept))
        out.append(make_and(blocks + list(skeleton.filters)))
    return out


def trimmed(query: Node, skeleton: Skeleton) -> list[Node]:
    """Narrower variants of an anchored ``query``: its alternatives dropped one at a time, the last
    added of the fullest block first, down to the bare concepts (``query`` itself not included).

    Used to fill up the ``n`` candidates asked for when anchoring made several candidates one query.
    """
    from blockgen.query import And, Or

    leaders = skeleton.concepts
    if not leaders:
        return []
    items = list(query.items) if isinstance(query, And) else [query]
    groups = [list(item.items) if isinstance(item, Or) else [item] for item in items[: len(leaders)]]
    tail = items[len(leaders):]
    out: list[Node] = []
    while any(len(g) > 1 for g in groups):
        fullest = max(range(len(groups)), key=lambda i: (len(groups[i]), -i))
        groups[fullest].pop()
        out.append(make_and([make_or(g) for g in groups] + tail))
    return out


def broader(skeleton: Skeleton) -> list[Node]:
    """Broader variants of the prompt's bare concepts, as a searcher loosens a query: each
    multi-word concept as its words (``"global aero terminal" AND 5320`` -> ``Global AND Aero AND
    Terminal AND 5320``).

    (Leaving a concept out instead measured worse on the validation split: Sim4IA 0.783 against
    0.796, ``python -m benchmarks.anchor_sweep``; truncating a concept's last word, ``misinform*``,
    gave the same Sim4IA figure and 0.005 less on CLEF.)"""
    leaders = list(skeleton.concepts)
    filters = list(skeleton.filters)
    out: list[Node] = []
    for i, concept in enumerate(leaders):
        if isinstance(concept, Phrase) and " " in concept.text:
            words = [leaf(w) for w in concept.text.split()]
            if all(w is not None for w in words):
                out.append(make_and(leaders[:i] + words + leaders[i + 1:] + filters))
    return out
