"""The batched decoding loop: one model, a batch of prompts, free or through the grammar.

Per step, for a batch of ``B`` rows: the model's forward pass (one new token per row, KV
cache); the log-normaliser of the raw logits (each candidate's log-probability); one draw
per row for the whole batch (:mod:`blockgen.sampling`); then each row's
:class:`blockgen.constrained.BudgetedMatcher` checks its token. Two ways to bring in the
grammar (``masks_mode``):

* **lazy** (the default): the sampled token is checked as it is: llguidance validates one
  token in about 1 µs, the need after it (incremental, :mod:`blockgen.need`) must fit the
  budget left and, with ``no_repeats``, it must not complete a repeated term. A refused
  token is redrawn from the same row's distribution (:class:`blockgen.sampling.RowDraws`,
  no new softmax; with ``top_p``, from the model's own nucleus), up to :data:`LAZY_DRAWS`
  times: this is rejection sampling, which gives exactly the distribution restricted to the
  allowed tokens (for greedy decoding: the best allowed token). Only a row still refused then
  gets its grammar mask (llguidance, rows filled in parallel) and is sampled as below. With a
  model that writes queries, almost no row needs a mask.
* **background**: while the forward pass runs, a background thread fills every row's grammar
  mask in parallel (:class:`blockgen.constrained.BatchMasks`, llguidance drops the GIL) and
  turns it into an additive bias; the bias is added to the logits in place (no per-row
  copies), then the batch is sampled (with ``top_p``: the nucleus of the masked
  distribution) and each token checked as above (a refused token is redrawn from the row,
  up to :data:`RESAMPLE_TRIES` times, then the best-scoring token that fits is taken, else
  the step finishes the query).

Free decoding runs the same loop without the matchers.

**Thread policy** (small models on CPU, measured by ``python -m benchmarks.engine``, "thread
policy" table): torch runs with one intra-op thread while decoding a model of up to
:data:`SMALL_MODEL_PARAMS` parameters on CPU, and llguidance fills masks on one thread of
its own. On the 2-core machine of the benchmarks two torch threads made the small model's
steps several times slower whenever the other core was busy (OpenMP threads spin while they
wait), and a second mask thread did not pay off. See :func:`thread_policy`.
"""

from __future__ import annotations

import inspect
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from blockgen.constrained import BatchMasks, BudgetedMatcher, GrammarEngine
from blockgen.sampling import RowDraws, Sampling, sample

#: How many other tokens are drawn when a sampled token would break the budget or repeat a term.
RESAMPLE_TRIES = 8
#: Draws per row (rejection sampling) before a row gets its grammar mask (lazy masks).
LAZY_DRAWS = 16
#: Candidates ranked by score when redrawing did not find a token that fits.
FALLBACK_TOP_K = 64
#: Models up to this many parameters count as small for the thread policy.
SMALL_MODEL_PARAMS = 200_000_000


@dataclass
class RowResult:
    """What one row of a batch wrote.

    ``ids``: tokens written (EOS excluded); ``text``: their bytes as UTF-8 (special tokens
    left out); ``logprob``: the model's log-probability of the tokens (EOS included, raw
    model distribution at temperature 1); ``ended``: EOS was written; ``seconds``: wall time
    until the row ended; ``steered``: the budget or repeat rule changed a token;
    ``forced_repeat``: the budget forced a repeated term (``no_repeats``).
    """

    ids: list[int] = field(default_factory=list)
    text: str = ""
    logprob: float = 0.0
    ended: bool = False
    seconds: float = 0.0
    steered: bool = False
    forced_repeat: bool = False


