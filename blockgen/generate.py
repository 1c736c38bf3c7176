"""Generate Boolean block queries with a (LoRA) causal language model.

>>> gen = QueryGenerator.default()                       # the small model shipped with blockgen
>>> gen = QueryGenerator.from_pretrained("llama-3.2-3b", adapter="my-lora")   # local dirs
>>> [[q.text for q in cands] for cands in gen.generate(["climate change misinformation"], n=3)]

``constrained=True`` (default) decodes through ``grammar/boolean_block.lark`` with Outlines'
llguidance logits processor and blockgen's budget-aware closing (:mod:`blockgen.constrained`):
every output parses, for any ``max_new_tokens >= 1``. ``constrained=False`` samples freely and
repairs the text afterwards (:func:`blockgen.repair.repair`).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from blockgen.constrained import MIN_BUDGET, Need, need_of, token_classes
from blockgen.grammar import grammar_text
from blockgen.parser import QuerySyntaxError, parse
from blockgen.query import Node

DEFAULT_TEMPLATE = "{keywords}. Output:"
#: Where the embedded default model lives inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
#: How many other tokens are tried when a sampled token would not leave enough budget.
RESAMPLE_TRIES = 8


class GenerationError(ValueError):
    """Bad input to generation (empty prompt, budget below the minimum, bad options)."""


class ModelLoadError(ValueError):
    """A model or adapter directory that is missing, incomplete or unusable."""


class AdapterMismatchError(ModelLoadError):
    """A LoRA adapter that does not fit the base model it is loaded onto."""


@dataclass
class GeneratedQuery:
    """One generated candidate.

    ``text``: the final query text (canonical format when valid); ``raw_text``: what the model
    wrote; ``query``: the parsed tree (``None`` only if free text could not be repaired);
    ``valid``: ``text`` parses; ``repaired``: repair changed free output; ``logprob``: the
    model's log-probability of the written tokens; ``tokens``: tokens written; ``seconds``:
    wall time until this candidate was finished (its batch's prefill included);
    ``cut_off``: decoding stopped at ``max_new_tokens`` rather than at EOS;
    ``steered``: budget-aware closing changed at least one token.
    """

    text: str
    raw_text: str
    query: Optional[Node]
    valid: bool
    repaired: bool
    logprob: float
    tokens: int
    seconds: float
    cut_off: bool
    steered: bool = False

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(self.tokens, 1)


def _resolve_device(device: Optional[str]) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_dir(path: Union[str, Path], what: str, required: Sequence[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"{what} directory not found: {p}")
    if not p.is_dir():
        raise ModelLoadError(f"{what} must be a directory, not a file: {p}")
    missing = [name for name in required if not (p / name).exists()]
    if missing:
        raise ModelLoadError(f"{what} directory {p} has no {', '.join(missing)} (is it a Hugging Face model directory?)")
    return p


@dataclass
class _Row:
    """Decoding state of one sequence."""

    prompt_index: int
    ids: list[int] = field(default_factory=list)
    text: bytes = b""
    logprob: float = 0.0
    done: bool = False
    cut_off: bool = False
    steered: bool = False
    seconds: float = 0.0
    forced: list[int] = field(default_factory=list)
    closing: bool = False
    processor: Any = None
    need: Optional[Need] = None


class QueryGenerator:
    """A causal LM (plus optional LoRA adapter) that writes Boolean block queries."""

    def __init__(self, model: Any, tokenizer: Any, template: str = DEFAULT_TEMPLATE, device: Optional[str] = None):
        import torch

        if "{keywords}" not in template:
            raise GenerationError("the prompt template must contain '{keywords}'")
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError("blockgen needs a fast (Rust) Hugging Face tokenizer (tokenizer.json)")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.device = _resolve_device(device)
        self.model.to(self.device)
        self._torch = torch
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif gen_eos:
            eos.update(gen_eos)
        self.eos_ids = {e for e in eos if e is not None}
        if not self.eos_ids:
            raise ModelLoadError("the tokenizer has no EOS token; blockgen needs one to end a query")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self._llg_tokenizer = None
        self._grammar_spec = None
        self._tokens: Optional[list[bytes]] = None
        # transformers 5.x renamed past_key_values to cache; support both spellings.
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        base: Union[str, Path],
        adapter: Union[str, Path, None] = None,
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        template: str = DEFAULT_TEMPLATE,
        merge: bool = True,
    ) -> "QueryGenerator":
        """Load a local Hugging Face causal LM directory and, optionally, a PEFT LoRA adapter directory.

        ``dtype``: ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``None`` (the checkpoint's own).
        Nothing is downloaded: both must be local directories.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base_dir = _check_dir(base, "base model", ["config.json"])
        torch_dtype = None
        if dtype is not None:
            if dtype not in ("float32", "float16", "bfloat16"):
                raise ModelLoadError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
            torch_dtype = getattr(torch, dtype)
        try:
            tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=torch_dtype)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"could not load the base model from {base_dir}: {err}") from None
        if adapter is not None:
            model = _load_adapter(model, adapter, merge=merge)
        return cls(model, tokenizer, template=template, device=device)

    @classmethod
    def default(cls, device: Optional[str] = None) -> "QueryGenerator":
        """The embedded default model: all-MiniLM-L6-v2 (installed package) + the shipped LoRA adapter."""
        from blockgen.minilm import load_default

        return load_default(device=device)

    # ------------------------------------------------------------------ grammar engine
    def _processor(self):
        """A fresh Outlines llguidance logits processor for one sequence."""
        import llguidance
        from outlines.backends.llguidance import LLGuidanceLogitsProcessor

        from blockgen.tokens import load_llguidance_tokenizer

        if self._llg_tokenizer is None:
            self._llg_tokenizer = load_llguidance_tokenizer(self.tokenizer)
            self._grammar_spec = llguidance.grammar_from("lark", grammar_text())
        # The numpy path of the processor: llguidance's torch path wraps its kernel in
        # torch.compile, which costs ~3 s on the first call and ~7 ms a step on CPU here,
        # against ~0.01 s and ~0.8 ms (python /tmp/np.py numpy|torch, see benchmarks).
        return LLGuidanceLogitsProcessor(self._grammar_spec, self._llg_tokenizer, "numpy")

    def _encode_closers(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    # ------------------------------------------------------------------ generation
    def sampling_defaults(self) -> tuple[float, float]:
        """``(temperature, top_p)`` used when :meth:`generate` is not given them.

        Read from the model's generation config when it asks for sampling
        (``do_sample: true`` in ``generation_config.json``, the Hugging Face convention; the
        embedded default model ships 0.5 and 0.95), else ``(1.0, 1.0)``: plain sampling.
        """
        config = getattr(self.model, "generation_config", None)
        if config is None or not getattr(config, "do_sample", False):
            return 1.0, 1.0
        t, p = getattr(config, "temperature", None), getattr(config, "top_p", None)
        valid_t = isinstance(t, (int, float)) and t >= 0
        valid_p = isinstance(p, (int, float)) and 0 < p <= 1
        return (float(t) if valid_t else 1.0), (float(p) if valid_p else 1.0)

    def prompt_for(self, keywords: str) -> str:
        """The model prompt for ``keywords`` (the template filled in)."""
        return self.template.format(keywords=keywords.strip())

    def generate(
        self,
        prompts: Union[str, Sequence[str]],
        n: int = 10,
        constrained: bool = True,
        max_new_tokens: int = 128,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        batch_size: int = 32,
        max_rounds: int = 3,
        progress: bool = False,
    ) -> list[list[GeneratedQuery]]:
        """Write ``n`` distinct candidate queries for each prompt (keywords), best first.

        Returns one list per prompt, deduplicated on the query text and ranked by the
        model's log-probability (highest first). When sampling gives fewer than ``n``
        distinct queries, up to ``max_rounds`` rounds are drawn; a list may then be shorter
        than ``n`` (with ``temperature=0`` there is one distinct candidate).

        ``temperature`` and ``top_p`` left as ``None`` take the model's own defaults
        (:meth:`sampling_defaults`: its ``generation_config.json``, else 1.0 and 1.0).
        """
        import torch

        default_t, default_p = self.sampling_defaults()
        temperature = default_t if temperature is None else temperature
        top_p = default_p if top_p is None else top_p

        single = isinstance(prompts, str)
        prompt_list = [prompts] if single else list(prompts)
        if not prompt_list:
            raise GenerationError("no prompts given")
        for i, p in enumerate(prompt_list):
            if not isinstance(p, str):
                raise GenerationError(f"prompt {i} is a {type(p).__name__}, not a str")
            if not p.strip():
                raise GenerationError(f"prompt {i} is empty: give the keywords the query is about")
        if not isinstance(n, int) or n < 1:
            raise GenerationError(f"n must be a whole number >= 1, not {n!r}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < MIN_BUDGET:
            raise GenerationError(
                f"max_new_tokens={max_new_tokens!r} is below the minimum of {MIN_BUDGET}: "
                "a query needs at least one token"
            )
        if temperature < 0 or not 0 < top_p <= 1:
            raise GenerationError("temperature must be >= 0 and top_p in (0, 1]")
        generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % (2**63))

        found: list[dict[str, GeneratedQuery]] = [dict() for _ in prompt_list]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(prompt_list) * n, desc="generating", unit="query")
        for _round in range(max_rounds):
            todo = [(i, n - len(found[i])) for i in range(len(prompt_list)) if len(found[i]) < n]
            if not todo:
                break
            rows = [i for i, missing in todo for _ in range(missing if _round == 0 else max(missing, 2))]
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                for cand in self._decode(
                    [self.prompt_for(prompt_list[i]) for i in chunk],
                    chunk,
                    constrained,
                    max_new_tokens,
                    temperature,
                    top_p,
                    generator,
                ):
                    idx, result = cand
                    key = result.text
                    before = len(found[idx])
                    if key not in found[idx] or found[idx][key].logprob < result.logprob:
                        found[idx][key] = result
                    if bar is not None and len(found[idx]) > before and len(found[idx]) <= n:
                        bar.update(1)
            if temperature == 0:
                break
        if bar is not None:
            bar.close()
        ranked = [sorted(d.values(), key=lambda g: g.logprob, reverse=True)[:n] for d in found]
        return ranked

    def _decode(self, prompts, indices, constrained, max_new_tokens, temperature, top_p, generator):
        """Decode one batch; yields ``(prompt_index, GeneratedQuery)``."""
        torch = self._torch
        t0 = time.perf_counter()
        encoded = [self.tokenizer(p).input_ids for p in prompts]
        width = max(len(e) for e in encoded)
        input_ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for r, ids in enumerate(encoded):
            input_ids[r, width - len(ids) :] = torch.tensor(ids)
            attention[r, width - len(ids) :] = 1
        rows = [_Row(prompt_index=i) for i in indices]
        if constrained:
            for row in rows:
                row.processor = self._processor()
                row.need = need_of(b"")
        vocab = len(self.tokenizer)
        classes = token_classes(self._token_bytes()) if constrained else None
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
        past = None
        step_ids, step_mask, step_pos = input_ids, attention, position_ids
        with torch.no_grad():
            for step in range(max_new_tokens):
                out = self.model(
                    input_ids=step_ids,
                    attention_mask=step_mask,
                    position_ids=step_pos,
                    use_cache=True,
                    **{self._cache_kw: past},
                )
                past = getattr(out, self._cache_kw)
                logits = out.logits[:, -1, :].float().cpu()
                remaining = max_new_tokens - step
                next_tokens = []
                for r, row in enumerate(rows):
                    if row.done:
                        next_tokens.append(self.pad_id)
                        continue
                    tok = self._choose(row, logits[r], vocab, remaining, constrained, temperature, top_p, generator, classes)
                    next_tokens.append(tok)
                    row.logprob += float(torch.log_softmax(logits[r], -1)[tok])
                    if tok in self.eos_ids:
                        row.done, row.seconds = True, time.perf_counter() - t0
                        continue
                    row.ids.append(tok)
                    if constrained:
                        row.text += self._token_bytes()[tok]
                        if row.closing and row.forced:
                            continue  # the closers were counted when they were planned
                        row.closing = False
                        row.need = need_of(row.text)
                        if row.need is None:  # blockgen let through a token it cannot finish: a bug
                            raise RuntimeError(f"no valid completion of {row.text!r}")
                if all(row.done for row in rows):
                    break
                step_ids = torch.tensor(next_tokens, dtype=torch.long, device=self.device)[:, None]
                alive = torch.tensor([0 if row.done else 1 for row in rows], dtype=torch.long, device=self.device)[:, None]
                attention = torch.cat([attention, alive], dim=1)
                step_mask = attention
                step_pos = position_ids[:, -1:] + 1
                position_ids = torch.cat([position_ids, step_pos], dim=1)
        elapsed = time.perf_counter() - t0
        for row in rows:
            if not row.done:
                row.cut_off, row.seconds = True, elapsed
            yield row.prompt_index, self._result(row, constrained)

    def _token_bytes(self) -> list[bytes]:
        if self._tokens is None:
            from blockgen.tokens import token_table

            self._tokens = token_table(self.tokenizer).tokens
        return self._tokens

    def _choose(self, row, logits, vocab, remaining, constrained, temperature, top_p, generator, classes) -> int:
        """Pick the next token of one row (grammar mask, then the budget rule)."""
        torch = self._torch
        logits = logits.clone()
        if logits.shape[0] > vocab:
            logits[vocab:] = -math.inf
        if not constrained:
            return _sample(logits, temperature, top_p, generator)
        row_ids = np.array([[row.ids[-1] if row.ids else self.pad_id]], dtype=np.int64)
        masked = row.processor.process_logits(row_ids, logits[None, :vocab].numpy().copy())[0]
        logits[:vocab] = torch.from_numpy(masked)
        if row.forced:
            tok = row.forced.pop(0)
            if logits[tok] == -math.inf:  # the grammar engine and blockgen disagree: a bug
                raise RuntimeError(f"closing token {tok} is not allowed after {row.text!r}")
            return tok
        need = row.need
        if need.tokens(self._encode_closers) >= remaining:
            return self._finish_step(row, logits, remaining, temperature, top_p, generator, classes)
        tried = logits.clone()
        for _ in range(RESAMPLE_TRIES):
            tok = _sample(tried, temperature, top_p, generator)
            if tok in self.eos_ids:
                return tok
            new_need = need_of(row.text + self._token_bytes()[tok])
            if new_need is not None and new_need.tokens(self._encode_closers) <= remaining - 1:
                return tok
            row.steered = True
            tried[tok] = -math.inf
            if torch.isinf(tried).all():
                break
        return self._finish_step(row, logits, remaining, temperature, top_p, generator, classes)

    def _finish_step(self, row, logits, remaining, temperature, top_p, generator, classes) -> int:
        """Spend this step on finishing the query: a missing character or term, else a closer."""
        torch = self._torch
        row.steered = True
        need = row.need
        if need.complete:
            return min(self.eos_ids)
        if need.head and not need.open_bytes:
            row.forced = self._encode_closers(need.head)
            return row.forced.pop(0)
        if need.open_bytes or need.terms:
            allowed = classes.single_byte if need.open_bytes else classes.content
            restricted = logits.clone()
            restricted[: allowed.shape[0]][~allowed] = -math.inf
            restricted[allowed.shape[0] :] = -math.inf
            for _ in range(RESAMPLE_TRIES * 4):
                if torch.isinf(restricted).all():
                    break
                tok = _sample(restricted, temperature, top_p, generator)
                new_need = need_of(row.text + self._token_bytes()[tok])
                if new_need is not None and new_need.tokens(self._encode_closers) <= remaining - 1:
                    return tok
                restricted[tok] = -math.inf
            raise RuntimeError(  # the closing rule's guarantee failed: a bug, not a user error
                f"blockgen could not finish the query {row.text!r} within the budget"
            )
        row.forced = self._encode_closers(need.closers)
        row.closing = True
        return row.forced.pop(0)

    def _result(self, row: _Row, constrained: bool) -> GeneratedQuery:
        raw = row.text.decode("utf-8", "replace") if constrained else _decode_free(self.tokenizer, row.ids)
        tokens = len(row.ids) + (0 if row.cut_off else 1)
        if constrained:
            try:
                query: Optional[Node] = parse(raw)
            except QuerySyntaxError:
                query = None
            text = str(query) if query is not None else raw.strip()
            return GeneratedQuery(text, raw, query, query is not None, False, row.logprob, tokens, row.seconds, row.cut_off, row.steered)
        from blockgen.repair import try_repair

        try:
            query = parse(raw)
            return GeneratedQuery(str(query), raw, query, True, False, row.logprob, tokens, row.seconds, row.cut_off)
        except QuerySyntaxError:
            pass
        fixed = try_repair(raw, cut_off=row.cut_off)  # a cut last word may be half-written
        if fixed is None:
            return GeneratedQuery(raw.strip(), raw, None, False, False, row.logprob, tokens, row.seconds, row.cut_off)
        return GeneratedQuery(fixed.text, raw, fixed.query, True, True, row.logprob, tokens, row.seconds, row.cut_off)


