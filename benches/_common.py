"""What every script under ``benches/`` shares: the quick switch.

The convention: with ``VUDO_BENCH_QUICK=1`` in the environment, a bench runs every path it
measures with tiny sizes and one or two repeats, in seconds. Its numbers then mean
nothing; the point is that ``tests/test_benches.py`` runs every ``benches/*.py`` this way,
so a bench that no longer runs (an API it calls changed, a fixture moved) fails a test
instead of rotting until someone needs the numbers. A new bench imports :func:`sized` and
picks each size, count and repeat with it::

    from _common import sized

    ROUNDS = sized(21, 2)

(the script's own folder is first on ``sys.path`` when it runs as ``python benches/x.py``).
Command-line flags keep their meaning; ``sized`` only changes the defaults.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["QUICK", "sized"]

T = TypeVar("T")

#: True when ``VUDO_BENCH_QUICK`` is set to anything but empty or ``0``.
QUICK = os.environ.get("VUDO_BENCH_QUICK", "") not in ("", "0")


def sized(full: T, quick: T) -> T:
    """``full`` normally, ``quick`` under ``VUDO_BENCH_QUICK=1``."""
    return quick if QUICK else full
