"""blockgen/dialects/ovid.py as a dialect: Ovid written so that Ovid reads back the tree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen.dialects import DialectError, read, write
from blockgen.parser import parse
from blockgen.evaluate import Document, Evaluator
from blockgen.query import And, Comparison, Field, Not, Or, Phrase, Term

from tests.dialect_trees import ANY_LEAVES, HIERARCHY, OVID_LEAVES, documents, trees

EV = Evaluator(HIERARCHY)


def test_one_numbered_line_per_block_and_a_combining_line():
    query = Not(And((Or((Phrase("Malaria", "Mesh"), Term("malaria", "tiab"))), Phrase("rapid test*", "tw:~2"))), Phrase("animals", "Mesh:NoExp"))
    writing = write(query, "ovid")
    assert writing.text == "1 exp Malaria/ or malaria.ti,ab.\n2 (rapid adj3 test*).tw.\n3 animals/\n4 (1 and 2) not 3"
    assert read(writing.text, "ovid").query == query


def test_a_group_of_one_field_takes_one_suffix():
    assert write(Or((Term("a", "tiab"), Phrase("b c", "tiab"))), "ovid").text == "(a or b c).ti,ab."


def test_words_side_by_side_are_written_as_an_and_because_ovid_reads_a_phrase():
    assert write(Term("heart attack", "tiab"), "ovid").text == "(heart and attack).ti,ab."
    assert write(Phrase("heart attack", "tiab"), "ovid").text == "heart attack.ti,ab."


def test_words_ovid_would_misread_are_quoted():
    assert write(Or((Phrase("sensitivity and specificity", "Mesh"), Term("2019"))), "ovid").text == 'exp "sensitivity and specificity"/ or "2019"'


@pytest.mark.parametrize(
    "node, kind",
    [
        (And((Term("a"), Field("fieldsOfStudy", "biology"))), "term dropped"),
        (And((Term("a"), Comparison("yearPublished", ">=", "2019"))), "term dropped"),
        (Phrase("a b c", "tiab:~2"), "proximity approximated"),
        (Term("x", "Some Field"), "tag dropped"),
    ],
)
def test_writer_notes_what_ovid_cannot_express(node, kind):
    writing = write(node, "ovid")
    assert [n.kind for n in writing.notes] == [kind] and not writing.exact


def test_nothing_left_to_write_is_an_error():
    with pytest.raises(DialectError):
        write(Field("fieldsOfStudy", "biology"), "ovid")


@given(trees(OVID_LEAVES))
def test_ovid_round_trip_is_the_identity(query):
    writing = write(query, "ovid")
    assert writing.exact and writing.notes == ()
    reading = read(writing.text, "ovid")
    assert reading.query == query, writing.text
    assert reading.notes == ()


@given(trees(ANY_LEAVES), st.lists(documents(), min_size=1, max_size=6))
def test_ovid_writing_means_the_tree_when_it_is_exact(query, docs):
    try:
        writing = write(query, "ovid")
    except DialectError:
        return
    back = read(writing.text, "ovid").query
    if writing.exact:
        for doc in docs:
            assert EV.matches(back, doc) == EV.matches(query, doc), (writing.text, doc)
    else:
        assert writing.notes


@pytest.mark.parametrize(
    "title, matches",
    [("attack of the heart", True), ("heart attack", True), ("attack heart", True), ("heart was not under attack", False)],
)
def test_adj3_means_at_most_two_words_between_in_any_order(title, matches):
    query = read("(heart adj3 attack).ti.", "ovid").query
    assert EV.matches(query, Document({"ti": title})) is matches


@pytest.mark.parametrize("text", ["cafe\u0301", '"\U000bc86f"', "and\U0001371b"])
def test_ovid_reads_text_in_nfc_and_keeps_private_and_unassigned_characters(text):
    # found by benchmarks.fuzz: the tree must be what blockgen reads back from its own text
    query = read(text, "ovid").query
    assert parse(str(query)) == query