def _decode_free(tokenizer: Any, ids: Sequence[int]) -> str:
    """What free decoding wrote: the tokenizer's decoding, or the token bytes for WordPiece."""
    from blockgen import wordpiece

    if wordpiece.is_wordpiece(tokenizer):
        return wordpiece.decode(tokenizer, ids)
    return tokenizer.decode(ids, skip_special_tokens=True)


def _sample(logits, temperature: float, top_p: float, generator) -> int:
    """Sample a token id from ``logits`` (greedy when ``temperature == 0``)."""
    import torch

    if temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, 0) - sorted_probs < top_p
        keep[0] = True
        filtered = torch.zeros_like(probs)
        filtered[order[keep]] = probs[order[keep]]
        probs = filtered
    if not torch.isfinite(probs).all() or float(probs.sum()) <= 0:
        return int(torch.argmax(logits))
    return int(torch.multinomial(probs, 1, generator=generator))


def _load_adapter(model: Any, adapter: Union[str, Path], merge: bool) -> Any:
    """Apply a PEFT LoRA adapter directory to ``model``, with clear errors when it does not fit."""
    from peft import PeftModel

    adapter_dir = _check_dir(adapter, "adapter", ["adapter_config.json"])
    try:
        with warnings.catch_warnings():
            # peft asks transformers 5 for a renamed property; the notice is not the user's business.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AdapterMismatchError(f"the adapter in {adapter_dir} does not fit this base model: {first[:300]}") from None
    return peft_model.merge_and_unload() if merge else peft_model