@dataclass
class StepStats:
    """Per-step timings of :func:`decode` (seconds), for the benchmarks.

    ``forward``: the model call; ``wait``: waiting for the background masks after it;
    ``mask``: applying the grammar bias; ``sample``: the log-normaliser and the batched draw;
    ``check``: the budget and repeat checks, redraws and the matchers' advance; ``rows``: rows
    still decoding; ``mask_work``: time spent filling this step's masks (in the background or
    not); ``refused``:
    rows whose sampled token was refused (lazy masks), which then got their mask.
    """

    forward: list[float] = field(default_factory=list)
    wait: list[float] = field(default_factory=list)
    mask: list[float] = field(default_factory=list)
    sample: list[float] = field(default_factory=list)
    check: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    mask_work: list[float] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


class ModelRunner:
    """How to call a causal LM step by step: cache keyword, ``logits_to_keep``, device."""

    def __init__(self, model: Any, device: str):
        self.model = model
        self.device = device
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed past_key_values to cache; support both spellings.
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.keep_kw = "logits_to_keep" in params
        from blockgen.minilm import is_prefix_lm

        #: the prompt attends both ways in the prefill (a prefix LM: :func:`blockgen.minilm.prefix_lm_mask`)
        self.prefix_lm = is_prefix_lm(model)

    def __call__(self, input_ids, attention_mask, position_ids, past):
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True)
        if self.prefix_lm and past is None:
            from blockgen.minilm import prefix_lm_mask

            kwargs["attention_mask"] = prefix_lm_mask(attention_mask)
        kwargs[self.cache_kw] = past
        if self.keep_kw:
            kwargs["logits_to_keep"] = 1
        out = self.model(**kwargs)
        return out.logits[:, -1, :], getattr(out, self.cache_kw)

    def parameters(self) -> int:
        try:
            return sum(p.numel() for p in self.model.parameters())
        except Exception:  # pragma: no cover - not a torch module
            return 0


@contextmanager
def thread_policy(runner: ModelRunner, threads: Optional[int]) -> Iterator[None]:
    """Set torch's intra-op threads while decoding, then restore them.

    ``threads=None``: one thread for a small model (up to :data:`SMALL_MODEL_PARAMS`) on
    CPU, torch's own setting otherwise; ``threads=N``: N threads.
    """
    import torch

    before = torch.get_num_threads()
    want = threads
    if want is None and str(runner.device).startswith("cpu") and runner.parameters() <= SMALL_MODEL_PARAMS:
        want = 1
    if want is not None and want != before:
        torch.set_num_threads(want)
    try:
        yield
    finally:
        if want is not None and want != before:
            torch.set_num_threads(before)


