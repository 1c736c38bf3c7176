"""Per-token cost of grammar-constrained decoding, next to the cost of a model forward step.

    python -m benchmarks.mask_overhead                 # Llama 3 tokenizer, 349 real queries
    python -m benchmarks.mask_overhead --limit 50 --cold-reps 1 --models tiny,h512

Measured, for blockgen's grammar and the real Llama 3 tokenizer (128,256 tokens):

The decoding engine itself (llguidance matchers used directly, lazy and parallel masks) is
measured by :mod:`benchmarks.engine`; this benchmark compares the grammar engines per token:

* setup in this process: tokenizer conversion and grammar compile time, for
  (a) Outlines + llguidance (blockgen's earlier path) and (b) xgrammar (reference, with blockgen's
  GBNF export, the same language: :mod:`benchmarks.xgrammar_ebnf`);
* cold start in a fresh process: wall time from spawning ``python`` to the first token mask,
  for the Outlines processor path (blockgen's earlier path) with an empty and with a filled on-disk tokenizer cache
  (``$BLOCKGEN_CACHE`` pointed at a temporary directory), and for xgrammar;
* per-token time over real queries (each tokenized; at every position the mask is computed,
  then the query's own token is consumed): mask only, consume only, and the full step
  (Outlines' ``LLGuidanceLogitsProcessor.process_logits``, i.e. consume + mask + apply to a
  128,256-wide logits row; for xgrammar accept + mask + apply);
* the forward step of random-weight Llama models with the same vocabulary (one new token
  with a KV cache, batch 1 and batch 10), as the yardstick the mask time is added to.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks import report
from benchmarks.data import sim4ia_dir

NAME = "mask_overhead"
DEFAULT_QUERIES = sim4ia_dir() / "llm_queries_boolean_run.json"


# --------------------------------------------------------------------------- inputs
def load_tokenizer(spec: str):
    """``"llama3"`` (the real Llama 3 tokenizer) or a local Hugging Face tokenizer directory."""
    if spec == "llama3":
        from benchmarks.llama3 import llama3_tokenizer

        return llama3_tokenizer()
    from transformers import AutoTokenizer

    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer directory not found: {path} (use 'llama3' or a local directory)")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_queries(path: Path) -> list[str]:
    """Queries from a Sim4IA run file (JSON object of lists) or a text file (one per line)."""
    if not path.is_file():
        raise FileNotFoundError(f"query file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            return [q for key, qs in data.items() if key != "meta" for q in qs if isinstance(q, str)]
        return [q for q in data if isinstance(q, str)]
    return [line.strip() for line in text.splitlines() if line.strip()]


def valid_token_ids(tokenizer, queries: Sequence[str]) -> tuple[list[list[int]], int]:
    """Token ids of the queries blockgen's grammar accepts; and how many were skipped."""
    from blockgen import is_valid

    kept = [q for q in queries if is_valid(q)]
    return [list(tokenizer.encode(q, add_special_tokens=False)) for q in kept], len(queries) - len(kept)


# --------------------------------------------------------------------------- engines
@dataclass
class TokenTimes:
    """Per-token durations (seconds) of one engine over all queries."""

    mask: list[float]
    consume: list[float]
    step: list[float]
    matcher: list[float]
    accepted_at_end: int
    queries: int


def _llguidance_parts(tokenizer):
    import llguidance

    from blockgen.grammar import grammar_text
    from blockgen.tokens import load_llguidance_tokenizer

    lltok = load_llguidance_tokenizer(tokenizer)
    grammar = llguidance.grammar_from("lark", grammar_text())
    return lltok, grammar


LLG_BLOCKGEN = "llguidance (blockgen until the engine rework: Outlines numpy processor)"
LLG_TORCH = "llguidance (Outlines torch processor)"


