"""blockgen/evaluate.py: what each node means on a document with fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen import parse
from blockgen.evaluate import Document, Evaluator, evaluate, select, tokens
from blockgen.query import And, Comparison, Field, Not, Or, Phrase, Term

from tests.dialect_trees import ANY_LEAVES, HIERARCHY, documents, trees

DOC = Document(
    fields={"ti": "Rapid diagnostic tests for malaria in children", "ab": "COVID-19 and Kyiv's heart attack care", "ot": "behaviour"},
    headings={"Malaria, Falciparum": True, "Fever": False},
    values={"dp": "2019/05/01", "yearPublished": "2019", "language": "en"},
)
EV = Evaluator(hierarchy=HIERARCHY)


def test_tokens_are_runs_of_letters_and_digits_lower_cased():
    assert tokens("COVID-19 in Kyiv's   Київ") == ["covid", "19", "in", "kyiv", "s", "київ"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("malaria", True),
        ("MALARIA", True),
        ("malaria heart", True),  # words side by side: each anywhere (AND)
        ('"malaria heart"', False),  # a phrase: side by side, in order, in one field
        ('"heart attack"', True),
        ('"attack heart"', False),
        ("malaria[ab]", False),
        ("malaria[tiab]", True),
        ("malaria[Title/Abstract]", True),  # any spelling of a tag
        ("behaviour[tw]", True),  # tw searches other terms too
        ("behaviour[tiab]", False),
        ("COVID-19[ab]", True),  # the word's tokens side by side
        ("child*", True),
        ("chil*[ab]", False),
        ("behavio?r", True),  # ? is one character or none
        ("behavio?our", False),
        ("t?sts", True),
        ('"rapid tests"[tiab:~1]', True),  # at most 1 word between
        ('"rapid tests"[tiab:~0]', False),
        ('"tests rapid"[ti:~1]', True),  # any order
        ('"rapid malaria"[ti:~3]', True),
        ('"rapid malaria"[ti:~2]', False),
        ('"rapid care"[tiab:~9]', False),  # one field, not across fields
        ('"Malaria"[Mesh]', True),  # exploded: a heading below counts
        ('"Malaria"[Mesh:NoExp]', False),
        ('"malaria, falciparum"[Mesh:NoExp]', True),  # names: case and blanks ignored
        ('"Malaria"[majr]', True),
        ('"Fever"[majr]', False),  # not a major topic
        ('"Fever"[Mesh]', True),
        ("yearPublished>=2019", True),
        ("yearPublished>2019", False),
        ("dp<=2019", True),  # a date compared at the bound's precision
        ("dp>=2019/06", False),
        ("language:en", True),
        ('language:"de"', False),
        ("malaria NOT covid", False),
        ("(malaria OR nothing) AND heart", True),
    ],
)
def test_each_node_means_what_the_module_says(query, expected):
    assert EV.matches(parse(query), DOC) is expected


def test_comparisons_are_numeric_when_both_sides_are_numbers():
    doc = Document(values={"n": "10"})
    assert evaluate(Comparison("n", ">", "9"), doc) and not evaluate(Comparison("n", "<", "9"), doc)
    assert not evaluate(Comparison("missing", ">=", "1"), doc)


def test_field_filter_matches_a_value_or_a_phrase_of_a_field():
    assert evaluate(Field("fieldsOfStudy", "biology"), Document(values={"fieldsOfStudy": "Biology"}))
    assert evaluate(Field("ti", "rapid diagnostic"), DOC)


def test_proximity_needs_each_word_its_own_token():
    doc = Document({"ti": "pain"})
    assert not evaluate(Phrase("pain pain", "tiab:~3"), doc)
    assert evaluate(Phrase("pain pain", "tiab:~3"), Document({"ti": "pain in pain"}))


def test_select_gives_the_indices_of_matching_documents():
    docs = [Document({"ti": "malaria"}), Document({"ti": "fever"}), Document({"ab": "malaria fever"})]
    assert select(parse("malaria"), docs) == [0, 2]
    assert select(parse("malaria NOT fever"), docs) == [0]


def test_any_depth_is_evaluated_without_recursion():
    node = Term("malaria")
    for i in range(5000):
        node = Not(node, Term(f"x{i}")) if i % 2 else Or((node, Term(f"y{i}")))
    assert evaluate(node, DOC)


def test_a_shared_subtree_is_evaluated_where_it_stands():
    shared = Or((Term("malaria"), Term("fever")))
    assert evaluate(And((shared, Not(shared, Term("nothing")))), DOC)


def test_not_a_tree_is_a_type_error():
    with pytest.raises(TypeError):
        evaluate("malaria", DOC)  # type: ignore[arg-type]


@given(trees(ANY_LEAVES), st.lists(documents(), min_size=1, max_size=4))
def test_not_means_positive_without_negative(query, docs):
    negative = Term("heart")
    for doc in docs:
        assert EV.matches(Not(query, negative), doc) == (EV.matches(query, doc) and not EV.matches(negative, doc))
        assert EV.matches(Or((query, negative)), doc) == (EV.matches(query, doc) or EV.matches(negative, doc))
