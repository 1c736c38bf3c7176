"""A text's concepts: the runs of content words a searcher would make blocks of.

    >>> from blockgen.concepts import concepts
    >>> concepts("Psychological therapies for treatment-resistant depression in adults", heads=frozenset())
    [('Psychological therapies', None), ('treatment-resistant depression', None), ('adults', None)]

A text is cut at function words (``of``, ``in``, ``for`` ...) and punctuation; generic words at
the edges of a run (``study``, ``effect``) go; an abbreviation in brackets right after a run
(``computed tomography (CT)``) is attached to it; a run longer than a known multi-word term
(``heads``: the multi-word entries of the offline English thesaurus, :func:`thesaurus_heads`) is
cut around the terms it holds (``climate change misinformation`` -> ``climate change``,
``misinformation``). CORE filters (``language:"fr"``, ``yearPublished>=2019``) are split off first
(:func:`split_filters`).

Used to build the curated training pairs (:mod:`training.concepts`) and to anchor generated
queries to the prompt (:mod:`blockgen.anchor`). Pure functions, except :func:`thesaurus_heads`
(reads Debian's ``mythes-en-us`` index once).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node, Phrase, Term

__all__ = ["FUNCTION_WORDS", "GENERIC_WORDS", "THESAURUS_INDEX", "concepts", "in_place", "leaf", "segments",
           "split_filters", "thesaurus_heads"]

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

def in_place(text: str, concept: str, replacement: str) -> Optional[str]:
    """``text`` with its first whole-word occurrence of ``concept`` (any case) replaced by
    ``replacement``; ``None`` when ``concept`` is not in ``text``. What a synonym is checked in:
    does the text still mean the same with it?"""
    rx = re.compile(r"(?<!\w)" + re.escape(concept) + r"(?!\w)", re.IGNORECASE)
    changed, count = rx.subn(lambda _m: replacement, text, count=1)
    return changed if count else None


#: Debian ``mythes-en-us``: the index of the offline English thesaurus (``head|offset`` lines).
THESAURUS_INDEX = Path("/usr/share/mythes/th_en_US_v2.idx")


@lru_cache(maxsize=4)
def thesaurus_heads(path: Union[str, Path] = THESAURUS_INDEX) -> frozenset:
    """The multi-word entries of the offline English thesaurus, lower case (``climate change``).

    An empty set, with a warning, when the thesaurus is not installed (``apt-get install
    mythes-en-us``): runs are then cut into pieces of at most :data:`MAX_CONCEPT_WORDS` words.
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        warnings.warn(f"the thesaurus index {file} is missing (apt-get install mythes-en-us): concepts are "
                      f"cut into runs of at most {MAX_CONCEPT_WORDS} words", stacklevel=2)
        return frozenset()
    return frozenset(head.lower() for head in (line.split("|", 1)[0] for line in lines[1:]) if " " in head)

