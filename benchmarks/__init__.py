"""blockgen's benchmarks: each is ``python -m benchmarks.NAME [options]``, or ``benchmarks.main(NAME, argv)``.

* ``engine``: the decoding engine side by side: constrained/free time per token, grammar time
  per row, thread policy, cold start to the first mask;
* ``mask_overhead``: per-token cost of grammar masks (llguidance, xgrammar) vs a model forward step;
* ``sim4ia``: Sim4IA 2025 Task A1 metrics reproduced offline (and a generated run scored);
* ``constrained_vs_free``: validity, cut-offs, size and speed of constrained vs free decoding;
* ``repair``: how well :func:`blockgen.repair.repair` fixes real broken model output;
* ``dialects``: parse rate and term retention of the dialect readers on real strategies, and
  repair of real and wrapped LLM answers.
* ``closing``: an engine's grammar mask cut at the budget + repair (as with vLLM) vs blockgen's closing;
* ``quality``: how close the default model's queries come to experts' and users' queries (held-out topics).
* ``anchor_sweep``: the anchoring settings scored on candidates ``quality`` saved (no model run).
* ``cli_time``: the README's ``blockgen generate`` example timed in fresh processes, and where the time goes.
* ``fuzz``: every public text function on hypothesis-drawn and mutated real inputs: crashes,
  invariant failures and the slowest input per function (writes ``fuzz.json`` only).
* ``scaling``: time of parse, repair, format, shortest_completion and convert_ovid from 1 K to 1 M
  characters of hostile and normal input, and its growth per 10x step.

Each prints a table and writes ``benchmarks/results/NAME.json`` and ``NAME.png``.
"""

from __future__ import annotations

import importlib
from typing import Optional, Sequence

BENCHMARKS = ("engine", "mask_overhead", "sim4ia", "constrained_vs_free", "repair", "dialects", "closing", "quality", "anchor_sweep",
              "cli_time", "fuzz", "scaling")


def main(name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Run benchmark ``name`` with command-line arguments ``argv``; returns the exit code."""
    if name not in BENCHMARKS:
        raise SystemExit(f"error: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"benchmarks.{name}")
    return module.main(list(argv) if argv is not None else [])


__all__ = ["BENCHMARKS", "main"]
