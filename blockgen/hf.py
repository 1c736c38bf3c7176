"""blockgen's grammar and budget-aware closing for your own ``model.generate(...)``.

    from blockgen.hf import constrain, decode

    B = 48
    out = model.generate(**inputs, **constrain(tokenizer, max_new_tokens=B), max_new_tokens=B,
                         do_sample=True, temperature=0.7)          # or greedy, or num_beams=4
    queries = [decode(tokenizer, row[inputs["input_ids"].shape[1]:]) for row in out]

:func:`constrain` returns the ``logits_processor`` and ``stopping_criteria`` keyword
arguments of ``transformers``' ``generate``. Every output is a valid query, for every budget
``max_new_tokens >= 1``, with sampling, greedy decoding and beam search, and with left-padded
batches, provided ``generate`` gets the same ``max_new_tokens``.

How it works: one :class:`blockgen.constrained.BudgetedMatcher` per sequence, found by the
tokens the sequence has written (beam search reorders and forks sequences; a forked
sequence gets a copy). The processor is called once per step for the whole batch; the
grammar masks of all sequences are filled in parallel by llguidance. The stopping criteria
(called after each token is chosen, before the next forward pass) hand the advance of the
matchers and the next masks to a background thread, so both run while the model does. The
processor then works on packed masks: the tokens the budget's per-token bound vouches for
are one AND of bit words per row, only the best few others are checked one by one, and the
scores are masked in place, once for the batch.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
from transformers import LogitsProcessor, StoppingCriteria

from blockgen.constrained import MIN_BUDGET, BatchMasks, BudgetedMatcher, GrammarEngine, allowed_bits

__all__ = ["constrain", "decode", "BlockgenLogitsProcessor", "BlockgenStoppingCriteria"]


def constrain(
    tokenizer: Any,
    max_new_tokens: int,
    *,
    no_repeats: bool = False,
    eos_token_id: Union[int, Iterable[int], None] = None,
    mask_threads: int = 1,
) -> dict[str, Any]:
    """Keyword arguments that make ``model.generate`` write valid Boolean block queries.

    ``max_new_tokens``: the budget; pass the same ``max_new_tokens`` to ``generate``.
    ``no_repeats``: also refuse tokens that complete a term already in the query (while
    the budget allows). ``eos_token_id``: extra ids that end a sequence (default: the
    tokenizer's EOS; add your model's, e.g. ``model.generation_config.eos_token_id``).
    Call it once per ``generate`` call (the returned objects keep each sequence's state).
    """
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < MIN_BUDGET:
        raise ValueError(f"max_new_tokens must be a whole number >= {MIN_BUDGET}, not {max_new_tokens!r}")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("blockgen needs a fast (Rust) Hugging Face tokenizer (tokenizer.json)")
    extra = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    engine = GrammarEngine.for_tokenizer(tokenizer)
    processor = BlockgenLogitsProcessor(engine, max_new_tokens, no_repeats=no_repeats, eos_ids=extra, mask_threads=mask_threads)
    return {
        "logits_processor": LogitsProcessorList([processor]),
        "stopping_criteria": StoppingCriteriaList([BlockgenStoppingCriteria(processor)]),
    }


def decode(tokenizer: Any, token_ids: Sequence[int], eos_token_id: Union[int, Iterable[int], None] = None) -> str:
    """The text of generated ``token_ids`` (prompt excluded), from the token bytes.

    Stops at the first EOS (the tokenizer's, and ``eos_token_id``) and leaves special tokens
    out; never uses ``tokenizer.decode``, which may add or drop spaces (WordPiece) and so
    change the query.
    """
    engine = GrammarEngine.for_tokenizer(tokenizer)
    extra = [] if eos_token_id is None else [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    ends = {engine.eos_token_id, *extra}
    out = bytearray()
    for tok in (int(t) for t in token_ids):
        if tok in ends:
            break
        if 0 <= tok < engine.vocab_size and tok not in engine.special_ids:
            out += engine.tokens[tok]
    return out.decode("utf-8", "replace")


class _Dead:
    """A sequence whose tokens blockgen cannot follow (a beam filled with a refused token)."""


_DEAD = _Dead()


class BlockgenLogitsProcessor(LogitsProcessor):
    """A ``transformers`` logits processor: grammar and budget masks for a whole batch per call."""

    def __init__(self, engine: GrammarEngine, max_new_tokens: int, *, no_repeats: bool = False, eos_ids: Sequence[int] = (), mask_threads: int = 1):
        self.engine = engine
        self.budget = max_new_tokens
        self.no_repeats = no_repeats
        self.eos_ids = frozenset({engine.eos_token_id, *eos_ids})
        self.mask_threads = mask_threads
        self._prompt: Any = None
        self._states: dict[tuple, Any] = {}
        self._masks: Optional[BatchMasks] = None
        self._prepared: Optional[list[tuple]] = None  # histories whose masks the stopping criteria started

    # ------------------------------------------------------------------ sequences
    def _reset(self, input_ids: Any) -> None:
        self._prompt = input_ids.detach().cpu().clone()
        self._states = {(): self.engine.matcher(self.budget, no_repeats=self.no_repeats, eos_ids=self.eos_ids)}
        self._prepared = None

    def _histories(self, input_ids: Any) -> list[tuple]:
        """Each row's generated tokens; starts a new generation when the prompt changed."""
        prompt = self._prompt
        new = prompt is None or input_ids.shape[0] != prompt.shape[0] or input_ids.shape[1] < prompt.shape[1]
        if not new:
            new = not bool((input_ids[:, : prompt.shape[1]].detach().cpu() == prompt).all())
        if new:
            self._reset(input_ids)
        width = self._prompt.shape[1]
        rows = input_ids[:, width:].detach().cpu().tolist()
        hists = [tuple(r) for r in rows]
        if hists and all(len(h) == 0 for h in hists) and () not in self._states:
            self._reset(input_ids)
        if any(len(h) >= self.budget for h in hists):
            raise ValueError(
                f"generate() asked for a token beyond max_new_tokens={self.budget} given to blockgen.hf.constrain(); "
                "pass the same max_new_tokens to both"
            )
        return hists

    def _advance_to(self, hists: list[tuple]) -> list[Any]:
        """The matcher of every history (derived from its parent by one token; forks are copied)."""
        users: dict[tuple, int] = {}
        for h in hists:
            if h not in self._states and h:
                users[h[:-1]] = users.get(h[:-1], 0) + 1
        out: list[Any] = []
        made: dict[tuple, Any] = {}
        for h in hists:
            if h in self._states:
                out.append(self._states[h])
                continue
            if h in made:
                out.append(made[h])
                continue
            parent = self._states.get(h[:-1], _DEAD) if h else _DEAD
            if parent is _DEAD or parent is None:
                made[h] = _DEAD
            elif isinstance(parent, BudgetedMatcher) and parent.done:
                made[h] = parent  # padding after EOS
            else:
                users[h[:-1]] -= 1
                child = parent if users[h[:-1]] == 0 else parent.copy()
                tok = h[-1]
                prefix = child.preview(tok, repeats=False)
                if prefix is None:
                    made[h] = _DEAD
                else:
                    child.advance(tok, prefix)
                    made[h] = child
            out.append(made[h])
        self._states = {h: m for h, m in zip(hists, out)}
        return out

    # ------------------------------------------------------------------ the two hooks
    def prepare(self, input_ids: Any) -> list[int]:
        """After a token was chosen: advance the matchers and fill the next masks, both in the
        background thread (while the model's forward pass runs). Returns the rows that follow a
        sequence blockgen could not follow (to be stopped)."""
        hists = self._histories(input_ids)
        dead = [r for r, h in enumerate(hists) if h and self._states.get(h[:-1]) is _DEAD]
        masks = self._masks_for(len(hists))

        def plan() -> list[tuple[BudgetedMatcher, int]]:
            return self._live(self._advance_to(hists))

        masks.start_with(plan)
        self._prepared = hists
        return dead

    @staticmethod
    def _live(matchers: list[Any]) -> list[tuple[BudgetedMatcher, int]]:
        return [(m, r) for r, m in enumerate(matchers) if isinstance(m, BudgetedMatcher) and not m.done]

    def _masks_for(self, batch: int) -> BatchMasks:
        if self._masks is None or self._masks.batch != batch:
            if self._masks is not None:
                self._masks.close()
            self._masks = BatchMasks(self.engine, batch, threads=self.mask_threads, extra_eos=sorted(self.eos_ids), convert=False)
        return self._masks

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._masks is not None:
            self._masks.wait()  # the matchers and masks the stopping criteria started
        hists = self._histories(input_ids)
        if self._prepared is not None and hists == self._prepared and self._masks is not None:
            matchers = [self._states[h] for h in hists]
        else:
            matchers = self._advance_to(hists)
            self._masks_for(len(matchers)).start(self._live(matchers))
        self._prepared = None
        grammar = self._masks.bits()
        inplace = scores.device.type == "cpu" and scores.dtype == torch.float32
        host = scores.detach().numpy() if inplace else scores.detach().float().cpu().numpy()
        rows = [m if isinstance(m, BudgetedMatcher) else None for m in matchers]
        bits = allowed_bits(self.engine, rows, grammar, host, self.eos_ids)
        width = scores.shape[-1]
        refused = np.unpackbits((~bits).view(np.uint8), axis=1, bitorder="little").view(np.bool_)
        if refused.shape[1] >= width:
            refused = refused[:, :width]
        else:  # ids beyond the tokenizer write nothing
            refused = np.concatenate([refused, np.ones((len(rows), width - refused.shape[1]), dtype=np.bool_)], axis=1)
        if inplace:
            # in place, as raw float bits added once for the batch: 0x00000000 is 0.0, 0xFF800000 is -inf
            np.add(host, np.multiply(refused, np.uint32(0xFF800000), dtype=np.uint32).view(np.float32), out=host)
            return scores
        return scores.masked_fill(torch.from_numpy(refused).to(scores.device), -float("inf"))

    def close(self) -> None:
        if self._masks is not None:
            self._masks.close()
            self._masks = None


class BlockgenStoppingCriteria(StoppingCriteria):
    """``transformers`` stopping criteria: start the next step's masks early; stop sequences blockgen cannot follow."""

    def __init__(self, processor: BlockgenLogitsProcessor):
        self.processor = processor

    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        import torch

        p = self.processor
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        prompt = p._prompt
        if prompt is None:
            return done
        generated = input_ids.shape[1] - prompt.shape[1]
        if input_ids.shape[0] != prompt.shape[0] or generated >= p.budget:
            return done  # beam candidates, or the last step: nothing to prepare
        for r in p.prepare(input_ids):
            done[r] = True
        return done
