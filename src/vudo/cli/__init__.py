"""The ``vudo`` command line (thin: parse, call the core, render)."""

from __future__ import annotations

import gc
import sys

#: Start-up allocates some 150,000 objects that live as long as the process (wasmtime's
#: ctypes bindings above all, then the parser and vudo's modules). With the collector's
#: default thresholds (700, 10, 10) a ``vudo run`` walked them in 47 collections, about a
#: sixth of its time; one collection per 100,000 allocations walks them once or twice.
#: Still a bound: cycles a long run or the workbench makes are collected, just in bigger
#: batches.
GC_THRESHOLDS = (100_000, 10, 10)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vudo`` console script and of ``python -m vudo``.

    Sets the process's collector policy (:data:`GC_THRESHOLDS`), which only the command line
    may do: ``import vudo`` leaves the embedding program's collector alone.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    # lazy: `import vudo.cli.render` and friends skip the parser (argparse) until main runs
    from vudo.cli.app import run_cli

    try:
        return run_cli(sys.argv[1:] if argv is None else argv)
    finally:
        # What is alive now dies with the process: frozen, the interpreter's last full
        # collection at exit skips it (10-20 ms of walking wasmtime's bindings for nothing).
        gc.freeze()
