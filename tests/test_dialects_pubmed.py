"""blockgen/dialects/pubmed.py: PubMed read and written as PubMed reads it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen.dialects import DialectError, DialectSyntaxError, read, write
from blockgen.evaluate import Document, Evaluator
from blockgen.query import And, Comparison, Field, Not, Or, Phrase, Term, make_and

from tests.dialect_trees import ANY_LEAVES, HIERARCHY, PUBMED_LEAVES, documents, trees

EV = Evaluator(HIERARCHY)


def q(text):
    return read(text, "pubmed").query


def kinds(text):
    return [n.kind for n in read(text, "pubmed").notes]


def test_operators_are_evaluated_left_to_right():
    assert q("a AND b OR c") == Or((And((Term("a"), Term("b"))), Term("c")))
    assert q("a OR b AND c") == And((Or((Term("a"), Term("b"))), Term("c")))
    assert q("a NOT b OR c") == Or((Not(Term("a"), Term("b")), Term("c")))
    assert q("a OR (b AND c)") == Or((Term("a"), And((Term("b"), Term("c")))))


def test_terms_with_no_operator_between_them_are_anded_and_noted():
    assert q('"a b" c[tiab] (d OR e)') == And((Phrase("a b"), Term("c", "tiab"), Or((Term("d"), Term("e")))))
    assert kinds('"a b" c[tiab]') == ["implicit AND"]
    assert q("heart attack[tiab]") == Term("heart attack", "tiab")  # bare words side by side: one term
    assert kinds("heart attack[tiab]") == []


def test_the_cochrane_animal_filter_in_lower_case_works_and_is_noted():
    query = q("malaria[tiab] not (animals[mh] not humans[mh])")
    assert query == Not(Term("malaria", "tiab"), Not(Term("animals", "Mesh"), Term("humans", "Mesh")))
    assert kinds("malaria[tiab] not (animals[mh] not humans[mh])") == ["lower-case operator", "lower-case operator"]


def test_lower_case_and_inside_a_tagged_run_is_a_word_as_pubmed_reads_it():
    assert q("sensitivity and specificity[mh]") == Term("sensitivity and specificity", "Mesh")
    assert q("wit and humor [mh] OR x") == Or((Term("wit and humor", "Mesh"), Term("x")))
    notes = read("sensitivity and specificity[mh]", "pubmed").notes
    assert [n.kind for n in notes] == ["lower-case operator"] and "kept as a word" in notes[0].detail


def test_lower_case_operator_between_untagged_words_is_the_operator():
    assert q("fever or malaria") == Or((Term("fever"), Term("malaria")))


@pytest.mark.parametrize(
    "text, expected",
    [
        ('“Tafenoquine” [Supplementary Concept]', Phrase("Tafenoquine", "nm")),
        ('“Aspergillus"[MeSH]', Phrase("Aspergillus", "Mesh")),
        ("malaria [Title/Abstract]", Term("malaria", "tiab")),
        ("malaria[TIAB]", Term("malaria", "tiab")),
        ("Malaria[MeSH Terms]", Term("Malaria", "Mesh")),
        ("Malaria[mh:noexp]", Term("Malaria", "Mesh:NoExp")),
        ("Malaria[Majr]", Term("Malaria", "majr")),
        ("malaria[All Fields]", Term("malaria", "all")),
        ("review[Publication Type]", Term("review", "pt")),
        ('"hip pain"[tiab:~3]', Phrase("hip pain", "tiab:~3")),
        ('"hip pain"[Title/Abstract:~2]', Phrase("hip pain", "tiab:~2")),
        ("Alzheimer’s disease", Term("Alzheimer's disease")),
    ],
)
def test_tag_spellings_quotes_and_blanks(text, expected):
    assert q(text) == expected


def test_an_unknown_tag_is_kept_and_noted():
    assert q("x[Some Field]") == Term("x", "Some Field")
    assert kinds("x[Some Field]") == ["unknown tag"]


def test_date_ranges_become_comparisons_and_are_written_back_as_ranges():
    assert q("2010:2020[dp]") == And((Comparison("dp", ">=", "2010"), Comparison("dp", "<=", "2020")))
    assert q('("2000/01/01"[Date - Publication] : "3000"[Date - Publication])') == And((Comparison("dp", ">=", "2000/01/01"), Comparison("dp", "<=", "3000")))
    assert write(q("x AND 2010:2020[dp]"), "pubmed").text == "x AND 2010:2020[dp]"


def test_a_search_history_resolves_references():
    assert q("#1 malaria[tiab]\n#2 fever\n#3 #1 OR #2\n#4 #3 NOT child") == Not(Or((Term("malaria", "tiab"), Term("fever"))), Term("child"))
    assert q("1. a\n2. b\n3. #1 AND #2") == And((Term("a"), Term("b")))


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("a AND", 1, 6),
        ("(a OR b", 1, 8),
        ('a AND "b', 1, 7),
        ("a[tiab", 1, 2),
        ("a ) b", 1, 3),
        ("x\n#3 OR a", 2, 1),
        ("#2 OR a", 1, 1),
        ('""', 1, 1),
        ("", 1, 1),
    ],
)
def test_bad_input_is_an_error_naming_its_position(text, line, column):
    with pytest.raises(DialectSyntaxError) as err:
        read(text, "pubmed")
    assert (err.value.line, err.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(err.value)


def test_writer_parenthesises_where_left_to_right_differs_from_the_tree():
    assert write(And((Term("a"), Or((Term("b"), Term("c"))))), "pubmed").text == "a AND (b OR c)"
    assert write(Not(And((Term("a"), Term("b"))), Term("c")), "pubmed").text == "a AND b NOT c"
    assert write(Or((Not(Term("a"), Term("b")), Term("c"))), "pubmed").text == "(a NOT b) OR c"


@pytest.mark.parametrize(
    "node, text, kind",
    [
        (Term("behavio?r"), "behavio*", "wildcard approximated"),
        (Phrase("rapid tes*", "tw:~2"), "(rapid[tw] AND tes*[tw])", "proximity approximated"),
        (Phrase("rapid test", "tw:~2"), "(rapid[tw] AND test[tw])", "proximity approximated"),
        (And((Term("a"), Field("fieldsOfStudy", "biology"))), "a", "term dropped"),
    ],
)
def test_writer_notes_what_pubmed_cannot_express(node, text, kind):
    writing = write(node, "pubmed")
    assert writing.text == text and [n.kind for n in writing.notes] == [kind] and not writing.exact


def test_core_years_are_written_as_publication_dates_and_noted():
    writing = write(And((Term("a"), Comparison("yearPublished", ">=", "2019"))), "pubmed")
    assert writing.text == "a AND 2019:3000[dp]" and [n.kind for n in writing.notes] == ["tag approximated"]


@given(trees(PUBMED_LEAVES))
def test_pubmed_round_trip_is_the_identity(query):
    writing = write(query, "pubmed")
    assert writing.exact and writing.notes == ()
    assert read(writing.text, "pubmed").query == query, writing.text


@given(trees(ANY_LEAVES), st.lists(documents(), min_size=1, max_size=6))
def test_pubmed_writing_means_the_tree_when_it_is_exact(query, docs):
    try:
        writing = write(query, "pubmed")
    except DialectError:  # nothing PubMed can express is left (a lone field filter)
        return
    back = read(writing.text, "pubmed").query
    if writing.exact:
        for doc in docs:
            assert EV.matches(back, doc) == EV.matches(query, doc), (writing.text, doc)
    else:
        assert writing.notes


def test_precedence_decides_what_matches():
    doc = Document({"ti": "c"})
    text = "a AND b OR c"
    assert EV.matches(read(text, "pubmed").query, doc)  # (a AND b) OR c
    assert not EV.matches(read(text, "blockgen").query, doc)  # a AND (b OR c)
    assert make_and([Term("a"), Or((Term("b"), Term("c")))]) == read(text, "blockgen").query
