"""training.augment: copy augmentation swaps repeated keywords in prompt and answer alike."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings, strategies as st

from blockgen import is_valid, terms, parse
from training.augment import STOPWORDS, augment, augment_pair, word_pool
from training.examples import Pair

PAIRS = [
    Pair("climate change. Output:", '(climate OR weather) AND (change OR shift) NOT "climate science"'),
    Pair("anxiety and sleep. Output:", "(anxiety OR worry) AND (sleep OR insomnia OR dozing)"),
    Pair("Android tablets. Output:", "(Android OR iOS) AND (tablet OR slate OR ANDROID)"),
]
POOL = word_pool(PAIRS)


def keywords(prompt: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]{3,}", prompt[: -len(". Output:")]) if w.lower() not in STOPWORDS]


def test_swapped_keywords_appear_in_prompt_and_answer_alike():
    pool = ["frost", "storm", "tide"]
    new = augment_pair(PAIRS[0], pool, random.Random(1))
    assert new is not None and is_valid(new.completion)
    new_words = keywords(new.prompt)
    assert len(new_words) == 2 and {w.lower() for w in new_words} <= set(pool)
    answer_words = {t.text.lower() for t in terms(parse(new.completion))}
    for w in new_words:  # each swapped keyword is now in the answer
        assert any(w.lower() in a.split() for a in answer_words)
    assert "climate science" in new.completion or "climate" not in new.completion.lower()
    assert "change" not in new.completion.lower()


def test_a_pair_whose_answer_repeats_no_keyword_is_not_augmented():
    assert augment_pair(Pair("ocean acidity. Output:", "(sea OR marine) AND (pH OR acidification)"), POOL, random.Random(0)) is None
    assert augment_pair(Pair("no suffix", "no suffix"), POOL, random.Random(0)) is None


def test_operators_are_never_swapped_and_case_follows_the_original():
    new = augment_pair(Pair("and climate. Output:", "Climate AND CLIMATE-free OR climate"), ["frost"], random.Random(0))
    assert new is not None
    assert new.prompt == "and frost. Output:"
    assert new.completion == "Frost AND FROST-free OR frost" or new.completion == "Frost AND CLIMATE-free OR frost"
    assert " AND " in new.completion


def test_augment_is_deterministic_for_a_seed():
    assert augment(PAIRS, copies=2, seed=3) == augment(PAIRS, copies=2, seed=3)
    assert len(augment(PAIRS, copies=2, seed=3)) == 2 * len(augment(PAIRS, copies=1, seed=3))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), index=st.integers(0, len(PAIRS) - 1))
def test_augmented_answer_always_parses(seed, index):
    new = augment_pair(PAIRS[index], POOL, random.Random(seed))
    assert new is None or is_valid(new.completion)