def measure_llguidance(tokenizer, sequences: Sequence[Sequence[int]], eos: int) -> dict[str, TokenTimes]:
    """llguidance per token: the matcher's mask and consume, and the full step of Outlines' processor.

    The mask/consume times are ``llguidance.LLMatcher`` with a numpy bitmask. The full step is
    ``LLGuidanceLogitsProcessor.process_logits`` (consume the last token, mask, apply to a
    vocabulary-wide logits row) on the numpy path blockgen uses (including its torch->numpy
    copy and back), and on Outlines' torch path for comparison.
    """
    import llguidance
    import llguidance.numpy
    import numpy as np
    import torch
    from outlines.backends.llguidance import LLGuidanceLogitsProcessor

    lltok, grammar = _llguidance_parts(tokenizer)
    bitmask = llguidance.numpy.allocate_token_bitmask(1, lltok.vocab_size)
    clock = time.perf_counter
    masks, consumes, matchers, accepted = [], [], [], 0
    for ids in sequences:
        t0 = clock()
        matcher = llguidance.LLMatcher(lltok, grammar)
        matchers.append(clock() - t0)
        for tok in ids:
            t0 = clock()
            llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, 0)
            t1 = clock()
            ok = matcher.consume_token(tok)
            t2 = clock()
            masks.append(t1 - t0)
            consumes.append(t2 - t1)
            if not ok:
                raise RuntimeError(f"llguidance refused token {tok}: {matcher.get_error()}")
        llguidance.numpy.fill_next_token_bitmask(matcher, bitmask, 0)
        accepted += bool(bitmask[0, eos // 32] >> (eos % 32) & 1) and matcher.is_accepting()

    vocab = len(tokenizer)
    logits = torch.zeros((1, vocab))
    steps: dict[str, list[float]] = {LLG_BLOCKGEN: [], LLG_TORCH: []}
    for ids in sequences:
        numpy_proc = LLGuidanceLogitsProcessor(grammar, lltok, "numpy")
        torch_proc = LLGuidanceLogitsProcessor(grammar, lltok, "torch")
        last = tokenizer.eos_token_id
        for tok in list(ids) + [eos]:
            logits.zero_()
            t0 = clock()
            masked = numpy_proc.process_logits(np.array([[last]], dtype=np.int64), logits.numpy().copy())
            logits[0] = torch.from_numpy(masked[0])
            steps[LLG_BLOCKGEN].append(clock() - t0)
            logits.zero_()
            t0 = clock()
            torch_proc.process_logits(torch.tensor([[last]]), logits)
            steps[LLG_TORCH].append(clock() - t0)
            last = tok
    return {
        LLG_BLOCKGEN: TokenTimes(masks, consumes, steps[LLG_BLOCKGEN], matchers, accepted, len(sequences)),
        LLG_TORCH: TokenTimes([], [], steps[LLG_TORCH], [], accepted, len(sequences)),
    }


XGRAMMAR_ENGINES = {"xgrammar (blockgen GBNF export)": "gbnf"}


def _xgrammar_parts(tokenizer, grammar_source: str = "gbnf"):
    """xgrammar's tokenizer info and compiled grammar: ``gbnf`` (blockgen's export) or ``from_lark``."""
    import xgrammar as xgr

    from benchmarks.xgrammar_ebnf import ebnf
    from blockgen.grammar import grammar_text

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[tokenizer.eos_token_id])
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    if grammar_source == "from_lark":
        grammar = xgr.Grammar.from_lark(grammar_text())
    else:
        grammar = xgr.Grammar.from_ebnf(ebnf())
    return info, compiler.compile_grammar(grammar)


def measure_xgrammar(tokenizer, sequences: Sequence[Sequence[int]], eos: int, grammar_source: str = "gbnf") -> TokenTimes:
    """Mask/accept times of ``xgrammar.GrammarMatcher`` (blockgen's GBNF export), plus apply."""
    import torch
    import xgrammar as xgr

    info, compiled = _xgrammar_parts(tokenizer, grammar_source)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    logits = torch.zeros((1, len(tokenizer)))
    clock = time.perf_counter
    masks, consumes, steps, matchers, accepted = [], [], [], [], 0
    for ids in sequences:
        t0 = clock()
        matcher = xgr.GrammarMatcher(compiled)
        matchers.append(clock() - t0)
        for tok in ids:
            logits.zero_()
            t0 = clock()
            matcher.fill_next_token_bitmask(bitmask)
            t1 = clock()
            xgr.apply_token_bitmask_inplace(logits, bitmask)
            t2 = clock()
            ok = matcher.accept_token(tok)
            t3 = clock()
            masks.append(t1 - t0)
            consumes.append(t3 - t2)
            steps.append(t3 - t0)
            if not ok:
                raise RuntimeError(f"xgrammar refused token {tok}")
        matcher.fill_next_token_bitmask(bitmask)
        accepted += bool(matcher.accept_token(eos))
    return TokenTimes(masks, consumes, steps, matchers, accepted, len(sequences))


# --------------------------------------------------------------------------- setup cost
def measure_setup(tokenizer, with_xgrammar: bool) -> list[dict[str, Any]]:
    """Tokenizer conversion, grammar compile and matcher creation time, in this process."""
    import llguidance
    import llguidance.hf

    from blockgen.grammar import grammar_text

    rows = []
    lltok, convert_s = report.timed(lambda: llguidance.hf.from_tokenizer(tokenizer))
    grammar, spec_s = report.timed(lambda: llguidance.grammar_from("lark", grammar_text()))
    _, first_s = report.timed(lambda: llguidance.LLMatcher(lltok, grammar))
    again = [report.timed(lambda: llguidance.LLMatcher(lltok, grammar))[1] for _ in range(20)]
    rows.append(
        {
            "engine": "llguidance (+ Outlines)",
            "tokenizer_conversion_s": convert_s,
            "tokenizer_conversion_note": "llguidance.hf.from_tokenizer (no blockgen cache)",
            "grammar_compile_s": spec_s + first_s,
            "matcher_creation_ms": statistics.median(again) * 1e3,
        }
    )
    if with_xgrammar:
        import xgrammar as xgr

        from benchmarks.xgrammar_ebnf import ebnf

        info, convert_s = report.timed(
            lambda: xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[tokenizer.eos_token_id])
        )
        for engine, source in XGRAMMAR_ENGINES.items():
            compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
            compiled, compile_s = report.timed(lambda: compiler.compile_grammar(xgr.Grammar.from_ebnf(ebnf())))
            again = [report.timed(lambda: xgr.GrammarMatcher(compiled))[1] for _ in range(20)]
            rows.append(
                {
                    "engine": engine,
                    "tokenizer_conversion_s": convert_s,
                    "tokenizer_conversion_note": "xgrammar.TokenizerInfo.from_huggingface",
                    "grammar_compile_s": compile_s,
                    "matcher_creation_ms": statistics.median(again) * 1e3,
                }
            )
    return rows


