"""WASI programs from Python through the embedding API (vudo.load): argv, stdin bytes in,
stdout/stderr bytes out, exit status, directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from wasi_helpers import PROGRAMS, build_c

import vudo
from vudo.engine.traps import ProcessExit


@pytest.fixture(scope="module")
def conform() -> Path:
    return build_c(PROGRAMS / "conform.c")


def test_run_returns_stdout_bytes(conform: Path, tmp_path: Path) -> None:
    with vudo.load(conform, args=("stdin",), home=tmp_path / ".vudo") as spirit:
        assert spirit.run(b"bytes\x00in") == b"bytes\x00in\nread 8 bytes\n"
        assert spirit.stderr == b"" and spirit.exit_code is None
    with vudo.load(conform, args=("streams",), home=tmp_path / ".vudo") as spirit:
        assert spirit.run() == b"to stdout\nraw\x00bytes\n"
        assert spirit.stderr == b"to stderr\n"


def test_exit_status_from_python(conform: Path, tmp_path: Path) -> None:
    with vudo.load(conform, args=("exit", "9"), home=tmp_path / ".vudo") as spirit:
        with pytest.raises(ProcessExit) as info:
            spirit.run()
        assert info.value.code == 9 and spirit.exit_code == 9
        assert spirit.receipt().outcome == "exit"


def test_dirs_from_python(conform: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with vudo.load(
        conform, args=("files", "/data"), dirs=[f"{data}::/data"], home=tmp_path / ".vudo"
    ) as spirit:
        assert b"rmdir: ok" in spirit.run()
    with vudo.load(
        conform, args=("files", "/data"), ro_dirs=[f"{data}::/data"], home=tmp_path / ".vudo"
    ) as spirit:
        with pytest.raises(ProcessExit):
            spirit.run()
        assert b"mkdir: Read-only file system" in spirit.stdout
