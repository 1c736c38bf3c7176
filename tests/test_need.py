"""need: what a viable prefix still needs, computed incrementally."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from blockgen import is_valid, parse
from blockgen.need import Need, Prefix, need_of
from blockgen.repeats import source_key, term_key
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
        ("a OR (", Need(0, 1, ")")),
    ],
)
def test_need_of_examples(prefix, need):
    assert need_of(prefix.encode()) == need


def test_a_cut_utf8_character_counts_its_missing_bytes():
    assert need_of('(a OR "é'.encode()[:-1]) == Need(1, 0, '")')
    assert need_of("€".encode()[:-2]) == Need(2, 0, "")


@pytest.mark.parametrize("prefix", ['"a"b', "a)", '"a"[ x', "(a) x", "a OR )", "\xff"])
def test_need_of_is_none_for_prefixes_that_cannot_be_finished(prefix):
    assert need_of(prefix.encode("utf-8", "surrogateescape") if prefix != "\xff" else b"\xff") is None


@pytest.mark.parametrize("prefix,finished", [("a OR OR", "a OR ORB"), ("AND", "ANDROID"), ("NOT", "NOTE")])
def test_a_word_that_spells_an_operator_so_far_is_viable(prefix, finished):
    """llguidance lexes lazily: "a OR OR" may still become "a OR ORB", so it is no dead end."""
    assert is_valid(finished)
    need = need_of(prefix.encode())
    assert need is not None and _finishes(prefix, need)


def _finishes(prefix: str, need: Need) -> bool:
    """Some one-word content (with or without a leading blank) plus the closers makes it valid."""
    return any(is_valid(prefix + need.head + word * need.terms + need.closers) for word in ("x", " x"))


@settings(max_examples=30)
@given(query_strategy(), st.data())
def test_need_of_every_prefix_of_a_valid_query_finishes_it(text, data):
    cut = data.draw(st.integers(0, len(text)))
    prefix = text[:cut]
    need = need_of(prefix.encode())
    assert need is not None
    assert _finishes(prefix, need), (prefix, need)
    assert need.complete == is_valid(prefix)


@settings(max_examples=20)
@given(query_strategy(), st.data())
def test_incremental_need_equals_the_need_of_the_whole_prefix(text, data):
    """Extending a prefix chunk by chunk (as tokens arrive) gives what one parse of the whole prefix gives."""
    raw = text.encode()
    cuts = sorted(data.draw(st.sets(st.integers(0, len(raw)), max_size=12)) | {len(raw)})
    state, start = Prefix.empty(), 0
    for cut in cuts:
        state = state.extend(raw[start:cut])
        start = cut
        whole = Prefix.empty().extend(raw[:cut])
        assert state is not None and whole is not None
        assert state.need == whole.need and state.leaves == whole.leaves and state.text == raw[:cut]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["a", " b", " OR", " AND", " NOT", "(", ")", '"', " c", "[ti", "]", "-", "*", "é"[0], "AN", "D", " "]), max_size=12))
def test_incremental_viability_equals_one_parse(chunks):
    state = Prefix.empty()
    written = b""
    for chunk in chunks:
        written += chunk.encode()
        state = state.extend(chunk.encode()) if state is not None else None
        whole = Prefix.empty().extend(written)
        assert (state is None) == (whole is None), written
        if state is not None:
            assert state.need == whole.need


@settings(max_examples=15)
@given(query_strategy())
def test_leaves_at_end_are_the_leaves_of_the_parsed_query(text):
    state = Prefix.empty().extend(text.encode())
    leaves = state.leaves_at_end()
    assert [source_key(leaf) for leaf in leaves] == [term_key(leaf) for leaf in parse(text).leaves()]
