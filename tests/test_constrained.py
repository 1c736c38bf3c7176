"""need_of: what a viable prefix still needs; token classes."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from blockgen import is_valid
from blockgen.constrained import Need, need_of, token_classes
from tests.test_grammar import query_strategy


@pytest.mark.parametrize(
    "prefix,need",
    [
        ("", Need(0, 1, "")),
        ("a", Need(0, 0, "")),
        ("a OR", Need(0, 1, "")),
        ('(a OR "b', Need(0, 0, '")')),
        ('(a OR "  ', Need(0, 1, '")')),
        ("x AND ((y", Need(0, 0, "))")),
        ("acne[ti", Need(0, 0, "]")),
        ("acne[", Need(0, 1, "]")),
        ("a-", Need(0, 1, "")),
        ("yearPublished>=", Need(0, 1, "")),
        ("(a) O", Need(0, 1, "", head="R")),
        ('x AND ("a" AN', Need(0, 1, ")", head="D")),
    ],
)
def test_need_of_examples(prefix, need):
    assert need_of(prefix.encode()) == need


def test_a_cut_utf8_character_counts_its_missing_bytes():
    assert need_of('(a OR "é'.encode()[:-1]) == Need(1, 0, '")')
    assert need_of("€".encode()[:-2]) == Need(2, 0, "")


@pytest.mark.parametrize("prefix", ["a OR OR", '"a"b', "a)", "AND", "a OR (", '"a"[ x'])
def test_need_of_is_none_for_prefixes_that_cannot_be_finished(prefix):
    if prefix == "a OR (":  # this one is viable: it needs a term and a ")"
        assert need_of(prefix.encode()) == Need(0, 1, ")")
    else:
        assert need_of(prefix.encode()) is None


def _finishes(prefix: str, need: Need) -> bool:
    """Some one-word content (with or without a leading blank) plus the closers makes it valid."""
    return any(is_valid(prefix + need.head + word * need.terms + need.closers) for word in ("x", " x"))


@given(query_strategy(), st.data())
def test_need_of_every_prefix_of_a_valid_query_finishes_it(text, data):
    cut = data.draw(st.integers(0, len(text)))
    prefix = text[:cut]
    need = need_of(prefix.encode())
    assert need is not None
    assert _finishes(prefix, need), (prefix, need)
    assert need.complete == is_valid(prefix)


def test_token_classes_mark_whole_words_and_single_bytes():
    tokens = [b"a", b" climate", b"(", b'")', b"AND", b" OR", b"\xc3", b"child*", b"x-"]
    classes = token_classes(tokens)
    assert classes.content.tolist() == [True, True, False, False, False, False, False, True, False]
    assert classes.single_byte.tolist() == [True, False, True, False, False, False, True, False, False]
