"""Sampling: validated settings, and a batched sampler that draws from the right distribution."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from blockgen.errors import GenerationError
from blockgen.sampling import Sampling, sample


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(temperature=math.nan), dict(temperature=math.inf), dict(temperature=-0.1), dict(temperature="1"),
        dict(top_p=math.nan), dict(top_p=0.0), dict(top_p=1.5), dict(top_p=math.inf), dict(seed=1.5), dict(seed=True), dict(seed=2**64), dict(seed=-(2**63) - 1),
    ],
)
def test_invalid_sampling_settings_are_a_generation_error(kwargs):
    with pytest.raises(GenerationError):
        Sampling(**kwargs)


@pytest.mark.parametrize("seed", [0, -1, -(2**63), 2**64 - 1])
def test_every_valid_seed_gives_a_generator(seed):
    Sampling(seed=seed).generator()


def test_draws_follow_the_softmax_of_the_logits_with_temperature():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 1.0, 2.0, -math.inf, 0.5, 3.0] * 400)  # 2,400 tokens: several blocks of the sampler
    rows = logits.expand(20000, -1).contiguous()
    for t in (1.0, 0.5):
        drawn = sample(rows, Sampling(temperature=t), g)
        counts = torch.bincount(drawn, minlength=len(logits)).float() / len(drawn)
        expected = torch.softmax(logits / t, -1)
        assert float((counts - expected).abs().max()) < 0.01
        assert not bool(torch.isinf(logits[drawn]).any())


def test_nucleus_keeps_the_smallest_set_holding_top_p():
    g = torch.Generator().manual_seed(1)
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    drawn = sample(probs.log().expand(4000, -1).contiguous(), Sampling(top_p=0.7), g)
    assert set(drawn.tolist()) == {0, 1}  # 0.5 < 0.7, 0.8 >= 0.7
    counts = torch.bincount(drawn, minlength=4).float() / len(drawn)
    assert abs(float(counts[0]) - 0.5 / 0.8) < 0.03


def test_greedy_takes_the_argmax_of_every_row():
    logits = torch.randn(7, 3000)
    assert sample(logits, Sampling(temperature=0), None).tolist() == logits.argmax(-1).tolist()


@settings(max_examples=50, deadline=None)
@given(
    vocab=st.integers(1, 3000),
    allowed=st.integers(1, 50),
    seed=st.integers(0, 2**31),
    temperature=st.sampled_from([0.0, 0.3, 1.0, 2.0]),
    top_p=st.sampled_from([0.5, 0.9, 1.0]),
)
def test_a_sampled_token_is_never_one_with_minus_infinity(vocab, allowed, seed, temperature, top_p):
    g = torch.Generator().manual_seed(seed)
    logits = torch.full((3, vocab), -math.inf)
    ids = torch.randint(0, vocab, (3, allowed), generator=g)
    logits.scatter_(1, ids, torch.randn(3, allowed, generator=g) * 5)
    drawn = sample(logits, Sampling(temperature=temperature, top_p=top_p), g)
    assert all(math.isfinite(float(logits[r, t])) for r, t in enumerate(drawn.tolist()))


def test_row_draws_again_follows_the_same_distribution_and_greedy_walks_down_the_ranking():
    from blockgen.sampling import RowDraws

    g = torch.Generator().manual_seed(2)
    logits = torch.tensor([[0.0, 1.0, 2.0, -math.inf, 0.5] * 300, [3.0, 0.0, 1.0, 2.0, -1.0] * 300])
    draws = RowDraws(logits, Sampling(), g)
    again = torch.tensor([draws.again(0) for _ in range(20000)])
    counts = torch.bincount(again % 5, minlength=5).float() / len(again)
    assert float((counts - torch.softmax(logits[0, :5], -1)).abs().max()) < 0.015
    greedy = RowDraws(logits[:, :5], Sampling(temperature=0), g)
    assert greedy.first() == [2, 0]
    assert [greedy.again(1) for _ in range(3)] == [3, 2, 1]
    nucleus = RowDraws(torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log(), Sampling(top_p=0.7), g)
    assert {nucleus.again(0) for _ in range(300)} == {0, 1}  # the model's own nucleus
