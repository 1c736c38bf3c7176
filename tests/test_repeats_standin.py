"""blockgen._repeats, the stand-in for blockgen.repeats (drop this file with the stand-in)."""

from __future__ import annotations

from hypothesis import given, settings

from blockgen import parse
from blockgen._repeats import drop_repeated_terms, repeated_terms, term_key
from tests.test_grammar import query_strategy


def test_term_key_ignores_case_blanks_and_quotes_but_not_tags():
    a, b, c = parse('"Climate  Change"').leaves().__next__(), parse("climate change").leaves().__next__(), parse("acne[tiab]").leaves().__next__()
    assert term_key(a) == term_key(b) == "climate change" and term_key(c) == "acne[tiab]"


def test_repeated_terms_and_their_removal():
    query = parse('(outcome OR outcome OR result) AND (Outcome OR "x") NOT (x OR y)')
    assert repeated_terms(query) == ["outcome", "x"]
    assert str(drop_repeated_terms(query)) == '(outcome OR result) AND "x" NOT y'
    assert str(drop_repeated_terms(parse("a NOT a"))) == "a"


@settings(max_examples=20, deadline=None)
@given(text=query_strategy())
def test_dropping_repeats_leaves_a_valid_query_without_repeats(text):
    query = drop_repeated_terms(parse(text))
    assert parse(str(query)) == query and not repeated_terms(query)
    assert {term_key(x) for x in query.leaves()} == {term_key(x) for x in parse(text).leaves()}
