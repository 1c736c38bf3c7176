"""Automata over characters: first characters, what continues a token, shared tokens."""

from __future__ import annotations

from blockgen import charset
from blockgen.automaton import DFA, extensions
from blockgen.regex_tree import parse


def dfa(pattern: str) -> DFA:
    return DFA.from_tree(parse(pattern))


def test_first_characters_and_matching():
    word = dfa(r"[a-z]+(-[a-z]+)*")
    assert word.first() == charset.of_chars("abcdefghijklmnopqrstuvwxyz")
    assert word.matches("ab-cd") and not word.matches("ab-") and not word.matches("")
    assert dfa("a[b]c").empty() is False and dfa("[^\\x00-\\U0010FFFF]").empty()


def test_extensions_after_every_or_some_token():
    word, keyword = dfa(r"[a-z]+"), dfa("and")
    ext = extensions(keyword, [word, keyword], itself=1)
    assert ext.every == charset.of_chars("abcdefghijklmnopqrstuvwxyz")  # "and" + a letter is still a word
    assert ext.overlaps == frozenset({0})  # "and" is also a word
    cmp = dfa(">=|>|=")
    ext = extensions(cmp, [cmp], itself=0)
    assert ext.some == charset.of_chars("=") and ext.every == ()  # ">" goes on with "=", "=" and ">=" do not
