"""How the next token is picked: the :class:`Sampling` settings and a batched sampler.

>>> Sampling(temperature=0.7, top_p=0.9, seed=0)
>>> Sampling(temperature=0)            # greedy

The sampler works on a whole batch of logits at once (``(rows, vocab)``) and never copies a
row: temperature, then nucleus (``top_p``) filtering, then one uniform draw per row through
a two-level cumulative sum (block sums, then one block), which is exact and several times
faster on CPU than ``torch.multinomial`` over a 128,256-token vocabulary.
:class:`RowDraws` draws again from a row as often as needed (rejection sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from blockgen.errors import GenerationError

#: Block width of the two-level inverse-CDF draw.
_BLOCK = 1024
#: Candidates looked at first for nucleus sampling (all tokens when they hold less than top_p).
_NUCLEUS_K = 256


@dataclass(frozen=True)
class Sampling:
    """Sampling settings: ``temperature`` (0: greedy), ``top_p`` (nucleus), ``seed``.

    Invalid values (negative, NaN or infinite temperature; ``top_p`` outside (0, 1]; a seed
    that is not a whole number a torch generator takes, i.e. in [-2**63, 2**64)) raise
    :class:`blockgen.errors.GenerationError`.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        t, p = self.temperature, self.top_p
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise GenerationError(f"temperature must be a finite number >= 0 (0 is greedy), not {t!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 < p <= 1:
            raise GenerationError(f"top_p must be a number in (0, 1], not {p!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not -(2**63) <= self.seed < 2**64):
            raise GenerationError(f"seed must be a whole number in [-2**63, 2**64) or None, not {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def generator(self):
        """A seeded ``torch.Generator`` (a random seed when ``seed`` is None)."""
        import torch

        seed = self.seed if self.seed is not None else torch.seed() % (2**63)
        return torch.Generator().manual_seed(seed)


def sample(logits: Any, sampling: Sampling, generator: Any) -> Any:
    """One token id per row of ``logits`` (``(rows, vocab)`` float tensor; ``-inf`` = not allowed).

    ``logits`` is not modified. A row with no finite logit gets its argmax (id 0).
    """
    import torch

    if logits.dim() == 1:
        return sample(logits[None, :], sampling, generator)[0]
    if sampling.greedy:
        return logits.argmax(-1)
    scaled = logits / sampling.temperature if sampling.temperature != 1 else logits
    probs = torch.softmax(scaled, dim=-1)
    if sampling.top_p < 1:
        return _nucleus(probs, sampling.top_p, generator)
    picks, total = _inverse_cdf(probs, generator)
    bad = ~(torch.isfinite(total) & (total > 0))
    if bad.any():
        picks[bad] = logits[bad].argmax(-1)
    return picks


class RowDraws:
    """Repeated draws from the rows of one step's logits: rejection sampling without a mask.

    ``first()`` draws one token per row (as :func:`sample`); ``again(row)`` draws another,
    independently, from the same row's distribution (tens of µs: the softmax, the block sums
    and the nucleus are reused). Greedy: ``again`` gives the next best token. Accepting the
    first draw that passes a test gives exactly the distribution restricted to the tokens
    that pass (rejection sampling). With ``top_p < 1`` the draws come from the model's own
    nucleus: the test (the grammar) then filters the nucleus.
    """

    def __init__(self, logits: Any, sampling: Sampling, generator: Any):
        import torch

        self.logits = logits
        self.sampling = sampling
        self.generator = generator
        self._ranked: dict[int, list[int]] = {}
        self.nuclei: Optional[list] = None
        if sampling.greedy:
            self.probs = None
            return
        scaled = logits / sampling.temperature if sampling.temperature != 1 else logits
        self.probs = torch.softmax(scaled, dim=-1)
        if sampling.top_p < 1:
            self.nuclei = _nuclei(self.probs, sampling.top_p)
            return
        rows, vocab = self.probs.shape
        self.width = min(_BLOCK, vocab)
        full = vocab // self.width
        mass = self.probs[:, : full * self.width].reshape(rows, full, self.width).sum(-1)
        if full * self.width < vocab:
            mass = torch.cat([mass, self.probs[:, full * self.width :].sum(-1, keepdim=True)], dim=1)
        self.cum = mass.to(torch.float64).cumsum(-1)

    def first(self) -> list[int]:
        """One token per row."""
        import torch

        if self.probs is None:
            return self.logits.argmax(-1).tolist()
        if self.nuclei is not None:
            return [self.again(r) for r in range(len(self.nuclei))]
        picks, total = _draw(self.probs, self.cum, self.width, self.generator)
        bad = ~(torch.isfinite(total) & (total > 0))
        if bad.any():
            picks[bad] = self.logits[bad].argmax(-1)
        return picks.tolist()

    def again(self, row: int) -> int:
        """Another draw from ``row`` (greedy: the next best token)."""
        import torch

        if self.probs is None:
            ranked = self._ranked.get(row)
            if ranked is None:
                ranked = self._ranked[row] = torch.topk(self.logits[row], min(256, self.logits.shape[-1])).indices.tolist()[::-1]
                ranked.pop()  # the best one was first()
            return ranked.pop() if ranked else int(self.logits[row].argmax())
        if self.nuclei is not None:
            pick = _from_nucleus(self.nuclei[row], self.generator)
            return int(self.logits[row].argmax()) if pick is None else pick
        u = torch.rand((), generator=self.generator, dtype=torch.float64) * self.cum[row, -1]
        return self._at(row, u)

    def _at(self, row: int, u: Any) -> int:
        import torch

        cum = self.cum[row]
        total = float(cum[-1])
        if not total > 0 or total != total or total == float("inf"):
            return int(self.logits[row].argmax())
        block = int(torch.searchsorted(cum, u.reshape(1)).clamp(max=len(cum) - 1))
        before = float(cum[block - 1]) if block else 0.0
        start = block * self.width
        inner = self.probs[row, start : start + self.width].to(torch.float64).cumsum(-1)
        pos = int(torch.searchsorted(inner, (u - before).reshape(1)).clamp(max=len(inner) - 1))
        return start + pos


def _inverse_cdf(probs: Any, generator: Any) -> tuple[Any, Any]:
    """Draw one index per row with probability ``probs`` (rows need not sum exactly to 1).

    Returns the indices and each row's total mass (not finite or 0: the index is meaningless).
    """
    import torch

    rows, vocab = probs.shape
    width = min(_BLOCK, vocab)
    full = vocab // width
    mass = probs[:, : full * width].reshape(rows, full, width).sum(-1)
    if full * width < vocab:
        mass = torch.cat([mass, probs[:, full * width :].sum(-1, keepdim=True)], dim=1)
    return _draw(probs, mass.to(torch.float64).cumsum(-1), width, generator)


def _draw(probs: Any, cum: Any, width: int, generator: Any) -> tuple[Any, Any]:
    """One draw per row given the rows' cumulative block masses ``cum``."""
    import torch

    rows, vocab = probs.shape
    blocks = cum.shape[1]
    u = torch.rand(rows, 1, generator=generator, dtype=torch.float64) * cum[:, -1:]
    block = torch.searchsorted(cum, u).clamp_(max=blocks - 1)  # (rows, 1)
    before = torch.where(block > 0, cum.gather(1, (block - 1).clamp(min=0)), torch.zeros_like(u))
    index = block * width + torch.arange(width)[None, :]  # (rows, width)
    inside = index < vocab
    inner = probs.gather(1, index.clamp(max=vocab - 1)).to(torch.float64).masked_fill_(~inside, 0).cumsum(-1)
    pos = torch.searchsorted(inner, u - before).clamp_(max=width - 1)
    last = block * width + inside.sum(-1, keepdim=True) - 1
    return torch.minimum(block * width + pos, last)[:, 0], cum[:, -1]


def _nuclei(probs: Any, top_p: float) -> list[tuple[Any, Any]]:
    """Per row: the nucleus (the smallest set of most likely tokens holding ``top_p`` of the
    mass) as ``(ids, cumulative mass)``, most likely first. ``None`` for a row with no mass."""
    import torch

    rows, vocab = probs.shape
    k = min(_NUCLEUS_K, vocab)
    values, ids = torch.topk(probs, k, dim=-1)
    total = probs.sum(-1, keepdim=True, dtype=torch.float64)
    cum = values.to(torch.float64).cumsum(-1) / total
    enough = cum[:, -1] >= top_p
    out = []
    for r in range(rows):
        if enough[r]:
            v, i, c = values[r], ids[r], cum[r]
        else:  # the mass is spread over more than k tokens: sort the whole row
            v, i = torch.sort(probs[r], descending=True)
            c = v.to(torch.float64).cumsum(-1) / total[r]
        keep = int((c - v.to(torch.float64) / total[r] < top_p).sum().clamp(min=1))
        kept = v[:keep].to(torch.float64)
        if not torch.isfinite(kept).all() or float(kept.sum()) <= 0:
            out.append(None)
            continue
        out.append((i[:keep], kept.cumsum(-1)))
    return out


def _from_nucleus(nucleus: Any, generator: Any) -> Optional[int]:
    import torch

    if nucleus is None:
        return None
    ids, cum = nucleus
    u = torch.rand(1, generator=generator, dtype=torch.float64) * cum[-1]
    return int(ids[int(torch.searchsorted(cum, u).clamp(max=len(cum) - 1))])


def _nucleus(probs: Any, top_p: float, generator: Any) -> Any:
    """Nucleus sampling: one draw per row from its nucleus (the argmax for a row with no mass)."""
    import torch

    picks = [_from_nucleus(n, generator) for n in _nuclei(probs, top_p)]
    return torch.tensor([int(probs[r].argmax()) if p is None else p for r, p in enumerate(picks)], dtype=torch.long)
