"""Copy augmentation: teach a small model to copy the keywords into the query.

Most of a block query's first terms are the prompt's own keywords (``"bargainer legibility.
Output:"`` -> ``(bargainer OR trader) AND (legibility OR readability)``). A model trained
from scratch on a few thousand pairs memorises which words go with which prompt but does not
learn to *copy* (measured: 0 of 73 keywords of held-out prompts reappeared in its queries).

:func:`augment_pair` swaps every keyword that the completion repeats for another word of the
corpus, in the prompt and the completion alike: ``"glade miser. Output:"`` ->
``(glade OR trader) AND (miser OR readability)``. The swapped-in word can only be predicted
by copying it from the prompt, which is what the model must learn. The completion stays a
valid query (checked; the pair is dropped otherwise).
"""

from __future__ import annotations

import random
import re
from typing import Optional, Sequence

from training.examples import Pair

PROMPT_SUFFIX = ". Output:"
#: Prompt words never swapped (function words, and the operator spellings).
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or not the to with without within versus vs".split()
)
_WORD = re.compile(r"[A-Za-z]{3,}")
_POOL_WORD = re.compile(r"[a-z]{3,14}")


def word_pool(pairs: Sequence[Pair]) -> list[str]:
    """Lower-case words (3-14 letters) of the completions, sorted: the replacements."""
    words: set[str] = set()
    for p in pairs:
        words.update(w for w in re.findall(r"[A-Za-z]+", p.completion) if _POOL_WORD.fullmatch(w))
    return sorted(words - STOPWORDS)


def _same_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _pattern(word: str) -> re.Pattern:
    return re.compile(r"(?<![\w'\-])" + re.escape(word) + r"(?![\w'\-])", re.IGNORECASE)


def augment_pair(pair: Pair, pool: Sequence[str], rng: random.Random) -> Optional[Pair]:
    """``pair`` with every keyword that the completion repeats swapped for a random pool word.

    ``None`` when no keyword reappears in the completion (nothing to copy) or the result
    would not be a valid query.
    """
    from blockgen.parser import is_valid

    if not pair.prompt.endswith(PROMPT_SUFFIX) or not pool:
        return None
    keywords = pair.prompt[: -len(PROMPT_SUFFIX)]
    seen: set[str] = set()
    swaps: list[tuple[str, str]] = []
    for word in _WORD.findall(keywords):
        key = word.lower()
        if key in seen or key in STOPWORDS:
            continue
        seen.add(key)
        if _pattern(word).search(pair.completion):
            swaps.append((word, pool[rng.randrange(len(pool))]))
    if not swaps:
        return None
    prompt, completion = keywords, pair.completion
    for word, new in swaps:
        rx = _pattern(word)
        prompt = rx.sub(lambda m: _same_case(m.group(0), new), prompt)
        completion = rx.sub(
            lambda m: m.group(0) if m.group(0) in ("AND", "OR", "NOT") else _same_case(m.group(0), new), completion
        )
    if not is_valid(completion):
        return None
    return Pair(prompt + PROMPT_SUFFIX, completion, pair.path, pair.line)


def augment(pairs: Sequence[Pair], copies: int = 1, seed: int = 0) -> list[Pair]:
    """``copies`` augmented variants of each pair that has keywords to copy (fixed seed)."""
    rng = random.Random(seed)
    pool = word_pool(pairs)
    out: list[Pair] = []
    for _ in range(copies):
        for pair in pairs:
            new = augment_pair(pair, pool, rng)
            if new is not None:
                out.append(new)
    return out
