"""Closing a query at the token budget: an engine's grammar mask plus repair, vs blockgen's own closing.

    python -m benchmarks.closing                                  # default model, held-out prompts
    python -m benchmarks.closing --budgets 16,64 --n 5 --limit 10
    python -m benchmarks.closing --model BASE --adapter LORA      # another local model

vLLM, SGLang and llama.cpp mask tokens with the grammar but do not plan for the end of the
budget: a query cut at ``max_tokens`` is usually unfinished. Two ways, on the same prompts,
samples, sampling settings (the model's own temperature and top-p) and seeds:

* ``engine``: grammar-masked decoding only, cut at the budget, then
  ``blockgen.repair(text, cut_off=True)`` for every output the budget cut. Decoded with
  transformers' ``model.generate`` and Outlines' llguidance logits processor compiled from
  ``blockgen.export.grammar("vllm")``: what vLLM's guidance backend does (an llguidance
  matcher per sequence, a token bitmask per step, end of sequence allowed once the grammar
  accepts, nothing else near the budget);
* ``blockgen``: ``QueryGenerator.generate(constrained=True)``, the same grammar plus
  budget-aware closing.

Reported per budget and way: valid as written (parses; for the engine a cut output may
parse with a half-written last word), valid after repair, cut off by the budget,
terms per final query, terms the model wrote that repair dropped, and (with
sentence-transformers) the similarity of the final query to the reference, ``(cos+1)/2``
with all-MiniLM-L6-v2: the Sim4IA session's next query, or the CLEF TAR experts' query.
Writes ``benchmarks/results/closing.json`` and ``closing.png``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks import report
from benchmarks.data import DataError
from benchmarks.heldout import Prompt, choose_prompts, parse_budgets

NAME = "closing"
DEFAULT_BUDGETS = (16, 32, 64)
WAYS = ("engine", "blockgen")


# --------------------------------------------------------------------------- the engine's way
def engine_record(raw: str, cut_off: bool) -> dict[str, Any]:
    """Measure one engine output as a user must treat it.

    An output that ended (end of sequence) is complete: the grammar saw to that. One cut by
    the budget goes through ``repair(text, cut_off=True)`` even when it parses, as its last
    word may be half-written (``climate chan``). ``lost_terms``: complete terms the model
    wrote that the final query lacks.
    """
    from benchmarks.repair import complete_terms, kept_terms
    from blockgen import is_valid, parse, repair, terms
    from blockgen.repair import RepairError

    record: dict[str, Any] = {"raw_text": raw, "cut_off": cut_off, "valid_raw": is_valid(raw)}
    if record["valid_raw"] and not cut_off:
        query = parse(raw)
        record.update(text=str(query), valid=True, repaired=False, terms=len(terms(query)), lost_terms=0)
        return record
    written = complete_terms(raw, cut_off=cut_off)
    try:
        result = repair(raw, cut_off=cut_off)
    except RepairError:
        record.update(text=None, valid=False, repaired=False, terms=0, lost_terms=len(written))
        return record
    record.update(
        text=result.text, valid=True, repaired=bool(result.repaired), terms=len(terms(result.query)),
        lost_terms=len(written) - kept_terms(written, result.query),
    )
    return record


class _NumpyProcessor:
    """Outlines' llguidance processor (numpy path, as blockgen uses it) as a transformers logits processor."""

    def __init__(self, spec: Any, lltok: Any):
        from outlines.backends.llguidance import LLGuidanceLogitsProcessor

        self.inner = LLGuidanceLogitsProcessor(spec, lltok, "numpy")

    def __call__(self, input_ids, scores):
        import numpy as np
        import torch

        masked = self.inner.process_logits(input_ids.cpu().numpy().astype(np.int64), scores.float().cpu().numpy().copy())
        return torch.from_numpy(masked).to(scores.device, scores.dtype)


def _hf_parts(generator: Any) -> tuple[Any, Any]:
    """The ``transformers`` model and tokenizer of ``generator``; for the default model (which
    runs on blockgen's own BERT forward), the same model built with ``transformers`` + ``peft``."""
    model, tokenizer = getattr(generator, "model", None), getattr(generator, "tokenizer", None)
    if model is None or tokenizer is None:
        raise RuntimeError("the QueryGenerator exposes no .model/.tokenizer: the engine way needs the Hugging Face model")
    if not hasattr(model, "generate"):
        from blockgen.bert import Bert

        if not isinstance(model, Bert):
            raise RuntimeError(f"{type(model).__name__} has no generate(): the engine way needs a transformers model")
        model, tokenizer = _transformers_default()
    return model, tokenizer


@lru_cache(maxsize=1)
def _transformers_default() -> tuple[Any, Any]:
    from blockgen.minilm import transformers_default

    return transformers_default()