def grammar_agreement(tokenizer, queries: Sequence[str], n_random: int = 5000, seed: int = 0) -> list[dict[str, Any]]:
    """How often xgrammar (blockgen's GBNF export, and automatic ``from_lark``) agrees with blockgen's parser.

    The corpus: the real queries plus ``n_random`` random strings over the grammar's tricky
    characters and operators (seeded).
    """
    from benchmarks.xgrammar_ebnf import agreement, xgrammar_accepts
    from blockgen import is_valid

    rng = random.Random(seed)
    alphabet = list("ANDORTandort xy()\"[]:>=<*?-'./é") + ["AND", "OR", "NOT", " AND ", " OR "]
    corpus = list(queries) + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(n_random)]
    labels = {
        "gbnf": "blockgen.export.grammar('gbnf')",
        "from_lark": "xgrammar.Grammar.from_lark(grammar_text())",
    }
    rows = []
    for source, label in labels.items():
        strings = corpus
        try:
            _, compiled = _xgrammar_parts(tokenizer, source)
        except Exception as err:  # xgrammar 0.2.9's from_lark refuses the grammar's \p{..} classes
            rows.append({"xgrammar_grammar": label, "strings": len(strings), "refused": " ".join(str(err).split())[:300]})
            continue
        agree, differ = agreement(strings, xgrammar_accepts(compiled), is_valid)
        rows.append(
            {
                "xgrammar_grammar": label,
                "strings": len(strings),
                "valid_strings": sum(map(is_valid, strings)),
                "agree": agree,
                "disagree_examples": differ[:8],
            }
        )
    return rows


