"""Run ``vudo`` as users do: a real subprocess, with VUDO_HOME in a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import vudo

SRC = str(Path(vudo.__file__).resolve().parent.parent)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("error: ")]
        assert len(lines) == 1, self.stderr
        return lines[0]


Vudo = Callable[..., Result]


@pytest.fixture(scope="session")
def zig_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One zig cache for the whole session: the first C/Zig compile is the slow one."""
    return tmp_path_factory.mktemp("zig-cache")


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bytecode cache shared by every `vudo` subprocess (PYTHONDONTWRITEBYTECODE may be
    set in the environment; compiling vudo from source on every call is slow)."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / ".vudo"  # HOME is tmp_path, so ~/.vudo is this too
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path, zig_cache: Path, pycache: Path) -> dict[str, str]:
    environ = dict(os.environ)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ["PYTHONPYCACHEPREFIX"] = str(pycache)
    environ["VUDO_HOME"] = str(home)
    environ["HOME"] = str(home.parent)
    environ["ZIG_GLOBAL_CACHE_DIR"] = str(zig_cache)
    environ["PYTHONPATH"] = SRC + os.pathsep + environ.get("PYTHONPATH", "")
    environ.pop("NO_COLOR", None)
    environ["VUDO_DEBUG"] = "1"  # a bug shows its traceback, which fails the test
    return environ


def runner(env: dict[str, str], cwd: Path) -> Vudo:
    """``run("run", "x.wat", cwd=..., input=...)`` -> Result, in ``env``."""

    def run(
        *argv: str, cwd: Path | None = None, input: str | None = None, timeout: float = 120
    ) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "vudo", *argv],
            cwd=cwd or default_cwd,
            env=env,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return Result(proc.returncode, proc.stdout, proc.stderr)

    default_cwd = cwd
    return run


@pytest.fixture
def vudo_cli(env: dict[str, str], tmp_path: Path) -> Vudo:
    """``vudo_cli("run", "x.wat", cwd=..., input=...)`` -> Result."""
    return runner(env, tmp_path)


@pytest.fixture
def vudo_second(env: dict[str, str], tmp_path: Path) -> Vudo:
    """``vudo`` as a second user: its own HOME and VUDO_HOME (``tmp_path/user2``)."""
    other = dict(env)
    home2 = tmp_path / "user2" / ".vudo"
    home2.mkdir(parents=True)
    other["HOME"] = str(home2.parent)
    other["VUDO_HOME"] = str(home2)
    return runner(other, tmp_path)
