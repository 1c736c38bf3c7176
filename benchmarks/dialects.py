"""How the dialect readers and the answer extraction do on real strategies and real LLM answers.

    python -m benchmarks.dialects
    python -m benchmarks.dialects --external ../shared/data-external/staudinger2024

Inputs:

* the 128 CLEF TAR strategies of ``../shared/data/clef_tar/topics.jsonl`` (mostly Ovid,
  some PubMed, many line-numbered), read with the Ovid reader (``convert_ovid``);
* ``benchmarks/data/pubmed_strategies.jsonl``: PubMed strategies written out from published
  reviews' appendices and published search filters (each row cites its source);
* optional, from outside the repository (``--external``, never committed): the output CSVs of
  Staudinger et al. 2024's reproducibility study of LLM-written Boolean queries
  (GitHub MoritzStaudinger/booleanQueryReproducibility): the reviews' original PubMed
  queries (column ``query``) and the LLM answers (``q1_answer`` ... ``q5_answer``);
* the 350 queries of the Sim4IA LLM Boolean run, each wrapped as an LLM would wrap it (a
  JSON ``{"query": ...}``, a Python dict, a code fence, a ``Query:`` line in prose, and an
  Elasticsearch bool query built from its tree): a synthetic but realistic set of wrapped
  answers that is always there.

Measured per reader:

* **parse rate**: the share of inputs read without error (``blockgen``: the grammar as it
  stands; ``repair``: ``blockgen.repair``; ``pubmed``/``ovid``: the dialect readers);
* **term retention**: the share of the input's distinct *content words* found among the
  words of the result's terms (0 for an input that is not read). Content words are runs of
  letters of the input outside field tags (``[tiab]``), Ovid field suffixes (``.ti,ab.``)
  and line numbers, lower-cased, minus operators and the syntax words ``exp``, ``adjN``,
  ``near``, ``limit``, ``to``, ``or/``, ``and/``. Dropped limits (``limit 5 to humans``)
  count as lost words: retention is a plain bag-of-words measure, not a judgement;
* the notes each reader made, by kind.

For LLM answers, ``repair`` is run with the answer extraction (as shipped) and without it
(``_repair_query``, what repair did before): the number of wrapped answers whose wrapper
words became search terms (wrapper words: the words of the answer outside the query the
extraction found, such as ``query``, ``bool``, ``must``, ``Here``; for a refused dict, the
words of its keys), the share made valid, and the number refused with a message (an
Elasticsearch query or JSON tree that cannot be converted, a dict without a query string).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from benchmarks import report
from benchmarks.data import DataError, shared_data_dir, sim4ia_dir

NAME = "dialects"
DATA = Path(__file__).resolve().parent / "data" / "pubmed_strategies.jsonl"
EXTERNAL_DEFAULT = shared_data_dir().parent / "data-external" / "staudinger2024"
_SYNTAX_WORDS = {"and", "or", "not", "exp", "near", "limit", "to", "adj", "next", "same", "with"}
_TAG = re.compile(r"\[[^\]\n]*\]")
_SUFFIX = re.compile(r"\.\s*[a-z]{2}(?:\s*[,.]\s*[a-z]{2})*\.?(?=[\s)]|$)", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][^\W_]*")


# ------------------------------------------------------------------------------ measures


def content_words(text: str) -> set[str]:
    """The distinct content words of an input (see the module docstring)."""
    text = _SUFFIX.sub(" ", _TAG.sub(" ", text))
    text = re.sub(r"\b(?:or|and)\s*/\s*[\d,\s-]+", " ", text, flags=re.IGNORECASE)
    words = {w.lower() for w in _WORD.findall(text)}
    return {w for w in words if w not in _SYNTAX_WORDS and not re.fullmatch(r"adj\d*|near\d*|n\d+|w\d+", w)}


def tree_words(query) -> set[str]:
    """The lower-cased words of every term of a tree (texts; names and values of fields and comparisons)."""
    from blockgen.dialects._walk import fold_nodes

    words: set[str] = set()

    def leaf(node) -> None:
        for text in (getattr(node, "text", None), getattr(node, "name", None), getattr(node, "value", None)):
            words.update(w.lower() for w in _WORD.findall(text or ""))

    fold_nodes(query, leaf, lambda node, kids: None)
    return words


def retention(text: str, query) -> Optional[float]:
    """The share of the input's content words among the tree's words (None: no content words)."""
    wanted = content_words(text)
    if not wanted:
        return None
    return len(wanted & tree_words(query)) / len(wanted) if query is not None else 0.0


def read_with(reader: Callable[[str], Any], text: str) -> dict[str, Any]:
    """One input through one reader: ok, retention, note kinds, error, seconds."""
    start = time.perf_counter()
    try:
        query, notes = reader(text)
        error = None
    except RecursionError:
        query, notes, error = None, (), "RecursionError"
    except Exception as err:  # a reader's error: counted, with its message
        query, notes, error = None, (), f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    seconds = time.perf_counter() - start
    return {
        "ok": query is not None,
        "retention": retention(text, query) if query is not None else (0.0 if content_words(text) else None),
        "notes": sorted({getattr(n, "kind", str(n)) for n in notes}),
        "error": error,
        "seconds": seconds,
    }


def readers() -> dict[str, Callable[[str], Any]]:
    from blockgen.dialects import read
    from blockgen.parser import parse
    from blockgen.repair import repair

    return {
        "blockgen (grammar as it stands)": lambda t: (parse(t), ()),
        "blockgen.repair": lambda t: ((r := repair(t)).query, tuple(e.kind for e in r.edits)),
        "pubmed reader": lambda t: ((r := read(t, "pubmed")).query, r.notes),
        "ovid reader": lambda t: ((r := read(t, "ovid")).query, r.notes),
    }


def summarize(source: str, reader: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kept = [r["retention"] for r in records if r["retention"] is not None]
    ok = [r for r in records if r["ok"]]
    kinds: Counter = Counter()
    for r in ok:
        kinds.update(r["notes"])
    return {
        "source": source,
        "reader": reader,
        "inputs": len(records),
        "read": len(ok),
        "parse_rate": len(ok) / len(records) if records else float("nan"),
        "retention": sum(kept) / len(kept) if kept else float("nan"),
        "retention_when_read": (sum(r["retention"] for r in ok if r["retention"] is not None) / max(1, sum(r["retention"] is not None for r in ok))),
        "ms_per_input": 1000 * sum(r["seconds"] for r in records) / max(1, len(records)),
        "note_kinds": kinds.most_common(),
    }


# ------------------------------------------------------------------------------ inputs


def clef_strategies() -> list[tuple[str, str]]:
    path = shared_data_dir() / "clef_tar" / "topics.jsonl"
    if not path.is_file():
        raise DataError(f"data file not found: {path} (set BLOCKGEN_SHARED_DATA)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [(str(r["topic"]), r["query"]) for r in rows]


def pubmed_strategies(path: Path = DATA) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    return [(r["id"], r["query"]) for r in rows]


def external_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of every CSV under ``folder`` (Staudinger et al. 2024's output files)."""
    csv.field_size_limit(10**8)
    out: list[dict[str, str]] = []
    for path in sorted(folder.rglob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                row["_file"] = str(path.relative_to(folder))
                out.append(row)
    return out


def wrapped_sim4ia_answers() -> list[tuple[str, str, str]]:
    """(style, answer, query) for the Sim4IA Boolean run's queries, wrapped five ways."""
    from blockgen.dialects import read
    from blockgen.query import And, Not, Or, Phrase, Term

    run = json.loads((sim4ia_dir() / "llm_queries_boolean_run.json").read_text(encoding="utf-8"))
    queries = [q for k, qs in run.items() if k != "meta" for q in qs]

    def es(node) -> dict:
        if isinstance(node, Phrase):
            return {"match_phrase": {"title": node.text}}
        if isinstance(node, Term):
            return {"match": {"title": {"query": node.text, "operator": "and"}}}
        if isinstance(node, Or):
            return {"bool": {"should": [es(i) for i in node.items]}}
        if isinstance(node, And):
            return {"bool": {"must": [es(i) for i in node.items]}}
        if isinstance(node, Not):
            return {"bool": {"must": [es(node.positive)], "must_not": [es(node.negative)]}}
        return {"query_string": {"query": str(node)}}

    out = []
    for q in queries:
        out.append(("json", json.dumps({"query": q}), q))
        out.append(("dict", repr({"query": q}), q))
        out.append(("fence", f"Here is a Boolean query for this topic:\n```\n{q}\n```\nIt combines the main concepts.", q))
        out.append(("prose", f"Sure! Based on the session, the next query could be:\n\nQuery: {q}\n\nThis query broadens the search.", q))
        try:
            out.append(("elasticsearch", json.dumps({"query": es(read(q, "blockgen").query)}), q))
        except Exception:
            continue
    return out


# ------------------------------------------------------------------------------ answers


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _key_words(answer: str) -> set[str]:
    """Words of the keys of an answer that is a JSON object or dict, minus words of its values."""
    import ast

    try:
        value = json.loads(answer)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(answer.strip())
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            return set()
    keys: set[str] = set()
    values: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                keys |= _words(str(k))
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            values |= _words(item)
    return keys - values


def answer_record(answer: str) -> dict[str, Any]:
    """An LLM answer through repair with and without the extraction. Wrapper words: the words
    of the answer outside the query it holds (for a refused dict: its keys' words)."""
    from blockgen.answers import AnswerError, extract_query
    from blockgen.parser import is_valid
    from blockgen.repair import RepairError, _repair_query, repair

    rec: dict[str, Any] = {"valid_as_written": is_valid(answer)}
    try:
        found = extract_query(answer)
        rec["extracted"] = found.source
        wrapper = set() if not found.extracted else _words(answer) - _words(found.text)
    except AnswerError as err:
        rec["extracted"] = "refused"
        rec["refusal"] = str(err)[:160]
        wrapper = _key_words(answer)

    def wrapper_terms(query) -> set[str]:
        return tree_words(query) & wrapper

    for name, fn in (("with_extraction", lambda t: repair(t)), ("without_extraction", lambda t: _repair_query(t, False))):
        try:
            result = fn(answer)
            rec[name] = {"valid": is_valid(result.text), "wrapper_terms": sorted(wrapper_terms(result.query))}
        except RepairError as err:
            rec[name] = {"valid": False, "refused": str(err)[:160], "wrapper_terms": []}
        except Exception as err:  # counted as a crash
            rec[name] = {"valid": False, "crash": f"{type(err).__name__}: {err}"[:160], "wrapper_terms": []}
    return rec


def summarize_answers(source: str, records: Sequence[dict[str, Any]], wrapped: Optional[Iterable[bool]] = None) -> dict[str, Any]:
    n = len(records)
    flags = list(wrapped) if wrapped is not None else [r["extracted"] not in ("plain",) for r in records]
    wrapped_recs = [r for r, f in zip(records, flags) if f]

    def share(items, pred) -> float:
        items = list(items)
        return sum(1 for r in items if pred(r)) / len(items) if items else float("nan")

    return {
        "source": source,
        "answers": n,
        "valid_as_written": share(records, lambda r: r["valid_as_written"]),
        "wrapped": len(wrapped_recs),
        "extracted": dict(Counter(r["extracted"] for r in records)),
        "valid_after_repair": share(records, lambda r: r["with_extraction"]["valid"]),
        "valid_after_repair_without_extraction": share(records, lambda r: r["without_extraction"]["valid"]),
        "wrapper_terms_with_extraction": sum(1 for r in wrapped_recs if r["with_extraction"]["wrapper_terms"]),
        "wrapper_terms_without_extraction": sum(1 for r in wrapped_recs if r["without_extraction"]["wrapper_terms"]),
        "refused": sum(1 for r in records if r["extracted"] == "refused"),
        "crashes": sum(1 for r in records if "crash" in r["with_extraction"]),
    }


# ------------------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.dialects", description=__doc__.split("\n\n")[0])
    p.add_argument("--external", type=Path, default=EXTERNAL_DEFAULT, help="folder of Staudinger et al. 2024's output CSVs (read only; skipped if absent)")
    p.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results)")
    return p


