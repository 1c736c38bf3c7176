"""blockgen.hf.constrain: valid queries from a user's own model.generate, for every budget and strategy."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from hypothesis import given, settings, strategies as st
from transformers import LogitsProcessor, LogitsProcessorList

from blockgen import is_valid, parse
from blockgen.hf import constrain, decode
from blockgen.repeats import repeated_terms
from tests.tiny_models import llama3_tokenizer, small_tokenizer, tiny_llama


@lru_cache(maxsize=None)
def setup(kind: str):
    tok = llama3_tokenizer() if kind == "llama3" else small_tokenizer()
    tok.padding_side = "left"
    return tok, tiny_llama(tok, seed=3)


class OpenerBias(LogitsProcessor):
    """A user's own processor: favours tokens that open groups, phrases and tags (hard to close in time)."""

    def __init__(self, tok, boost: float = 8.0):
        self.bias = torch.zeros(len(tok))
        for piece, idx in tok.get_vocab().items():
            if any(c in tok.convert_tokens_to_string([piece]) for c in '(["'):
                self.bias[idx] = boost

    def __call__(self, input_ids, scores):
        return scores + self.bias[: scores.shape[-1]]


STRATEGIES = {
    "sample": dict(do_sample=True, temperature=1.0, top_p=1.0),
    "sample-top-p": dict(do_sample=True, temperature=0.7, top_p=0.9),
    "greedy": dict(do_sample=False),
    "beam": dict(do_sample=False, num_beams=3),
    "beam-sample": dict(do_sample=True, num_beams=2),
}
PROMPTS = ["climate change. Output:", "stainless steel passivation. Output:", "a"]


def generate(kind: str, strategy: str, budget: int, batch: int, seed: int, biased: bool, **options):
    tok, model = setup(kind)
    torch.manual_seed(seed)
    inputs = tok(PROMPTS[:batch], return_tensors="pt", padding=True)  # left-padded
    kwargs = constrain(tok, max_new_tokens=budget, **options)
    if biased:
        kwargs["logits_processor"] = LogitsProcessorList([OpenerBias(tok), *kwargs["logits_processor"]])
    out = model.generate(**inputs, **kwargs, max_new_tokens=budget, pad_token_id=tok.pad_token_id, **STRATEGIES[strategy])
    width = inputs["input_ids"].shape[1]
    return [decode(tok, row[width:]) for row in out], out[:, width:]


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["llama3", "small"]),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    budget=st.integers(1, 14),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**31),
    biased=st.booleans(),
)
def test_constrained_generate_output_is_a_valid_query_for_every_budget(kind, strategy, budget, batch, seed, biased):
    texts, ids = generate(kind, strategy, budget, batch, seed, biased)
    assert len(texts) == batch
    assert ids.shape[1] <= budget
    for text in texts:
        assert is_valid(text), (strategy, budget, text)


def test_no_repeats_in_model_generate():
    texts, _ = generate("small", "sample", 24, 3, 0, False, no_repeats=True)
    for text in texts:
        assert is_valid(text) and repeated_terms(parse(text)) == [], text


def test_decode_reads_the_token_bytes_and_stops_at_eos():
    tok, _ = setup("llama3")
    ids = tok.encode('("a b" OR c)', add_special_tokens=False) + [tok.eos_token_id] + tok.encode(" junk", add_special_tokens=False)
    assert decode(tok, ids) == '("a b" OR c)'


def test_generating_beyond_the_budget_given_to_constrain_is_a_clear_error():
    tok, model = setup("small")
    inputs = tok(["a"], return_tensors="pt")
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(**inputs, **constrain(tok, max_new_tokens=2), max_new_tokens=5, min_new_tokens=5, pad_token_id=tok.pad_token_id)


@pytest.mark.parametrize("budget", [0, -1, 1.5, True])
def test_constrain_rejects_a_budget_below_one(budget):
    with pytest.raises(ValueError, match="max_new_tokens"):
        constrain(setup("small")[0], max_new_tokens=budget)


def test_one_constrain_serves_consecutive_generate_calls():
    tok, model = setup("small")
    kwargs = constrain(tok, max_new_tokens=6)
    for prompt in (["a", "b"], ["climate"]):
        tok_in = tok(prompt, return_tensors="pt", padding=True)
        out = model.generate(**tok_in, **kwargs, max_new_tokens=6, do_sample=True, pad_token_id=tok.pad_token_id)
        assert all(is_valid(decode(tok, row[tok_in["input_ids"].shape[1]:])) for row in out)
