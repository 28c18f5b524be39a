"""Use the titlecase Spirit from Python, bytes in and bytes out; it calls lowercase.

::

    python examples/titlecase/run.py "hELLO wORLD"     # prints: Hello World
    echo "some TEXT" | python examples/titlecase/run.py

titlecase does not lowercase anything itself: it calls its dependency ``lowercase``
(``spirit.toml`` [dependencies], pinned by ``spirit.lock``) with ``host_spirit_call``, and
lowercase runs in a sandbox of its own, as its own installed identity. So the first run
sets things up with the ``vudo`` command line, as a user would: it installs
``../lowercase`` (packed and signed with your key; it asks for no capability) and builds
titlecase, which writes its ``spirit.lock``. Both go to ``VUDO_HOME`` (default
``~/.vudo``); the project is trusted (``--yes``) because you are running its example.

Then the receipt shows what each Spirit did: titlecase's one ``cross_sandbox_call``, and
nested under it lowercase's own host calls and fuel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import vudo

HERE = Path(__file__).resolve().parent


def vudo_cli(*argv: str) -> None:
    """Run one ``vudo`` command (setup), failing loudly with its own error line."""
    done = subprocess.run(
        [sys.executable, "-m", "vudo", *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"vudo {' '.join(argv)} failed:\n{done.stderr}")


def setup() -> None:
    if not (HERE / "spirit.lock").is_file():
        vudo_cli("summon", str(HERE.parent / "lowercase"), "--yes")
        vudo_cli("build", "--path", str(HERE), "--yes")


def titlecase(text: bytes) -> tuple[bytes, str]:
    """``text`` in Title Case, and a one-line account of who did what."""
    with vudo.load(HERE) as spirit:
        output = spirit.call("main", text)
        (code,) = spirit.results
        if code < 0:
            raise SystemExit(f"titlecase failed with code {code}")
        receipt = spirit.receipt()
    (called,) = receipt.calls
    account = (
        f"{receipt.module}: {receipt.fuel_used:,} fuel, {dict(receipt.host_calls)}; "
        f"called {called.module}: {called.fuel_used:,} fuel, io {dict(called.io)}"
    )
    return output, account


def main() -> None:
    setup()
    text = " ".join(sys.argv[1:]).encode() if len(sys.argv) > 1 else sys.stdin.buffer.read()
    output, account = titlecase(text)
    sys.stdout.buffer.write(output + (b"" if output.endswith(b"\n") else b"\n"))
    print(account, file=sys.stderr)


if __name__ == "__main__":
    main()
