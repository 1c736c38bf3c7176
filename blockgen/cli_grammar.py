"""``blockgen grammar --target T``: the query grammar for another inference engine.

    blockgen grammar --target vllm          # Lark for vLLM (guidance backend) and SGLang (llguidance)
    blockgen grammar --target llama.cpp     # Lark with the %llguidance header, for llama.cpp + llguidance
    blockgen grammar --target gbnf -o boolean_block.gbnf   # llama.cpp's own sampler, xgrammar

The text is generated from ``grammar/boolean_block.lark`` (:mod:`blockgen.export`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, TextIO

from blockgen.cli_io import report
from blockgen.export import TARGETS, ExportError, grammar

PROG = "blockgen grammar"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``grammar`` subcommand."""
    p = subparsers.add_parser(
        "grammar",
        help="print the query grammar for vLLM, SGLang or llama.cpp",
        description="Print the Boolean block query grammar in the format an inference engine reads.",
    )
    p.add_argument(
        "--target", "-t", required=True, choices=TARGETS,
        help="vllm/sglang: Lark for llguidance; llama.cpp: Lark with the %%llguidance header; gbnf: GBNF (llama.cpp without llguidance, xgrammar)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write the grammar to FILE instead of standard output")
    p.set_defaults(run=run)
    return p


def run(args, stdout: TextIO, stderr: TextIO, stdin: Optional[TextIO] = None) -> int:
    """Print (or write) the export; exit 2 with a one-line message when it cannot be made or written
    (:mod:`blockgen.cli_io`'s convention)."""
    try:
        text = grammar(args.target)
    except ExportError as err:
        return report(stderr, err, PROG)
    if not args.output:
        stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        return report(stderr, f"cannot write {path}: {err.strerror or err}", PROG)
    return 0
