"""``python -m blockgen``: the same as the ``blockgen`` command."""

import sys

from blockgen.cli import main

sys.exit(main())
