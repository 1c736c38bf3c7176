"""How well :func:`blockgen.repair.repair` fixes real broken model output.

    python -m benchmarks.repair
    python -m benchmarks.repair --samples benchmarks/results/constrained_vs_free.json

Inputs (only the texts that do not parse are repaired):

* ``run_file_finetuned_filter_LLM_new.json``: a fine-tuned LLM's Sim4IA run (unbalanced
  quotes and parentheses, sentences);
* the free-decoding outputs saved by :mod:`benchmarks.constrained_vs_free` (when that JSON
  exists), with their cut-off flag.

Reported per source: the share made valid (the repaired text parses), the share of the
input's *complete terms* found in the output, the edits per query and the time per query.

A complete term of the input is a quoted phrase whose closing quote is there, a field or
comparison (``language:en``, ``yearPublished>=2019``) or a bare word (not AND/OR/NOT)
outside any quote and any closed field tag (``[Mesh]`` qualifies a term, it is not one);
words after an unclosed quote are not complete, nor is the last word of
an output cut off by the token budget when no blank follows it. A phrase is kept when its
text (case and spacing ignored) is, or is inside, the text of a term of the output; a word
when it is a word of an output term; a field/comparison when the output has one with the
same name, operator and value.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from benchmarks import report
from benchmarks.data import DataError, load_run, sim4ia_dir

NAME = "repair"
RUN_FILE = "run_file_finetuned_filter_LLM_new.json"
OPERATORS = {"AND", "OR", "NOT"}

_WORD = r"[0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё](?:[0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё*?]|[-'./&][0-9A-Za-zÀ-ÖØ-öø-ɏΑ-Ωα-ωА-яЁё])*"
_TOKEN = re.compile(
    r'(?P<field>(?P<fname>' + _WORD + r')\s*(?P<op>:|>=|<=|>|<|=)\s*(?:"(?P<fq>[^"\n]*)"|(?P<fv>' + _WORD + r')))'
    r'|"(?P<phrase>[^"\n]*)"'
    r'|(?P<open>")'
    r'|(?P<tag>\[[^\]\n"]*\])'
    r"|(?P<word>" + _WORD + r")"
)


@dataclass(frozen=True)
class InputTerm:
    """A complete term of a (broken) input: ``kind`` is ``word``, ``phrase`` or ``field``."""

    kind: str
    text: str
    name: str = ""  # fields and comparisons: the lower-cased name and the operator, e.g. "yearpublished>="


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def complete_terms(text: str, cut_off: bool = False) -> list[InputTerm]:
    """The complete terms of ``text`` (see the module docstring)."""
    found: list[tuple[InputTerm, int]] = []
    for m in _TOKEN.finditer(text):
        if m.group("open"):
            break  # an unclosed quote: nothing after it is a complete term
        if m.group("field"):
            value = m.group("fq") if m.group("fq") is not None else m.group("fv")
            if _norm(value):
                found.append((InputTerm("field", _norm(value), m.group("fname").lower() + m.group("op")), m.end()))
        elif m.group("phrase") is not None:
            if _norm(m.group("phrase")):
                found.append((InputTerm("phrase", _norm(m.group("phrase"))), m.end()))
        elif m.group("word") and m.group("word") not in OPERATORS:
            found.append((InputTerm("word", m.group("word").lower()), m.end()))
    if cut_off and found and found[-1][0].kind == "word" and found[-1][1] == len(text):
        found.pop()  # the budget may have cut this word in the middle
    return [t for t, _ in found]


def _leaf_parts(query) -> tuple[list[str], set[str], set[tuple[str, str]]]:
    """Normalised leaf texts, their words, and (name, value) of fields/comparisons of a parsed query."""
    from blockgen.query import Comparison, Field

    texts, words, fields = [], set(), set()
    for leaf in query.leaves():
        if isinstance(leaf, (Field, Comparison)):
            op = ":" if isinstance(leaf, Field) else leaf.op
            fields.add((leaf.name.lower() + op, _norm(leaf.value)))
            words.update(_norm(leaf.value).split())
            words.add(leaf.name.lower())
        else:
            texts.append(_norm(leaf.text))
            words.update(_norm(leaf.text).split())
    return texts, words, fields


def kept_terms(terms: Sequence[InputTerm], query) -> int:
    """How many of ``terms`` the parsed output ``query`` keeps."""
    if query is None:
        return 0
    texts, words, fields = _leaf_parts(query)
    kept = 0
    for t in terms:
        if t.kind == "word":
            kept += t.text in words
        elif t.kind == "phrase":
            kept += any(t.text == x or f" {t.text} " in f" {x} " for x in texts)
        else:
            kept += (t.name, t.text) in fields
    return kept


def repair_one(repair: Callable[[str], Any], text: str, cut_off: bool = False) -> dict[str, Any]:
    """Repair one broken text and measure the result."""
    from blockgen import parse
    from blockgen.parser import QuerySyntaxError

    terms = complete_terms(text, cut_off)
    t0 = time.perf_counter()
    error = None
    try:
        result = repair(text)
    except Exception as err:  # a crash is a finding, reported per input, not a benchmark failure
        result, error = None, f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - t0
    out_text = getattr(result, "text", None) if result is not None else None
    query = None
    if out_text is not None:
        try:
            query = parse(out_text)
        except QuerySyntaxError:
            query = None
    edits = getattr(result, "edits", None) if result is not None else None
    return {
        "input": text,
        "cut_off": cut_off,
        "output": out_text,
        "valid": query is not None,
        "complete_terms": len(terms),
        "kept_terms": kept_terms(terms, query),
        "edits": len(edits) if edits is not None else None,
        "edit_list": [str(e) for e in edits] if edits is not None else None,
        "seconds": seconds,
        "error": error,
    }


def summarize(source: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    terms = sum(r["complete_terms"] for r in records)
    edits = [r["edits"] for r in records if r["edits"] is not None]
    per_query = [r["kept_terms"] / r["complete_terms"] for r in records if r["complete_terms"]]
    return {
        "source": source,
        "inputs": n,
        "made_valid": sum(r["valid"] for r in records) / n if n else float("nan"),
        "terms_kept": sum(r["kept_terms"] for r in records) / terms if terms else float("nan"),
        "terms_kept_per_query": statistics.mean(per_query) if per_query else float("nan"),
        "complete_terms": terms,
        "edits_mean": statistics.mean(edits) if edits else float("nan"),
        "edits_median": statistics.median(edits) if edits else float("nan"),
        "gave_up": sum(1 for r in records if r["error"] and r["error"].startswith("RepairError")),
        "errors": sum(1 for r in records if r["error"] and not r["error"].startswith("RepairError")),
        "ms_per_query": 1e3 * sum(r["seconds"] for r in records) / n if n else float("nan"),
    }


def broken_run_queries(path: Path) -> list[tuple[str, bool]]:
    """The candidates of a run file that do not parse (not cut off)."""
    from blockgen import is_valid

    _, run = load_run(path)
    return [(c, False) for cands in run.values() for c in cands if c.strip() and not is_valid(c)]


def broken_free_outputs(path: Path) -> list[tuple[str, bool]]:
    """Free-decoding raw outputs saved by constrained_vs_free that do not parse, with their cut-off flag."""
    from blockgen import is_valid

    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        (s["raw_text"], bool(s.get("cut_off")))
        for s in data.get("samples", [])
        if s.get("mode") == "free" and s.get("raw_text", "").strip() and not is_valid(s["raw_text"])
    ]


def plot(path: Path, rows: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]]) -> Path:
    fig, (left, right) = report.new_figure(ncols=2, width=5.5, height=4.0)
    names = [r["source"] for r in rows]
    x = range(len(rows))
    left.bar([i - 0.2 for i in x], [100 * r["made_valid"] for r in rows], width=0.4, label="made valid")
    left.bar([i + 0.2 for i in x], [100 * r["terms_kept"] for r in rows], width=0.4, label="complete terms kept")
    left.set_xticks(list(x), names, fontsize=7)
    left.set_ylabel("%")
    left.set_ylim(0, 105)
    left.legend(fontsize=7, loc="lower right")
    left.set_title("Repair of broken model output")
    for name, recs in records.items():
        edits = [r["edits"] for r in recs if r["edits"] is not None]
        if edits:
            right.hist(edits, bins=range(0, max(edits) + 2), alpha=0.6, label=name)
    right.set_xlabel("edits per query")
    right.set_ylabel("queries")
    right.legend(fontsize=7)
    right.set_title("Edits per repaired query")
    return report.save_figure(fig, path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.repair", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None, help=f"Sim4IA run file with broken queries (default shared/data/sim4ia/{RUN_FILE})")
    p.add_argument("--samples", type=Path, default=None, help="constrained_vs_free JSON with free outputs (default benchmarks/results/constrained_vs_free.json if present)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    try:
        from blockgen.repair import repair
    except ImportError as err:
        return report.fail(f"blockgen.repair is not available yet: {err}")
    sources: dict[str, list[tuple[str, bool]]] = {}
    try:
        sources[RUN_FILE] = broken_run_queries(args.run or sim4ia_dir() / RUN_FILE)
    except DataError as err:
        return report.fail(str(err))
    samples = args.samples or report.results_dir(args.out) / "constrained_vs_free.json"
    if samples.is_file():
        try:
            sources["free decoding (constrained_vs_free.json)"] = broken_free_outputs(samples)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            return report.fail(f"cannot read free outputs from {samples}: {err}")
    else:
        print(f"{samples} not found: run python -m benchmarks.constrained_vs_free first to include free-decoding output", flush=True)

    records = {name: [repair_one(repair, text, cut) for text, cut in items] for name, items in sources.items()}
    rows = [summarize(name, recs) for name, recs in records.items()]
    report.print_table(
        rows,
        [
            ("source", "broken inputs from"),
            ("inputs", "inputs"),
            ("made_valid", "made valid", ".3f"),
            ("terms_kept", "complete terms kept", ".3f"),
            ("complete_terms", "complete terms"),
            ("edits_mean", "edits/query mean", ".2f"),
            ("edits_median", "edits/query median", ".1f"),
            ("gave_up", "gave up (RepairError)"),
            ("errors", "crashed"),
            ("ms_per_query", "ms/query", ".2f"),
        ],
        "blockgen.repair on real broken output",
    )
    out = report.results_dir(args.out)
    payload = {"meta": report.meta(NAME, argv_list), "summary": rows, "records": records}
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", rows, records)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
