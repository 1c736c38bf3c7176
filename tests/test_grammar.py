"""The one grammar file is read by lark, llguidance (Outlines' CFG) and hypothesis alike."""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from blockgen import charset
from blockgen.grammar import grammar_path, grammar_text, lark_parser, terminal_regex
from blockgen.parser import is_valid

EXAMPLES = {
    # valid
    "a": True,
    "a AND b": True,
    " A": True,  # a model's first token often starts with a blank (llguidance#123)
    ' ("x" OR y)': True,
    "\n a ": True,
    '"a\u00a0b"': True,
    '"\u200b"': True,  # a zero-width space is no blank for either engine
    '"\u00a0"': False,  # a phrase of blanks (Unicode ones too) is empty
    '"\u2003 "': False,
    "ANDROID": True,
    "NOTE OR ORCHID": True,
    "AN": True,
    "x AND b": True,
    "Metal injection molding OR MIM AND aerospace": True,
    '("climate change" OR "global warming") AND ("social media" OR Twitter) NOT ("renewable energy")': True,
    'multitasking stress AND fieldsOfStudy:"biology"': True,
    "x AND (yearPublished>=2018 AND yearPublished<=2024)": True,
    '"Acne Vulgaris"[Mesh] OR acne[tiab]': True,
    "child* OR behavio?r": True,
    "Alzheimer's OR COVID-19 OR HIV/AIDS OR 3.5 OR é": True,
    # letters of every script are letters (Unicode categories L, M, N)
    "Київ OR Kyiv": True,
    "Việt Nam OR Vietnam": True,
    "气候变化 AND 社交媒体": True,
    "हिन्दी OR ελληνικά OR العربية": True,
    "cafe\u0301": True,  # a combining accent continues a word
    "\u0301a": False,  # but starts none
    "ANDї OR NOTї OR ORї": True,
    "x_y": False,  # the underscore is no letter
    "a and b": True,  # lower-case "and" is a word, as in PubMed
    "xAND": True,
    # llguidance lexes contextually: after ")" or a phrase only an operator can follow
    "(a)ANDb": True,
    '"b"ANDb': True,
    'a OR "b"ORc': True,
    "(a)ORANGE": True,  # (a) OR ANGE: after ")" no word can follow
    # invalid
    "AND": False,
    "x AND": False,
    "a OR": False,
    "(a": False,
    "a)": False,
    '"a': False,
    '""': False,
    '" "': False,
    "a-": False,
    "OR": False,
    "NOT a": False,
    "()": False,
    "": False,
}


def test_grammar_file_is_the_packaged_one():
    assert grammar_path().name == "boolean_block.lark"
    assert grammar_text().lstrip().startswith("//")
    assert "start:" in grammar_text()


@pytest.mark.parametrize("text,valid", list(EXAMPLES.items()))
def test_lark_accepts_exactly_the_documented_examples(text, valid):
    assert is_valid(text) is valid


@pytest.fixture(scope="module")
def llg_accepts():
    """A function telling whether llguidance (the engine behind Outlines' CFG) accepts a string."""
    llguidance = pytest.importorskip("llguidance")
    from blockgen.tokens import load_llguidance_tokenizer
    from tests.tiny_models import llama3_tokenizer

    tok = llama3_tokenizer()
    lltok = load_llguidance_tokenizer(tok)
    grammar = llguidance.grammar_from("lark", grammar_text())
    is_error, warnings = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, lltok)
    assert not is_error, warnings

    def accepts(text: str) -> bool:
        matcher = llguidance.LLMatcher(lltok, grammar)
        ids = tok.encode(text, add_special_tokens=False)
        if matcher.validate_tokens(ids) < len(ids):
            return False
        matcher.consume_tokens(ids)
        return matcher.is_accepting()

    return accepts


def test_outlines_cfg_takes_the_grammar_file():
    from outlines.types import CFG

    cfg = CFG(grammar_text())
    assert cfg.definition == grammar_text()


@pytest.mark.parametrize("text,valid", list(EXAMPLES.items()))
def test_llguidance_accepts_exactly_the_documented_examples(llg_accepts, text, valid):
    assert llg_accepts(text) is valid


# Characters that make up queries, weighted towards the tricky ones.
_QUERY_ALPHABET = st.sampled_from(
    list('ANDORTandort xy()"[]:>=<*?-\'./é\u00a0ї气\u0301') + ["AND", "OR", "NOT", " AND ", " OR ", ")AND", '"OR', "(x)", '"y"']
)


@given(st.lists(_QUERY_ALPHABET, max_size=14).map("".join))
def test_lark_and_llguidance_accept_the_same_strings(llg_accepts, text):
    assert is_valid(text) == llg_accepts(text)


