"""WASI preview1 conformance: one C program (wasi-libc, built with the ziglang wheel) with
one mode per function family, run under vudo and under raw wasmtime-py WASI on the same
inputs; stdout, stderr, exit status and the files left behind must be the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import config, grant
from wasi_helpers import PROGRAMS, build_c, reference, run_vudo

from vudo.capabilities import Capability as C
from vudo.engine import Engine
from vudo.engine.config import Preopen


@pytest.fixture(scope="session")
def conform() -> Path:
    return build_c(PROGRAMS / "conform.c")


def everything(host: str | None = None, **kwargs: object) -> object:
    """Every capability a WASI family needs; storage scoped to ``host`` (a preopen)."""
    scoped = (
        [grant(c, f"path:{host}") for c in (C.STORAGE_READ, C.STORAGE_WRITE, C.STORAGE_DELETE)]
        if host
        else []
    )
    return config(C.SENSOR_TIME, C.SENSOR_RANDOM, C.SENSOR_ENVIRONMENT, *scoped, **kwargs)


@pytest.mark.parametrize(
    "argv",
    [
        ("conform", "args"),
        ("conform", "args", "one", "two words", "", "ünïcode", "--flag=x"),
        ("conform", "exit", "0"),
        ("conform", "exit", "3"),
        ("conform", "exit", "125"),
        ("conform", "streams"),
        ("conform", "clocks"),
        ("conform", "random"),
        ("conform", "nonsense"),
        ("conform",),
    ],
    ids=lambda a: "-".join(a[1:]) or "noargs",
)
def test_same_as_wasmtime(engine: Engine, conform: Path, argv: tuple[str, ...]) -> None:
    want = reference(conform, argv)
    got = run_vudo(engine, conform, argv, everything())
    assert (got.code, got.stdout, got.stderr) == tuple(want)


def test_exit_status_over_125_traps_like_wasmtime(engine: Engine, conform: Path) -> None:
    import wasmtime

    from vudo.errors import GuestTrap

    with pytest.raises(wasmtime.WasmtimeError, match="invalid exit status"):
        reference(conform, ("conform", "exit", "200"))
    with pytest.raises(GuestTrap, match=r"invalid exit status 200 outside \[0..126\)"):
        run_vudo(engine, conform, ("conform", "exit", "200"), everything())


def test_environment_same_as_wasmtime(engine: Engine, conform: Path) -> None:
    env = {"FOO": "bar", "EMPTY": "", "SPACED": "a b=c"}
    want = reference(conform, ("conform", "env"), env=env)
    got = run_vudo(engine, conform, ("conform", "env"), everything(env=env))
    assert (got.code, got.stdout) == (want.code, want.stdout)
    assert b"FOO=bar" in got.stdout


def test_stdin_same_as_wasmtime(engine: Engine, conform: Path) -> None:
    data = b"line one\nline two\n" + bytes(range(1, 200))
    want = reference(conform, ("conform", "stdin"), stdin=data)
    got = run_vudo(engine, conform, ("conform", "stdin"), everything(input=data))
    assert (got.code, got.stdout) == (want.code, want.stdout)


def test_empty_stdin_by_default(engine: Engine, conform: Path) -> None:
    got = run_vudo(engine, conform, ("conform", "stdin"), everything())
    assert got.stdout == b"\nread 0 bytes\n"


def _tree(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "-> " + str(path.readlink())
        elif path.is_file():
            found[rel] = path.read_bytes()
        else:
            found[rel] = "dir"
    return found


def _seed(root: Path) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    (data / "keep.txt").write_text("kept\n")
    return data


def test_files_same_as_wasmtime(engine: Engine, conform: Path, tmp_path: Path) -> None:
    theirs, ours = _seed(tmp_path / "wasmtime"), _seed(tmp_path / "vudo")
    want = reference(conform, ("conform", "files", "/data"), dirs=((str(theirs), "/data"),))
    got = run_vudo(
        engine,
        conform,
        ("conform", "files", "/data"),
        everything(str(ours), preopens=(Preopen(str(ours), "/data"),)),
    )
    assert (got.code, got.stdout, got.stderr) == tuple(want)
    assert b"content=[HELLO file\nsecond li]" in got.stdout
    assert _tree(ours) == _tree(theirs)


def test_files_in_a_relative_preopen(engine: Engine, conform: Path, tmp_path: Path) -> None:
    """A guest name like "." (what `--dir .` gives) works like wasmtime's."""
    theirs, ours = _seed(tmp_path / "wasmtime"), _seed(tmp_path / "vudo")
    want = reference(conform, ("conform", "files", "."), dirs=((str(theirs), "."),))
    got = run_vudo(
        engine,
        conform,
        ("conform", "files", "."),
        everything(str(ours), preopens=(Preopen(str(ours), "."),)),
    )
    assert (got.code, got.stdout) == (want.code, want.stdout)
    assert _tree(ours) == _tree(theirs)


def _escape_world(root: Path) -> Path:
    data = _seed(root)
    (root / "outside.txt").write_text("secret\n")
    (data / "inner").mkdir()
    (data / "uplink").symlink_to("..")
    (data / "abslink").symlink_to(str(root / "outside.txt"))
    return data


def test_escapes_refused_like_wasmtime(engine: Engine, conform: Path, tmp_path: Path) -> None:
    theirs, ours = _escape_world(tmp_path / "wasmtime"), _escape_world(tmp_path / "vudo")
    want = reference(conform, ("conform", "escapes", "/data"), dirs=((str(theirs), "/data"),))
    got = run_vudo(
        engine,
        conform,
        ("conform", "escapes", "/data"),
        everything(str(ours), preopens=(Preopen(str(ours), "/data"),)),
    )
    assert (got.code, got.stdout) == (want.code, want.stdout)
    assert b"OPENED" not in got.stdout
    assert got.stdout.count(b"refused") == 6
    # what reached the host was refused as preview1 says: ENOTCAPABLE (76), an allowed row
    refused = [c for c in got.calls if c[0] == "path_open" and c[2] == 76]
    assert len(refused) >= 4
    assert (tmp_path / "vudo" / "outside.txt").read_text() == "secret\n"


def test_timeout_and_fuel_cover_wasi_programs(engine: Engine, conform: Path) -> None:
    from vudo.engine.receipt import Receipt

    got = run_vudo(engine, conform, ("conform", "clocks"), everything())
    receipt = got.receipt
    assert isinstance(receipt, Receipt)
    assert receipt.fuel_used > 0
    assert receipt.host_calls["sensor_time"]["allowed"] >= 4
    assert receipt.io["stdout"] == len(got.stdout)
