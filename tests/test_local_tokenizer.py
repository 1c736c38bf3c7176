"""LocalTokenizer: blockgen's engine from a tokenizer.json without transformers, read only when needed."""

from __future__ import annotations

import numpy as np
import pytest

from blockgen.constrained import GrammarEngine
from blockgen.local_tokenizer import LocalTokenizer
from tests.tiny_models import small_tokenizer


@pytest.fixture()
def saved(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKGEN_CACHE", str(tmp_path / "cache"))
    hf = small_tokenizer(vocab_size=380)
    hf.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    return hf, tmp_path


def test_the_engine_from_a_local_tokenizer_equals_the_transformers_one(saved):
    hf, folder = saved
    local = LocalTokenizer(folder, eos_token="<|eos|>")
    a, b = GrammarEngine.for_tokenizer(local), GrammarEngine.for_tokenizer(hf)
    assert a is not b
    assert a.tokens == b.tokens and a.eos_token_id == b.eos_token_id == hf.eos_token_id
    assert a.special_ids == b.special_ids
    assert a.encode(') AND "') == b.encode(') AND "')
    ma, mb = a.matcher(8), b.matcher(8)
    for text in ("(", "climate", " OR"):
        tok = b.encode(text)[0]
        assert (ma.allowed(np.zeros(a.vocab_size)) == mb.allowed(np.zeros(b.vocab_size))).all()
        ma.advance(tok)
        mb.advance(tok)
    assert (ma.grammar_mask() == mb.grammar_mask()).all()


def test_with_a_warm_cache_the_first_mask_does_not_read_the_tokenizer(saved):
    _, folder = saved
    from blockgen import tokens

    def forget(key: str) -> None:  # as in a fresh process: only the disk cache is left
        for memory in (tokens._memory, tokens._llg_memory, GrammarEngine._memory):
            memory.pop(key, None)

    first = LocalTokenizer(folder / "tokenizer.json", eos_token="<|eos|>")
    forget(first.blockgen_cache_key)
    GrammarEngine.for_tokenizer(first)  # fills the disk cache
    again = LocalTokenizer(folder / "tokenizer.json", eos_token="<|eos|>")
    forget(again.blockgen_cache_key)
    engine = GrammarEngine.for_tokenizer(again)
    assert engine.matcher(4).grammar_mask().any()
    assert again._backend is None
    assert again.encode("climate", add_special_tokens=False) and again._backend is not None


def test_local_tokenizer_errors_are_clear(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        LocalTokenizer(tmp_path / "nowhere", eos_token="x")
    _, folder = saved
    with pytest.raises(ValueError, match="eos_token"):
        LocalTokenizer(folder)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        LocalTokenizer(folder, eos_token="<|no such token|>").eos_token_id
