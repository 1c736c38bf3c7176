"""``python -m benchmarks NAME [options]``: run one benchmark (see :mod:`benchmarks`)."""

from __future__ import annotations

import sys

from benchmarks import BENCHMARKS, main

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(f"usage: python -m benchmarks NAME [options]   (NAME: {', '.join(BENCHMARKS)})")
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
