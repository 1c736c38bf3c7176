"""Tests for blockgen/ovid.py: Ovid MEDLINE strategies -> one block query."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockgen.ovid import OvidConversion, OvidError, convert_ovid, from_ovid
from blockgen.parser import is_valid, parse
from blockgen.query import And, Not, Or, Phrase, Term


def conv(text: str) -> OvidConversion:
    result = convert_ovid(text)
    assert is_valid(str(result.query)), str(result.query)
    return result


@pytest.mark.parametrize(
    "line, expected",
    [
        ("exp Malaria/", Phrase("Malaria", "Mesh")),
        ("Malaria/", Phrase("Malaria", "Mesh:NoExp")),
        ('exp "Typhoid Fever"/', Phrase("Typhoid Fever", "Mesh")),
        ("malaria.ti,ab.", Term("malaria", "tiab")),
        ("malaria.ti,ab", Term("malaria", "tiab")),
        ("malaria.tw.", Term("malaria", "tw")),
        ("malaria.tw,kf.", Term("malaria", "tw")),
        ("malaria.mp.", Term("malaria", "tw")),
        ("malaria.kw.", Term("malaria", "tw")),
        ("randomized controlled trial.pt.", Term("randomized controlled trial", "pt")),
        ("placebo.ab.", Term("placebo", "ab")),
        ("trial.ti.", Term("trial", "ti")),
        ("humans.sh.", Term("humans", "Mesh")),
        ("drug therapy.fs.", Term("drug therapy", "sh")),
        ('"typhoid fever".ti,ab,kw', Phrase("typhoid fever", "tw")),
        ("rapid diagnos* test*.ti,ab", Term("rapid diagnos* test*", "tiab")),
        ("fungal infection[tw]", Term("fungal infection", "tw")),
        ('"Aspergillus"[MeSH]', Phrase("Aspergillus", "Mesh")),
    ],
)
def test_single_line_constructs(line, expected):
    result = conv(line)
    assert result.query == expected
    assert result.dropped == ()


@pytest.mark.parametrize(
    "word, expected",
    [("dermat$", "dermat*"), ("random:", "random*"), ("behavio#r", "behavio?r"), ("tumo?r", "tumo?r"), ("exercise$1", "exercise*")],
)
def test_truncation_maps_to_grammar_wildcards(word, expected):
    assert conv(f"{word}.tw.").query == Term(expected, "tw")


def test_subheadings_keep_heading_and_are_noted():
    result = conv("Lung/ra, ri [Radiography]")
    assert result.query == Phrase("Lung", "Mesh:NoExp")
    assert any("subheading" in note for note in result.dropped)


def test_group_suffix_tags_every_term():
    result = conv("((dermat$ or eczema) and (hand$ or palm$)).ti,ab.")
    assert result.query == And((Or((Term("dermat*", "tiab"), Term("eczema", "tiab"))), Or((Term("hand*", "tiab"), Term("palm*", "tiab")))))


def test_line_references_resolve_from_the_final_line():
    strategy = "exp Malaria/\nmalaria.ti,ab.\n1 or 2\n(rapid adj3 test$).tw.\n3 and 4\nlimit 5 to humans"
    result = conv(strategy)
    # make_and flattens the proximity AND into the top-level AND.
    assert result.query == And((Or((Phrase("Malaria", "Mesh"), Term("malaria", "tiab"))), Term("rapid", "tw"), Term("test*", "tw")))
    assert result.lines == 6
    assert any("limit" in n for n in result.dropped) and any("adj3" in n for n in result.dropped)


@pytest.mark.parametrize("combine", ["or/1-3", "OR 1-3", "1 or 2 or 3", "(1 OR 2 OR 3)", "#1 OR #2 OR #3", "1 Or 2 oR 3"])
def test_or_combinations(combine):
    result = conv(f"a.tw.\nb.tw.\nc.tw.\n{combine}")
    assert result.query == Or((Term("a", "tw"), Term("b", "tw"), Term("c", "tw")))


def test_and_list_and_not():
    assert conv("a\nb\nc\nand/1,3").query == And((Term("a"), Term("c")))
    assert conv("a\nb\n1 not 2").query == Not(Term("a"), Term("b"))
    assert conv("exp animals/ not humans/").query == Not(Phrase("animals", "Mesh"), Phrase("humans", "Mesh:NoExp"))


def test_inline_nested_boolean_any_case():
    result = conv("(a OR (b and c)) Not d")
    assert result.query == Not(Or((Term("a"), And((Term("b"), Term("c"))))), Term("d"))


@pytest.mark.parametrize("prox", ["adj", "adj3", "near/2", "ADJ5"])
def test_proximity_becomes_and_noted(prox):
    result = conv(f"(heart {prox} attack).tw.")
    assert result.query == And((Term("heart", "tw"), Term("attack", "tw")))
    assert result.dropped


def test_date_lines_and_missing_refs_are_dropped_and_noted():
    result = conv("a.tw.\n(2017* or 2018*).ed.\n1 and 2 and 9")
    assert result.query == Term("a", "tw")
    assert any("date" in n for n in result.dropped)
    assert any("missing line 9" in n for n in result.dropped)


def test_multi_word_terms_stay_one_term():
    assert conv("low molecular weight heparin.tw.").query == Term("low molecular weight heparin", "tw")


def test_operator_words_are_quoted():
    result = conv('"OR".ti.\n"AND"\n1 or 2')
    assert result.query == Or((Phrase("OR", "ti"), Phrase("AND")))
    assert "OR" in str(result.query)


def test_error_names_the_line():
    with pytest.raises(OvidError, match=r"line 3 .*line 2: reference to missing line 5"):
        convert_ovid("a\n5 and 6\nlimit 2 to humans")
    with pytest.raises(OvidError):
        convert_ovid("   \n  ")


def test_from_ovid_is_the_query():
    assert from_ovid("a\nb\n1 or 2") == convert_ovid("a\nb\n1 or 2").query


@given(st.text(alphabet=st.sampled_from(list("ab ()/$:#.\"*,[]\n1234orndtiexpj-")), max_size=60))
def test_conversion_output_always_parses(text):
    try:
        result = convert_ovid(text)
    except OvidError:
        return
    assert parse(str(result.query)) == result.query


# Measured with `python -m blockgen.ovid ../shared/data/clef_tar/topics.jsonl`.
CLEAN_LOWER_BOUND = 15


def test_all_clef_topics_convert_to_valid_queries(shared_data):
    rows = [json.loads(line) for line in (shared_data / "clef_tar" / "topics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 128
    clean = 0
    for row in rows:
        result = convert_ovid(row["query"])
        assert is_valid(str(result.query)), (row["topic"], str(result.query))
        clean += not result.dropped
    assert clean >= CLEAN_LOWER_BOUND
