"""parse / validate / is_valid, on examples and on real Sim4IA queries."""

from __future__ import annotations

import pytest

from blockgen import And, Comparison, Field, Not, Or, Phrase, QuerySyntaxError, Term, is_valid, parse, validate
from tests.conftest import run_queries


def test_parse_builds_the_block_tree():
    q = parse('("climate change" OR "global warming") AND ("social media" OR Twitter) NOT ("renewable energy")')
    assert q == Not(
        And((Or((Phrase("climate change"), Phrase("global warming"))), Or((Phrase("social media"), Term("Twitter"))))),
        Phrase("renewable energy"),
    )


def test_or_binds_tighter_than_and():
    assert parse("a OR b AND c OR d") == And((Or((Term("a"), Term("b"))), Or((Term("c"), Term("d")))))


def test_and_and_not_associate_to_the_left():
    assert parse("a AND b NOT c AND d") == And((Not(And((Term("a"), Term("b"))), Term("c")), Term("d")))


def test_fields_comparisons_and_tags():
    q = parse('x AND fieldsOfStudy:"biology" AND language:en AND yearPublished>=2019 AND acne[tiab] AND "Acne Vulgaris"[Mesh]')
    assert q.items[1:] == (
        Field("fieldsOfStudy", "biology", quoted=True),
        Field("language", "en", quoted=False),
        Comparison("yearPublished", ">=", "2019"),
        Term("acne", tag="tiab"),
        Phrase("Acne Vulgaris", tag="Mesh"),
    )


def test_words_and_phrases_are_whitespace_normalised():
    assert parse('  climate \t change  OR " global   warming "') == Or((Term("climate change"), Phrase("global warming")))


def test_redundant_parentheses_disappear():
    assert parse("((a)) OR ((b OR (c)))") == Or((Term("a"), Term("b"), Term("c")))


@pytest.mark.parametrize(
    "text,column,expected",
    [
        ("a OR", 5, "a word"),
        ("(a OR b", 8, '")"'),
        ('a AND "b', 7, "a word"),
        ("a OR AND b", 6, '"("'),
        ("a)", 2, "the end of the query"),
    ],
)
def test_validate_reports_position_and_expected_tokens(text, column, expected):
    with pytest.raises(QuerySyntaxError) as info:
        validate(text)
    err = info.value
    assert err.column == column and err.line == 1
    assert expected in err.expected
    assert err.caret().splitlines()[1] == " " * (column - 1) + "^"
    assert f"column {column}" in str(err)


def test_unclosed_quote_gets_a_hint():
    with pytest.raises(QuerySyntaxError, match="never closed"):
        validate('(a OR "b) AND c')


def test_errors_on_later_lines_count_lines():
    with pytest.raises(QuerySyntaxError) as info:
        validate("a\nAND (b\nOR")
    assert (info.value.line, info.value.column) == (3, 3)


def test_non_strings_are_rejected_clearly():
    with pytest.raises(TypeError, match="must be a str"):
        parse(None)  # type: ignore[arg-type]
    assert is_valid(42) is False  # type: ignore[arg-type]


def test_every_query_of_the_published_boolean_run_parses(shared_data):
    queries = run_queries(shared_data / "sim4ia" / "llm_queries_boolean_run.json")
    assert len(queries) >= 340
    bad = [q for q in queries if not is_valid(q)]
    assert bad == []


def test_every_sim4ia_session_query_with_balanced_syntax_is_classified(shared_data):
    """Real CORE session queries: balanced ones with field filters must parse."""
    import csv

    rows = list(csv.DictReader((shared_data / "sim4ia" / "evaluation_sessions_Task_A.csv").open(encoding="utf-8")))
    filtered = [r["query"] for r in rows if "yearPublished" in r["query"] or 'fieldsOfStudy:"' in r["query"]]
    assert filtered and all(is_valid(q) for q in filtered)


def test_a_phrase_needs_a_character_that_is_not_a_unicode_blank():
    # \s in the grammar is Unicode-aware for lark (Python re) and llguidance (Rust regex) alike.
    assert not is_valid('"\u00a0"') and not is_valid('"\u2003 "')
    query = parse('"a\u00a0b" OR "c\u2003 d"')
    assert [t.text for t in query.items] == ["a b", "c d"]
    assert parse(str(query)) == query


# ---------------------------------------------------------------- issue 10: any depth, every script, clean text

DEPTH = 10_000


def _deep_inputs() -> dict[str, str]:
    return {
        "parentheses": "(" * DEPTH + "a" + ")" * DEPTH,
        "not chain": "a" + " NOT b" * DEPTH,
        "and-not chain": "a" + " AND b NOT c" * DEPTH,
        "nested groups": "(" * DEPTH + "a OR b" + ") AND c" * DEPTH,
    }


@pytest.mark.parametrize("name", list(_deep_inputs()))
def test_parse_reads_any_depth(name):
    """10,000 levels of parentheses or a 10,000-long NOT/AND chain: no RecursionError, and the
    canonical text parses back to the same tree."""
    text = _deep_inputs()[name]
    assert is_valid(text)
    query = parse(text)
    assert parse(str(query)) == query


def test_a_thousand_nots_format_as_text():
    assert str(parse("a" + " NOT b" * 1000)) == "a" + " NOT b" * 1000


@pytest.mark.parametrize("text", ["Київ", "Việt Nam", "气候变化", "हिन्दी", "العربية", "ελληνικά", "Ørsted"])
def test_letters_of_every_script_are_words(text):
    assert is_valid(text)
    assert parse(f"{text} OR x") == Or((Term(text), Term("x")))


def test_parse_reads_text_in_nfc():
    """``e`` + a combining acute and ``é`` are the same word (one place normalises: blockgen.text)."""
    assert parse("cafe\u0301") == parse("caf\u00e9") == Term("caf\u00e9")


@pytest.mark.parametrize("text", ['"\ud800"', "a\udcff", "x OR \udc80y"])
def test_a_lone_surrogate_is_rejected_with_a_clear_error(text):
    """A lone surrogate cannot be encoded: never valid, and the error says why (and can be printed)."""
    assert not is_valid(text)
    with pytest.raises(QuerySyntaxError, match="lone surrogate") as info:
        parse(text)
    str(info.value).encode("utf-8")  # the message itself is encodable


def test_an_error_in_a_long_line_shows_a_short_excerpt():
    text = "a AND " * 5000 + ")"
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    assert info.value.position == len(text) - 1
    assert len(info.value.caret().split("\n")[0]) <= 80
