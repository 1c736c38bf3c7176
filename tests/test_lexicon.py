"""lexicon: every word a model writes is a known word (tiny WordPiece and BPE models here)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockgen import is_valid
from blockgen.lexicon import Lexicon, TokenLexicon, english_lexicon, fold, words
from tests.tiny_models import WORDPIECE_WORDS, save_tiny_bert, small_tokenizer, tiny_llama

#: Known words of the tests: every tiny-WordPiece whole word but ``misinformation``, plus one that
#: the vocabulary can only spell from pieces.
KNOWN = [w for w in WORDPIECE_WORDS if w != "misinformation"] + ["cat", "sun"]


@lru_cache(maxsize=1)
def tiny_bert_dir() -> Path:
    return save_tiny_bert(Path(tempfile.mkdtemp(prefix="tinybert-lex-")), seed=5)


@lru_cache(maxsize=1)
def tiny_generator():
    from blockgen import QueryGenerator
    from blockgen.minilm import load_decoder

    tok, model = load_decoder(tiny_bert_dir(), seed=2)
    return QueryGenerator(model, tok)


def written_words(text: str) -> list[str]:
    """The words of a query, wildcard stems marked with a trailing ``*``."""
    import re

    text = fold(text)
    return [m.group(1) + ("*" if m.group(2) else "") for m in re.finditer(r"([^\W\d_]+)([*?]?)", text)]


def all_known(text: str, lexicon: Lexicon) -> bool:
    for w in written_words(text):
        if w.endswith("*"):
            if not lexicon.is_prefix(w[:-1]):
                return False
        elif not lexicon.is_word(w):
            return False
    return True


def test_words_are_folded_letter_runs():
    assert words("COVID-19 in Zürich, Alzheimer's") == ["covid", "in", "zurich", "alzheimer", "s"]


def test_lexicon_words_and_prefixes():
    lex = Lexicon(["Climate", "change", "rock'n'roll"])
    assert lex.is_word("climate") and lex.is_word("CLIMATE") and "roll" in lex and "n" in lex
    assert lex.is_prefix("cli") and lex.is_prefix("") and not lex.is_prefix("clx")
    assert not lex.is_word("clim")
    more = lex.with_words(["misinformation change"])
    assert more.is_word("misinformation") and not lex.is_word("misinformation")
    assert lex.with_words(["climate"]) is lex  # nothing new: the same lexicon
    assert len(more) == len(lex) + 1


def test_a_missing_word_list_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="apt-get install wamerican-large"):
        english_lexicon(path=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="cannot read the word list"):
        Lexicon.from_file(tmp_path / "nowhere")


def test_the_english_word_list_knows_english():
    lex = english_lexicon()
    assert lex.is_word("misinformation") and lex.is_word("climate") and not lex.is_word("misinpost")


def _vocab(tokens: list[bytes]) -> TokenLexicon:
    return TokenLexicon(tokens, special=[0])


def test_a_row_refuses_pieces_that_spell_a_non_word():
    tokens = [b"", b" climate", b" mis", b"in", b"formation", b"post", b'"', b" AND", b"*"]
    lex = Lexicon(["climate", "misinformation", "and", "mist"])
    row = _vocab(tokens).row(lex)
    row.advance(2)  # " mis"
    row.advance(3)  # "in"
    assert row.allows(4) and not row.allows(5)  # misinformation yes, misinpost no
    assert not row.allows(1)  # a new word would end "misin", no word
    assert not row.allows(6) and not row.allows(0, eos=True)
    assert row.allows(8)  # a truncation may end a stem: misin*
    mask = row.mask()
    assert mask is not None and mask[4] and not mask[5] and not mask[1] and mask[8]
    row.advance(4)
    assert row.allows(1) and row.allows(6) and row.allows(7) and row.allows(0, eos=True)


def test_a_forced_token_makes_its_word_unchecked_until_it_ends():
    tokens = [b"", b" zz", b"q", b" climate"]
    row = _vocab(tokens).row(Lexicon(["climate"]))
    assert not row.allows(1)
    row.advance(1)  # forced (budget-aware closing): written anyway
    assert row.mask() is None and row.allows(2)
    row.advance(3)
    assert not row.state.free and row.allows(0, eos=True)


def test_words_inside_tags_are_checked_too():
    tokens = [b"", b" acne", b"[", b"tiab", b"]", b"mesh"]
    row = _vocab(tokens).row(Lexicon(["acne", "mesh"]))
    for t in (1, 2):
        assert row.allows(t)
        row.advance(t)
    assert not row.allows(3) and row.allows(5)


def test_the_mask_agrees_with_allows_on_every_token():
    tok = small_tokenizer()
    from blockgen.tokens import token_table

    table = token_table(tok)
    vocab = TokenLexicon(table.tokens, table.special_token_ids)
    lex = Lexicon(["climate", "change", "global", "warming", "steel", "corrosion", "child", "acne", "social", "media"])
    row = vocab.row(lex)
    for text in (b"", b' ("cli', b" stee", b' acne'):
        r = row.sibling()
        for i in tok(text.decode()).input_ids if text else []:
            r.advance(i)
        mask = r.mask()
        if mask is None:
            continue
        for t in range(vocab.size):
            assert bool(mask[t]) == r.allows(t), (text, t, table.tokens[t])


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.sampled_from([8, 24, 64]), temperature=st.sampled_from([0.7, 1.0, 1.5]))
def test_constrained_output_with_a_lexicon_always_parses_and_writes_known_words(seed, budget, temperature):
    gen = tiny_generator()
    lex = Lexicon(KNOWN)
    out = gen.generate(["sea level"], n=3, max_new_tokens=budget, seed=seed, temperature=temperature, lexicon=lex)[0]
    for cand in out:
        assert is_valid(cand.text)
        if not cand.cut_off and not cand.steered:  # budget-aware closing may force a word
            assert all_known(cand.text, lex.with_words(["sea level"])), cand.text


def test_free_output_with_a_lexicon_writes_known_words():
    gen = tiny_generator()
    lex = Lexicon(KNOWN)
    for cand in gen.generate(["sea level"], n=6, constrained=False, max_new_tokens=40, seed=1, lexicon=lex)[0]:
        if not cand.cut_off:
            assert all_known(cand.raw_text, lex.with_words(["sea level"])), cand.raw_text


def test_without_a_lexicon_the_tiny_model_writes_non_words():
    """The test above can fail: the same model spells non-words when nothing stops it."""
    gen = tiny_generator()
    lex = Lexicon(KNOWN).with_words(["sea level"])
    texts = [c.raw_text for c in gen.generate(["sea level"], n=6, constrained=False, max_new_tokens=40, seed=1,
                                              lexicon=False)[0]]
    assert not all(all_known(t, lex) for t in texts)


def test_a_bpe_model_with_a_lexicon_writes_known_words():
    from blockgen import QueryGenerator

    tok = small_tokenizer()
    gen = QueryGenerator(tiny_llama(tok, seed=4), tok)
    lex = Lexicon(["climate", "change", "global", "warming", "steel", "corrosion", "child", "acne", "social", "media",
                   "and", "or", "not"])
    for cand in gen.generate(["climate"], n=4, max_new_tokens=32, seed=3, lexicon=lex)[0]:
        assert is_valid(cand.text)
        if not cand.cut_off and not cand.steered:
            assert all_known(cand.text, lex), cand.text


def test_a_bad_lexicon_is_a_generation_error():
    from blockgen import GenerationError

    gen = tiny_generator()
    with pytest.raises(GenerationError, match="lexicon must be"):
        gen.generate(["sea"], n=1, lexicon=["climate"])