# --------------------------------------------------------------------------- cold start
_CHILD_ENV = "BLOCKGEN_BENCH_SPAWNED_AT"


def _child(engine: str, tokenizer_spec: str) -> None:
    """Run in a fresh process: load everything, compute one mask, print phase times as JSON."""
    spawned = float(os.environ.get(_CHILD_ENV, "nan"))
    start = time.time()
    clock = time.perf_counter
    t0 = clock()
    import torch  # noqa: F401
    import transformers  # noqa: F401

    if engine == "xgrammar":
        import xgrammar as xgr
    else:
        import llguidance
        from outlines.backends.llguidance import LLGuidanceLogitsProcessor
        import numpy as np

        from blockgen.tokens import load_llguidance_tokenizer
    from blockgen.grammar import grammar_text

    phases = {"imports_s": clock() - t0}
    t0 = clock()
    tokenizer = load_tokenizer(tokenizer_spec)
    phases["tokenizer_s"] = clock() - t0
    t0 = clock()
    if engine == "xgrammar":
        from benchmarks.xgrammar_ebnf import ebnf

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer), stop_token_ids=[tokenizer.eos_token_id])
        phases["engine_tokenizer_s"] = clock() - t0
        t0 = clock()
        compiled = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False).compile_grammar(xgr.Grammar.from_ebnf(ebnf()))
        matcher = xgr.GrammarMatcher(compiled)
        phases["compile_s"] = clock() - t0
        t0 = clock()
        bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
        matcher.fill_next_token_bitmask(bitmask)
        logits = torch.zeros((1, len(tokenizer)))
        xgr.apply_token_bitmask_inplace(logits, bitmask)
    else:
        lltok = load_llguidance_tokenizer(tokenizer)
        phases["engine_tokenizer_s"] = clock() - t0
        t0 = clock()
        grammar = llguidance.grammar_from("lark", grammar_text())
        library = "torch" if engine == "llguidance-torch" else "numpy"
        processor = LLGuidanceLogitsProcessor(grammar, lltok, library)  # torch: imports torch._dynamo
        phases["compile_s"] = clock() - t0  # the matcher itself is built inside the first step
        t0 = clock()
        logits = torch.zeros((1, len(tokenizer)))
        if library == "torch":
            processor.process_logits(torch.tensor([[tokenizer.eos_token_id]]), logits)  # torch.compile on first call
        else:
            masked = processor.process_logits(np.array([[tokenizer.eos_token_id]], dtype=np.int64), logits.numpy().copy())
            logits[0] = torch.from_numpy(masked[0])
    phases["first_mask_s"] = clock() - t0
    done = time.time()
    phases["in_process_s"] = done - start
    phases["spawn_to_first_mask_s"] = done - spawned
    print(json.dumps(phases))


def _spawn(engine: str, tokenizer_spec: str, cache: Path) -> dict[str, Any]:
    env = dict(os.environ, BLOCKGEN_CACHE=str(cache))
    env[_CHILD_ENV] = repr(time.time())
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.mask_overhead", "--child", engine, "--tokenizer", tokenizer_spec],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start child ({engine}) failed:\n{proc.stderr[-2000:]}")
    phases = json.loads(proc.stdout.strip().splitlines()[-1])
    phases["process_wall_s"] = wall
    return phases


