"""``blockgen ovid``: convert a line-numbered Ovid/PubMed search strategy into one block query."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, TextIO

from blockgen.cli_io import InputError, at_line, json_line, read_text, report, split_lines
from blockgen.formatter import STYLES, format_query
from blockgen.ovid import OvidError, convert_ovid, summarize


PROG = "blockgen ovid"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``ovid`` subcommand."""
    p = subparsers.add_parser(
        "ovid",
        help="convert an Ovid/PubMed search strategy into a block query",
        description=(
            "Convert a line-numbered Ovid MEDLINE or PubMed search strategy (one strategy per "
            "FILE) into one Boolean block query; what had to be dropped or approximated is "
            "listed on standard error. With --topics, convert every strategy of a JSONL file "
            "(fields 'topic' and 'query') and print the figures. "
            "(`blockgen translate --from ovid --to pubmed` writes it for another engine.)"
        ),
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="the strategy; '-' or nothing: standard input")
    p.add_argument("--topics", metavar="JSONL", help="a topics file (CLEF TAR topics.jsonl) to summarise instead")
    p.add_argument("--style", choices=STYLES, default="canonical", help="how to print the query")
    p.add_argument("--json", action="store_true", help="print {query, dropped, lines} as JSON (dropped: {kind, line, detail})")
    p.set_defaults(run=run)
    return p


def run(args, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None, stdin: Optional[TextIO] = None) -> int:
    """Run ``blockgen ovid``; 0 converted, 1 nothing convertible, 2 any other error (one line on
    standard error: a missing file, input that is not UTF-8; :mod:`blockgen.cli_io`)."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    if args.topics:
        return _topics(Path(args.topics), stdout, stderr)
    try:
        text = read_text(args.file, stdin)
    except InputError as err:
        return report(stderr, err, PROG)
    try:
        with at_line(None, OvidError):
            conv = convert_ovid(text)
            query = format_query(conv.query, style=args.style)
    except OvidError as err:
        return report(stderr, err, PROG, code=1)
    if args.json:
        record = {"query": query, "dropped": [n.as_dict() for n in conv.dropped], "lines": conv.lines}
        print(json_line(record), file=stdout)
    else:
        print(query, file=stdout)
        for note in conv.dropped:
            print(f"note: {note}", file=stderr)
    return 0


def _topics(path: Path, stdout: TextIO, stderr: TextIO) -> int:
    try:
        text = read_text(str(path), sys.stdin)
    except InputError as err:
        return report(stderr, err, PROG)
    rows = []
    for number, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            return report(stderr, f"{path}:{number}: not JSON ({err.msg})", PROG)
        if not isinstance(row, dict) or not isinstance(row.get("query"), str):
            return report(stderr, f"{path}:{number}: expected an object with a 'query' string", PROG)
        rows.append((str(row.get("topic", number)), row["query"]))
    s = summarize(rows)
    print(f"converted to valid queries: {s['converted']}/{s['total']}", file=stdout)
    print(f"clean (nothing dropped or approximated): {s['clean']}/{s['total']}", file=stdout)
    print(f"clean or only limits dropped (date, language, humans): {s['only_limits']}/{s['total']}", file=stdout)
    print("strategies with each kind of note:", file=stdout)
    for kind, count in s["kinds"]:
        print(f"  {count:4d}  {kind}", file=stdout)
    for failure in s["failures"]:
        print(f"  failed: {failure}", file=stdout)
    return 0
