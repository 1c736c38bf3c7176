"""Load ``grammar/boolean_block.lark`` for every consumer.

The grammar file is the single source of truth. This module reads it once and hands it
out as text (for llguidance/Outlines), as a ready ``lark.Lark`` LALR parser (for parsing,
validation and repair) and as compiled terminal regexes (for classifying tokenizer tokens).

``lark``'s own lexers pick the first terminal whose regex matches, which is not how
llguidance lexes: llguidance is greedy and takes the longest lexeme. For the word/keyword
pair (``ANDROID`` is a word, ``AND`` is an operator, ``AN`` is a word) only the
longest-match rule gives the same language in both. llguidance also lexes *contextually*:
it only considers the terminals that can come next. So the lark parser here uses
:class:`LongestMatchContextualLexer`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional

import regex

from lark import Lark
from lark.lexer import BasicLexer, ContextualLexer, Scanner, TextSlice

GRAMMAR_NAME = "boolean_block.lark"


def grammar_path(name: str = GRAMMAR_NAME) -> Path:
    """Path of a grammar file (inside the installed package, or the source tree)."""
    packaged = resources.files("blockgen") / "grammar" / name
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "grammar" / name


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The Lark text of the Boolean block grammar, exactly as stored on disk."""
    return grammar_path().read_text(encoding="utf-8")


class _LongestMatchScanner(Scanner):
    """A lark scanner that returns the longest match over all terminals (ties: first)."""

    def __init__(self, terminals, g_regex_flags, re_, use_bytes):
        super().__init__(terminals, g_regex_flags, re_, use_bytes)
        self._each = [(t.name, re_.compile(t.pattern.to_regexp(), g_regex_flags)) for t in terminals]
        self._word = dict(self._each).get("WORD")

    def match(self, text: TextSlice, pos: int):
        best: Optional[tuple[str, str]] = None
        for name, rx in self._each:
            m = rx.match(text.text, pos, text.end)
            if m and (best is None or len(m.group(0)) > len(best[0])):
                best = (m.group(0), name)
        if best is not None and best[1] == "WORD":
            # llguidance never ends a word before a letter that could extend it: the word
            # regex only stops there because of the AND/OR/NOT exclusion ("AN" + "D").
            end = pos + len(best[0])
            if end < text.end and self._word_letter(text.text[end]):
                return None
        return best

    def _word_letter(self, ch: str) -> bool:
        word = self._word
        return word is not None and word.fullmatch(ch) is not None


class LongestMatchLexer(BasicLexer):
    """lark's basic lexer with llguidance's longest-lexeme rule."""

    __future_interface__ = 2

    def _build_scanner(self) -> Scanner:
        scanner = super()._build_scanner()
        return _LongestMatchScanner(scanner.terminals, self.g_regex_flags, self.re, self.use_bytes)


class LongestMatchContextualLexer(ContextualLexer):
    """lark's contextual lexer (only the terminals the parser accepts here) with the longest-lexeme rule.

    This is how llguidance lexes: after ``(a)`` only operators and ``)`` can follow, so
    ``(a)ANDb`` is ``(a) AND b``; after a word another word can follow, so ``x ANDb`` is the
    two words ``x ANDb``.
    """

    BasicLexer = LongestMatchLexer


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser of the grammar (built once per process)."""
    return Lark(grammar_text(), **_LARK_OPTIONS)


_LARK_OPTIONS = dict(
    parser="lalr",
    lexer="contextual",
    maybe_placeholders=False,
    regex=True,  # the `regex` module: WORD is defined by Unicode categories (\p{L} ...)
    _plugins={"ContextualLexer": LongestMatchContextualLexer},
)


@lru_cache(maxsize=1)
def analysed_parser() -> Lark:
    """The same parser, loaded from lark's on-disk cache of its analysis when it can be (next to
    blockgen's other caches; a fresh process gets it about 40x faster than it builds). For the
    parts of blockgen that need only its tables and terminals (the incremental need, the
    terminals' regexes): a parser loaded from the cache lacks attributes (``grammar``,
    ``ignore_tokens``) that hypothesis' ``from_lark`` and the exports use, so
    :func:`lark_parser` stays a fully built one."""
    return Lark(grammar_text(), cache=_lark_cache_file() or False, **_LARK_OPTIONS)


def _lark_cache_file() -> Optional[str]:
    """Where lark keeps the parser's analysis: keyed by the grammar, this module (the lexer
    plugin) and lark's version (lark itself also checks the grammar and options); ``None``
    (no cache) where the cache directory cannot be written."""
    import hashlib
    import os

    import lark

    from blockgen.tokens import cache_dir

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    key = hashlib.sha256(grammar_text().encode() + Path(__file__).read_bytes() + lark.__version__.encode()).hexdigest()[:24]
    return str(folder / f"lark-{key}.pickle")


@lru_cache(maxsize=None)
def terminal_regex(name: str) -> "regex.Pattern[str]":
    """The compiled regex of one terminal of the grammar, e.g. ``terminal_regex("WORD")``.

    Compiled with the third-party ``regex`` module, as the parser's lexer does (the grammar
    uses ``\\p{..}`` Unicode categories, which ``re`` does not know)."""
    for term in analysed_parser().terminals:
        if term.name == name:
            return regex.compile(term.pattern.to_regexp())
    raise KeyError(f"the grammar has no terminal {name!r}")


@lru_cache(maxsize=1)
def letter_class() -> str:
    """The grammar's ``_LETTER`` class (``[\\p{L}\\p{M}\\p{N}]``): what a word is made of,
    for readers that must agree with WORD (``regex`` module syntax)."""
    found = regex.search(r"(?m)^_LETTER:\s*/(\[[^/]*\])/\s*$", grammar_text())
    if found is None:  # pragma: no cover - the grammar file defines it
        raise KeyError("the grammar defines no _LETTER class")
    return found.group(1)


#: Operators in canonical (upper) case.
OPERATORS = ("AND", "OR", "NOT")
