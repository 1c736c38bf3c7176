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

import re
from typing import Callable, Optional, Sequence

import numpy as np

from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node, Phrase, Term, make_and, make_or

#: Words that split a text into concepts (function words), never part of one.
FUNCTION_WORDS = frozenset(
    """a about above across after against all along also among an and any are as at be because been before
    being between both but by can could de del des di do does du during e each el en et for from had has have
    how i if in into is it its la las le les los of off on onto or our over per so such than that the their
    them then there these they this those through to towards toward under upon us via vs versus was we were
    due undergoing following including according like may might must
    what when where whether which while who whom whose why will with within without would y you your""".split()
)
#: Words that say how a study is done, not what it is about: never a concept on their own.
GENERIC_WORDS = frozenset(
    """study studies review reviews effect effects impact impacts role use using used based purpose importance
    related literature introduction background regarding different various new towards overview""".split()
)
_FILTER = re.compile(r'\b[A-Za-z]+\s*(?::\s*"[^"]*"|:\s*[\w.-]+|(?:>=|<=|>|<|=)\s*[\w.-]+)')
_SPLIT = re.compile(r"[,;:.!?()\[\]{}\"“”]|\s[-–—/]\s|\s+&\s+")
_WORD = re.compile(r"[^\W_](?:[\w'’\-/.]*[^\W_])?")
MAX_CONCEPT_WORDS = 3
MAX_BLOCKS = 4
MAX_SYNONYMS = 3
#: Cosine of the text with the synonym in place of the concept, and of the synonym and the concept
#: on their own (chosen by eye on training titles: ``people`` -> ``multitude`` 0.99 / 0.35 is out,
#: ``mortality`` -> ``death rate`` 0.96 / 0.73 is in; ``build/scratch/t6.py``).
THRESHOLD = 0.9
DIRECT = 0.6
#: Thesaurus entries that name a taxon, not the thing (``cancer`` -> ``genus Cancer``).
TAXONOMY_WORDS = frozenset({"genus", "family", "order", "class", "phylum", "subfamily", "suborder"})

Embed = Callable[[Sequence[str]], np.ndarray]


def split_filters(text: str) -> tuple[str, list[Node]]:
    """``text`` without its CORE filters, and the filters as query leaves (in order, each once)."""
    text = re.sub("[\u2010\u2011\u2012]", "-", text)
    filters: list[Node] = []
    for match in _FILTER.finditer(text):
        try:
            node = parse(re.sub(r"\s+", "", match.group(0)) if '"' not in match.group(0) else match.group(0))
        except QuerySyntaxError:
            continue
        if node not in filters and not isinstance(node, (Term, Phrase)):
            filters.append(node)
    rest = _FILTER.sub(" ", text)
    rest = re.sub(r"\b(AND|OR|NOT)\b", ",", rest)  # the operators the user typed split concepts too
    return " ".join(rest.split()), filters


def segments(text: str) -> list[tuple[str, Optional[str]]]:
    """Runs of content words in ``text``: ``(words, abbreviation)``; an abbreviation in brackets
    right after a run (``computed tomography (CT)``) is attached to it."""
    out: list[tuple[str, Optional[str]]] = []
    for match in re.finditer(r"\(([^()]{1,12})\)|([^()]+)", text):
        abbreviation, chunk = match.group(1), match.group(2)
        if abbreviation is not None:
            abbreviation = abbreviation.strip()
            if out and re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,9}", abbreviation) and out[-1][1] is None:
                out[-1] = (out[-1][0], abbreviation)
            continue
        for part in _SPLIT.split(chunk):
            run: list[str] = []
            for word in _WORD.findall(part):
                if word.lower() in FUNCTION_WORDS:
                    if run:
                        out.append((" ".join(run), None))
                    run = []
                else:
                    run.append(word)
            if run:
                out.append((" ".join(run), None))
    return [(words, abbr) for words, abbr in out if not all(w.lower() in GENERIC_WORDS for w in words.split())]


def concepts(text: str, heads: frozenset, max_words: int = MAX_CONCEPT_WORDS) -> list[tuple[str, Optional[str]]]:
    """The concepts of ``text``: its segments (:func:`segments`) without generic words at the edges;
    a segment that is not one thesaurus entry is cut around the multi-word entries it holds
    (``climate change misinformation`` -> ``climate change``, ``misinformation``), and what is left
    in pieces of at most ``max_words`` words. Each concept once (case-insensitive)."""
    out: list[tuple[str, Optional[str]]] = []
    for run, abbreviation in segments(text):
        words = run.split()
        while words and words[0].lower() in GENERIC_WORDS:
            words = words[1:]
        while words and words[-1].lower() in GENERIC_WORDS:
            words = words[:-1]
        if not words:
            continue
        pieces = [" ".join(words)] if " ".join(words).lower() in heads else _cut(words, heads, max_words)
        out += [(p, None) for p in pieces[:-1]] + [(pieces[-1], abbreviation)]
    seen: set[str] = set()
    unique = []
    for concept, abbreviation in out:
        if concept.lower() not in seen:
            seen.add(concept.lower())
            unique.append((concept, abbreviation))
    return unique


def _cut(words: list[str], heads: frozenset, max_words: int) -> list[str]:
    """``words`` cut around the multi-word thesaurus entries in them (longest first, left to right)."""
    pieces: list[str] = []
    rest: list[str] = []

    def flush() -> None:
        for k in range(0, len(rest), max_words):
            pieces.append(" ".join(rest[k : k + max_words]))
        rest.clear()

    j = 0
    while j < len(words):
        for n in range(min(max_words, len(words) - j), 1, -1):
            gram = " ".join(words[j : j + n])
            if gram.lower() in heads:
                flush()
                pieces.append(gram)
                j += n
                break
        else:
            rest.append(words[j])
            j += 1
    flush()
    return pieces


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
    rx = re.compile(r"(?<!\w)" + re.escape(concept) + r"(?!\w)", re.IGNORECASE)
    if not rx.search(text):
        return []
    n = len(candidates)
    vectors = embed([text, concept, *[rx.sub(lambda _m, c=c: c, text, count=1) for c in candidates], *candidates])
    in_text = vectors[2 : 2 + n] @ vectors[0]
    alone = vectors[2 + n :] @ vectors[1]
    order = np.argsort(-(in_text + alone), kind="stable")
    return [candidates[i] for i in order if in_text[i] >= threshold and alone[i] >= direct][:k]


def leaf(text: str) -> Optional[Node]:
    """A concept or synonym as a query leaf: one word bare, several words as a phrase."""
    text = " ".join(text.replace('"', " ").split())
    if not text:
        return None
    node = Phrase(text) if " " in text else Term(text)
    try:
        return node if parse(str(node)) == node else None
    except QuerySyntaxError:
        return None


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