def measure_cold_start(tokenizer_spec: str, reps: int, with_xgrammar: bool) -> list[dict[str, Any]]:
    """Median phase times of fresh processes: blockgen cold cache, warm cache, and xgrammar."""
    cases = [
        ("blockgen (Outlines numpy + llguidance), empty cache", "llguidance", True),
        ("blockgen (Outlines numpy + llguidance), warm cache", "llguidance", False),
        ("Outlines torch processor + llguidance, warm cache", "llguidance-torch", False),
    ]
    if with_xgrammar:
        cases.append(("xgrammar (blockgen GBNF export)", "xgrammar", False))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in cases}
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="blockgen-cache-") as tmp:
            for name, engine, _empty in cases:  # the first case runs on the empty cache and fills it
                runs[name].append(_spawn(engine, tokenizer_spec, Path(tmp)))
    rows = []
    for case, samples in runs.items():
        row: dict[str, Any] = {"case": case, "reps": len(samples)}
        for key in samples[0]:
            row[key] = statistics.median(s[key] for s in samples)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- forward step
MODEL_SHAPES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64),
    "h512": dict(hidden=512, layers=8, heads=8, kv_heads=4, intermediate=1536),
    "h1024": dict(hidden=1024, layers=16, heads=16, kv_heads=8, intermediate=4096),
    # the shape of Llama 3.2 1B (random weights, float32)
    "llama3.2-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192),
}


def measure_forward(vocab_size: int, shapes: Sequence[str], batches: Sequence[int], steps: int = 16, prompt_len: int = 12) -> list[dict[str, Any]]:
    """Time of one decoding step (one new token per row, KV cache) of random Llama models."""
    import inspect

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rows = []
    for name in shapes:
        shape = MODEL_SHAPES[name]
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=shape["hidden"],
            intermediate_size=shape["intermediate"],
            num_hidden_layers=shape["layers"],
            num_attention_heads=shape["heads"],
            num_key_value_heads=shape["kv_heads"],
            max_position_embeddings=1024,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config).eval()
        params = sum(p.numel() for p in model.parameters())
        cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        for batch in batches:
            ids = torch.randint(0, vocab_size, (batch, prompt_len))
            times = []
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=True)
                past = getattr(out, cache_kw)
                nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
                for step in range(steps + 2):
                    t0 = time.perf_counter()
                    out = model(input_ids=nxt, use_cache=True, **{cache_kw: past})
                    logits = out.logits[:, -1, :].float()
                    elapsed = time.perf_counter() - t0
                    past = getattr(out, cache_kw)
                    nxt = logits.argmax(-1, keepdim=True)
                    if step >= 2:  # two warm-up steps
                        times.append(elapsed)
            rows.append(
                {
                    "model": name,
                    "params_m": params / 1e6,
                    "hidden": shape["hidden"],
                    "layers": shape["layers"],
                    "batch": batch,
                    "step_p50_ms": report.percentile(times, 50) * 1e3,
                    "step_p90_ms": report.percentile(times, 90) * 1e3,
                    "steps": len(times),
                }
            )
        del model
    return rows


