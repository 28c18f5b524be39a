"""``python -m vudo`` runs the command line, so it works without the console script."""

from __future__ import annotations

import sys

from vudo.cli import main

if __name__ == "__main__":
    sys.exit(main())
