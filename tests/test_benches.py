"""Every script under benches/ runs, quickly: a bench that no longer works fails here.

Each bench follows the convention in benches/_common.py: ``VUDO_BENCH_QUICK=1`` shrinks
its sizes and repeats to seconds. The numbers printed then mean nothing; what is checked
is that every path the bench measures still runs to the end and exits 0. New benches are
picked up by the glob, and must import the switch (a bench without it would run at full
size here, or not be quick to check).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHES = sorted(p for p in (ROOT / "benches").glob("*.py") if not p.name.startswith("_"))


def test_there_are_benches() -> None:
    assert len(BENCHES) >= 5, BENCHES


@pytest.mark.parametrize("bench", BENCHES, ids=lambda p: p.name)
def test_bench_uses_the_quick_switch(bench: Path) -> None:
    assert "from _common import sized" in bench.read_text(encoding="utf-8"), (
        f"{bench.name} must pick its sizes with benches/_common.sized (VUDO_BENCH_QUICK)"
    )


@pytest.mark.parametrize("bench", BENCHES, ids=lambda p: p.name)
def test_bench_runs_quick(bench: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        VUDO_BENCH_QUICK="1",
        VUDO_HOME=str(tmp_path / "home"),
        HOME=str(tmp_path),
        PYTHONPATH=str(ROOT / "src"),
    )
    proc = subprocess.run(
        [sys.executable, str(bench)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{bench.name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), f"{bench.name} printed nothing"
