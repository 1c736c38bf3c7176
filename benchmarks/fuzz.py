"""Fuzz blockgen's text functions with hypothesis-drawn and mutated real inputs.

    python -m benchmarks.fuzz --n 1000000             # a million inputs, every class and function
    python -m benchmarks.fuzz --n 20000 --seed 3 --classes deep chain --functions parse repair

Every input (drawn by :mod:`benchmarks.fuzz_inputs`: grammar queries, mutated real queries,
any Unicode, random bytes, deep nesting, long chains, Ovid strategies, model answers) goes
through every check of :mod:`benchmarks.fuzz_checks` (parse, format in every style and
dialect, repair, shortest_completion, convert_ovid, the dialect readers, answer extraction).
Per function the table gives the inputs, the crashes (an exception the function does not
document), the invariant failures (a wrong answer), the timeouts (``--timeout`` seconds per
call; the call is interrupted by an alarm, which Python delivers between bytecodes: a call
stuck inside one regular-expression match is interrupted when the match returns, and its
time is in the slow-call record either way) and the slowest input (time and a short repr in which runs are
written ``"("*200``). Distinct crashes and failures are listed with their shortest
reproducer; calls slower than ``--slow`` seconds are recorded. ``--seed`` makes a run
reproducible (the classes take turns of ``--chunk`` hypothesis draws, one seed per turn, each
draw giving ``--per-draw`` inputs: the drawn text and its mutations).
Results: ``benchmarks/results/fuzz.json``. Runs made side by side (one process each, different
``--seed``, ``--out``) are combined with ``--merge A/fuzz.json B/fuzz.json``; ``kill PID`` stops
a run early and still writes what it found (``--checkpoint`` writes it as it goes).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from benchmarks import report
from benchmarks.fuzz_checks import CHECKS, Broken
from benchmarks.fuzz_inputs import CLASSES, case_strategy, corpus, schedule, variants

NAME = "fuzz"
#: Examples kept per distinct crash or failure.
EXAMPLES = 3
#: Slow calls kept (the slowest).
SLOW_KEPT = 100


class FuzzTimeout(BaseException):
    """Raised by the alarm inside a call that runs longer than ``--timeout`` (a BaseException, so
    that no ``except Exception`` in the code under test swallows it)."""


# ---------------------------------------------------------------- short reprs


def compact_repr(text: str, limit: Optional[int] = 70) -> str:
    """A Python expression for ``text`` with runs written as repetitions: ``'(' * 200 + 'a'``.

    Cut to about ``limit`` characters (``...`` and the length added) unless ``limit`` is None.
    """
    parts: list[str] = []
    plain = ""
    i, n = 0, len(text)
    while i < n:
        best = None
        for period in range(1, 13):
            unit = text[i : i + period]
            if len(unit) < period:
                break
            k = 1
            while text.startswith(unit, i + k * period):
                k += 1
            if k >= 4 and k * period >= 12 and (best is None or k * period > best[0] * best[1]):
                best = (k, period, unit)
        if best is None:
            plain += text[i]
            i += 1
            continue
        if plain:
            parts.append(repr(plain))
            plain = ""
        k, period, unit = best
        parts.append(f"{unit!r}*{k}")
        i += k * period
    if plain or not parts:
        parts.append(repr(plain))
    out = " + ".join(parts)
    if limit is not None and len(out) > limit:
        out = out[: limit - 3] + "..." + f" ({n} chars)"
    return out


# ---------------------------------------------------------------- per-function record


@dataclass
class Record:
    """What one function did over the run."""

    function: str
    inputs: int = 0
    crashes: int = 0
    failures: int = 0
    timeouts: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    slowest_input: str = ""
    slowest_class: str = ""
    #: (kind, signature) -> {"kind", "error", "count", "examples": [(length, class, repr)]}
    findings: dict = field(default_factory=dict)

    def add(self, cls: str, text: str, seconds: float, outcome: Optional[tuple[str, BaseException]]) -> None:
        self.inputs += 1
        self.seconds += seconds
        if seconds > self.slowest:
            self.slowest, self.slowest_input, self.slowest_class = seconds, compact_repr(text), cls
        if outcome is None:
            return
        kind, err = outcome
        if kind == "crash":
            self.crashes += 1
        elif kind == "failure":
            self.failures += 1
        else:
            self.timeouts += 1
        signature = _signature(kind, err)
        entry = self.findings.setdefault(signature, {"kind": kind, "error": _message(kind, err), "count": 0, "examples": []})
        entry["count"] += 1
        examples = entry["examples"]
        if len(examples) < EXAMPLES or len(text) < examples[-1][0]:
            examples.append((len(text), cls, compact_repr(text, limit=None if len(text) <= 400 else 300)))
            examples.sort(key=lambda e: e[0])
            del examples[EXAMPLES:]

    def row(self) -> dict:
        return {
            "function": self.function, "inputs": self.inputs, "crashes": self.crashes, "failures": self.failures,
            "timeouts": self.timeouts, "mean_us": 1e6 * self.seconds / max(self.inputs, 1), "slowest_s": self.slowest,
            "slowest_input": self.slowest_input, "slowest_class": self.slowest_class,
        }


def _message(kind: str, err: Optional[BaseException]) -> str:
    if kind == "timeout" or err is None:
        return "timeout"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:200]}" if kind == "crash" else text[:200]


def _signature(kind: str, err: Optional[BaseException]) -> tuple[str, str]:
    if kind == "timeout" or err is None:
        return kind, "timeout"
    if kind == "failure":
        return kind, str(err).split(":")[0][:80]
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "blockgen" in f.filename and "benchmarks" not in f.filename] or frames[-1:]
    # no blockgen frame: the innermost one (e.g. "<string>:__eq__", a dataclass comparing deep trees)
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} {ours[-1].name}" if ours else "?"
    return kind, f"{type(err).__name__} at {where}"


# ---------------------------------------------------------------- the run


@dataclass
class Run:
    """A whole fuzz run: one :class:`Record` per function, the inputs per class, the slow calls."""

    records: dict[str, Record]
    classes: dict[str, int] = field(default_factory=dict)
    distinct: int = 0
    inputs: int = 0
    seconds: float = 0.0
    slow: list = field(default_factory=list)
    #: Why the run stopped before ``n`` inputs (Ctrl-C), or "".
    stopped: str = ""


def _stop(signum, frame):  # pragma: no cover - only when the run is stopped
    raise KeyboardInterrupt()


def _alarm(signum, frame):  # pragma: no cover - only on a real timeout
    raise FuzzTimeout()


def run_one(cls: str, text: str, checks: dict[str, Callable[[str], None]], run: Run, timeout: float, slow: float) -> None:
    """Run every check on one input and record the outcomes in ``run``."""
    for name, check in checks.items():
        outcome = None
        if timeout:  # then again every second: an alarm raised inside a gc callback is ignored by Python
            signal.setitimer(signal.ITIMER_REAL, timeout, min(timeout, 1.0))
        start = time.perf_counter()
        try:
            check(text)
        except Broken as err:
            outcome = ("failure", err)
        except FuzzTimeout as err:
            outcome = ("timeout", err)
        except Exception as err:  # noqa: BLE001 - every undocumented exception is a finding
            outcome = ("crash", err)
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - start
        run.records[name].add(cls, text, seconds, outcome)
        if seconds >= slow:
            run.slow.append((seconds, name, cls, compact_repr(text)))
            if len(run.slow) > 2 * SLOW_KEPT:
                run.slow.sort(reverse=True)
                del run.slow[SLOW_KEPT:]


def fuzz(
    n: int,
    seed: int = 0,
    classes: Sequence[str] = tuple(CLASSES),
    functions: Sequence[str] = tuple(CHECKS),
    timeout: float = 10.0,
    slow: float = 1.0,
    chunk: int = 1000,
    progress: bool = True,
    per_draw: int = 8,
    checkpoint: Optional[Callable[[Run], None]] = None,
) -> Run:
    """Draw ``n`` inputs from ``classes`` and run the ``functions``' checks on each.

    The classes take turns (:func:`benchmarks.fuzz_inputs.schedule`): ``chunk`` hypothesis
    draws of one class, then of the next.

    Each hypothesis draw gives ``per_draw`` inputs: the drawn text and ``per_draw - 1``
    mutations of it (:func:`benchmarks.fuzz_inputs.variants`). ``checkpoint(run)`` is called
    after every ``chunk`` draws; Ctrl-C stops the run early (``run.stopped`` says so)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from tqdm.auto import tqdm

    checks = {name: CHECKS[name] for name in functions}
    run = Run({name: Record(name) for name in checks}, {c: 0 for c in classes})
    order = schedule(classes)
    strategies = {c: case_strategy(c) for c in classes}
    seen: set[int] = set()
    bar = tqdm(total=n, unit="input", disable=not progress, smoothing=0.02, mininterval=1.0)
    previous = signal.signal(signal.SIGALRM, _alarm) if timeout else None
    start = time.perf_counter()
    try:
        part = 0
        exhausted = 0
        while run.inputs < n and exhausted < len(order):
            before = run.inputs
            cls = order[part % len(order)]

            @settings(max_examples=max(1, min(chunk, -(-(n - run.inputs) // per_draw))), database=None, deadline=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @hseed(seed * 1_000_003 + part)
            @given(strategies[cls])
            def one(case):
                drawn, mutation_seed = case
                for text in variants(drawn, mutation_seed, per_draw):
                    if run.inputs >= n:
                        return
                    run.inputs += 1
                    run.classes[cls] += 1
                    seen.add(hash(text))
                    run_one(cls, text, checks, run, timeout, slow)
                    bar.update(1)

            try:
                one()
            except KeyboardInterrupt:
                run.stopped = f"interrupted after {run.inputs:,} inputs"
                break
            part += 1
            exhausted = exhausted + 1 if run.inputs == before else 0  # every class exhausted: stop
            if checkpoint is not None:
                run.seconds, run.distinct = time.perf_counter() - start, len(seen)
                checkpoint(run)
    finally:
        if timeout:
            signal.signal(signal.SIGALRM, previous)
        bar.close()
    run.seconds = time.perf_counter() - start
    run.distinct = len(seen)
    run.slow.sort(reverse=True)
    del run.slow[SLOW_KEPT:]
    return run


# ---------------------------------------------------------------- output

COLUMNS = [
    ("function", "function"), ("inputs", "inputs", ","), ("crashes", "crashes", ","), ("failures", "invariant failures", ","),
    ("timeouts", "timeouts", ","), ("mean_us", "mean µs", ".0f"), ("slowest_s", "slowest s", ".3f"),
    ("slowest_input", "slowest input"),
]


def findings_rows(run: Run) -> list[dict]:
    """One row per distinct crash, failure or timeout: function, kind, count, error, shortest example."""
    rows = []
    for record in run.records.values():
        for (kind, signature), entry in record.findings.items():
            length, cls, example = entry["examples"][0]
            rows.append({"function": record.function, "kind": kind, "count": entry["count"], "where": signature,
                         "error": entry["error"], "class": cls, "length": length, "example": example,
                         "examples": entry["examples"], "error_short": entry["error"][:90],
                         "example_short": example if len(example) <= 90 else example[:80] + "..."})
    rows.sort(key=lambda r: (r["function"], -r["count"]))
    return rows


def _payload(run: Run, args, argv, data, partial: bool = False) -> dict:
    return {
        "meta": report.meta(NAME, list(argv or []), seed=args.seed, timeout_s=args.timeout, chunk=args.chunk,
                            per_draw=args.per_draw, corpus=data.source, corpus_counts=data.counts),
        "partial": partial, "stopped": run.stopped, "requested": args.n,
        "inputs": run.inputs, "distinct": run.distinct, "seconds": run.seconds,
        "inputs_per_second": run.inputs / max(run.seconds, 1e-9), "classes": run.classes,
        "functions": [r.row() for r in run.records.values()], "findings": findings_rows(run),
        "slow": [{"seconds": s, "function": f, "class": c, "input": r} for s, f, c, r in run.slow],
    }


FINDING_COLUMNS = [("function", "function"), ("kind", "kind"), ("count", "count", ","), ("where", "where"),
                   ("error_short", "error"), ("example_short", "shortest input")]


def print_report(payload: dict, slow: float) -> None:
    """Print the per-function table, the distinct findings and the slowest calls of a result."""
    meta = payload["meta"]
    commands = meta.get("commands") or [meta["command"]]
    stopped = f"; {payload['stopped']}" if payload.get("stopped") else ""
    title = (f"fuzz: {payload['inputs']:,} inputs ({payload['distinct']:,} distinct) in {payload['seconds']:,.0f} s, "
             f"{payload['inputs_per_second']:,.0f} inputs/s ({' & '.join(commands)}){stopped}")
    report.print_table(payload["functions"], COLUMNS, title)
    if payload["findings"]:
        report.print_table(payload["findings"], FINDING_COLUMNS, "distinct findings")
    if payload["slow"]:
        report.print_table(payload["slow"][:10], [("seconds", "s", ".3f"), ("function", "function"), ("class", "class"),
                                                  ("input", "input")], f"slowest calls (>= {slow} s)")


def merge(payloads: Sequence[dict]) -> dict:
    """One result from the results of runs made side by side (``--merge``): counts added, the
    slowest input and the shortest examples kept; ``seconds`` is the longest run's."""
    functions: dict[str, dict] = {}
    for p in payloads:
        for row in p["functions"]:
            into = functions.setdefault(row["function"], {**row, "inputs": 0, "crashes": 0, "failures": 0, "timeouts": 0,
                                                          "mean_us": 0.0, "slowest_s": -1.0})
            total = into["inputs"] + row["inputs"]
            into["mean_us"] = (into["mean_us"] * into["inputs"] + row["mean_us"] * row["inputs"]) / max(total, 1)
            for key in ("inputs", "crashes", "failures", "timeouts"):
                into[key] += row[key]
            if row["slowest_s"] > into["slowest_s"]:
                into.update(slowest_s=row["slowest_s"], slowest_input=row["slowest_input"], slowest_class=row["slowest_class"])
    findings: dict[tuple, dict] = {}
    for p in payloads:
        for f in p["findings"]:
            key = (f["function"], f["kind"], f["where"])
            if key not in findings:
                findings[key] = dict(f)
                continue
            into = findings[key]
            into["count"] += f["count"]
            into["examples"] = sorted(into["examples"] + f["examples"], key=lambda e: e[0])[:EXAMPLES]
            if f["length"] < into["length"]:
                into.update({k: f[k] for k in ("length", "class", "example", "example_short")})
    classes: dict[str, int] = {}
    for p in payloads:
        for c, k in p["classes"].items():
            classes[c] = classes.get(c, 0) + k
    inputs = sum(p["inputs"] for p in payloads)
    seconds = max(p["seconds"] for p in payloads)
    meta = dict(payloads[0]["meta"], commands=[p["meta"]["command"] for p in payloads],
                seeds=[p["meta"].get("seed") for p in payloads], merged=len(payloads))
    return {
        "meta": meta, "partial": any(p.get("partial") for p in payloads),
        "stopped": "; ".join(p["stopped"] for p in payloads if p.get("stopped")),
        "requested": sum(p.get("requested", 0) for p in payloads), "inputs": inputs,
        "distinct": sum(p["distinct"] for p in payloads), "seconds": seconds, "inputs_per_second": inputs / max(seconds, 1e-9),
        "classes": classes, "functions": list(functions.values()),
        "findings": sorted(findings.values(), key=lambda r: (r["function"], -r["count"])),
        "slow": sorted((s for p in payloads for s in p["slow"]), key=lambda s: -s["seconds"])[:SLOW_KEPT],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="inputs to draw (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", nargs="+", choices=list(CLASSES), default=list(CLASSES), help="input classes (default all)")
    parser.add_argument("--functions", nargs="+", choices=list(CHECKS), default=list(CHECKS), help="checks (default all)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call before it is interrupted (0: none)")
    parser.add_argument("--slow", type=float, default=1.0, help="record calls slower than this many seconds")
    parser.add_argument("--chunk", type=int, default=50, help="draws of one class in a turn (one hypothesis seed)")
    parser.add_argument("--per-draw", type=int, default=8, help="inputs per draw: the drawn text and its mutations")
    parser.add_argument("--out", help="results directory (default benchmarks/results)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--checkpoint", type=float, default=300.0, help="write the results so far every this many seconds (0: never)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="instead of fuzzing: merge the results of runs made side by side (different --seed) into one")
    args = parser.parse_args(argv)
    if args.merge:
        import json

        try:
            parts = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.merge]
        except (OSError, ValueError) as err:
            return report.fail(f"cannot read the results to merge: {err}")
        payload = merge(parts)
        print_report(payload, args.slow)
        print(f"wrote {report.write_json(report.results_dir(args.out) / f'{NAME}.json', payload)}")
        return 0
    if args.n < 1 or args.per_draw < 1 or args.chunk < 1:
        return report.fail("--n, --per-draw and --chunk must be at least 1")
    warnings.simplefilter("ignore")  # dialect notes are warnings; the checks look at the results
    signal.signal(signal.SIGTERM, _stop)  # `kill PID` stops the run early and still writes its results
    data = corpus()
    print(f"inputs: {args.n:,} from {', '.join(args.classes)}; mutation seeds: {data.source}", flush=True)
    out = report.results_dir(args.out) / f"{NAME}.json"
    last = [time.monotonic()]

    def checkpoint(partial: Run) -> None:
        if time.monotonic() - last[0] >= args.checkpoint:
            report.write_json(out, _payload(partial, args, argv, data, partial=True))
            last[0] = time.monotonic()

    run = fuzz(args.n, args.seed, args.classes, args.functions, args.timeout, args.slow, args.chunk, not args.no_progress,
               args.per_draw, checkpoint if args.checkpoint > 0 else None)
    payload = _payload(run, args, argv, data)
    print_report(payload, args.slow)
    print(f"wrote {report.write_json(out, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
