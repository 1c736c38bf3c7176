"""The ``blockgen`` command line: validate, repair and format queries (and generate them).

    blockgen validate queries.txt            # one query per line; exit 1 if any is invalid
    blockgen validate -q '(a OR b) AND c' --json
    blockgen repair broken.txt --json        # repaired query and the edits, per line
    blockgen format queries.txt --style pretty
    cat queries.txt | blockgen validate -    # FILE omitted or '-': standard input

Exit codes: 0 all good, 1 some query invalid (``validate``, ``format``) or not repairable
(``repair``), 2 any error (unknown option, missing file, input that is not UTF-8, a query
that cannot be processed): one line on standard error, never a traceback. Input is strict
UTF-8 and lines are split on ``\n`` and ``\r\n`` only, for every subcommand
(:mod:`blockgen.cli_io`).

Adding a subcommand: write a module with ``add_parser(subparsers)`` that calls
``subparsers.add_parser(NAME, ...)``, adds its options and sets
``run(args, stdout=, stderr=, stdin=) -> exit code`` as the default
(``p.set_defaults(run=run)``; see :mod:`blockgen.cli_generate`), then add
``NAME: "package.module"`` to :data:`SUBCOMMANDS`. The module is imported only when the
parser is built; if it cannot be imported (a missing optional dependency), the
subcommand still shows up and says why it is unavailable instead of breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import asdict
from typing import Callable, Optional, Sequence, TextIO

from blockgen.cli_io import CLIError, EXIT_USAGE, at_line, json_line, numbered_lines, report, read_text, unexpected, utf8_streams
from blockgen.formatter import STYLES, format_query
from blockgen.parser import QuerySyntaxError, parse

#: Subcommands that live in their own module: name -> module with ``add_parser(subparsers)``.
SUBCOMMANDS: dict[str, str] = {
    "generate": "blockgen.cli_generate",
    "ovid": "blockgen.cli_ovid",
    "translate": "blockgen.cli_translate",
    "grammar": "blockgen.cli_grammar",
}

Runner = Callable[..., int]


class UsageError(CLIError):
    """A command-line usage problem (exit code 2)."""


# ---------------------------------------------------------------- input


def read_queries(file: Optional[str], query: Optional[str], stdin: TextIO) -> list[tuple[int, str]]:
    """Numbered non-blank lines (1-based) from ``-q QUERY``, a FILE, or standard input (``None``/``-``).

    Read by :mod:`blockgen.cli_io`'s convention: strict UTF-8, lines split on ``\n`` and ``\r\n`` only.
    """
    if query is not None and file not in (None, "-"):
        raise UsageError("give a FILE or -q QUERY, not both")
    if query is not None:
        return [(1, read_text(None, stdin, query=query))]
    return numbered_lines(read_text(file, stdin))


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", metavar="FILE", help="one query per line; '-' or nothing: standard input")
    p.add_argument("-q", "--query", metavar="QUERY", help="check this one query instead of reading lines")


def _json_line(record: dict, stdout: TextIO) -> None:
    print(json_line(record), file=stdout)


# ---------------------------------------------------------------- validate


def error_record(err: QuerySyntaxError) -> dict:
    """The JSON form of a syntax error: message (first line), line, column, expected."""
    return {
        "message": str(err).splitlines()[0],
        "line": err.line,
        "column": err.column,
        "expected": err.expected,
        "found": err.found,
    }


def run_validate(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """``blockgen validate``: ``N: OK`` or ``N: <error with caret>`` per line; exit 1 if any is invalid."""
    bad = 0
    for number, line in read_queries(args.file, args.query, stdin):
        try:
            with at_line(number, QuerySyntaxError):
                parse(line)
            error: Optional[QuerySyntaxError] = None
        except QuerySyntaxError as err:
            error, bad = err, bad + 1
        if args.json:
            _json_line(
                {"line": number, "query": line, "valid": error is None, "error": error_record(error) if error else None},
                stdout,
            )
        elif error is None:
            if not args.quiet:
                print(f"{number}: OK", file=stdout)
        else:
            print(f"{number}: {error}", file=stdout)
    return 1 if bad else 0


# ---------------------------------------------------------------- repair


def run_repair(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """``blockgen repair``: the repaired query per line; exit 1 if some line has no term at all."""
    from blockgen.repair import RepairError, repair

    failed = 0
    for number, line in read_queries(args.file, args.query, stdin):
        try:
            with at_line(number, RepairError):
                result = repair(line, cut_off=args.cut_off)
                text = format_query(result.query, args.style)
            problem = None
        except RepairError as err:
            result, text, problem, failed = None, "", str(err), failed + 1
        if args.json:
            _json_line(
                {
                    "line": number,
                    "input": line,
                    "output": result.text if result else None,
                    "repaired": bool(result and result.repaired),
                    "edits": [asdict(e) for e in result.edits] if result else [],
                    "error": problem,
                },
                stdout,
            )
        elif result is None:
            print(f"blockgen repair: line {number}: {problem}", file=stderr)
        else:
            print(text, file=stdout)
            if args.verbose:
                for edit in result.edits:
                    print(f"line {number}: {edit}", file=stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------- format


def run_format(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
    """``blockgen format``: each valid line in ``--style``; invalid lines go to stderr, exit 1."""
    bad = 0
    printed = 0
    for number, line in read_queries(args.file, args.query, stdin):
        try:
            with at_line(number, QuerySyntaxError):
                text = format_query(parse(line), style=args.style)
        except QuerySyntaxError as err:
            bad += 1
            print(f"blockgen format: line {number}: {err}", file=stderr)
            continue
        if args.style == "pretty" and printed:
            print(file=stdout)  # a blank line between multi-line queries
        print(text, file=stdout)
        printed += 1
    return 1 if bad else 0


# ---------------------------------------------------------------- parser


def add_core_parsers(subparsers) -> None:
    """Register ``validate``, ``repair`` and ``format``."""
    p = subparsers.add_parser(
        "validate", help="check queries against the grammar", description="Check one query per line against the grammar."
    )
    _add_input_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per query: line, query, valid, error")
    p.add_argument("--quiet", action="store_true", help="print only the invalid queries")
    p.set_defaults(run=run_validate)

    p = subparsers.add_parser(
        "repair", help="repair broken queries", description="Repair one query per line into a valid query."
    )
    _add_input_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per query: line, input, output, repaired, edits")
    p.add_argument("--style", choices=STYLES, default="canonical", help="how to print the repaired query")
    p.add_argument("--cut-off", action="store_true", help="the lines were cut short: drop a half-written last word")
    p.add_argument("-v", "--verbose", action="store_true", help="list the edits on standard error")
    p.set_defaults(run=run_repair)

    p = subparsers.add_parser("format", help="reformat valid queries", description="Reformat one valid query per line.")
    _add_input_args(p)
    p.add_argument("--style", choices=STYLES, default="canonical", help="canonical (default), compact or pretty")
    p.set_defaults(run=run_format)


def _add_unavailable(subparsers, name: str, module: str, err: Exception) -> None:
    reason = f"blockgen {name} is unavailable: cannot import {module} ({err})"
    # no option prefix: whatever follows is taken as is, and the reason is shown
    p = subparsers.add_parser(name, help=f"(unavailable: {err})", add_help=False, prefix_chars="\0")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> int:
        print(reason, file=stderr)
        return 2

    p.set_defaults(run=run)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage errors: exit code 2 and a message, no SystemExit
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().rstrip()}")


def build_parser() -> argparse.ArgumentParser:
    """The ``blockgen`` argument parser with every subcommand registered."""
    from blockgen import __version__

    parser = _Parser(prog="blockgen", description="Valid Boolean block search queries, from language models or by repair.")
    parser.add_argument("--version", action="version", version=f"blockgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_core_parsers(sub)
    for name, module in SUBCOMMANDS.items():
        try:
            importlib.import_module(module).add_parser(sub)
        except ImportError as err:
            _add_unavailable(sub, name, module, err)
    return parser


def main(
    argv: Optional[Sequence[str]] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
    stdin: Optional[TextIO] = None,
) -> int:
    """Run the ``blockgen`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Every error is one line on standard error and exit code 2 (:mod:`blockgen.cli_io`); an
    exception no subcommand expected is caught here too, never shown as a traceback.
    """
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    utf8_streams(stdout, stderr)
    prog = "blockgen"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        run: Optional[Runner] = getattr(args, "run", None)
        if run is None:
            parser.print_help(stdout)
            return EXIT_USAGE
        if getattr(args, "command", None):
            prog = f"blockgen {args.command}"
        return run(args, stdout=stdout, stderr=stderr, stdin=stdin)
    except CLIError as err:
        return report(stderr, err, prog, err.code)
    except BrokenPipeError:  # e.g. `blockgen repair big.txt | head`
        _silence_stdout(stdout)
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last-resort guard: one line, never a traceback
        return report(stderr, unexpected(err), prog)


def _silence_stdout(stdout: TextIO) -> None:
    """After a broken pipe, point the process's stdout at /dev/null so that the exit flush stays quiet."""
    if stdout is not sys.stdout:
        return
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - no real file descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
