"""blockgen/dialects/__init__.py and the dialect= API of blockgen.parse / blockgen.format."""

from __future__ import annotations

import re

import warnings

import pytest
from hypothesis import given

import blockgen
from blockgen.dialects import DIALECTS, Dialect, DialectWarning, get_dialect, read, translate, write
from blockgen.dialects.tags import canonical, parse_tag
from blockgen.evaluate import Document, Evaluator
from blockgen.query import And, Or, Phrase, Term

from tests.dialect_trees import ANY_LEAVES, HIERARCHY, trees

EV = Evaluator(HIERARCHY)


def test_four_dialects_behind_one_interface():
    assert DIALECTS == ("blockgen", "pubmed", "ovid", "lucene")
    for name in DIALECTS:
        dialect = get_dialect(name)
        assert isinstance(dialect, Dialect) and dialect.name == name and dialect.description
    with pytest.raises(ValueError, match="unknown dialect"):
        get_dialect("scopus")


def test_blockgen_is_the_default_and_unchanged():
    text = '(climate change OR "global warming") AND twitter'
    assert blockgen.parse(text) == blockgen.parse(text, dialect="blockgen") == blockgen.parser.parse(text)
    query = blockgen.parse(text)
    for style in blockgen.STYLES:
        assert blockgen.format(query, style) == blockgen.format_query(query, style)
        assert blockgen.format(query, style=style, dialect="blockgen") == blockgen.format_query(query, style)


def test_the_same_text_means_what_each_engine_reads():
    text = "a AND b OR c"
    assert blockgen.parse(text) == And((Term("a"), Or((Term("b"), Term("c")))))
    assert blockgen.parse(text, dialect="lucene") == Or((And((Term("a"), Term("b"))), Term("c")))
    assert blockgen.parse(text, dialect="pubmed") == Or((And((Term("a"), Term("b"))), Term("c")))


def test_notes_are_warnings_of_parse_and_format():
    with pytest.warns(DialectWarning) as caught:
        blockgen.parse("a not (b[mh] not c[mh])", dialect="pubmed")
    assert [w.message.note.kind for w in caught] == ["lower-case operator", "lower-case operator"]
    with pytest.warns(DialectWarning, match="proximity"):
        blockgen.format(Phrase("a b c", "tiab:~1"), dialect="lucene")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blockgen.format(Term("a", "tiab"), dialect="pubmed")  # nothing to say: no warning


def test_style_is_for_blockgen_only():
    with pytest.raises(ValueError, match="style"):
        blockgen.format(Term("a"), style="pretty", dialect="pubmed")


def test_translate_keeps_both_sides_notes():
    result = translate("heart.tw.\nlimit 1 to humans", "ovid", "pubmed")
    assert result.text == "heart[tw]" and [(n.kind, n.line) for n in result.read_notes] == [("limit line dropped", 2)]
    result = translate('"rapid test*"[tw:~2]', "blockgen", "pubmed")
    assert result.text == "(rapid[tw] AND test*[tw])" and not result.exact
    assert [n.kind for n in result.write_notes] == ["proximity approximated"]


@pytest.mark.parametrize(
    "tag, field, proximity",
    [("Title/Abstract", "tiab", None), ("MeSH Terms", "Mesh", None), ("mh:noexp", "Mesh:NoExp", None), ("tiab:~3", "tiab", 3),
     ("Title/Abstract:~2", "tiab", 2), ("MeSH Major Topic", "majr", None), ("Some Field", "Some Field", None)],
)
def test_one_tag_table_for_every_spelling(tag, field, proximity):
    decoded = parse_tag(tag)
    assert (decoded.field, decoded.proximity) == (field, proximity)
    assert canonical(canonical(tag)) == canonical(tag)


@given(trees(ANY_LEAVES))
def test_blockgen_round_trip_holds_for_every_tree_the_dialects_read(query):
    writing = write(query, "blockgen")
    assert writing.notes == ()
    assert blockgen.parse(writing.text) == query


@given(trees(ANY_LEAVES))
def test_a_chain_of_exact_translations_keeps_the_meaning(query):
    docs = [Document({"ti": "heart attack malaria", "ab": "rapid test for fever in children"}, {"Malaria, Falciparum": True}),
            Document({"ti": "attack on the heart", "ab": "care"}, {"Fever": False})]
    current, text, exact = query, None, True
    for source, target in (("blockgen", "pubmed"), ("pubmed", "ovid"), ("ovid", "lucene"), ("lucene", "blockgen")):
        try:
            writing = write(current, target)
        except blockgen.DialectError:
            return
        exact = exact and writing.exact
        current = read(writing.text, target).query
    if exact:
        for doc in docs:
            assert EV.matches(current, doc) == EV.matches(query, doc)


def test_blockgen_format_keeps_lower_case_operator_words_as_words():
    # found by benchmarks.fuzz: "or" is a word of the grammar, and format(dialect="blockgen")
    # is format_query unchanged for every tree the grammar reads
    for text in ("10 or 18", "cats and dogs", "not applicable", "a OR b and c"):
        query = blockgen.parse(text)
        assert blockgen.format(query) == blockgen.format_query(query)
        assert blockgen.parse(blockgen.format(query)) == query


def test_flatten_merges_nested_ors_and_ands_top_down():
    """blockgen.dialects._walk.flatten: what make_or/make_and would have built, linear for long chains."""
    from blockgen.dialects._walk import flatten
    from blockgen.query import And, Not, Or, Term

    chain = Term("x0")
    for i in range(1, 20_000):
        chain = Or((chain, Term(f"x{i}")))  # 20,000 levels, built without flattening
    flat = flatten(chain)
    assert isinstance(flat, Or) and len(flat.items) == 20_000 and flat.items[5] == Term("x5")
    mixed = And((And((Term("a"), Or((Or((Term("b"), Term("c"))), Term("d"))))), Not(Term("e"), Term("f"))))
    assert flatten(mixed) == And((Term("a"), Or((Term("b"), Term("c"), Term("d"))), Not(Term("e"), Term("f"))))
    already = And((Term("a"), Term("b")))
    assert flatten(already) is already


def test_a_tag_is_known_in_any_of_pubmeds_spellings_and_unknown_otherwise():
    from blockgen.dialects.tags import parse_tag

    assert all(parse_tag(t).known for t in (None, "tiab", "MeSH Terms", "Title/Abstract:~3", "majr"))
    assert not any(parse_tag(t).known for t in ("s people OR changing", "per objective"))


@pytest.mark.parametrize("dialect", ["pubmed", "ovid"])
def test_a_not_whose_right_side_is_dropped_keeps_its_left_side_with_a_note(dialect):
    from blockgen.query import And, Field, Not, Term

    writing = blockgen.dialects.write(And((Term("b"), Not(Term("a"), Field("x", "y")))), dialect)
    words = re.findall(r"\w+", writing.text.lower())
    assert "a" in words and "b" in words and "not" not in words, writing.text
    assert [n.kind for n in writing.notes].count("term dropped") == 2


def test_typographic_quotes_inside_a_phrase_are_escaped_for_lucene_and_dropped_with_a_note_for_pubmed():
    # found by benchmarks.fuzz: both readers take typographic quotes for quotes
    query = blockgen.parse('"a \u201cb\u201d" AND c')
    assert blockgen.dialects.read(blockgen.dialects.write(query, "lucene").text, "lucene").query == query
    pubmed = blockgen.dialects.write(query, "pubmed")
    assert "characters dropped" in [n.kind for n in pubmed.notes]
    assert blockgen.dialects.read(pubmed.text, "pubmed").query == blockgen.parse('"a b" AND c')
