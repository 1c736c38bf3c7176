"""Code-point range sets, and the regex engine's own answer to what an atom matches."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from blockgen import charset

sets = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=6).map(charset.normalize)


@given(sets, sets)
def test_set_operations_agree_with_python_sets(a, b):
    def members(r):
        return {c for lo, hi in r for c in range(lo, hi + 1)}

    assert members(charset.union(a, b)) == members(a) | members(b)
    assert members(charset.intersect(a, b)) == members(a) & members(b)
    assert members(charset.subtract(a, b)) == members(a) - members(b)
    assert charset.is_subset(charset.intersect(a, b), a)


def test_normalize_merges_adjacent_ranges_and_drops_surrogates():
    assert charset.normalize([(5, 6), (1, 4), (9, 9)]) == ((1, 6), (9, 9))
    assert charset.normalize([(0xD700, 0xE001)]) == ((0xD700, 0xD7FF), (0xE000, 0xE001))
    assert charset.complement(charset.ALL) == ()


def test_partition_splits_by_membership():
    pieces = dict((k, v) for v, k in charset.partition([charset.of_chars("abc"), charset.of_chars("bcd")]))
    assert pieces[frozenset({0})] == charset.of_chars("a") and pieces[frozenset({0, 1})] == charset.of_chars("bc")


def test_atom_sets_come_from_the_regex_engine():
    assert charset.atom_set("k", "re", 0, "i") == charset.of_chars("kK\u212a")  # the Kelvin sign too
    space = charset.atom_set(r"\s")
    assert charset.is_subset(charset.of_chars(" \t\u00a0\u2028"), space) and not charset.intersect(space, charset.of_chars("a"))
    with pytest.raises(ValueError, match="rejects"):
        charset.atom_set(r"\p{L}", "re")


def test_unicode_categories_with_the_regex_module():
    pytest.importorskip("regex")
    letters = charset.atom_set(r"[\p{L}\p{M}]", "regex")
    assert charset.is_subset(charset.of_chars("aЖ東\u0301ệ"), letters)
    assert not charset.intersect(letters, charset.of_chars("1_ -😀"))
