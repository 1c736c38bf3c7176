"""The grammar exports: each compiles in its engine's library and accepts exactly what lark accepts.

The GBNF is read by xgrammar (a scannerless engine, like llama.cpp's grammar sampler); the
Lark exports by llguidance (vLLM's guidance backend, SGLang, llama.cpp with llguidance).
Besides today's grammar, two fixture copies whose WORD terminal is defined by Unicode
categories (``\\p{..}`` with lark's ``regex=True``, and ``[^\\W_]`` with ``re``) check that
the export follows a change of the grammar file.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings

from blockgen import export, is_valid
from blockgen.export import ExportError
from tests.test_grammar import EXAMPLES, query_strategy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grammars"

TRICKY = [
    "a  OR\tb", " a ", "aAND(b)", "a AND(b)", '"x"[tiab] NOT y:z', 'x>=2019 OR "p"[Mesh]',
    "a:b ORc", "a:bANDc", "(a)ORANGE", "a ANDb", "(a)ANDb", "a OR (b)NOTc", '"a"[tiab]ANDb',
    "x AND (yearPublished>=2018 AND yearPublished<=2024)", "a OR b AND c OR d NOT e", "((a))",
    "a b c", "a\nAND\nb", "a AND", "AND a", "a (b)", "(a) b", "a:(b)", "a>=", ">=a", "[tiab]",
]
NON_LATIN = [
    "Київ OR Kyiv", "Việt Nam OR Vietnam", "東京 AND 大阪", "cafe\u0301", "नमस्ते", "القاهرة OR cairo",
    "😀", "a_b", "١٢٣", "\u0301a", "ÅNDROID", "ANDé", "a ANDж", '"東京"', "Ωmega NOT ω",
]
ALPHABET = list("ANDORTandort xy()\"[]:>=<*?-'./é") + ["AND", "OR", "NOT", " AND ", " OR "]
UNICODE_ALPHABET = ALPHABET + list("КиївΩж東京ệ\u0301\u0915\u094d١_😀\u00a0")


def corpus(alphabet: list[str], n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(n)]


def fixture_parser(name: str, regex: bool):
    """A lark parser for a fixture grammar, built like blockgen.grammar.lark_parser()."""
    from lark import Lark

    from blockgen.grammar import LongestMatchContextualLexer

    if regex:
        pytest.importorskip("regex")
    return Lark(
        (FIXTURES / name).read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=False,
        regex=regex,
        _plugins={"ContextualLexer": LongestMatchContextualLexer},
    )


def accepted_by(parser):
    def accepts(text: str) -> bool:
        try:
            parser.parse(text)
        except Exception:  # lark's UnexpectedInput family
            return False
        return True

    return accepts


# --------------------------------------------------------------------------- engines
@pytest.fixture(scope="module")
def tokenizer():
    from tests.tiny_models import small_tokenizer

    return small_tokenizer()


@pytest.fixture(scope="module")
def xgrammar_compile(tokenizer):
    """GBNF text -> a function telling whether xgrammar accepts a whole string."""
    xgr = pytest.importorskip("xgrammar")
    from benchmarks.xgrammar_ebnf import xgrammar_accepts

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[tokenizer.eos_token_id])

    def compile_(text: str):
        compiled = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False).compile_grammar(xgr.Grammar.from_ebnf(text))
        return xgrammar_accepts(compiled)

    return compile_


@pytest.fixture(scope="module")
def llguidance_compile(tokenizer):
    """Lark text -> a function telling whether llguidance accepts a whole string."""
    llguidance = pytest.importorskip("llguidance")
    from blockgen.tokens import load_llguidance_tokenizer

    lltok = load_llguidance_tokenizer(tokenizer, use_disk=False)

    def compile_(text: str):
        spec = llguidance.grammar_from("lark", text)
        error = llguidance.LLMatcher.validate_grammar(spec, lltok)
        assert not error, error

        def accepts(s: str) -> bool:
            matcher = llguidance.LLMatcher(lltok, spec)
            ids = tokenizer.encode(s, add_special_tokens=False)
            if matcher.validate_tokens(ids) < len(ids):
                return False
            matcher.consume_tokens(ids)
            return matcher.is_accepting()

        return accepts

    return compile_


def disagreements(texts, accepts, reference) -> list[str]:
    return [t for t in texts if accepts(t) != reference(t)]


# --------------------------------------------------------------------------- today's grammar
@pytest.fixture(scope="module")
def gbnf_accepts(xgrammar_compile):
    return xgrammar_compile(export.grammar("gbnf"))


def test_gbnf_export_accepts_exactly_what_is_valid_accepts(gbnf_accepts):
    texts = list(EXAMPLES) + TRICKY + NON_LATIN + corpus(ALPHABET, 1500)
    assert sum(map(is_valid, texts)) > 150  # the corpus holds valid queries, not only junk
    assert disagreements(texts, gbnf_accepts, is_valid) == []


@settings(max_examples=20)
@given(query_strategy())
def test_every_string_drawn_from_the_grammar_is_accepted_by_the_gbnf(gbnf_accepts, text):
    assert gbnf_accepts(text)


@pytest.mark.parametrize("target", ["vllm", "llama.cpp"])
def test_lark_exports_accept_exactly_what_is_valid_accepts(llguidance_compile, target):
    accepts = llguidance_compile(export.grammar(target))
    texts = list(EXAMPLES) + TRICKY + NON_LATIN + corpus(ALPHABET, 600, seed=1)
    assert disagreements(texts, accepts, is_valid) == []


def test_lark_exports_carry_the_llguidance_header_first():
    for target in ("vllm", "sglang", "llama.cpp"):
        text = export.grammar(target)
        assert text.startswith("%llguidance {}\n")  # llama.cpp checks the first 11 bytes
        assert "//" not in text.split("\n")[1]  # comment lines dropped
        assert re.search(r"(?m)^start\s*:", text)  # vLLM / llguidance read it as Lark


def test_xgrammar_refuses_the_vllm_export_so_vllms_auto_backend_picks_guidance():
    """vLLM's ``auto`` backend tries xgrammar's ``from_lark`` first and falls back to guidance when it fails."""
    xgr = pytest.importorskip("xgrammar")
    # (xgrammar 0.2.9 also refuses the bare grammar file, for its \p{L} classes; the header
    # keeps the export refused should a later xgrammar read them)
    with pytest.raises(Exception):
        xgr.Grammar.from_lark(export.grammar("vllm"))


def test_gbnf_rule_names_and_references_suit_llama_cpp():
    """llama.cpp names rules with letters, digits and dashes, needs a root and every referenced rule defined."""
    text = export.grammar("gbnf")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    defined = re.findall(r"(?m)^([^\s:]+) ::=", body)
    assert "root" in defined and len(defined) == len(set(defined))
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", name) for name in defined)
    code = re.sub(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]', " ", body)  # drop strings and classes
    referenced = set(re.findall(r"[A-Za-z][A-Za-z0-9-]*", code.replace("::=", " "))) - set(defined)
    assert referenced == set()


def test_unknown_target_is_a_clear_error():
    with pytest.raises(ExportError, match="unknown target 'ollama'"):
        export.grammar("ollama")


def test_grammar_without_lalr_or_with_lookaround_cannot_be_exported():
    from lark import Lark

    with pytest.raises(ExportError, match="LALR"):
        export.grammar("gbnf", Lark('start: "a"', parser="earley"))
    with pytest.raises(ExportError, match="lookaround"):
        export.grammar("gbnf", Lark("start: X\nX: /a(?=b)b/", parser="lalr"))


def test_terminals_sharing_a_token_where_both_are_expected_cannot_be_exported():
    from lark import Lark

    with pytest.raises(ExportError, match="shares tokens"):
        export.grammar("gbnf", Lark('start: A | B\nA: /x+/\nB: "x"', parser="lalr"))


# --------------------------------------------------------------------------- a grammar whose WORD uses Unicode categories
UNICODE_FIXTURES = [("unicode_word_regex.lark", True), ("unicode_word_re.lark", False)]


@pytest.mark.parametrize("name,regex", UNICODE_FIXTURES)
def test_gbnf_export_follows_a_unicode_word_terminal(xgrammar_compile, name, regex):
    parser = fixture_parser(name, regex)
    reference = accepted_by(parser)
    assert reference("Київ OR Kyiv") and reference("Việt Nam") and not reference("a_b")
    accepts = xgrammar_compile(export.grammar("gbnf", parser))
    texts = NON_LATIN + TRICKY + corpus(UNICODE_ALPHABET, 500, seed=2)
    assert disagreements(texts, accepts, reference) == []


def test_lark_export_follows_a_unicode_word_terminal(llguidance_compile):
    """The ``\\p{..}`` fixture: lark (``regex`` module) and llguidance (Rust regex) read its classes alike."""
    parser = fixture_parser("unicode_word_regex.lark", True)
    accepts = llguidance_compile(export.grammar("vllm", parser))
    texts = NON_LATIN + TRICKY + corpus(UNICODE_ALPHABET, 400, seed=3)
    assert disagreements(texts, accepts, accepted_by(parser)) == []
