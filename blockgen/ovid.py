"""Compatibility module: the Ovid reader lives in :mod:`blockgen.dialects.ovid`.

``from blockgen.ovid import convert_ovid, from_ovid, OvidConversion, OvidError`` keeps
working; ``python -m blockgen.ovid topics.jsonl`` prints the figures of a topics file.
"""

from __future__ import annotations

import sys
from typing import Optional

from blockgen.dialects.ovid import LIMIT_KINDS, OvidConversion, OvidError, convert_ovid, from_ovid, summarize

__all__ = ["LIMIT_KINDS", "OvidConversion", "OvidError", "convert_ovid", "from_ovid", "summarize"]


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m blockgen.ovid topics.jsonl``: the same as ``blockgen ovid --topics topics.jsonl``."""
    from types import SimpleNamespace

    from blockgen.cli_ovid import run

    args = sys.argv[1:] if argv is None else argv
    return run(SimpleNamespace(topics=args[0] if args else "../shared/data/clef_tar/topics.jsonl"))


if __name__ == "__main__":
    raise SystemExit(main())
