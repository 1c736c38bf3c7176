"""``blockgen translate``: read a query as one engine reads it, write it for another.

    blockgen translate --from pubmed --to ovid strategy.txt
    blockgen translate --from ovid --to lucene -              # standard input
    blockgen translate --from pubmed --to blockgen -q 'a AND b OR c'
    blockgen translate --from lucene --to pubmed --lines queries.txt --json

The whole input is one query (strategies span lines) unless ``--lines``. The translation goes
to standard output; every note (what the reader decided, what the target cannot express) to
standard error as ``note: ...``. Exit codes: 0 translated, 1 a query that cannot be read (the
error names line and column), or with ``--strict`` a translation that is not exact; 2 any
other error (a missing file, input that is not UTF-8), one line on standard error
(:mod:`blockgen.cli_io`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, TextIO

from blockgen.cli_io import InputError, at_line, json_line, numbered_lines, read_text, report
from blockgen.dialects import DIALECTS, DialectError, translate
from blockgen.parser import QuerySyntaxError

__all__ = ["InputError", "add_parser", "read_input", "run"]


def read_input(file: Optional[str], query: Optional[str], stdin: TextIO) -> str:
    """The text of ``-q QUERY``, a FILE, or standard input (``None``/``-``), as strict UTF-8
    (:func:`blockgen.cli_io.read_text`)."""
    return read_text(file, stdin, query=query)


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
        return report(stderr, err, "blockgen translate")
    if args.lines:
        queries: list = numbered_lines(text)
    else:
        queries = [(None, text)] if text.strip() else []
    if not queries:
        return report(stderr, "the input holds no query", "blockgen translate")
    failed = inexact = 0
    for number, query in queries:
        where = f"line {number}: " if number is not None else ""
        try:
            with at_line(number, QuerySyntaxError, DialectError):
                result = translate(query, args.source, args.target)
        except (QuerySyntaxError, DialectError) as err:
            failed += 1
            if args.json:
                print(json_line({"line": number, "text": None, "error": str(err).split("\n")[0]}), file=stdout)
            else:
                print(f"blockgen translate: {where}{err}", file=stderr)
            continue
        inexact += not result.exact
        if args.json:
            notes = [dict(n.as_dict(), stage="read") for n in result.read_notes] + [dict(n.as_dict(), stage="write") for n in result.write_notes]
            print(json_line({"line": number, "text": result.text, "exact": result.exact, "notes": notes}), file=stdout)
        else:
            print(result.text, file=stdout)
            for note in result.read_notes:
                print(f"note: {where}reading {args.source}: {note}", file=stderr)
            for note in result.write_notes:
                print(f"note: {where}writing {args.target}: {note}", file=stderr)
    return 1 if failed or (args.strict and inexact) else 0
