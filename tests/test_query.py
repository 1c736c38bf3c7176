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


def test_equality_hash_and_repr_of_deep_trees_do_not_recurse():
    """Node equality, hashing, repr, leaves and blocks walk with an explicit stack (any depth)."""
    from blockgen import And, Not

    text = "a" + " AND b NOT c" * 10_000  # Not(And(Not(And(...)))) 20,000 levels deep
    one, two = parse(text), parse(text)
    assert one == two and hash(one) == hash(two) and not (one != two)
    assert one != parse(text + " NOT d")
    assert repr(one).startswith("Not(positive=And(items=(Not(positive=")
    assert len(terms(one)) == 1 + 2 * 10_000
    assert sum(b.negated for b in blocks(one)) == 10_000
    assert {one: 1}[two] == 1
    assert isinstance(one, Not) and isinstance(one.positive, And)


def test_equal_trees_are_equal_and_hash_alike():
    a = parse('(x OR "y"[tiab]) AND z NOT w')
    b = parse('(x OR "y"[tiab]) AND z NOT w')
    assert a == b and hash(a) == hash(b)
    assert a != parse('(x OR "y"[mh]) AND z NOT w')
    assert Term("x") != Phrase("x")
    assert eval(repr(a), {**__import__("blockgen").__dict__}) == a
