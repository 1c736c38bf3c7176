"""Generate Boolean block queries with a (LoRA) causal language model.

>>> gen = QueryGenerator.default()                       # the small model shipped with blockgen
>>> gen = QueryGenerator.from_pretrained("llama-3.2-3b", adapter="my-lora")   # local dirs
>>> [[q.text for q in cands] for cands in gen.generate(["climate change misinformation"], n=3)]

``constrained=True`` (default) decodes through ``grammar/boolean_block.lark`` with llguidance
and blockgen's budget-aware closing (:mod:`blockgen.constrained`): every output parses, for
any ``max_new_tokens >= 1``. ``constrained=False`` samples freely and repairs the text
afterwards (:func:`blockgen.repair.repair`). With ``no_repeats=True`` (default) no term is
written twice (:mod:`blockgen.repeats`). With a ``lexicon`` (:mod:`blockgen.lexicon`; the default
model has one) every word written is a known word or a word of the prompt.

This module keeps loading (:mod:`blockgen.loading`), batching, and ranking; the decoding loop
is :mod:`blockgen.decoding`, the sampler :mod:`blockgen.sampling`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from blockgen.constrained import MIN_BUDGET, GrammarEngine
from blockgen.errors import AdapterMismatchError, GenerationError, ModelLoadError
from blockgen.lexicon import Lexicon
from blockgen.query import Node
from blockgen.sampling import Sampling

__all__ = [
    "QueryGenerator", "GeneratedQuery", "Sampling", "GenerationError", "ModelLoadError", "AdapterMismatchError",
    "DEFAULT_TEMPLATE", "DEFAULT_MODEL_DIR", "MIN_BUDGET", "check_template",
]

DEFAULT_TEMPLATE = "{keywords}. Output:"
#: The token budget of a query when neither ``generate`` nor the generator is given one.
DEFAULT_BUDGET = 128
#: Each round after the first (too few distinct queries) samples this much hotter, relatively.
ROUND_HEAT = 0.25
#: Where the embedded default model lives inside the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


@dataclass
class GeneratedQuery:
    """One generated candidate.

    ``text``: the final query text (canonical format when valid); ``raw_text``: what the model
    wrote; ``query``: the parsed tree (``None`` only if free text could not be repaired);
    ``valid``: ``text`` parses; ``repaired``: repair changed free output; ``logprob``: the
    model's log-probability of the written tokens; ``tokens``: tokens written; ``seconds``:
    wall time until this candidate was finished (its batch's prefill included);
    ``cut_off``: decoding stopped at ``max_new_tokens`` rather than at EOS;
    ``steered``: budget-aware closing (or the repeat rule) changed at least one token;
    ``dropped_repeats``: repeated terms dropped from ``text`` by the final pass (the budget
    forced them, or free output had them); ``note``: why the candidate is not valid, if so;
    ``anchored``: ``text`` is the model's query rebuilt on the prompt's concepts
    (:mod:`blockgen.anchor`; ``raw_text`` keeps what the model wrote).
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
    dropped_repeats: int = 0
    note: str = ""
    anchored: bool = False

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(self.tokens, 1)


def check_template(template: Any) -> str:
    """``template`` if it is a prompt template with ``{keywords}`` and no other field, else :class:`GenerationError`."""
    if not isinstance(template, str):
        raise GenerationError(f"the prompt template must be a str, not {type(template).__name__}")
    hint = "(write a literal brace as {{ or }})"
    try:
        fields = [name for _, name, _spec, _conv in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise GenerationError(f"the prompt template {template!r} does not format: {err} {hint}") from None
    others = sorted({f for f in fields if f != "keywords"})
    if others:
        shown = ", ".join("{" + f + "}" for f in others)
        raise GenerationError(f"the prompt template {template!r} may use only the field {{keywords}}, not {shown} {hint}")
    if "keywords" not in fields:
        raise GenerationError(f"the prompt template {template!r} must contain {{keywords}}")
    try:
        template.format(keywords="x")
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as err:
        raise GenerationError(f"the prompt template {template!r} does not format: {err}") from None
    return template


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GenerationError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


class QueryGenerator:
    """A causal LM (plus optional LoRA adapter) that writes Boolean block queries.

    ``threads``: torch intra-op threads while decoding (``None``: the thread policy of
    :func:`blockgen.decoding.thread_policy`); ``mask_threads``: llguidance's threads for
    the grammar masks; ``lexicon``: the :class:`blockgen.Lexicon` that :meth:`generate` uses
    unless told otherwise (``None``: none; the default model uses the English word list);
    ``reranker``: a :class:`blockgen.Reranker` (or a function that makes one, called on first
    use) that :meth:`generate` applies to ``n * oversample`` candidates unless told otherwise;
    ``max_new_tokens``: the token budget of :meth:`generate` when it is not given (the default
    model's ``generation_config.json`` sets 64).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        template: str = DEFAULT_TEMPLATE,
        device: Optional[str] = None,
        threads: Optional[int] = None,
        mask_threads: int = 1,
        lexicon: Optional[Lexicon] = None,
        reranker: Any = None,
        oversample: int = 2,
        max_new_tokens: int = DEFAULT_BUDGET,
    ):
        from blockgen.decoding import ModelRunner
        from blockgen.loading import eos_ids, resolve_device

        self.template = check_template(template)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError("blockgen needs a fast (Rust) Hugging Face tokenizer (tokenizer.json)")
        self.device = resolve_device(device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        try:
            self.model.to(self.device)
        except (RuntimeError, ValueError, TypeError) as err:
            raise ModelLoadError(f"could not move the model to {self.device}: {str(err).splitlines()[0][:200]}") from None
        self.eos_ids = eos_ids(model, tokenizer)
        if not self.eos_ids:
            raise ModelLoadError("the tokenizer has no EOS token; blockgen needs one to end a query")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.threads = None if threads is None else _whole(threads, "threads", 1)
        self.mask_threads = _whole(mask_threads, "mask_threads", 1)
        if lexicon is not None and not isinstance(lexicon, Lexicon):
            raise GenerationError(f"lexicon must be a blockgen.Lexicon or None, not {type(lexicon).__name__}")
        self.lexicon = lexicon
        self._reranker_source = reranker
        self.oversample = _whole(oversample, "oversample", 1)
        self.max_new_tokens = _whole(max_new_tokens, "max_new_tokens", MIN_BUDGET)
        self._runner = ModelRunner(self.model, self.device)
        self._engine: Optional[GrammarEngine] = None

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
        **options: Any,
    ) -> "QueryGenerator":
        """Load a local Hugging Face causal LM directory and, optionally, a PEFT LoRA adapter directory.

        ``dtype``: ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``None`` (the checkpoint's own).
        Nothing is downloaded: both must be local directories. ``options``: ``threads``,
        ``mask_threads`` (see the class).
        """
        from blockgen.loading import load_adapter, load_base, resolve_device

        check_template(template)
        device = resolve_device(device)  # a bad device fails before the weights are read
        model, tokenizer = load_base(base, dtype=dtype)
        if adapter is not None:
            model = load_adapter(model, adapter, merge=merge)
        return cls(model, tokenizer, template=template, device=device, **options)

    @classmethod
    def default(cls, device: Optional[str] = None, **options: Any) -> "QueryGenerator":
        """The embedded default model: all-MiniLM-L6-v2 (installed package) + the shipped LoRA adapter.

        ``options`` (``template``, ``threads``, ``mask_threads``) are those of the class."""
        from blockgen.minilm import load_default

        return load_default(device=device, **options)

    @property
    def engine(self) -> GrammarEngine:
        """The grammar engine of this generator's tokenizer (built on first use)."""
        if self._engine is None:
            self._engine = GrammarEngine.for_tokenizer(self.tokenizer)
        return self._engine

    # ------------------------------------------------------------------ generation
    def sampling_defaults(self) -> tuple[float, float]:
        """``(temperature, top_p)`` used when :meth:`generate` is not given them.

        Read from the model's generation config when it asks for sampling
        (``do_sample: true`` in ``generation_config.json``, the Hugging Face convention; the
        embedded default model ships its own), else ``(1.0, 1.0)``: plain sampling.
        """
        import math

        config = getattr(self.model, "generation_config", None)
        if config is None or not getattr(config, "do_sample", False):
            return 1.0, 1.0
        t, p = getattr(config, "temperature", None), getattr(config, "top_p", None)
        valid_t = isinstance(t, (int, float)) and math.isfinite(t) and t >= 0
        valid_p = isinstance(p, (int, float)) and math.isfinite(p) and 0 < p <= 1
        return (float(t) if valid_t else 1.0), (float(p) if valid_p else 1.0)

    def prompt_for(self, keywords: str) -> str:
        """The model prompt for ``keywords`` (the template filled in)."""
        return check_template(self.template).format(keywords=keywords.strip())

    def _sampling(self, sampling: Optional[Sampling], temperature, top_p, seed) -> Sampling:
        if sampling is not None:
            if not isinstance(sampling, Sampling):
                raise GenerationError(f"sampling must be a blockgen.Sampling, not {type(sampling).__name__}")
            if temperature is not None or top_p is not None or seed is not None:
                raise GenerationError("give sampling=Sampling(...) or temperature/top_p/seed, not both")
            return sampling
        default_t, default_p = self.sampling_defaults()
        return Sampling(
            temperature=default_t if temperature is None else temperature,
            top_p=default_p if top_p is None else top_p,
            seed=seed,
        )

    def generate(
        self,
        prompts: Union[str, Sequence[str]],
        n: int = 10,
        constrained: bool = True,
        max_new_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        batch_size: int = 32,
        max_rounds: int = 3,
        progress: bool = False,
        *,
        sampling: Optional[Sampling] = None,
        no_repeats: bool = True,
        lexicon: Union[None, bool, Lexicon] = None,
        rerank: Optional[bool] = None,
        anchor: Optional[bool] = None,
    ) -> list[list[GeneratedQuery]]:
        """Write ``n`` distinct candidate queries for each prompt (keywords), best first.

        Returns one list per prompt, deduplicated on the query text and ranked valid first,
        then by the model's log-probability (highest first). When sampling gives fewer than
        ``n`` distinct queries, up to ``max_rounds`` rounds are drawn, each later round a little
        hotter (temperature x (1 + :data:`ROUND_HEAT` x round), at most 1.5 or the given
        temperature if higher); a list may then be shorter than ``n`` (with ``temperature=0``
        there is one distinct candidate).

        ``temperature``, ``top_p`` and ``seed`` (or one ``sampling=Sampling(...)``): left as
        ``None`` they take the model's own defaults (:meth:`sampling_defaults`).
        ``no_repeats``: refuse tokens that complete a term already in the query while
        decoding, and drop any repeat the budget forced (or free output has) at the end.
        ``lexicon``: every word written must be a word of this :class:`blockgen.Lexicon` or of
        the prompt (:mod:`blockgen.lexicon`); ``None``: the generator's own (``self.lexicon``),
        ``True``: the English word list, ``False``: no lexicon.
        ``rerank``: draw ``n * self.oversample`` candidates and keep the ``n`` that
        ``self.reranker`` ranks first (:mod:`blockgen.rerank`: closest in meaning to the prompt);
        ``None``: when the generator has a reranker (the default model does), ``False``: never.
        ``anchor``: when reranking, rebuild each candidate on the prompt's own concepts with the
        model's close synonyms (:mod:`blockgen.anchor`); ``None``: when the reranker has anchor
        settings (the default model's does), ``False``: never.
        Free decoding (``constrained=False``) can run out of budget before anything
        repairable is written: such candidates are returned with ``valid=False`` and a
        ``note``, ranked last.
        """
        from blockgen.tokens import token_table

        sampling = self._sampling(sampling, temperature, top_p, seed)
        if isinstance(prompts, str):
            prompt_list = [prompts]
        else:
            try:
                prompt_list = list(prompts)
            except TypeError:
                raise GenerationError(f"prompts must be a str or a list of str, not {type(prompts).__name__}") from None
        if not prompt_list:
            raise GenerationError("no prompts given")
        for i, p in enumerate(prompt_list):
            if not isinstance(p, str):
                raise GenerationError(f"prompt {i} is a {type(p).__name__}, not a str")
            if not p.strip():
                raise GenerationError(f"prompt {i} is empty: give the keywords the query is about")
        _whole(n, "n", 1)
        if anchor is not None and not isinstance(anchor, bool):
            raise GenerationError(f"anchor must be True, False or None, not {anchor!r}")
        reranker = self._reranker(rerank)
        want = n * self.oversample if reranker is not None else n
        if max_new_tokens is None:
            max_new_tokens = self.max_new_tokens
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < MIN_BUDGET:
            raise GenerationError(
                f"max_new_tokens={max_new_tokens!r} is below the minimum of {MIN_BUDGET}: a query needs at least one token"
            )
        _whole(batch_size, "batch_size", 1)
        _whole(max_rounds, "max_rounds", 1)
        engine = self.engine if constrained else None
        table = engine.tokens if engine is not None else token_table(self.tokenizer).tokens
        special = engine.special_ids if engine is not None else frozenset(token_table(self.tokenizer).special_token_ids)
        generator = sampling.generator()
        encoded = [self._encode(self.prompt_for(p)) for p in prompt_list]
        lexicon_rows = self._lexicon_rows(lexicon, prompt_list, table, special)

        found: list[dict[str, GeneratedQuery]] = [dict() for _ in prompt_list]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(prompt_list) * want, desc="generating", unit="query")
        from blockgen.decoding import decode, thread_policy

        with thread_policy(self._runner, self.threads):
            for round_ in range(max_rounds):
                todo = [(i, want - len(found[i])) for i in range(len(prompt_list)) if len(found[i]) < want]
                if not todo:
                    break
                rows = [i for i, missing in todo for _ in range(missing if round_ == 0 else max(missing, 2))]
                heat = sampling.temperature * (1 + ROUND_HEAT * round_)
                step_sampling = sampling if round_ == 0 or sampling.greedy else Sampling(
                    temperature=max(sampling.temperature, min(heat, 1.5)), top_p=sampling.top_p, seed=sampling.seed)
                for start in range(0, len(rows), batch_size):
                    chunk = rows[start : start + batch_size]
                    decoded = decode(
                        self._runner,
                        [encoded[i] for i in chunk],
                        tokens=table,
                        pad_id=self.pad_id,
                        eos_ids=self.eos_ids,
                        max_new_tokens=max_new_tokens,
                        sampling=step_sampling,
                        generator=generator,
                        engine=engine,
                        no_repeats=no_repeats,
                        mask_threads=self.mask_threads,
                        special_ids=special,
                        lexicons=None if lexicon_rows is None else [lexicon_rows[i].sibling() for i in chunk],
                    )
                    for idx, row in zip(chunk, decoded):
                        result = _result(row, constrained, no_repeats, max_new_tokens)
                        before = len(found[idx])
                        known = found[idx].get(result.text)
                        if known is None or known.logprob < result.logprob:
                            found[idx][result.text] = result
                        if bar is not None and len(found[idx]) > before and len(found[idx]) <= want:
                            bar.update(1)
                if sampling.greedy:
                    break
        if bar is not None:
            bar.close()
        ranked = [sorted(d.values(), key=lambda g: (not g.valid, -g.logprob))[:want] for d in found]
        if reranker is None:
            return ranked
        extra = {} if anchor is None else {"anchor": anchor}  # a reranker of one's own may not know it
        return [reranker.rerank(p, cands, n, **extra) for p, cands in zip(prompt_list, ranked)]

    @property
    def reranker(self) -> Any:
        """The generator's reranker (made on first use), or ``None``."""
        source = self._reranker_source
        if source is not None and not hasattr(source, "rerank") and callable(source):
            self._reranker_source = source = source()
        return source

    def _reranker(self, rerank: Optional[bool]) -> Any:
        if rerank is None:
            return self.reranker
        if not isinstance(rerank, bool):
            raise GenerationError(f"rerank must be True, False or None, not {rerank!r}")
        if not rerank:
            return None
        if self.reranker is None:
            from blockgen.rerank import default_reranker

            return default_reranker()
        return self.reranker

    def _lexicon_rows(self, lexicon: Union[None, bool, Lexicon], prompts: Sequence[str], table: Sequence[bytes],
                      special: Any) -> Optional[list]:
        """One :class:`blockgen.lexicon.LexiconRow` per prompt (its words added), or ``None``: no lexicon."""
        from blockgen.lexicon import TokenLexicon, english_lexicon

        if lexicon is None:
            lexicon = self.lexicon
        if lexicon is True:
            try:
                lexicon = english_lexicon()
            except ValueError as err:
                raise GenerationError(str(err)) from None
        if lexicon is None or lexicon is False:
            return None
        if not isinstance(lexicon, Lexicon):
            raise GenerationError(f"lexicon must be a blockgen.Lexicon, True, False or None, not {type(lexicon).__name__}")
        vocab = TokenLexicon.for_tokens(table, special)
        return [vocab.row(lexicon.with_words([p])) for p in prompts]

    def _encode(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer(prompt).input_ids)
        if not ids:
            raise GenerationError(f"the prompt {prompt!r} encodes to no tokens")
        return ids


def _result(row, constrained: bool, no_repeats: bool, budget: int) -> GeneratedQuery:
    """The :class:`GeneratedQuery` of one decoded row (parse, or repair for free output; drop repeats)."""
    from blockgen.parser import QuerySyntaxError, parse
    from blockgen.repeats import drop_repeated_terms, repeated_terms

    raw = row.text
    cut_off = not row.ended
    tokens = len(row.ids) + (0 if cut_off else 1)
    common = dict(raw_text=raw, logprob=row.logprob, tokens=tokens, seconds=row.seconds, cut_off=cut_off)
    query: Optional[Node]
    repaired = False
    note = ""
    try:
        query = parse(raw)
    except QuerySyntaxError as err:
        query = None
        if constrained:  # a bug: budget-aware closing guarantees a query
            note = f"constrained output does not parse: {str(err).splitlines()[0]}"
        else:
            from blockgen.repair import try_repair

            fixed = try_repair(raw, cut_off=cut_off)  # a cut last word may be half-written
            if fixed is not None:
                query, repaired = fixed.query, True
            else:
                note = (
                    f"free decoding wrote nothing repairable within max_new_tokens={budget}"
                    if cut_off
                    else "free decoding wrote no term"
                ) + " (constrained decoding always writes a valid query)"
    if query is None:
        return GeneratedQuery(raw.strip(), query=None, valid=False, repaired=False, steered=row.steered, note=note, **common)
    dropped = 0
    if no_repeats:
        dropped = len(repeated_terms(query))
        if dropped:
            query = drop_repeated_terms(query)
    return GeneratedQuery(str(query), query=query, valid=True, repaired=repaired, steered=row.steered, dropped_repeats=dropped, **common)