def engine_decode(generator: Any, spec: Any, lltok: Any, keywords: str, n: int, budget: int, temperature: float, top_p: float, seed: int) -> list[dict[str, Any]]:
    """``n`` samples for one prompt, grammar-masked and cut at ``budget`` (``model.generate``)."""
    import torch
    from transformers import LogitsProcessorList

    model, tokenizer = _hf_parts(generator)
    ids = tokenizer(generator.prompt_for(keywords), return_tensors="pt").input_ids.to(model.device)
    eos = sorted(getattr(generator, "eos_ids", None) or {tokenizer.eos_token_id})
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    torch.manual_seed(seed)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # a finished row keeps being fed padding: llguidance warns, harmlessly
        out = model.generate(
            ids.repeat(n, 1),
            attention_mask=torch.ones((n, ids.shape[1]), dtype=torch.long, device=model.device),
            max_new_tokens=budget,
            logits_processor=LogitsProcessorList([_NumpyProcessor(spec, lltok)]),
            eos_token_id=eos,
            pad_token_id=pad,
            **sampling,
        )
    records = []
    for row in out[:, ids.shape[1] :].tolist():
        ended = next((k for k, t in enumerate(row) if t in eos), None)
        written = row if ended is None else row[:ended]
        raw = tokenizer.decode(written, skip_special_tokens=True)
        records.append(engine_record(raw, cut_off=ended is None and len(row) >= budget))
    return records


# --------------------------------------------------------------------------- blockgen's way
def blockgen_decode(generator: Any, keywords: str, n: int, budget: int, temperature: float, top_p: float, seed: int, batch_size: int) -> list[dict[str, Any]]:
    """``n`` independent samples for one prompt through ``QueryGenerator.generate(constrained=True)``
    (without the model's lexicon and reranking, which the engine way does not have)."""
    from blockgen import is_valid, terms

    # no lexicon and no reranking: the engine way has neither, so only the closing differs
    out = generator.generate([keywords] * n, n=1, constrained=True, max_new_tokens=budget, temperature=temperature, top_p=top_p, seed=seed,
                             batch_size=batch_size, lexicon=False, rerank=False)
    records = []
    for cands in out:
        for c in cands:
            records.append({
                "raw_text": c.raw_text, "cut_off": c.cut_off, "valid_raw": is_valid(c.raw_text), "text": c.text if c.valid else None,
                "valid": c.valid, "repaired": c.repaired, "terms": len(terms(c.query)) if c.query is not None else 0, "lost_terms": 0,
            })
    return records


