"""Errors keep their meaning (issue 8), through the real command line: a huge name is
invalid input, a fraction of a byte is a usage error, a huge timeout is the largest one,
a full disk says so, a read-only store can still be listed, and writers of user-named
paths never replace anything but a regular file."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]
HUGE = "a" * 100_000


def _wat(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.wat"
    path.write_text(f'(module (memory (export "memory") 1) {body})')
    return path


@contextlib.contextmanager
def _mounted(args: list[str], target: Path) -> Iterator[None]:
    """``mount ARGS TARGET`` for the block, or skip where mounting is not allowed."""
    proc = subprocess.run(
        ["mount", *args, str(target)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here ({proc.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def project(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    return tmp_path / "demo"


@pytest.fixture
def installed(vudo_cli: Vudo, project: Path) -> str:
    assert vudo_cli("pack", cwd=project).code == 0
    assert vudo_cli("sign", cwd=project).code == 0
    assert vudo_cli("summon", str(project / "dist" / "demo-0.1.0.spirit"), "--yes").code == 0
    return "demo"


@pytest.mark.parametrize(
    "argv",
    [
        ("run", HUGE),
        ("install", HUGE),
        ("info", HUGE),
        ("uninstall", HUGE),
        ("grant", HUGE, "sensor_time"),
        ("revoke", HUGE, "sensor_time"),
        ("new", HUGE),
        ("search", HUGE),
        ("search", "--available", HUGE),
        ("run", "./" + HUGE),
        ("upgrade", HUGE),
        ("publish", HUGE),
    ],
)
def test_a_100000_character_name_is_invalid_input(vudo_cli: Vudo, argv: tuple[str, ...]) -> None:
    r = vudo_cli(*argv)
    assert r.code == 3, r.stderr[:500]
    assert "(hint: " in r.error_line
    assert len(r.error_line) < 500  # not echoed back whole


def test_a_name_no_spirit_can_have_is_invalid_not_missing(vudo_cli: Vudo) -> None:
    r = vudo_cli("info", "Demo\n")
    assert r.code == 3 and "invalid Spirit name" in r.error_line
    assert vudo_cli("info", "absent").code == 5


@pytest.mark.parametrize("size", ["0.5", "1.5", "0.3k"])
def test_a_fraction_of_a_byte_is_a_usage_error(vudo_cli: Vudo, tmp_path: Path, size: str) -> None:
    path = _wat(tmp_path, "m", '(func (export "main") (result i32) i32.const 7)')
    r = vudo_cli("run", str(path), "--memory", size)
    assert r.code == 2, r.stderr
    assert "whole number of bytes" in r.error_line and "MiB" in r.error_line


def test_a_huge_timeout_is_the_largest_timeout_in_network_calls(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        path = tmp_path / "net.wat"
        path.write_text(
            '(module (import "vudo" "host_network_connect" (func $c (param i32 i32) '
            '(result i64))) (memory (export "memory") 1) '
            f'(data (i32.const 0) "{address}") (func (export "main") (result i64) '
            f"i32.const 0 i32.const {len(address)} call $c))"
        )
        r = vudo_cli(
            "run",
            str(path),
            "--grant",
            "network_connect=domain:127.0.0.1:*",
            "--timeout",
            "1e308",
            "-q",
        )
    assert r.code == 0, r.stderr
    assert int(r.stdout.strip()) >= 0, r.stdout  # a handle, not -8 INTERNAL_ERROR


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "fifo", "device"])
def test_pack_output_refuses_to_replace_what_is_not_a_regular_file(
    vudo_cli: Vudo, project: Path, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "out.spirit"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    # (An existing directory is where the package goes, as with cp: not tested here.)
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere.spirit")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        os.mknod(target, 0o600 | 0o020000, os.makedev(1, 3))  # like /dev/null
    before = sorted(p.name for p in tmp_path.iterdir())
    r = vudo_cli("pack", "-o", str(target), cwd=project)
    assert r.code == 3, r.stderr
    assert "not a package file" in r.error_line and "(hint: " in r.error_line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp file left
    assert victim.read_text() == "keep me"
    if "symlink" in kind:
        assert target.is_symlink()


def test_fmt_and_doc_refuse_to_write_through_a_symlink(
    vudo_cli: Vudo, project: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    doc = tmp_path / "doc"
    doc.mkdir()
    (doc / "index.html").symlink_to(victim)
    r = vudo_cli("doc", "-o", str(doc), cwd=project)
    assert r.code == 3, r.stderr
    assert "symbolic link" in r.error_line
    manifest = project / "spirit.toml"
    real = tmp_path / "real.toml"
    real.write_text(manifest.read_text().replace("name =", "name   ="))
    manifest.unlink()
    manifest.symlink_to(real)
    r = vudo_cli("fmt", cwd=project)
    assert r.code == 3, r.stderr
    assert "symbolic link" in r.error_line and manifest.is_symlink()
    assert victim.read_text() == "keep me"


def test_a_full_disk_says_the_disk_is_full(vudo_cli: Vudo, project: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    with _mounted(["-t", "tmpfs", "-o", "size=64k", "tmpfs"], tiny):
        with contextlib.suppress(OSError):
            (tiny / "filler").write_bytes(b"x" * 128 * 1024)
        r = vudo_cli("pack", "-o", str(tiny / "demo.spirit"), cwd=project)
        assert r.code == 1, r.stderr
        assert "disk is full" in r.error_line and "free some space" in r.error_line
        assert sorted(p.name for p in tiny.iterdir()) == ["filler"]  # no partial left


def test_list_info_search_work_on_a_read_only_store(
    vudo_cli: Vudo, installed: str, home: Path
) -> None:
    with _mounted(["--bind", "-o", "ro", str(home)], home):
        listed = vudo_cli("list")
        assert listed.code == 0, listed.stderr
        assert installed in listed.stdout
        info = vudo_cli("info", installed)
        assert info.code == 0 and "0.1.0" in info.stdout, info.stderr
        found = vudo_cli("search", "dem")
        assert found.code == 0 and installed in found.stdout, found.stderr
        refused = vudo_cli("uninstall", installed)
        assert refused.code != 0 and "Traceback" not in refused.stderr
    assert installed in vudo_cli("list").stdout


def test_package_and_guest_text_reach_the_terminal_escaped(
    vudo_cli: Vudo, project: Path, tmp_path: Path
) -> None:
    manifest = project / "spirit.toml"
    text = manifest.read_text()
    start = text.index("description = ")
    end = text.index("\n", start)
    manifest.write_text(text[:start] + 'description = "safe\u202etxt.exe\u200b"' + text[end:])
    assert vudo_cli("pack", cwd=project).code == 0
    assert vudo_cli("sign", cwd=project).code == 0
    assert vudo_cli("summon", str(project / "dist" / "demo-0.1.0.spirit"), "--yes").code == 0
    for argv in (("info", "demo"), ("search", "safe"), ("list",)):
        r = vudo_cli(*argv)
        assert r.code == 0, r.stderr
        assert "\u202e" not in r.stdout and "\u200b" not in r.stdout
    assert "safe\\u202etxt.exe\\u200b" in vudo_cli("info", "demo").stdout
    path = tmp_path / "log.wat"
    message = "ok\u202eevil\u2066".encode()
    path.write_text(
        '(module (import "vudo" "host_log" (func $l (param i32 i32 i32) (result i32))) '
        '(memory (export "memory") 1) (data (i32.const 0) "'
        + "".join(f"\\{b:02x}" for b in message)
        + '") (func (export "main") '
        f"(drop (call $l (i32.const 2) (i32.const 0) (i32.const {len(message)})))))"
    )
    r = vudo_cli("run", str(path), "--grant", "actuator_log")
    assert r.code == 0, r.stderr
    assert "ok\\u202eevil\\u2066" in r.stderr and "\u202e" not in r.stderr


def test_grant_without_a_scope_is_global(vudo_cli: Vudo, installed: str) -> None:
    # `CAP` alone was checked as "CAP=None", an invalid scope named None (exit 2).
    r = vudo_cli("grant", installed, "sensor_time")
    assert r.code == 0, r.stderr
    assert "granted sensor_time (global)" in r.stdout
