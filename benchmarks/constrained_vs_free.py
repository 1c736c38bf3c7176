"""Constrained vs free decoding: validity, cut-offs, query size and speed, over token budgets.

    python -m benchmarks.constrained_vs_free                          # default model, held-out prompts
    python -m benchmarks.constrained_vs_free --limit 20 --n 3 --budgets 16,64
    python -m benchmarks.constrained_vs_free --model BASE --adapter LORA   # + another model, same run

For every model, budget (``max_new_tokens``) and mode, the same prompts are decoded with
the same seed, sampling at temperature 1:

* ``free``: plain sampling; validity of the raw text, and after :mod:`blockgen.repair`;
* ``constrained``: through the grammar (Outlines + llguidance) with budget-aware closing.

Each prompt is sampled ``n`` times as ``n`` independent rows (``generate(..., n=1)`` on the
repeated prompt list, one round), so no deduplication hides or merges outputs and both
modes decode exactly the same number of sequences, in the same chunks of whole prompts
(at most ``--batch-size`` rows) with the same seeds. A chunk whose decoding raises is
counted as failed samples (``failed``), and the run goes on. Reported per (model, budget, mode):
validity, share cut off by the budget, terms and blocks per valid query, wall time per
query, generated tokens per second, and the constrained/free time ratio.
The raw outputs are kept in the JSON (``samples``) for :mod:`benchmarks.repair`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks import report
from benchmarks.data import DataError
from benchmarks.heldout import Prompt, choose_prompts, parse_budgets

NAME = "constrained_vs_free"
DEFAULT_BUDGETS = (16, 32, 64, 128)
MODES = ("free", "constrained")


def _record(prompt: Prompt, q) -> dict[str, Any]:
    from blockgen import blocks, is_valid, terms

    raw = getattr(q, "raw_text", q.text)
    query = q.query if q.valid else None
    return {
        "source": prompt.source,
        "prompt_id": prompt.id,
        "keywords": prompt.keywords,
        "raw_text": raw,
        "text": q.text,
        "raw_valid": is_valid(raw),
        "valid": bool(q.valid),
        "repaired": bool(getattr(q, "repaired", False)),
        "cut_off": bool(getattr(q, "cut_off", False)),
        "steered": bool(getattr(q, "steered", False)),
        "tokens": int(getattr(q, "tokens", 0)),
        "logprob": float(q.logprob),
        "terms": len(list(terms(query))) if query is not None else None,
        "blocks": len(blocks(query)) if query is not None else None,
        "error": None,
    }


def run_one(generator, prompts: Sequence[Prompt], n: int, constrained: bool, budget: int, seed: int, batch_size: int) -> tuple[list[dict[str, Any]], float]:
    """Decode every prompt ``n`` times; returns one record per sample and the wall time.

    Prompts go to the generator in chunks of whole prompts (at most ``batch_size`` rows, at
    least one prompt); when a chunk's decoding raises, its prompts are decoded one by one
    (seed ``chunk_seed * 1000 + j``; the failed attempt's time is not counted) and a prompt
    that still fails is recorded as ``n`` failed samples (``error`` set). Chunk ``i`` uses
    seed ``seed + i``.
    """
    from benchmarks.sim4ia import accepts_option

    options: dict[str, Any] = dict(n=1, constrained=constrained, max_new_tokens=budget, temperature=1.0, top_p=1.0)
    if accepts_option(generator.generate, "max_rounds"):
        options["max_rounds"] = 1
    if accepts_option(generator.generate, "batch_size"):
        options["batch_size"] = batch_size
    per_chunk = max(1, batch_size // n)
    records: list[dict[str, Any]] = []
    wall = 0.0

    def decode(chunk: Sequence[Prompt], chunk_seed: int, retry: bool) -> None:
        nonlocal wall
        keywords = [p.keywords for p in chunk for _ in range(n)]
        owners = [p for p in chunk for _ in range(n)]
        t0 = time.perf_counter()
        try:
            results = generator.generate(keywords, seed=chunk_seed, **options)
        except (RuntimeError, ValueError) as err:  # a generator bug must not hide the other measurements
            message = f"{type(err).__name__}: {err}"
            print(f"  decoding failed ({len(chunk)} prompt(s), seed {chunk_seed}): {message[:300]}", flush=True)
            if retry and len(chunk) > 1:  # isolate the failing prompt; the failed attempt's time is not counted
                for j, p in enumerate(chunk):
                    decode([p], chunk_seed * 1000 + j, retry=False)
            else:
                records.extend({"source": p.source, "prompt_id": p.id, "keywords": p.keywords, "error": message} for p in owners)
            return
        wall += time.perf_counter() - t0
        for prompt, cands in zip(owners, results):
            records.extend(_record(prompt, q) for q in cands[:1])

    for i, start in enumerate(range(0, len(prompts), per_chunk)):
        decode(prompts[start : start + per_chunk], seed + i, retry=True)
    return records, wall


def summarize(records: Sequence[dict[str, Any]], wall: float) -> dict[str, Any]:
    """The per-(model, budget, mode) figures (over the samples that decoded without an error)."""
    failed = sum(1 for r in records if r.get("error"))
    records = [r for r in records if not r.get("error")]
    n = len(records)

    def share(key: str) -> float:
        return sum(1 for r in records if r[key]) / n if n else float("nan")

    valid = [r for r in records if r["valid"]]
    tokens = sum(r["tokens"] for r in records)
    return {
        "samples": n,
        "failed": failed,
        "valid_incl_failed": sum(1 for r in records if r["valid"]) / (n + failed) if n + failed else float("nan"),
        "valid_raw": share("raw_valid"),
        "valid_final": share("valid"),
        "repaired": share("repaired"),
        "cut_off": share("cut_off"),
        "steered": share("steered"),
        "terms_per_query": statistics.mean(r["terms"] for r in valid) if valid else None,
        "blocks_per_query": statistics.mean(r["blocks"] for r in valid) if valid else None,
        "tokens_per_query": tokens / n if n else None,
        "seconds": wall,
        "ms_per_query": 1e3 * wall / n if n else None,
        "tokens_per_s": tokens / wall if wall > 0 else None,
    }


def plot(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Validity vs budget per mode (left) and time per query vs budget (right), one line style per model."""
    fig, (left, right) = report.new_figure(ncols=2, width=6.0, height=4.2)
    styles = ["-", "--", ":", "-."]
    for m, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        mine = [r for r in rows if r["model"] == model]
        ls = styles[m % len(styles)]
        free = sorted((r for r in mine if r["mode"] == "free"), key=lambda r: r["budget"])
        cons = sorted((r for r in mine if r["mode"] == "constrained"), key=lambda r: r["budget"])
        for series, key, label, color, marker in (
            (free, "valid_raw", "free", "tab:red", "o"),
            (free, "valid_final", "free + repair", "tab:orange", "s"),
            (cons, "valid_final", "constrained", "tab:green", "^"),
            (cons, "valid_incl_failed", "constrained, failed decodes as invalid", "darkgreen", "v"),
        ):
            series = [r for r in series if r.get(key) is not None]
            if series:
                left.plot([r["budget"] for r in series], [100 * r[key] for r in series], ls, marker=marker, markersize=7 if marker == "s" else 5, color=color, label=f"{label} ({model})")
        for series, label, color in ((free, "free", "tab:red"), (cons, "constrained", "tab:green")):
            if series:
                right.plot([r["budget"] for r in series], [r["ms_per_query"] for r in series], ls, marker="o", color=color, label=f"{label} ({model})")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("max_new_tokens (budget)")
        ax.legend(fontsize=7)
    left.set_ylabel("valid queries (%)")
    left.set_ylim(-3, 103)
    left.set_title("Validity vs budget")
    right.set_ylabel("ms per query (wall, batched)")
    right.set_title("Time per query vs budget")
    return report.save_figure(fig, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.constrained_vs_free", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="another local base model directory, measured beside the default model")
    p.add_argument("--adapter", help="local LoRA adapter directory for --model")
    p.add_argument("--no-default", action="store_true", help="do not measure the embedded default model")
    p.add_argument("--prompts", type=Path, help="text file of prompts (keywords), one per line, instead of the held-out set")
    p.add_argument("--heldout", type=Path, default=None, help="held-out list (default training/data/heldout.json)")
    p.add_argument("--limit", type=int, default=0, help="use the first N prompts (sources interleaved; 0: all)")
    p.add_argument("--n", type=int, default=10, help="samples per prompt")
    p.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)), help="max_new_tokens values, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default) (default 1: faster for small models, robust to a busy core)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--replot", action="store_true", help="only redraw the PNG from the saved JSON")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    report.set_threads(args.threads)
    if args.replot:
        saved = report.results_dir(args.out) / f"{NAME}.json"
        if not saved.is_file():
            return report.fail(f"nothing to replot: {saved} not found")
        import json

        data = json.loads(saved.read_text(encoding="utf-8"))
        rows = data["summary"]
        missing = [r for r in rows if "valid_incl_failed" not in r and r.get("samples") is not None]
        for r in missing:  # older result files: derive the share with failed decodes counted invalid
            total = r["samples"] + r.get("failed", 0)
            r["valid_incl_failed"] = r["valid_final"] * r["samples"] / total if total else None
        if missing:
            report.write_json(saved, data)
        print(f"wrote {plot(saved.with_suffix('.png'), rows)}")
        return 0
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

    from benchmarks.sim4ia import load_generator

    models: list[tuple[str, Any]] = []
    try:
        if not args.no_default:
            models.append(("default", load_generator(None, None)))
        if args.model:
            label = Path(args.model).name + (f"+{Path(args.adapter).name}" if args.adapter else "")
            models.append((label, load_generator(args.model, args.adapter)))
    except ImportError as err:
        return report.fail(f"blockgen's generator is not available: {err}")
    except ValueError as err:
        return report.fail(str(err))
    if not models:
        return report.fail("nothing to measure: --no-default needs --model")

    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for label, generator in models:
        generator.generate([prompts[0].keywords], n=1, constrained=True, max_new_tokens=2, seed=args.seed)  # warm-up: grammar, caches
        for budget in budgets:
            for mode in MODES:
                print(f"[{label}] budget {budget}, {mode}: {len(prompts)} prompts x {args.n}", flush=True)
                try:
                    records, wall = run_one(generator, prompts, args.n, mode == "constrained", budget, args.seed, args.batch_size)
                except ImportError as err:  # free decoding needs blockgen.repair
                    return report.fail(f"{mode} decoding is not available: {err}")
                rows.append({"model": label, "budget": budget, "mode": mode, **summarize(records, wall)})
                samples += [{"model": label, "budget": budget, "mode": mode, **r} for r in records]
    for budget in budgets:
        for label, _ in models:
            pair = {r["mode"]: r for r in rows if r["model"] == label and r["budget"] == budget}
            if pair.get("free") and pair.get("constrained") and pair["free"]["ms_per_query"] and pair["constrained"]["ms_per_query"]:
                pair["constrained"]["time_ratio_vs_free"] = pair["constrained"]["ms_per_query"] / pair["free"]["ms_per_query"]

    report.print_table(
        rows,
        [
            ("model", "model"),
            ("budget", "budget"),
            ("mode", "mode"),
            ("samples", "samples"),
            ("failed", "failed"),
            ("valid_raw", "valid raw", ".3f"),
            ("valid_final", "valid final", ".3f"),
            ("cut_off", "cut off", ".3f"),
            ("terms_per_query", "terms/query", ".2f"),
            ("blocks_per_query", "blocks/query", ".2f"),
            ("tokens_per_query", "tokens/query", ".1f"),
            ("ms_per_query", "ms/query", ".1f"),
            ("tokens_per_s", "tokens/s", ".1f"),
            ("time_ratio_vs_free", "time constrained/free", ".2f"),
        ],
        f"Constrained vs free decoding ({len(prompts)} prompts x {args.n} samples, seed {args.seed}); "
        "valid final = after repair (free) / as decoded (constrained)",
    )
    out = report.results_dir(args.out)
    payload = {
        "meta": report.meta(NAME, argv_list, prompts_note=note, prompts=len(prompts), n=args.n, budgets=budgets, seed=args.seed, models=[m for m, _ in models]),
        "summary": rows,
        "prompts": [p.__dict__ for p in prompts],
        "samples": samples,
    }
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", rows)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
