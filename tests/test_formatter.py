"""format / str: three styles, all of which parse back to the same tree."""

from __future__ import annotations

from functools import lru_cache

import pytest
from hypothesis import given

from blockgen import STYLES, format, parse
from tests.test_grammar import query_strategy

EXAMPLE = '("climate change" OR "global warming") AND ("social media" OR Twitter) NOT ("renewable energy")'


def test_canonical_parenthesises_or_groups_inside_and():
    assert format(parse(EXAMPLE)) == '("climate change" OR "global warming") AND ("social media" OR Twitter) NOT "renewable energy"'
    assert str(parse("a OR b AND c")) == "(a OR b) AND c"


def test_compact_uses_the_fewest_parentheses():
    assert format(parse("(a OR b) AND (c OR d)"), style="compact") == "a OR b AND c OR d"
    assert format(parse("a AND (b NOT c)"), style="compact") == "a AND (b NOT c)"


def test_pretty_puts_one_block_per_line():
    text = format(parse(EXAMPLE), style="pretty")
    lines = text.splitlines()
    assert lines[0] == "(" and lines[1] == '  "climate change"' and "AND (" in lines
    assert lines[-1] == 'NOT "renewable energy"'


def test_unknown_style_and_unparsed_input_are_clear_errors():
    with pytest.raises(ValueError, match="unknown style"):
        format(parse("a"), style="fancy")
    with pytest.raises(TypeError, match="parse"):
        format("a OR b")  # type: ignore[arg-type]


@given(text=query_strategy())
def test_format_round_trips_every_drawn_query_in_every_style(text):
    query = parse(text)
    for style in STYLES:
        assert parse(format(query, style=style)) == query, style


@pytest.mark.parametrize("style", STYLES)
def test_format_round_trips_trees_of_any_depth(style):
    """10,000 nested AND/OR/NOT groups format without recursion (and in linear time)."""
    query = _deep_tree()
    assert parse(format(query, style)) == query


@lru_cache(maxsize=1)
def _deep_tree():
    return parse("(" * 10_000 + "a OR b" + ") NOT c AND d" * 10_000)
