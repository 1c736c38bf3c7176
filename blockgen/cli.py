"""The ``blockgen`` command line: validate, repair, format and generate queries.

Each subcommand lives in a module with ``add_parser(subparsers)``, which registers it and
sets ``run(args, stdout=, stderr=, stdin=) -> exit code`` as its default; :data:`COMMANDS`
lists those modules. Exit codes: 0 all good, 1 some query invalid (or not repairable),
2 usage error (bad option, missing file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence, TextIO

from blockgen.formatter import STYLES, format_query
from blockgen.parser import QuerySyntaxError, parse


class UsageError(Exception):
    """A command-line usage problem (exit code 2)."""


def _read_lines(args, stdin: TextIO) -> list[tuple[int, str]]:
    """Numbered non-blank lines from ``-q QUERY``, a FILE or standard input."""
    if args.query is not None and args.file not in (None, "-"):
        raise UsageError("give a FILE or -q QUERY, not both")
    if args.query is not None:
        return [(1, args.query)]
    if args.file in (None, "-"):
        text = stdin.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"{path} is not UTF-8 text: {err}") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _error_record(err: QuerySyntaxError) -> dict:
    return {"message": str(err).splitlines()[0], "line": err.line, "column": err.column, "expected": err.expected}


def _run_validate(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    bad = 0
    for number, line in _read_lines(args, stdin):
        try:
            parse(line)
            error = None
        except QuerySyntaxError as err:
            error, bad = err, bad + 1
        if args.json:
            rec = {"line": number, "query": line, "valid": error is None, "error": _error_record(error) if error else None}
            print(json.dumps(rec, ensure_ascii=False), file=stdout)
        elif error is None:
            print(f"{number}: OK", file=stdout)
        else:
            print(f"{number}: {error}", file=stdout)
    return 1 if bad else 0


def _run_repair(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    from blockgen.repair import try_repair

    failed = 0
    for number, line in _read_lines(args, stdin):
        result = try_repair(line)
        if result is None:
            failed += 1
        if args.json:
            rec = {
                "line": number,
                "input": line,
                "output": result.text if result else None,
                "repaired": bool(result and result.repaired),
                "edits": [e.__dict__ for e in result.edits] if result else [],
                "error": None if result else "nothing usable to repair: the text holds no term",
            }
            print(json.dumps(rec, ensure_ascii=False), file=stdout)
        elif result is None:
            print(f"blockgen repair: line {number}: nothing usable to repair: the text holds no term", file=stderr)
        else:
            print(result.text, file=stdout)
            if args.verbose:
                for edit in result.edits:
                    print(f"  line {number}: {edit}", file=stderr)
    return 1 if failed else 0


def _run_format(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    bad = 0
    for number, line in _read_lines(args, stdin):
        try:
            print(format_query(parse(line), style=args.style), file=stdout)
        except QuerySyntaxError as err:
            bad += 1
            print(f"blockgen format: line {number}: {err}", file=stderr)
    return 1 if bad else 0


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="a file with one query per line ('-' or nothing: standard input)")
    p.add_argument("-q", "--query", help="one query given on the command line")


def _add_core(subparsers) -> None:
    p = subparsers.add_parser("validate", help="check queries against the grammar", description="Check one query per line.")
    _add_input_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=_run_validate)

    p = subparsers.add_parser("repair", help="repair broken queries", description="Repair one query per line.")
    _add_input_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line, with the edits")
    p.add_argument("-v", "--verbose", action="store_true", help="list the edits on standard error")
    p.set_defaults(run=_run_repair)

    p = subparsers.add_parser("format", help="reformat valid queries", description="Reformat one query per line.")
    _add_input_args(p)
    p.add_argument("--style", choices=STYLES, default="canonical")
    p.set_defaults(run=_run_format)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: exit 2, no traceback
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``blockgen`` argument parser with every subcommand registered."""
    from blockgen import cli_generate

    parser = _Parser(prog="blockgen", description="Valid Boolean block search queries from language models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_core(sub)
    cli_generate.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None,
         stdin: Optional[TextIO] = None) -> int:
    """Run the ``blockgen`` command; returns the exit code."""
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help(stdout)
            return 2
        return args.run(args, stdout=stdout, stderr=stderr, stdin=stdin)
    except UsageError as err:
        print(f"blockgen: {err}", file=stderr)
        return 2
    except KeyboardInterrupt:
        print("blockgen: interrupted", file=stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