# --------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mask_overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", default="llama3", help="'llama3' (default) or a local Hugging Face tokenizer directory")
    p.add_argument("--queries", type=Path, default=DEFAULT_QUERIES, help="Sim4IA run file (JSON) or text file of queries")
    p.add_argument("--limit", type=int, default=0, help="use only the first N valid queries (0: all)")
    p.add_argument("--cold-reps", type=int, default=3, help="fresh processes per cold-start case (0: skip)")
    p.add_argument("--models", default="tiny,h512,h1024,llama3.2-1b", help=f"forward-step shapes, comma-separated, from {','.join(MODEL_SHAPES)} ('' to skip)")
    p.add_argument("--batches", default="1,10", help="forward-step batch sizes, comma-separated")
    p.add_argument("--no-xgrammar", action="store_true", help="skip the xgrammar reference")
    p.add_argument("--xgrammar-limit", type=int, default=100, help="queries measured with xgrammar (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    p.add_argument("--child", choices=["llguidance", "llguidance-torch", "xgrammar"], help=argparse.SUPPRESS)
    return p


def _token_row(engine: str, times: TokenTimes) -> dict[str, Any]:
    mask, consume, step = report.summary_us(times.mask), report.summary_us(times.consume), report.summary_us(times.step)
    return {
        "engine": engine,
        "queries": times.queries,
        "tokens": len(times.step) - times.queries if not times.mask else mask["count"],
        "mask_p50_us": mask["p50_us"],
        "mask_p90_us": mask["p90_us"],
        "mask_p99_us": mask["p99_us"],
        "mask_max_us": mask["max_us"],
        "mask_mean_us": mask["mean_us"],
        "consume_p50_us": consume["p50_us"],
        "step_p50_us": step["p50_us"],
        "step_p99_us": step["p99_us"],
        "step_mean_us": step["mean_us"],
        "matcher_p50_us": report.percentile([m * 1e6 for m in times.matcher], 50) if times.matcher else None,
        "eos_allowed_at_end": times.accepted_at_end if times.mask else None,
    }


def plot(path: Path, token_rows: list[dict[str, Any]], times: dict[str, TokenTimes], forward_rows: list[dict[str, Any]]) -> Path:
    """Left: distribution of per-token mask/step times. Right: grammar step vs forward step (log ms)."""
    fig, (left, right) = report.new_figure(ncols=2, width=7.0, height=4.5)
    short = {LLG_BLOCKGEN: "llguidance\n(numpy)", LLG_TORCH: "llguidance\n(torch)", "xgrammar (blockgen GBNF export)": "xgrammar\n(GBNF)"}
    labels, data = [], []
    for engine, t in times.items():
        name = short.get(engine, engine)
        if t.mask:
            labels.append(f"{name}\nmask")
            data.append([x * 1e6 for x in t.mask])
        labels.append(f"{name}\nstep")
        data.append([x * 1e6 for x in t.step])
    left.boxplot(data, whis=(1, 99), showfliers=False)
    left.set_xticks(range(1, len(labels) + 1), labels, fontsize=6.5)
    left.set_yscale("log")
    left.set_ylabel("µs per token (whiskers p1/p99)")
    left.set_title("Grammar work per token, real queries")

    names, values, colors = [], [], []
    for row in token_rows:
        names.append(short.get(row["engine"], row["engine"]).replace("\n", " ") + " step")
        values.append(row["step_p50_us"] / 1e3)
        colors.append("tab:orange")
    for row in forward_rows:
        names.append(f"forward {row['model']} b{row['batch']}")
        values.append(row["step_p50_ms"])
        colors.append("tab:blue")
    right.barh(range(len(names)), values, color=colors)
    right.set_yticks(range(len(names)), names, fontsize=7)
    right.set_xscale("log")
    right.set_xlabel("ms per decoding step (p50, log scale)")
    right.set_title("Mask step (one row) vs model forward step")
    right.invert_yaxis()
    return report.save_figure(fig, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    report.set_threads(args.threads)
    if args.child:
        _child(args.child, args.tokenizer)
        return 0
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    try:
        tokenizer = load_tokenizer(args.tokenizer)
        queries = load_queries(args.queries)
    except (FileNotFoundError, RuntimeError, json.JSONDecodeError) as err:
        return report.fail(str(err))
    shapes = [s for s in args.models.split(",") if s]
    unknown = [s for s in shapes if s not in MODEL_SHAPES]
    if unknown:
        return report.fail(f"unknown model shape(s) {', '.join(unknown)}; choose from {', '.join(MODEL_SHAPES)}")
    batches = [int(b) for b in args.batches.split(",") if b]
    sequences, skipped = valid_token_ids(tokenizer, queries)
    if args.limit:
        sequences = sequences[: args.limit]
    if not sequences:
        return report.fail(f"no valid query in {args.queries}")
    eos = tokenizer.eos_token_id
    with_x = not args.no_xgrammar
    if with_x and importlib.util.find_spec("xgrammar") is None:
        print("xgrammar is not installed: skipping the reference (pip install xgrammar)", flush=True)
        with_x = False
    print(f"{len(sequences)} valid queries ({skipped} invalid skipped), {sum(map(len, sequences))} tokens, vocabulary {len(tokenizer)}", flush=True)

    setup_rows = measure_setup(tokenizer, with_x)
    report.print_table(
        setup_rows,
        [("engine", "engine"), ("tokenizer_conversion_s", "tokenizer conversion s", ".3f"), ("grammar_compile_s", "grammar compile s", ".4f"), ("matcher_creation_ms", "new matcher ms", ".3f")],
        "Setup in a warm process",
    )
    agreement_rows = grammar_agreement(tokenizer, queries) if with_x else []
    if agreement_rows:
        report.print_table(agreement_rows, [("xgrammar_grammar", "xgrammar grammar"), ("strings", "strings"), ("valid_strings", "valid"), ("agree", "agree with blockgen.is_valid")], "Is the xgrammar grammar the same language?")

    cold_rows = measure_cold_start(args.tokenizer, args.cold_reps, with_x) if args.cold_reps > 0 else []
    if cold_rows:
        report.print_table(
            cold_rows,
            [
                ("case", "fresh process"),
                ("spawn_to_first_mask_s", "spawn to first mask s", ".2f"),
                ("imports_s", "imports s", ".2f"),
                ("tokenizer_s", "HF tokenizer s", ".2f"),
                ("engine_tokenizer_s", "engine tokenizer s", ".2f"),
                ("compile_s", "grammar + processor s", ".3f"),
                ("first_mask_s", "first mask s", ".3f"),
            ],
            f"Cold start (median of {args.cold_reps} fresh processes)",
        )

    times = dict(measure_llguidance(tokenizer, sequences, eos))
    if with_x:
        x_sequences = sequences[: args.xgrammar_limit] if args.xgrammar_limit else sequences
        for engine, source in XGRAMMAR_ENGINES.items():
            times[engine] = measure_xgrammar(tokenizer, x_sequences, eos, source)
    token_rows = [_token_row(engine, t) for engine, t in times.items()]
    report.print_table(
        token_rows,
        [
            ("engine", "engine"),
            ("tokens", "tokens"),
            ("mask_p50_us", "mask p50 µs", ".1f"),
            ("mask_p99_us", "mask p99 µs", ".1f"),
            ("mask_mean_us", "mask mean µs", ".1f"),
            ("consume_p50_us", "consume p50 µs", ".1f"),
            ("step_p50_us", "full step p50 µs", ".1f"),
            ("step_p99_us", "full step p99 µs", ".1f"),
            ("eos_allowed_at_end", "EOS allowed at end"),
        ],
        "Per token over real queries (xgrammar: the first --xgrammar-limit of them)",
    )

    forward_rows = measure_forward(len(tokenizer), shapes, batches) if shapes else []
    llg_step = token_rows[0]["step_mean_us"] / 1e3
    for row in forward_rows:
        grammar_ms = llg_step * row["batch"]
        row["llguidance_ms_per_step"] = grammar_ms
        row["grammar_share_pct"] = 100 * grammar_ms / (grammar_ms + row["step_p50_ms"])
    if forward_rows:
        report.print_table(
            forward_rows,
            [
                ("model", "random Llama, Llama 3 vocab"),
                ("params_m", "params M", ".0f"),
                ("batch", "batch"),
                ("step_p50_ms", "forward step p50 ms", ".2f"),
                ("llguidance_ms_per_step", "grammar ms/step (mean × batch)", ".2f"),
                ("grammar_share_pct", "grammar share %", ".1f"),
            ],
            "Forward step (1 new token, KV cache) vs the grammar work of the same step",
        )

    out = report.results_dir(args.out)
    payload = {
        "meta": report.meta(NAME, argv_list, tokenizer=args.tokenizer, vocab_size=len(tokenizer), queries_file=str(args.queries), queries=len(sequences), skipped_invalid=skipped),
        "setup": setup_rows,
        "xgrammar_agreement": agreement_rows,
        "cold_start": cold_rows,
        "per_token": token_rows,
        "forward": forward_rows,
    }
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", token_rows, times, forward_rows)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
