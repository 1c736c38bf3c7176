"""repair: any string in, a valid query out (or RepairError when no term is left)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from blockgen import is_valid, parse
from blockgen.repair import RepairError, repair, try_repair
from tests.conftest import run_queries
from tests.test_grammar import query_strategy

OPERATOR_WORDS = {"AND", "OR", "NOT"}


def _check(text: str):
    try:
        result = repair(text)
    except RepairError:
        return None
    assert is_valid(result.text), (text, result.text)
    assert parse(result.text) == result.query
    return result


@given(st.text(max_size=60))
def test_repair_output_always_parses(text):
    _check(text)


_PIECES = st.sampled_from(
    ["a", "b", "climate", "change", "AND", "OR", "NOT", "and", "or", "Not", "(", ")", '"', "[tiab]", "[", "]",
     ":", ">=", "x:", "y>=", "2019", ",", ".", "$", "-", "*", " ", " ", "é", "\n"]
)


@given(st.lists(_PIECES, max_size=25).map("".join))
def test_repair_output_always_parses_for_query_like_text(text):
    _check(text)


def _complete_words(prefix: str) -> list[str]:
    """Words of a cut query that were complete before the cut (not touching its end)."""
    words = []
    no_tags = re.sub(r"\[[^\]]*\]?", " ", prefix)
    for m in re.finditer(r"[^\s()\"]+", no_tags):
        if m.end() == len(no_tags):
            continue  # may be cut in the middle
        for piece in re.split(r"[:<>=]+", m.group()):
            if piece and piece not in OPERATOR_WORDS:
                words.append(piece)
    return words


@given(query_strategy(), st.data())
def test_repair_of_a_cut_query_parses_and_keeps_complete_terms(text, data):
    cut = data.draw(st.integers(0, len(text)))
    prefix = text[:cut]
    result = try_repair(prefix)
    if result is None:
        assert not _complete_words(prefix)
        return
    assert is_valid(result.text)
    kept = " ".join(leaf_text for leaf_text in re.findall(r"[^\s()\"\[\]]+", result.text))
    for word in _complete_words(prefix):
        assert word in kept, (prefix, word, result.text)


@given(query_strategy())
def test_repair_is_identity_on_valid_queries(text):
    result = repair(text)
    assert result.edits == () and not result.repaired
    assert result.query == parse(text)


@pytest.mark.parametrize(
    "text,expected,kind",
    [
        ('(a OR "b c', 'a OR "b c"', "closed quote"),
        ("x AND (y OR z", "x AND (y OR z)", "closed parenthesis"),
        ("a) OR b", "a OR b", "dropped parenthesis"),
        ("a OR OR b", "a OR b", "dropped doubled operator"),
        ("a AND", "a", "dropped dangling operator"),
        ("OR a", "a", "dropped leading operator"),
        ("a AND () OR b", "a AND b", "dropped empty group"),
        ('"a" "b"', '"a" AND "b"', "inserted AND"),
        ("(a or b) and (c or d)", "(a OR b) AND (c OR d)", "normalised operator"),
        ("a AND NOT b", "a NOT b", "replaced AND NOT by NOT"),
        ("NOT a", "a", "dropped leading NOT"),
        ("stainless steel.", "stainless steel", "dropped characters"),
        ("malignan$ OR tumo$r", "malignan* OR tumo*r", "converted truncation"),
        ('x AND "a b) OR c', 'x AND "a b" OR c', "closed quote"),
        ("acne[tiab", "acne[tiab]", "closed tag"),
    ],
)
def test_repair_examples(text, expected, kind):
    result = repair(text)
    assert result.text == str(parse(expected))
    assert kind in [e.kind for e in result.edits]
    assert result.repaired


@pytest.mark.parametrize("text", ["", "   ", "...", "()", "AND OR", '""', "!?"])
def test_nothing_usable_raises_repair_error(text):
    with pytest.raises(RepairError, match="nothing usable"):
        repair(text)
    assert try_repair(text) is None


def test_non_strings_are_a_type_error():
    with pytest.raises(TypeError):
        repair(None)  # type: ignore[arg-type]


def test_every_broken_query_of_the_finetuned_run_repairs(shared_data):
    queries = run_queries(shared_data / "sim4ia" / "run_file_finetuned_filter_LLM_new.json")
    invalid = [q for q in queries if not is_valid(q)]
    assert invalid, "the run is known to hold broken queries"
    for q in invalid:
        result = repair(q)
        assert is_valid(result.text) and result.repaired


def test_repair_keeps_the_published_boolean_run_as_it_is(shared_data):
    for q in run_queries(shared_data / "sim4ia" / "llm_queries_boolean_run.json"):
        result = repair(q)
        assert result.edits == () and result.query == parse(q)
