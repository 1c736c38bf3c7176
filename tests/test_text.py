"""blockgen.text: the one place where query text is normalised."""

from __future__ import annotations

from hypothesis import given, strategies as st

from blockgen.text import lone_surrogates, normalise


def test_normalise_composes_to_nfc():
    assert normalise("cafe\u0301") == "caf\u00e9"
    assert normalise("\u212b") == "\u00c5"  # the Angstrom sign is the letter A with ring
    assert normalise("abc") == "abc"


@given(st.text())
def test_normalise_is_idempotent(text):
    assert normalise(normalise(text)) == normalise(text)


def test_lone_surrogates_are_found_where_they_are():
    assert lone_surrogates("a\ud800b\udfff") == [1, 3]
    assert lone_surrogates("caf\u00e9 \U0001f600") == []


@given(st.text())
def test_text_without_lone_surrogates_is_encodable(text):
    if not lone_surrogates(text):
        text.encode("utf-8")