def decode(
    runner: ModelRunner,
    prompts: Sequence[Sequence[int]],
    *,
    tokens: Sequence[bytes],
    pad_id: int,
    eos_ids: set[int],
    max_new_tokens: int,
    sampling: Sampling,
    generator: Any,
    engine: Optional[GrammarEngine] = None,
    no_repeats: bool = False,
    mask_threads: int = 1,
    special_ids: frozenset = frozenset(),
    masks_mode: str = "auto",
    stats: Optional[StepStats] = None,
    lexicons: Optional[Sequence[Any]] = None,
) -> list[RowResult]:
    """Decode one batch of tokenized prompts (left-padded here); one :class:`RowResult` per prompt.

    ``engine`` given: constrained decoding (every result parses); ``None``: free decoding.
    ``tokens``: the bytes of every token id (to write the text without ``tokenizer.decode``).
    ``masks_mode``: ``"lazy"`` (``"auto"``, the default) draws from the model's distribution
    (its nucleus, with ``top_p``) and checks each row's token, filling grammar masks only
    for rows whose draws keep being refused; ``"background"`` fills every row's mask during
    the forward pass and samples after the grammar (with ``top_p``: the nucleus of the
    grammar-masked distribution, as ``transformers``' logits processors do).
    ``lexicons``: one :class:`blockgen.lexicon.LexiconRow` (or ``None``) per prompt: every word
    written must be known (a refused token is drawn again, then the row is masked; the lexicon
    gives way to budget-aware closing, and for a step where it leaves the grammar nothing).
    """
    import torch

    t_start = time.perf_counter()
    clock = time.perf_counter
    rows = len(prompts)
    width = max(len(p) for p in prompts)
    device = runner.device
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)
    attention = torch.zeros((rows, width), dtype=torch.long)
    for r, ids in enumerate(prompts):
        input_ids[r, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        attention[r, width - len(ids) :] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    input_ids, attention, positions = input_ids.to(device), attention.to(device), positions.to(device)

    results = [RowResult() for _ in range(rows)]
    matchers: list[Optional[BudgetedMatcher]] = [None] * rows
    masks: Optional[BatchMasks] = None
    if masks_mode not in ("auto", "lazy", "background"):
        raise ValueError(f"masks_mode must be auto, lazy or background, not {masks_mode!r}")
    lazy = masks_mode != "background"
    if engine is not None:
        matchers = [engine.matcher(max_new_tokens, no_repeats=no_repeats, eos_ids=eos_ids) for _ in range(rows)]
        masks = BatchMasks(engine, rows, threads=mask_threads, background=not lazy, extra_eos=sorted(eos_ids - {engine.eos_token_id}))
        if not lazy:
            masks.start([(m, r) for r, m in enumerate(matchers)])
    alive = [True] * rows
    lex = list(lexicons) if lexicons is not None else [None] * rows
    if len(lex) != rows:
        raise ValueError(f"{len(lex)} lexicon rows for {rows} prompts")
    work_seen = 0
    past = None
    active = list(range(rows))  # the rows in the model's batch, in order (finished rows leave it)
    step_ids, step_positions = input_ids, positions
    try:
        with torch.no_grad():
            for step in range(max_new_tokens):
                t0 = clock()
                logits, past = runner(step_ids, attention, step_positions, past)
                logits = logits.float().cpu()
                if len(active) < rows:  # finished rows left the batch: their logits are never read
                    full = torch.full((rows, logits.shape[-1]), -float("inf"), dtype=logits.dtype)
                    full[:, 0] = 0.0  # one certain token: the sampler's work for such a row is nil
                    full[torch.tensor(active)] = logits
                    logits = full
                width = logits.shape[-1]
                if masks is None and width > len(tokens):
                    logits[:, len(tokens) :] = -float("inf")  # ids beyond the tokenizer write nothing
                t1 = clock()
                bias = masks.result(width) if masks is not None and not lazy else None
                t2 = clock()
                top = logits.max(-1, keepdim=True).values
                lse = (top + (logits - top).exp_().sum(-1, keepdim=True).log_())[:, 0].tolist()
                t3 = clock()
                if bias is not None:
                    np.add(logits.numpy(), bias, out=logits.numpy())
                plain = None
                if not lazy and any(lx is not None for lx in lex):
                    plain = logits.clone()  # the grammar alone: the fallback when the lexicon leaves nothing
                    for r in range(rows):
                        if alive[r] and lex[r] is not None:
                            _apply_lexicon(logits[r], lex[r], eos_ids)
                t4 = clock()
                draws = RowDraws(logits, sampling, generator) if lazy and masks is not None else None
                picks = draws.first() if draws is not None else sample(logits, sampling, generator).tolist()
                t5 = clock()
                decoding = sum(alive)
                chosen: dict[int, int] = {}
                refused: list[int] = []
                for r in range(rows):
                    if not alive[r]:
                        continue
                    tok = int(picks[r])
                    m = matchers[r]
                    if m is None:
                        row = logits[r]
                        if lex[r] is not None and (not lex[r].allows(tok, eos=tok in eos_ids)
                                                   or tok in special_ids and tok not in eos_ids):
                            # rejection sampling: the first draw was refused, draw from the allowed tokens
                            row = logits[r].clone()
                            if _apply_lexicon(row, lex[r], eos_ids) and not lex[r].allows(tok, eos=tok in eos_ids):
                                tok = int(sample(row, sampling, generator))
                        chosen[r] = _redraw_free(tok, row, sampling, generator, special_ids, eos_ids) if tok in special_ids and tok not in eos_ids else tok
                    elif not lazy:
                        chosen[r], steered = _choose(m, tok, logits[r], sampling, generator, lex[r],
                                                     None if plain is None else plain[r])
                        results[r].steered |= steered
                    else:
                        taken, steered = _take_unmasked(m, tok, r, draws, lex[r])
                        results[r].steered |= steered
                        if taken is None:
                            refused.append(r)
                        else:
                            chosen[r] = taken
                t6 = clock()
                t7 = t6
                if refused:
                    # only these rows need their grammar mask: fill them in parallel, then choose again
                    masks.start([(matchers[r], r) for r in refused])
                    row_bias = masks.result(width)[refused]
                    t7 = clock()
                    index = torch.tensor(refused)
                    sub = logits[index]
                    np.add(sub.numpy(), row_bias, out=sub.numpy())
                    grammar_only = sub.clone() if any(lex[r] is not None for r in refused) else None
                    for j, r in enumerate(refused):
                        if lex[r] is not None:
                            _apply_lexicon(sub[j], lex[r], eos_ids)
                    redraw = sample(sub, sampling, generator).tolist()
                    for j, r in enumerate(refused):
                        allowed_before = bool(row_bias[j, int(picks[r])] == 0) if int(picks[r]) < width else False
                        chosen[r], steered = _choose(matchers[r], int(redraw[j]), sub[j], sampling, generator, lex[r],
                                                     None if grammar_only is None else grammar_only[j])
                        results[r].steered |= steered or allowed_before  # a grammar-valid token refused: the budget or a repeat
                    logits[index] = sub if grammar_only is None else grammar_only
                next_tokens = []
                for r in range(rows):
                    if r not in chosen:
                        next_tokens.append(pad_id)
                        continue
                    res, tok = results[r], chosen[r]
                    source = logits if plain is None else plain  # without the lexicon's bias (it may give way)
                    res.logprob += float(source[r, tok]) - lse[r]  # the grammar bias of a written token is 0
                    next_tokens.append(tok)
                    if lex[r] is not None and tok not in eos_ids:
                        lex[r].advance(tok)
                    if tok in eos_ids:
                        alive[r], res.ended, res.seconds = False, True, clock() - t_start
                    else:
                        res.ids.append(tok)
                t8 = clock()
                if stats is not None:
                    done_work = masks.work_seconds if masks is not None else []
                    stats.mask_work.append(sum(done_work[work_seen:]))
                    work_seen = len(done_work)
                    stats.forward.append(t1 - t0)
                    stats.wait.append((t2 - t1) + (t7 - t6))
                    stats.sample.append((t3 - t2) + (t5 - t4))
                    stats.mask.append(t4 - t3)
                    stats.check.append((t6 - t5) + (t8 - t7))
                    stats.rows.append(decoding)
                    stats.refused.append(len(refused))
                if not any(alive) or step == max_new_tokens - 1:
                    break
                if masks is not None and not lazy:
                    masks.start([(matchers[r], r) for r in range(rows) if alive[r]])
                keep = [j for j, r in enumerate(active) if alive[r]]
                if len(keep) < len(active) and _selectable(past):
                    # drop finished rows from the batch (their cache too): a few rows that run to the
                    # budget no longer cost a forward pass over the whole batch
                    index = torch.tensor(keep, dtype=torch.long, device=device)
                    past = _select_rows(past, index)
                    attention, step_positions = attention[index], step_positions[index]
                    active = [active[j] for j in keep]
                step_ids = torch.tensor([next_tokens[r] for r in active], dtype=torch.long, device=device)[:, None]
                still = torch.tensor([1 if alive[r] else 0 for r in active], dtype=torch.long, device=device)[:, None]
                attention = torch.cat([attention, still], dim=1)
                step_positions = step_positions[:, -1:] + 1
    finally:
        if masks is not None:
            masks.close()
    elapsed = clock() - t_start
    for r, res in enumerate(results):
        if not res.ended:
            res.seconds = elapsed
        m = matchers[r]
        if m is not None:
            res.text = m.text.decode("utf-8", "replace")
            res.forced_repeat = m.forced_repeat
        else:
            res.text = b"".join(tokens[i] for i in res.ids if i not in special_ids and 0 <= i < len(tokens)).decode("utf-8", "replace")
    return results


def _selectable(past: Any) -> bool:
    """Whether rows can be dropped from this key/value cache (a transformers ``Cache`` or tuples of tensors)."""
    if hasattr(past, "batch_select_indices"):
        return True
    return isinstance(past, (tuple, list)) and all(
        isinstance(layer, (tuple, list)) and all(hasattr(t, "index_select") for t in layer) for layer in past)


def _select_rows(past: Any, index: Any) -> Any:
    """The cache ``past`` with only the batch rows ``index``."""
    if hasattr(past, "batch_select_indices"):
        past.batch_select_indices(index)
        return past
    return type(past)(type(layer)(t.index_select(0, index) for t in layer) for layer in past)


def _take_unmasked(m: BudgetedMatcher, tok: int, row: int, draws: Any, lex: Any = None) -> tuple[Optional[int], bool]:
    """Lazy masks: rejection sampling. Returns the token written (or ``None``: the row needs its
    mask) and whether the budget or repeat rule refused a token the grammar allows.

    Draws again from the row's distribution until a token passes the grammar (llguidance's
    check of one token), the budget and the repeat rule, at most :data:`LAZY_DRAWS` times.
    A forced step (the rest of an operator, a closer) needs no mask either.
    """
    steered = False
    if m.finishing:
        forced, _cls = m.finish_plan()
        if forced is None:
            return None, True
        prefix = m.preview(forced, repeats=False)
        if prefix is None:  # the grammar engine and blockgen disagree: a bug, not a user error
            raise RuntimeError(f"blockgen's closing token {forced} does not fit after {m.text!r}")
        m.advance(forced, prefix)
        return forced, tok != forced
    for _ in range(LAZY_DRAWS):
        prefix = m.preview(tok)
        if prefix is not None and (lex is None or lex.allows(tok, eos=tok in m.eos_ids)):
            m.advance(tok, prefix)
            return tok, steered
        steered = steered or (prefix is None and m.grammar_allows(tok))
        tok = draws.again(row)
    return None, steered


def _choose(m: BudgetedMatcher, tok: int, row: Any, sampling: Sampling, generator: Any, lex: Any = None,
            plain: Any = None) -> tuple[int, bool]:
    """The token row ``m`` writes this step, given the sampled ``tok``; and whether a rule changed it.

    ``row``: the row's logits with the grammar (and the lexicon ``lex``, if any) applied (not
    modified); ``plain``: the same with the grammar only, used when no token fits the lexicon.
    """
    import torch

    if lex is not None and plain is not None:
        if not m.finishing:
            taken = _choose_lexical(m, tok, row, sampling, generator, lex)
            if taken is not None:
                return taken, False
        row = plain  # the lexicon gives way: budget-aware closing, or nothing else fits
    if not m.finishing:
        prefix = m.preview(tok)
        if prefix is not None:
            m.advance(tok, prefix)
            return tok, False
        row = row.clone()  # a redraw (rare): the batch's logits stay as they are, for the log-probability
        for _ in range(RESAMPLE_TRIES):
            row[tok] = -float("inf")
            if not bool(torch.isfinite(row).any()):
                break
            tok = int(sample(row, sampling, generator))
            prefix = m.preview(tok)
            if prefix is not None:
                m.advance(tok, prefix)
                return tok, True
        ranked = torch.topk(row, min(FALLBACK_TOP_K, row.shape[0])).indices.tolist()
        for repeats in ((True, False) if m.no_repeats else (False,)):
            for cand in ranked:
                if not bool(torch.isfinite(row[cand])):
                    break
                prefix = m.preview(cand, repeats=repeats)
                if prefix is not None:
                    m.advance(cand, prefix)
                    return cand, True
    return _finish_step(m, row, sampling, generator), True


def _choose_lexical(m: BudgetedMatcher, tok: int, row: Any, sampling: Sampling, generator: Any, lex: Any) -> Optional[int]:
    """A token that fits the grammar, the budget, the repeat rule and the lexicon, drawn from ``row``
    (the lexicon already applied); ``None`` if none is found among the draws and the best scores."""
    import torch

    row = row.clone()
    for _ in range(RESAMPLE_TRIES):
        if not bool(torch.isfinite(row[tok])):
            break
        prefix = m.preview(tok)
        if prefix is not None and lex.allows(tok, eos=tok in m.eos_ids):
            m.advance(tok, prefix)
            return tok
        row[tok] = -float("inf")
        if not bool(torch.isfinite(row).any()):
            return None
        tok = int(sample(row, sampling, generator))
    finite = int(torch.isfinite(row).sum())
    for cand in torch.topk(row, min(FALLBACK_TOP_K, finite)).indices.tolist() if finite else []:
        prefix = m.preview(cand)
        if prefix is not None and lex.allows(cand, eos=cand in m.eos_ids):
            m.advance(cand, prefix)
            return cand
    return None


def _apply_lexicon(row: Any, lex: Any, eos_ids: Iterable[int] = ()) -> bool:
    """Set the logits of the tokens ``lex`` refuses to ``-inf`` in place, unless that leaves no
    finite logit (then ``row`` is unchanged). Returns whether the lexicon was applied."""
    import torch

    mask = lex.mask()
    if mask is None:
        return False
    width = min(row.shape[0], mask.shape[0])
    allowed = torch.zeros(row.shape[0], dtype=torch.bool)
    allowed[:width] = torch.from_numpy(mask[:width])
    for e in eos_ids:
        if 0 <= e < row.shape[0]:
            allowed[e] = lex.allows(e, eos=True)
    if not bool(torch.isfinite(row[allowed]).any()):
        return False
    row.masked_fill_(~allowed, -float("inf"))
    return True


def _finish_step(m: BudgetedMatcher, row: Any, sampling: Sampling, generator: Any) -> int:
    """Spend this step on finishing the query: a missing byte or term, the rest of an operator, a closer."""
    import torch

    forced, cls = m.finish_plan()
    if forced is not None:
        prefix = m.preview(forced, repeats=False)
        if prefix is None:  # the grammar engine and blockgen disagree: a bug, not a user error
            raise RuntimeError(f"blockgen's closing token {forced} does not fit after {m.text!r}")
        m.advance(forced, prefix)
        return forced
    allowed = torch.from_numpy(cls)
    restricted = row.clone()
    width = min(restricted.shape[0], allowed.shape[0])
    restricted[:width][~allowed[:width]] = -float("inf")
    restricted[width:] = -float("inf")
    for _ in range(RESAMPLE_TRIES * 4):
        if not bool(torch.isfinite(restricted).any()):
            break
        tok = int(sample(restricted, sampling, generator))
        prefix = m.preview(tok, repeats=False)
        if prefix is not None:
            m.advance(tok, prefix)
            return tok
        restricted[tok] = -float("inf")
    finite = int(torch.isfinite(restricted).sum())
    if finite:
        for cand in torch.topk(restricted, min(finite, 4096)).indices.tolist():
            prefix = m.preview(cand, repeats=False)
            if prefix is not None:
                m.advance(cand, prefix)
                return cand
    raise RuntimeError(f"blockgen could not finish the query {m.text!r} within the budget")  # a bug


def _redraw_free(tok: int, row: Any, sampling: Sampling, generator: Any, special_ids: frozenset, eos_ids: set[int]) -> int:
    """Free decoding: a special token other than EOS (padding, BOS) is never written; draw again."""
    row = row.clone()
    for _ in range(RESAMPLE_TRIES):
        row[tok] = -float("inf")
        tok = int(sample(row, sampling, generator))
        if tok not in special_ids or tok in eos_ids:
            return tok
    return min(eos_ids)
