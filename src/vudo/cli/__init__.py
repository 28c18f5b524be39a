"""The ``vudo`` command line (thin: parse, call the core, render)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vudo`` console script."""
    # lazy: `import vudo.cli.render` and friends skip the parser (argparse) until main runs
    from vudo.cli.app import run_cli

    return run_cli(sys.argv[1:] if argv is None else argv)
