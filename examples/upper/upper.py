"""Use the upper Spirit from Python: bytes in, bytes out.

    echo "Hello, Spirits" | python examples/upper/upper.py          # HELLO, SPIRITS
    python examples/upper/upper.py lower < notes.txt > lower.txt

The Spirit runs in a sandbox: it may read the variable CASE given here and nothing of the
host's environment, its output is bounded (16 MiB by default), and the receipt on stderr
says what it did.
"""

import sys
from pathlib import Path

import vudo

here = Path(__file__).resolve().parent
env = {"CASE": sys.argv[1]} if len(sys.argv) > 1 else None
with vudo.load(here, env=env) as spirit:
    sys.stdout.buffer.write(spirit.call("main", sys.stdin.buffer.read()))
    receipt = spirit.receipt()
    print(f"{receipt.io} fuel {receipt.fuel_used:,}", file=sys.stderr)
