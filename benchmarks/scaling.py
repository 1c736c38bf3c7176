"""How the time of parse, repair, format, shortest_completion and convert_ovid grows with input size.

    python -m benchmarks.scaling                 # 1 K, 10 K, 100 K and 1 M characters
    python -m benchmarks.scaling --max 100000    # stop at 100 K

Every function is timed on hostile inputs (an unclosed quote before 1 MB of text, a run of
NOTs, deep parentheses, long AND/NOT chains, Ovid ``$`` truncations, blanks in brackets ...)
and on normal ones (real-looking queries and Ovid strategies repeated to the size), at 1 K,
10 K, 100 K and 1 M characters. For each 10x step it prints the growth of the time: linear
time gives about 10x; the target is at most 12x. Times are the process's CPU time (a shared
machine's other jobs disturb them less than wall time); each call is repeated until 0.3 s
has passed (garbage collector paused) and the best run is kept; growth is shown only between
times of at least 1 ms; a row stops growing once one call takes longer than ``--budget``
seconds.

Writes ``benchmarks/results/scaling.json`` and ``scaling.png``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Callable, Optional, Sequence

from benchmarks import report

NAME = "scaling"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TARGET = 12.0

_NORMAL_QUERY = '("climate change" OR "global warming" OR Київ) AND ("social media" OR Twitter OR tweet*) NOT "renewable energy"[tiab]'
_NORMAL_OVID = [
    "exp Climate Change/",
    "(global adj2 warming).ti,ab.",
    "(climate$ and (change or crisis)).ti,ab,kw.",
]


def _repeat(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


def _joined(unit: str, sep: str, n: int) -> str:
    return sep.join([unit] * max(1, n // (len(unit) + len(sep))))


def _ovid_lines(n: int) -> str:
    lines: list[str] = []
    size = 0
    k = 0
    while size < n:
        if k % 4 == 3:
            line = f"{k - 2} or {k - 1} or {k}"
        else:
            line = _NORMAL_OVID[k % 3]
        lines.append(line)
        size += len(line) + 1
        k += 1
    return "\n".join(lines)


def _ovid_chain(n: int) -> str:
    lines = ["malaria"]
    size = 8
    k = 1
    while size < n:
        line = f"{k} or x{k}"
        lines.append(line)
        size += len(line) + 1
        k += 1
    return "\n".join(lines)


#: name -> (kind, builder of an input of about n characters, valid as a Boolean block query)
QUERY_INPUTS: dict[str, tuple[str, Callable[[int], str], bool]] = {
    "normal query": ("normal", lambda n: _joined(f"({_NORMAL_QUERY})", " AND ", n), True),
    "unclosed quote": ("hostile", lambda n: '"' + "a" * (n - 1), False),
    "NOT run": ("hostile", lambda n: _repeat("NOT ", n - 1) + "a", False),
    "deep parentheses": ("hostile", lambda n: "(" * (n // 2) + "a" + ")" * (n // 2), True),
    "open parentheses": ("hostile", lambda n: "(" * (n - 1) + "a", False),
    "AND/NOT chain": ("hostile", lambda n: "a" + _repeat(" AND b NOT c", n), True),
    "nested groups": ("hostile", lambda n: "(" * (n // 14) + "a OR b" + ") NOT c AND d" * (n // 14), True),
    "one long word": ("hostile", lambda n: "a" * n, True),
    "$ truncations": ("hostile", lambda n: _repeat("a$", n), False),
    "blanks in brackets": ("hostile", lambda n: _repeat("a [ tiab ", n), False),
    "odd quotes": ("hostile", lambda n: _repeat('a "b', n), False),
}

OVID_INPUTS: dict[str, tuple[str, Callable[[int], str]]] = {
    "normal strategy": ("normal", _ovid_lines),
    "deep parentheses": ("hostile", lambda n: "(" * (n // 2) + "a" + ")" * (n // 2)),
    "or run": ("hostile", lambda n: _repeat("or ", n - 1) + "a"),
    "reference chain": ("hostile", _ovid_chain),
    "C++ and control chars": ("hostile", lambda n: _repeat("C++.ti,ab. or mal\x00aria ", n)),
}


def _functions() -> dict[str, Callable[[str], object]]:
    from blockgen import format_query, is_valid, parse, shortest_completion, try_repair

    parsed: dict[str, object] = {}

    def fmt(text: str) -> object:
        return format_query(parsed[text])  # type: ignore[arg-type]

    fmt.prepare = lambda text: parsed.__setitem__(text, parse(text))  # type: ignore[attr-defined]
    return {"parse": is_valid, "repair": try_repair, "format": fmt, "shortest_completion": shortest_completion}


def _convert_ovid(text: str) -> object:
    from blockgen.ovid import OvidError, convert_ovid

    try:
        return convert_ovid(text)
    except OvidError as err:
        return err


def _time(fn: Callable[[str], object], text: str) -> float:
    """The best CPU time of ``fn(text)`` (this process's, so that other jobs on a shared
    machine count less than in wall time), repeated until 0.3 s has passed (at most 20 runs).

    The garbage collector is paused while timing (as ``timeit`` does): its full passes over
    every live object are the interpreter's cost, not the function's.
    """
    best = float("inf")
    spent = 0.0
    runs = 0
    gc.collect()
    gc.disable()
    try:
        while spent < 0.3 and runs < 20:
            t0 = time.process_time()
            fn(text)
            took = time.process_time() - t0
            best = min(best, took)
            spent += took
            runs += 1
    finally:
        gc.enable()
    return best


#: Growth is only computed between times of at least this many seconds (below, timer noise).
MIN_SECONDS = 1e-3


def measure(sizes: Sequence[int], budget: float) -> list[dict]:
    """One row per (function, input): its time at each size and the growth per 10x step."""
    rows = []
    cases: list[tuple[str, str, str, Callable[[str], object], Callable[[int], str]]] = []
    for fname, fn in _functions().items():
        for iname, (kind, build, valid) in QUERY_INPUTS.items():
            if fname == "format" and not valid:
                continue
            cases.append((fname, iname, kind, fn, build))
    for iname, (kind, build) in OVID_INPUTS.items():
        cases.append(("convert_ovid", iname, kind, _convert_ovid, build))
    for fname, iname, kind, fn, build in cases:
        row: dict = {"function": fname, "input": iname, "kind": kind}
        last: Optional[float] = None
        for n in sizes:
            text = build(n)
            prepare = getattr(fn, "prepare", None)
            if prepare is not None:
                prepare(text)
            took = _time(fn, text)
            row[f"s_{n}"] = took
            row[f"ms_{n}"] = took * 1e3
            if last is not None and last >= MIN_SECONDS:
                row[f"x_{n}"] = took / last
            last = took
            if took > budget:
                row["stopped"] = f"> {budget:g} s at {n:,}"
                break
        growths = [v for k, v in row.items() if k.startswith("x_")]
        row["max_growth"] = max(growths) if growths else float("nan")
        rows.append(row)
        print(f"  {fname:<19} {iname:<22} " + "  ".join(f"{row.get(f's_{n}', float('nan')) * 1e3:9.2f} ms" for n in sizes), flush=True)
    return rows


def _label(n: int) -> str:
    return f"{n // 1_000_000} M" if n >= 1_000_000 else f"{n // 1_000} K"


def table_columns(sizes: Sequence[int]) -> list:
    cols: list = [("function", "function"), ("input", "input"), ("kind", "kind")]
    for i, n in enumerate(sizes):
        cols.append((f"ms_{n}", f"{_label(n)} ms", ".2f"))
        if i:
            cols.append((f"x_{n}", f"x{_label(n)}", ".1f"))
    cols.append(("max_growth", "max growth", ".1f"))
    return cols


def plot(path, rows: list[dict], sizes: Sequence[int]):
    fig, (ax,) = report.new_figure(width=8, height=5)
    for row in rows:
        xs = [n for n in sizes if f"s_{n}" in row]
        ax.loglog(xs, [row[f"s_{n}"] for n in xs], marker="o", lw=1, alpha=0.7, ls="-" if row["kind"] == "hostile" else "--")
    ref = [sizes[0], sizes[-1]]
    base = min(row[f"s_{sizes[0]}"] for row in rows)
    ax.loglog(ref, [base, base * ref[1] / ref[0]], color="black", lw=2, label="linear")
    ax.set_xlabel("input size (characters)")
    ax.set_ylabel("CPU time (s)")
    ax.set_title("blockgen: time vs input size (dashed: normal inputs)")
    ax.legend()
    return report.save_figure(fig, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--max", type=int, default=SIZES[-1], help="largest input size in characters (default 1000000)")
    p.add_argument("--budget", type=float, default=120.0, help="stop a row once one call takes longer (seconds, default 120)")
    p.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv_list)
    sizes = [n for n in SIZES if n <= args.max]
    if not sizes:
        return report.fail(f"--max must be at least {SIZES[0]}")
    rows = measure(sizes, args.budget)
    text = report.print_table(rows, table_columns(sizes), "CPU time per call (ms) and growth per 10x step (target <= 12x)")
    worst = max((r for r in rows if r["max_growth"] == r["max_growth"]), key=lambda r: r["max_growth"], default=None)
    if worst is not None:
        print(f"largest growth per 10x: {worst['max_growth']:.1f}x ({worst['function']}, {worst['input']}); target <= {TARGET:g}x")
    out = report.results_dir(args.out)
    payload = {"meta": report.meta(NAME, argv_list, sizes=sizes, target=TARGET), "rows": rows, "table": text, "min_seconds_for_growth": MIN_SECONDS}
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", rows, sizes)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
