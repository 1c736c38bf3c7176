"""The README's CLI example from a cold process: ``blockgen generate "climate change misinformation"``.

    python -m benchmarks.cli_time                   # 5 fresh processes each way (~2 min)
    python -m benchmarks.cli_time --reps 3 --prompt "steel corrosion"

Issue 8's target is under 10 s on 2 cores. Each rep is a fresh ``python -m blockgen generate
PROMPT`` (the default model, its default settings: 10 queries, reranked and anchored), timed
from spawn to exit; one uncounted process runs first, so the weights sit in the OS file cache
as they do for a user's second command. Also with ``--no-rerank``. Then one instrumented
process reports where the time goes: importing torch, loading the default model, generating
(with reranking), and whether ``transformers`` or ``peft`` was imported at all.
Writes ``benchmarks/results/cli_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

from benchmarks import report

NAME = "cli_time"
DEFAULT_PROMPT = "climate change misinformation"

#: The instrumented child: the CLI's steps, timed one by one.
_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from blockgen.generate import QueryGenerator
gen = QueryGenerator.default()
t2 = time.perf_counter()
out = gen.generate([sys.argv[1]], n=10)
t3 = time.perf_counter()
print(json.dumps({"import_torch": t1 - t0, "load_model": t2 - t1, "generate_and_rerank": t3 - t2,
                  "queries": [c.text for c in out[0]],
                  "transformers_imported": "transformers" in sys.modules, "peft_imported": "peft" in sys.modules}))
"""


def run_cli(prompt: str, extra: Sequence[str]) -> float:
    """Wall seconds of one fresh ``python -m blockgen generate prompt [extra]`` (which must succeed)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "blockgen", "generate", prompt, *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"blockgen generate failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return seconds


def phases(prompt: str) -> dict[str, Any]:
    """One instrumented process: seconds per step and the libraries it imported."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PHASES, prompt], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the instrumented process failed: {proc.stderr.strip()[-500:]}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["wall"] = time.perf_counter() - start
    return record


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cli_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="fresh processes per way (default 5)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"the prompt (default: {DEFAULT_PROMPT!r})")
    args = p.parse_args(argv)
    if args.reps < 1:
        return report.fail("--reps must be at least 1")
    load_before = os.getloadavg()
    rows = []
    try:
        run_cli(args.prompt, [])  # uncounted: fills the file cache
        for label, extra in (("default (reranked, anchored)", []), ("--no-rerank", ["--no-rerank"])):
            times = [run_cli(args.prompt, extra) for _ in range(args.reps)]
            rows.append({"way": label, "min": min(times), "median": statistics.median(times), "max": max(times),
                         "under_10s": sum(t < 10 for t in times), "reps": len(times), "seconds": times})
        split = phases(args.prompt)
    except (RuntimeError, OSError, ValueError) as err:
        return report.fail(str(err))
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}", flush=True)
    report.print_table(rows, [("way", "way"), ("min", "min s", ".2f"), ("median", "median s", ".2f"),
                              ("max", "max s", ".2f"), ("under_10s", "under 10 s"), ("reps", "reps")],
                       f"blockgen generate {args.prompt!r}, fresh processes")
    report.print_table([split], [("import_torch", "import torch s", ".2f"), ("load_model", "load model s", ".2f"),
                                 ("generate_and_rerank", "generate+rerank s", ".2f"), ("wall", "process s", ".2f"),
                                 ("transformers_imported", "transformers imported"), ("peft_imported", "peft imported")],
                       "one instrumented process")
    out = report.results_dir(None) / f"{NAME}.json"
    report.write_json(out, {"meta": report.meta(NAME, list(argv) if argv is not None else sys.argv[1:],
                                                load_before=load_before, load_after=load_after),
                            "rows": rows, "phases": split})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