def plot(path: Path, rows: list[dict[str, Any]], answers: list[dict[str, Any]]) -> Path:
    fig, (left, right) = report.new_figure(ncols=2, width=6.0, height=4.2)
    labels = [f"{r['source']}\n{r['reader']}" for r in rows]
    x = range(len(rows))
    left.bar([i - 0.2 for i in x], [100 * r["parse_rate"] for r in rows], width=0.4, label="read")
    left.bar([i + 0.2 for i in x], [100 * r["retention"] for r in rows], width=0.4, label="content words kept")
    left.set_xticks(list(x), labels, fontsize=5, rotation=60, ha="right")
    left.set_ylim(0, 105)
    left.set_ylabel("%")
    left.legend(fontsize=7)
    left.set_title("Real strategies by reader")
    y = range(len(answers))
    right.barh([i - 0.2 for i in y], [a["wrapper_terms_without_extraction"] for a in answers], height=0.4, label="repair without extraction")
    right.barh([i + 0.2 for i in y], [a["wrapper_terms_with_extraction"] for a in answers], height=0.4, label="repair with extraction")
    right.set_yticks(list(y), [a["source"] for a in answers], fontsize=6)
    right.set_xlabel("wrapped answers whose wrapper keys became terms")
    right.legend(fontsize=7)
    right.set_title("LLM answers")
    return report.save_figure(fig, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    rdr = readers()
    rows: list[dict[str, Any]] = []
    records: dict[str, Any] = {}
    try:
        clef = clef_strategies()
    except DataError as err:
        return report.fail(str(err))
    sources: list[tuple[str, list[tuple[str, str]], Sequence[str]]] = [
        ("CLEF TAR (128)", clef, ("blockgen (grammar as it stands)", "blockgen.repair", "ovid reader")),
        (f"published PubMed ({len(pubmed_strategies())})", pubmed_strategies(), ("blockgen (grammar as it stands)", "blockgen.repair", "pubmed reader")),
    ]
    external = external_rows(args.external) if args.external.is_dir() else []
    if external:
        originals = {}
        for row in external:
            originals.setdefault(row.get("id", ""), row.get("query", ""))
        seed = [(k, v) for k, v in originals.items() if v.strip()]
        sources.append((f"seed collection originals ({len(seed)})", seed, ("blockgen (grammar as it stands)", "blockgen.repair", "pubmed reader")))
    else:
        print(f"{args.external} not found: the Staudinger et al. 2024 answers are skipped", flush=True)
    for source, items, names in sources:
        for name in names:
            recs = [dict(read_with(rdr[name], text), id=key) for key, text in items]
            if not source.startswith("seed collection"):  # external data stays out of the results file
                records[f"{source} / {name}"] = recs
            rows.append(summarize(source, name, recs))
    report.print_table(
        rows,
        [("source", "strategies"), ("reader", "reader"), ("inputs", "n"), ("read", "read"), ("parse_rate", "parse rate", ".3f"),
         ("retention", "content words kept", ".3f"), ("retention_when_read", "kept when read", ".3f"), ("ms_per_input", "ms/input", ".1f")],
        "Dialect readers on real strategies",
    )
    for row in rows:
        if row["note_kinds"]:
            print(f"{row['source']} / {row['reader']}: notes " + ", ".join(f"{k} {v}" for k, v in row["note_kinds"][:10]))
    print()

    answers: list[dict[str, Any]] = []
    if external:
        texts = [row[k] for row in external for k in ("q1_answer", "q2_answer", "q3_answer", "q4_answer", "q5_answer") if row.get(k) is not None]
        recs = [answer_record(t) for t in texts]  # per-answer records stay out of the results file
        answers.append(summarize_answers(f"Staudinger et al. 2024 answers ({len(recs)})", recs))
    try:
        wrapped = wrapped_sim4ia_answers()
    except (OSError, DataError, ValueError) as err:
        print(f"Sim4IA run not readable ({err}): wrapped answers skipped", flush=True)
        wrapped = []
    by_style: dict[str, list[dict[str, Any]]] = {}
    for style, answer, _ in wrapped:
        by_style.setdefault(style, []).append(answer_record(answer))
    for style, recs in by_style.items():
        answers.append(summarize_answers(f"Sim4IA wrapped: {style} ({len(recs)})", recs, wrapped=[True] * len(recs)))
    if answers:
        report.print_table(
            answers,
            [("source", "answers"), ("valid_as_written", "valid as written", ".3f"), ("wrapped", "wrapped"),
             ("wrapper_terms_without_extraction", "wrapper keys became terms (old repair)"),
             ("wrapper_terms_with_extraction", "wrapper keys became terms (now)"), ("refused", "refused"),
             ("valid_after_repair", "valid after repair", ".3f"), ("crashes", "crashes")],
            "LLM answers through repair",
        )
        for a in answers:
            print(f"{a['source']}: extracted {a['extracted']}")
    out = report.results_dir(args.out)
    payload = {"meta": report.meta(NAME, argv_list), "readers": rows, "answers": answers, "records": records}
    json_path = report.write_json(out / f"{NAME}.json", payload)
    png_path = plot(out / f"{NAME}.png", rows, answers)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
