"""Load ``grammar/boolean_block.lark`` for every consumer.

The grammar file is the single source of truth. This module reads it once and hands it
out as text (for llguidance/Outlines), as a ready ``lark.Lark`` LALR parser (for parsing,
validation and repair) and as compiled terminal regexes (for classifying tokenizer tokens).

``lark``'s own lexers pick the first terminal whose regex matches, which is not how
llguidance lexes: llguidance is greedy and takes the longest lexeme. For the word/keyword
pair (``ANDROID`` is a word, ``AND`` is an operator, ``AN`` is a word) only the
longest-match rule gives the same language in both, so the lark parser here uses
:class:`LongestMatchLexer`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

from lark import Lark
from lark.lexer import BasicLexer, Scanner, TextSlice

GRAMMAR_NAME = "boolean_block.lark"


def grammar_path() -> Path:
    """Path of the grammar file (inside the installed package, or the source tree)."""
    packaged = resources.files("blockgen") / "grammar" / GRAMMAR_NAME
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "grammar" / GRAMMAR_NAME


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The Lark text of the Boolean block grammar, exactly as stored on disk."""
    return grammar_path().read_text(encoding="utf-8")


class _LongestMatchScanner(Scanner):
    """A lark scanner that returns the longest match over all terminals (ties: first)."""

    def __init__(self, terminals, g_regex_flags, re_, use_bytes):
        super().__init__(terminals, g_regex_flags, re_, use_bytes)
        self._each = [(t.name, re_.compile(t.pattern.to_regexp(), g_regex_flags)) for t in terminals]

    def match(self, text: TextSlice, pos: int):
        best: Optional[tuple[str, str]] = None
        for name, rx in self._each:
            m = rx.match(text.text, pos, text.end)
            if m and (best is None or len(m.group(0)) > len(best[0])):
                best = (m.group(0), name)
        return best


class LongestMatchLexer(BasicLexer):
    """lark's basic lexer with llguidance's longest-lexeme rule."""

    __future_interface__ = 2

    def _build_scanner(self) -> Scanner:
        scanner = super()._build_scanner()
        return _LongestMatchScanner(scanner.terminals, self.g_regex_flags, self.re, self.use_bytes)


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser of the grammar (built once per process)."""
    return Lark(grammar_text(), parser="lalr", lexer=LongestMatchLexer, maybe_placeholders=False)


@lru_cache(maxsize=None)
def terminal_regex(name: str) -> "re.Pattern[str]":
    """The compiled regex of one terminal of the grammar, e.g. ``terminal_regex("WORD")``."""
    for term in lark_parser().terminals:
        if term.name == name:
            return re.compile(term.pattern.to_regexp())
    raise KeyError(f"the grammar has no terminal {name!r}")


#: Operators in canonical (upper) case.
OPERATORS = ("AND", "OR", "NOT")
