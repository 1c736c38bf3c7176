"""``blockgen translate``: read a query as one engine reads it, write it for another.

    blockgen translate --from pubmed --to ovid strategy.txt
    blockgen translate --from ovid --to lucene -              # standard input
    blockgen translate --from pubmed --to blockgen -q 'a AND b OR c'
    blockgen translate --from lucene --to pubmed --lines queries.txt --json

The whole input is one query (strategies span lines) unless ``--lines``. The translation goes
to standard output; every note (what the reader decided, what the target cannot express) to
standard error as ``note: ...``. Exit codes: 0 translated, 1 a query that cannot be read (the
error names line and column), or with ``--strict`` a translation that is not exact; 2 usage
errors (a missing file, input that is not UTF-8), one line on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, TextIO

from blockgen.dialects import DIALECTS, DialectError, translate
from blockgen.parser import QuerySyntaxError

__all__ = ["InputError", "add_parser", "read_input", "run"]


class InputError(Exception):
    """Input that cannot be read (exit code 2)."""


def read_input(file: Optional[str], query: Optional[str], stdin: TextIO) -> str:
    """The text of ``-q QUERY``, a FILE, or standard input (``None``/``-``), as strict UTF-8.

    The one place these commands read input, so that it can move to a shared reader.
    """
    if query is not None and file not in (None, "-"):
        raise InputError("give a FILE or -q QUERY, not both")
    if query is not None:
        return query
    if file in (None, "-"):
        buffer = getattr(stdin, "buffer", None)
        data = buffer.read() if buffer is not None else None
        if data is None:
            return stdin.read()
        name = "standard input"
    else:
        path = Path(file)
        if not path.exists():
            raise InputError(f"file not found: {path}")
        if not path.is_file():
            raise InputError(f"not a file: {path}")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror}") from None
        name = str(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``translate`` subcommand."""
    p = subparsers.add_parser(
        "translate",
        help="translate a query between engines (blockgen, pubmed, ovid, lucene)",
        description=(
            "Read a query by one engine's rules (--from) and write it so that another engine "
            "(--to) executes what it means. Notes on what was decided or cannot be expressed go "
            "to standard error."
        ),
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="the query (all of it); '-' or nothing: standard input")
    p.add_argument("-q", "--query", metavar="QUERY", help="translate this query instead of reading a file")
    p.add_argument("--from", dest="source", choices=DIALECTS, required=True, help="the dialect to read")
    p.add_argument("--to", dest="target", choices=DIALECTS, required=True, help="the dialect to write")
    p.add_argument("--lines", action="store_true", help="one query per line (numbered in the output of --json)")
    p.add_argument("--json", action="store_true", help="one JSON object per query: text, exact, notes")
    p.add_argument("--strict", action="store_true", help="exit 1 when a translation is not exact")
    p.set_defaults(run=run)
    return p


def run(args, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None, stdin: Optional[TextIO] = None) -> int:
    """Run ``blockgen translate``; see the module docstring for the exit codes."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    try:
        text = read_input(args.file, args.query, stdin)
    except InputError as err:
        print(f"blockgen: {err}", file=stderr)
        return 2
    if args.lines:
        queries = [(i, line) for i, line in enumerate(text.split("\n"), 1) if line.strip()]
    else:
        queries = [(None, text)] if text.strip() else []
    if not queries:
        print("blockgen: the input holds no query", file=stderr)
        return 2
    failed = inexact = 0
    for number, query in queries:
        where = f"line {number}: " if number is not None else ""
        try:
            result = translate(query, args.source, args.target)
        except (QuerySyntaxError, DialectError) as err:
            failed += 1
            if args.json:
                print(json.dumps({"line": number, "text": None, "error": str(err).split("\n")[0]}, ensure_ascii=False), file=stdout)
            else:
                print(f"blockgen translate: {where}{err}", file=stderr)
            continue
        except RecursionError:
            failed += 1
            print(f"blockgen translate: {where}the query nests too deeply", file=stderr)
            continue
        inexact += not result.exact
        if args.json:
            notes = [dict(n.as_dict(), stage="read") for n in result.read_notes] + [dict(n.as_dict(), stage="write") for n in result.write_notes]
            print(json.dumps({"line": number, "text": result.text, "exact": result.exact, "notes": notes}, ensure_ascii=False), file=stdout)
        else:
            print(result.text, file=stdout)
            for note in result.read_notes:
                print(f"note: {where}reading {args.source}: {note}", file=stderr)
            for note in result.write_notes:
                print(f"note: {where}writing {args.target}: {note}", file=stderr)
    return 1 if failed or (args.strict and inexact) else 0