_LETTERS = st.sampled_from(list("abcxyzABNORTDé09Ωжї气ह\U0001d7cf"))
_MARKS = st.sampled_from(["\u0301", "\u093f", "\u094d"])  # combining acute, Devanagari vowel sign i, virama
_CHUNK = st.one_of(_LETTERS, _LETTERS, _MARKS, st.sampled_from(["*", "?"]), st.tuples(st.sampled_from(list("-'./&")), _LETTERS).map("".join))


def word_strategy():
    """Words of the grammar: built from letters, wildcards and inner punctuation, checked by WORD's regex."""
    word_rx = terminal_regex("WORD")
    return st.tuples(_LETTERS, st.lists(_CHUNK, max_size=6).map("".join)).map("".join).filter(word_rx.fullmatch)


# a character class holding \p{..} or \S (hypothesis draws [^\S...] by filtering: too slow), or a bare \p{..}
_UNICODE_CLASS = re.compile(r"\[\^?(?:[^\]\\]|\\.)*?\\(?:[pP]\{\w+\}|S)(?:[^\]\\]|\\.)*\]|\\[pP]\{\w+\}")


def _escaped(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


#: The characters the hypothesis view of the grammar draws from: ASCII, Latin-1 and Latin
#: Extended-A, combining accents, Greek, Cyrillic, Devanagari, some CJK ideographs, and a few
#: letters and digits beyond the BMP.
HYPOTHESIS_ALPHABET = charset.normalize(
    [(0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x45F), (0x900, 0x97F), (0x4E00, 0x4E3F), (0x1D7CE, 0x1D7D7), (0x20000, 0x2000F)]
)


def _as_ranges(match: "re.Match[str]") -> str:
    ranges = charset.intersect(charset.atom_set(match.group(), "regex"), HYPOTHESIS_ALPHABET)
    return "[" + "".join(_escaped(lo) if lo == hi else f"{_escaped(lo)}-{_escaped(hi)}" for lo, hi in ranges) + "]"


@lru_cache(maxsize=1)
def hypothesis_parser() -> Lark:
    """The grammar file for hypothesis: each Unicode category class (``\\p{L}``) written out as
    the code-point ranges the ``regex`` module gives it, within :data:`HYPOTHESIS_ALPHABET`.

    hypothesis' ``from_regex`` reads regexes with Python's ``re``, which knows no ``\\p{..}``
    (and is slow on classes of hundreds of ranges). The language is the grammar's, restricted
    to words over that alphabet (the ranges are asked of the engine the parser uses).
    """
    return Lark(_UNICODE_CLASS.sub(_as_ranges, grammar_text()), parser="lalr", lexer="basic", maybe_placeholders=False)


def query_strategy():
    """Strings drawn from the grammar by hypothesis' ``from_lark``.

    The grammar leaves the whitespace between two words, or a word and an operator, to
    ``%ignore``; ``from_lark`` does not insert it, so the operator and word terminals are
    drawn with the blank that separates them in any real query.
    """
    word = word_strategy()
    return from_lark(
        hypothesis_parser(),
        explicit={
            "AND": st.just(" AND "),
            "OR": st.just(" OR "),
            "NOT": st.just(" NOT "),
            "WORD": word.map(lambda w: w + " "),
        },
    )


@given(query_strategy())
def test_every_string_drawn_from_the_grammar_is_accepted_by_llguidance(llg_accepts, text):
    assert llg_accepts(text)


def test_the_parser_loaded_from_the_lark_cache_parses_like_a_fresh_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKGEN_CACHE", str(tmp_path))
    from blockgen.grammar import analysed_parser

    fresh = lark_parser()
    analysed_parser.__wrapped__()  # builds, and writes the cache
    assert list(tmp_path.glob("lark-*.pickle"))
    cached = analysed_parser.__wrapped__()  # loads it
    assert [(t.name, t.pattern.to_regexp()) for t in cached.terminals] == [(t.name, t.pattern.to_regexp()) for t in fresh.terminals]
    for text in ['("a b" OR c*) AND d[tiab] NOT e', "x:y AND year>=2019", "a AND"]:
        try:
            expected = fresh.parse(text)
        except Exception as err:  # noqa: BLE001 - the same error either way
            expected = type(err)
            with pytest.raises(expected):
                cached.parse(text)
        else:
            assert cached.parse(text) == expected


@pytest.mark.parametrize(
    "text, valid",
    [
        ('"a"[MeSH Terms]', True),
        ("a[Conflict of Interest Statement]", True),
        ("a[Title/Abstract:~3]", True),
        ('"climate change"[s people OR changing matter OR changing process]', False),  # words hidden in a tag
        ("a[tiab ]", True),
        ("a[ab  c]", False),
        ("a[x-" + "spleen/" * 4 + "]", False),  # a part longer than 24 characters
    ],
)
def test_a_tag_is_at_most_four_parts_for_the_parser_and_llguidance(llg_accepts, text, valid):
    assert is_valid(text) is valid
    assert llg_accepts(text) is valid
