"""Curated synthetic pairs: a real title or search -> its own concepts as blocks, with close synonyms.

The first default model learnt from 1,350 thesaurus pairs of two random head words, each OR-ed
with synonyms of one (often the wrong) sense: ``resonance cuff`` -> ``(resonance OR plangency
...) AND (cuff OR turnup)``. Here the prompt is a real text (a CLEF TAR title, a Sim4IA user query)
and the answer is that text's concepts, in its order, each the first term of its block:

    "Psychological therapies for treatment-resistant depression in adults"
    -> "psychological therapies" AND "treatment-resistant depression" AND adults

A concept gets thesaurus synonyms (MyThes, every sense) only when they keep the meaning *in
context*: the synonym replaces the concept in the text, and the changed text must stay close to
the original in all-MiniLM-L6-v2 embedding space (cosine >= ``threshold``). That picks the sense
the text means and drops the others. Abbreviations in brackets after a concept
(``computed tomography (CT)``) become its synonyms; CORE filters (``language:"fr"``,
``yearPublished>=2019``) stay as blocks of their own, at the end.

Pure given the thesaurus and the embedding function (``embed(texts) -> unit vectors``).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from blockgen.concepts import (  # noqa: F401  (re-exported: the splitting is the library's)
    FUNCTION_WORDS, GENERIC_WORDS, MAX_BLOCKS, MAX_CONCEPT_WORDS, concepts, in_place, leaf, segments, split_filters,
)
from blockgen.query import Node, make_and, make_or

#: At most this many synonyms per concept.
MAX_SYNONYMS = 3
#: Cosine of the text with the synonym in place of the concept, and of the synonym and the concept
#: on their own (chosen by eye on training titles: ``people`` -> ``multitude`` 0.99 / 0.35 is out,
#: ``mortality`` -> ``death rate`` 0.96 / 0.73 is in; ``build/scratch/t6.py``).
THRESHOLD = 0.9
DIRECT = 0.6
#: Thesaurus entries that name a taxon, not the thing (``cancer`` -> ``genus Cancer``).
TAXONOMY_WORDS = frozenset({"genus", "family", "order", "class", "phylum", "subfamily", "suborder"})

Embed = Callable[[Sequence[str]], np.ndarray]


def synonym_candidates(concept: str, thesaurus: dict) -> list[str]:
    """Every synonym of ``concept`` in the thesaurus (all senses, nouns and adjectives), in order."""
    lower = concept.lower()
    senses = thesaurus.get(lower) or thesaurus.get(concept) or []
    out: list[str] = []
    for sense in senses:
        if sense.pos not in ("noun", "adj"):
            continue
        for syn in sense.synonyms:
            if syn.lower() != lower and syn.lower() not in (o.lower() for o in out):
                if lower.islower() and syn[:1].isupper() and not syn.isupper():
                    continue  # a proper name for a common word (oct -> October)
                out.append(syn)
    return out


def close_synonyms(text: str, concept: str, candidates: Sequence[str], embed: Embed,
                   threshold: float = THRESHOLD, direct: float = DIRECT, k: int = MAX_SYNONYMS) -> list[str]:
    """The ``k`` candidates that mean ``concept`` *in* ``text``, best first: put in place of the
    concept, the changed text stays close to the text (cosine >= ``threshold``), and the
    candidate on its own is close to the concept on its own (cosine >= ``direct``)."""
    candidates = [c for c in candidates if c.split()[0].lower() not in TAXONOMY_WORDS]
    if not candidates:
        return []
    replaced = [in_place(text, concept, c) for c in candidates]
    if replaced[0] is None:  # the concept is not in the text
        return []
    n = len(candidates)
    vectors = embed([text, concept, *replaced, *candidates])
    in_text = vectors[2 : 2 + n] @ vectors[0]
    alone = vectors[2 + n :] @ vectors[1]
    order = np.argsort(-(in_text + alone), kind="stable")
    return [candidates[i] for i in order if in_text[i] >= threshold and alone[i] >= direct][:k]


def concept_query(text: str, thesaurus: dict, embed: Embed, heads: Optional[frozenset] = None,
                  max_blocks: int = MAX_BLOCKS, max_synonyms: int = MAX_SYNONYMS,
                  threshold: float = THRESHOLD) -> Optional[Node]:
    """The curated query for ``text`` (see the module docstring); ``None`` without any concept."""
    heads = heads if heads is not None else frozenset(h.lower() for h in thesaurus if " " in h)
    clean, filters = split_filters(text)
    groups = []
    for concept, abbreviation in concepts(clean, heads)[:max_blocks]:
        first = leaf(concept)
        if first is None:
            continue
        synonyms = close_synonyms(clean, concept, synonym_candidates(concept, thesaurus), embed, threshold,
                                  k=max_synonyms)
        items = [first] + ([leaf(abbreviation)] if abbreviation else []) + [leaf(s) for s in synonyms]
        kept: list[Node] = []
        for item in items:
            if item is not None and str(item).lower() not in (str(x).lower() for x in kept):
                kept.append(item)
        groups.append(make_or(kept))
    if not groups:
        return None
    return make_and(groups + filters)
