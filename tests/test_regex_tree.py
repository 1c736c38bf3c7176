"""Terminal regexes as trees of character sets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from blockgen.automaton import DFA
from blockgen.regex_tree import Alt, Chars, Repeat, RegexNotSupported, Seq, literal, parse

PATTERNS = [r"(?:ab|c)+d?", r"[^\W_]{2,3}x", r"a{2}|b{1,}|c{,2}", r"(?i:and)", r"[\]\-^]+", r"\x41\u00e9.", r"(?P<n>a)(?#note)b"]


def test_parse_builds_the_tree():
    assert parse("ab") == Seq((Chars(((97, 97),)), Chars(((98, 98),))))
    assert isinstance(parse("a|b"), Alt)
    assert parse("a*") == Repeat(Chars(((97, 97),)), 0, None)
    assert parse("a{2,5}").min == 2 and parse("a{2,5}").max == 5
    assert parse("abc") == literal("abc")


@pytest.mark.parametrize("pattern", PATTERNS)
@given(text=st.text(alphabet="abcdxAND]-^_é\u00e9A.\n", max_size=6))
def test_the_tree_matches_what_python_re_matches(pattern, text):
    assert DFA.from_tree(parse(pattern)).matches(text) == bool(re.fullmatch(pattern, text))


@pytest.mark.parametrize("pattern", [r"a(?=b)", r"(?<!a)b", r"^a", r"a$", r"(a)\1", r"\bword", r"a*+", r"(?>ab)"])
def test_constructs_without_a_grammar_equivalent_are_refused(pattern):
    with pytest.raises(RegexNotSupported):
        parse(pattern)
