"""repeats: what "the same term" is; finding and dropping repeated terms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from blockgen import parse
from blockgen.query import Comparison, Field, Phrase, Term
from blockgen.repeats import drop_repeated_terms, has_repeated_terms, repeated_terms, source_key, term_key
from tests.test_grammar import query_strategy


@pytest.mark.parametrize(
    "a,b,same",
    [
        (Term("Climate Change"), Term("climate  change"), True),  # case and blanks
        (Phrase("climate change"), Term("climate change"), True),  # a phrase and the same bare words
        (Phrase(" COVID-19 "), Term("covid-19"), True),
        (Term("acne", "tiab"), Term("acne", "TIAB"), True),  # tags compared like text
        (Term("acne", "tiab"), Term("acne", "Mesh"), False),  # a text word and a heading differ
        (Term("acne", "tiab"), Term("acne"), False),
        (Term("child*"), Term("child"), False),  # truncation is part of the term
        (Field("language", "en", True), Field("language", "en", False), True),
        (Field("language", "en"), Term("en"), False),
        (Comparison("yearPublished", ">=", "2019"), Comparison("yearpublished", ">=", "2019"), True),
        (Comparison("yearPublished", ">=", "2019"), Comparison("yearPublished", ">", "2019"), False),
    ],
)
def test_term_key_decides_what_the_same_term_is(a, b, same):
    assert (term_key(a) == term_key(b)) is same


def test_repeated_terms_lists_the_later_occurrences_in_order():
    query = parse('(outcome OR Outcome) AND (trial OR "OUTCOME") NOT trial')
    assert repeated_terms(query) == [Term("Outcome"), Phrase("OUTCOME"), Term("trial")]
    assert has_repeated_terms(query) and not has_repeated_terms(parse("a OR b"))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("(outcome OR outcome) AND trial", "outcome AND trial"),
        ("(a OR b) AND (a OR b) NOT (c OR a)", "(a OR b) NOT c"),
        ("a NOT a", "a"),
        ("a AND (a NOT b)", "a"),  # the kept side of NOT is all repeats: the NOT-group goes
        ('"climate change" OR climate change OR warming', '"climate change" OR warming'),
        ("acne[tiab] OR acne[Mesh] OR acne[TIAB]", "acne[tiab] OR acne[Mesh]"),
    ],
)
def test_drop_repeated_terms_examples(text, expected):
    assert str(drop_repeated_terms(parse(text))) == str(parse(expected))


def test_source_key_is_the_key_of_a_leaf_written_as_query_text():
    assert source_key('"Global  warming"[tiab]') == term_key(Phrase("global warming", "tiab"))
    with pytest.raises(ValueError):
        source_key("a OR b")


@settings(max_examples=25)
@given(query_strategy())
def test_drop_repeated_terms_leaves_no_repeat_and_a_query_that_parses(text):
    query = parse(text)
    dropped = drop_repeated_terms(query)
    assert repeated_terms(dropped) == []
    assert parse(str(dropped)) == dropped
    keys = [term_key(leaf) for leaf in dropped.leaves()]
    original = [term_key(leaf) for leaf in query.leaves()]
    assert keys == [k for i, k in enumerate(original) if k in keys and k not in original[:i]]  # first occurrences, in order
    assert drop_repeated_terms(dropped) == dropped  # idempotent
    if not repeated_terms(query):
        assert dropped is query