# --------------------------------------------------------------------------- summary
def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Shares and means over the samples of one (budget, way)."""
    n = len(records)
    valid = [r for r in records if r["valid"]]
    sims = [r["similarity"] for r in valid if r.get("similarity") is not None]
    written_lost = sum(r["lost_terms"] for r in records)
    return {
        "samples": n,
        "valid_raw": sum(r["valid_raw"] for r in records) / n if n else None,
        "valid_final": len(valid) / n if n else None,
        "repaired": sum(r["repaired"] for r in records) / n if n else None,
        "cut_off": sum(r["cut_off"] for r in records) / n if n else None,
        "terms_per_query": statistics.mean(r["terms"] for r in valid) if valid else None,
        "lost_terms_per_query": written_lost / n if n else None,
        "similarity": statistics.mean(sims) if sims else None,
    }


def references(prompts: Sequence[Prompt]) -> dict[str, str]:
    """The reference query of each held-out prompt: the Sim4IA session's next query, the CLEF TAR experts' query."""
    from benchmarks.data import load_clef_topics, load_sessions

    targets = {str(s.number): s.target for s in load_sessions()}
    experts = {t["topic"]: t.get("query", "") for t in load_clef_topics()}
    refs = {}
    for p in prompts:
        if p.source == "sim4ia":
            refs[p.id] = targets.get(p.id.split(".")[0], "")
        elif p.source == "clef_tar":
            refs[p.id] = experts.get(p.id, "")
    return {k: v for k, v in refs.items() if v.strip()}


def add_similarity(records: list[dict[str, Any]], refs: dict[str, str]) -> None:
    """Set ``similarity`` on every valid record whose prompt has a reference (MiniLM, as Sim4IA scores)."""
    from benchmarks.embeddings import minilm_embed
    from benchmarks.sim4ia_metrics import similarity_matrix

    todo = [r for r in records if r["valid"] and r["prompt_id"] in refs]
    if not todo:
        return
    texts = sorted({r["text"] for r in todo} | {refs[r["prompt_id"]] for r in todo})
    index = {t: i for i, t in enumerate(texts)}
    vectors = minilm_embed(texts)
    for r in todo:
        a, b = vectors[index[r["text"]]][None, :], vectors[index[refs[r["prompt_id"]]]][None, :]
        r["similarity"] = float(similarity_matrix(a, b)[0, 0])


def plot(path: Path, rows: list[dict[str, Any]]) -> Path:
    fig, (left, right) = report.new_figure(ncols=2, width=8.0, height=3.6)
    for way, style in zip(WAYS, ("o--", "s-")):
        mine = [r for r in rows if r["way"] == way]
        budgets = [r["budget"] for r in mine]
        left.plot(budgets, [100 * r["valid_raw"] for r in mine], style, label=f"{way}: valid as written")
        right.plot(budgets, [r["terms_per_query"] or 0 for r in mine], style, label=f"{way}: terms per query")
        if way == "engine":
            right.plot(budgets, [r["lost_terms_per_query"] for r in mine], "x:", label="engine: terms lost in repair")
    left.set_xlabel("token budget")
    left.set_ylabel("% of samples")
    left.set_title("Valid without repair")
    right.set_xlabel("token budget")
    right.set_title("Query size")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    return report.save_figure(fig, path)


# --------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.closing", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a local base model directory (default: QueryGenerator.default())")
    p.add_argument("--adapter", help="a local LoRA adapter directory for --model")
    p.add_argument("--prompts", type=Path, help="text file of prompts (keywords), one per line, instead of the held-out set")
    p.add_argument("--heldout", type=Path, default=None, help="held-out list (default training/data/heldout.json)")
    p.add_argument("--limit", type=int, default=0, help="use the first N prompts (sources interleaved; 0: all)")
    p.add_argument("--n", type=int, default=10, help="samples per prompt")
    p.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)), help="max_new_tokens values, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-similarity", action="store_true", help="skip the MiniLM similarity to the references")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    report.set_threads(args.threads)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    if args.n < 1:
        return report.fail("--n must be at least 1")
    try:
        budgets = parse_budgets(args.budgets)
        prompts, note = choose_prompts(args.prompts, args.heldout, args.limit)
    except DataError as err:
        return report.fail(str(err))
    if not prompts:
        return report.fail("no prompts")
    print(note, flush=True)

    import llguidance

    from benchmarks.sim4ia import load_generator
    from blockgen.export import grammar
    from blockgen.tokens import load_llguidance_tokenizer

    try:
        generator = load_generator(args.model, args.adapter)
        _, tokenizer = _hf_parts(generator)
    except (ValueError, RuntimeError) as err:
        return report.fail(str(err))
    label = "default" if not args.model else Path(args.model).name + (f"+{Path(args.adapter).name}" if args.adapter else "")
    temperature, top_p = generator.sampling_defaults()
    spec = llguidance.grammar_from("lark", grammar("vllm"))
    lltok = load_llguidance_tokenizer(tokenizer)
    generator.generate([prompts[0].keywords], n=1, constrained=True, max_new_tokens=2, seed=args.seed)  # warm-up

    records: list[dict[str, Any]] = []
    for budget in budgets:
        for way in WAYS:
            t0 = time.perf_counter()
            print(f"[{label}] budget {budget}, {way}: {len(prompts)} prompts x {args.n}", flush=True)
            for i, prompt in enumerate(prompts):
                seed = args.seed * 100_003 + i
                if way == "engine":
                    out = engine_decode(generator, spec, lltok, prompt.keywords, args.n, budget, temperature, top_p, seed)
                else:
                    out = blockgen_decode(generator, prompt.keywords, args.n, budget, temperature, top_p, seed, args.batch_size)
                records += [{"budget": budget, "way": way, "prompt_id": prompt.id, "source": prompt.source, "keywords": prompt.keywords, **r} for r in out]
            print(f"  {time.perf_counter() - t0:.1f} s", flush=True)

    similarity_note = "skipped (--no-similarity)"
    if not args.no_similarity:
        try:
            refs = references(prompts)
            add_similarity(records, refs)
            similarity_note = f"(cos+1)/2, all-MiniLM-L6-v2, to the reference of {len(refs)} of {len(prompts)} prompts"
        except (ImportError, DataError, RuntimeError) as err:  # no sentence-transformers / data
            similarity_note = f"skipped: {err}"
    rows = []
    for budget in budgets:
        for way in WAYS:
            mine = [r for r in records if r["budget"] == budget and r["way"] == way]
            rows.append({"model": label, "budget": budget, "way": way, **summarize(mine)})
    report.print_table(
        rows,
        [
            ("budget", "budget"), ("way", "way"), ("samples", "samples"),
            ("valid_raw", "valid as written", ".1%"), ("valid_final", "valid after repair", ".1%"),
            ("cut_off", "cut off", ".1%"), ("terms_per_query", "terms/query", ".2f"),
            ("lost_terms_per_query", "terms lost/query", ".2f"), ("similarity", "similarity", ".3f"),
        ],
        f"Closing at the budget ({label}; temperature {temperature}, top-p {top_p}; similarity: {similarity_note})",
    )
    out = report.results_dir(args.out)
    payload = {
        "meta": report.meta(NAME, argv_list, model=label, prompts=len(prompts), note=note, n=args.n, temperature=temperature, top_p=top_p, similarity=similarity_note),
        "summary": rows,
        "samples": records,
    }
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", rows)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
