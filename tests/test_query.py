"""blocks() and terms() on the query tree."""

from __future__ import annotations

from blockgen import Phrase, Term, blocks, parse, terms


def test_blocks_are_the_and_operands_and_the_not_operands():
    q = parse('("climate change" OR "global warming") AND (social media OR Twitter) NOT ("renewable energy" OR solar)')
    bs = blocks(q)
    assert [b.negated for b in bs] == [False, False, True]
    assert bs[0].terms() == [Phrase("climate change"), Phrase("global warming")]
    assert bs[2].terms() == [Phrase("renewable energy"), Term("solar")]


def test_a_query_without_and_is_one_block():
    assert len(blocks(parse("a OR b OR c"))) == 1


def test_terms_are_all_leaves_in_order():
    q = parse('a AND (b OR "c d") NOT e[tiab]')
    assert terms(q) == [Term("a"), Term("b"), Phrase("c d"), Term("e", tag="tiab")]
