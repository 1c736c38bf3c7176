"""``python -m blockgen``: the same as the ``blockgen`` command."""

import sys

from blockgen.cli import main

if __name__ == "__main__":
    sys.exit(main())
