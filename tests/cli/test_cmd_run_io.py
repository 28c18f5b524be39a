"""`vudo run --input/--env/-q/--json` as users type it: output bytes on stdout exactly as
written, the result line and receipt on stderr, composable in pipes."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: The ``vudo_cli`` fixture (tests/cli/conftest.py): runs vudo in a subprocess.
Vudo = Callable[..., Any]


REPO = Path(__file__).resolve().parents[2]

# Writes its input back unchanged (binary-safe), in one host_output_write per 7 bytes so
# the output arrives in pieces; "silent" writes nothing; "env" writes the variable NAME.
ECHO = r"""(module
 (import "vudo" "host_input_read" (func $read (param i32 i32 i64) (result i32)))
 (import "vudo" "host_output_write" (func $write (param i32 i32) (result i32)))
 (import "vudo" "host_env_get" (func $env (param i32 i32 i32 i32) (result i32)))
 (memory (export "memory") 1)
 (data (i32.const 0) "NAME")
 (func (export "main") (result i32) (local $n i32) (local $off i64) (local $total i32)
   (block $done (loop $l
     (local.set $n (call $read (i32.const 1024) (i32.const 7) (local.get $off)))
     (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
     (drop (call $write (i32.const 1024) (local.get $n)))
     (local.set $total (i32.add (local.get $total) (local.get $n)))
     (local.set $off (i64.add (local.get $off) (i64.extend_i32_u (local.get $n))))
     (br $l)))
   (local.get $total))
 (func (export "silent") (result i32) (i32.const 7))
 (func (export "env") (result i32) (local $n i32)
   (local.set $n (call $env (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 64)))
   (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))
   (drop (call $write (i32.const 64) (local.get $n)))
   (local.get $n)))"""


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.wat"
    path.write_text(ECHO)
    return path


def run_bytes(
    env: dict[str, str], *argv: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "vudo", *argv],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_output_goes_to_stdout_exactly_and_the_receipt_to_stderr(
    env: dict[str, str], echo: Path
) -> None:
    data = bytes(range(256)) * 3 + b"\x1b[2J\r\nend"  # binary, escape sequences and all
    done = run_bytes(env, "run", str(echo), "--input", "-", stdin=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    err = done.stderr.decode()
    assert f"result: {len(data)}" in err and "receipt   echo.main: ok" in err
    assert f"i/o         input {len(data):,}, output {len(data):,}" in err


def test_quiet_drops_the_result_and_receipt(env: dict[str, str], echo: Path) -> None:
    done = run_bytes(env, "run", str(echo), "--input", "-", "-q", stdin=b"just this")
    assert done.returncode == 0 and done.stdout == b"just this" and done.stderr == b""


def test_input_from_a_file_and_composes_in_a_pipe(
    env: dict[str, str], echo: Path, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"first line\nsecond line\n")
    upper = tmp_path / "upper"
    shutil.copytree(REPO / "examples" / "upper", upper, ignore=shutil.ignore_patterns("target"))
    first = subprocess.Popen(
        [sys.executable, "-m", "vudo", "run", str(echo), "--input", str(source), "-q"],
        env=env,
        stdout=subprocess.PIPE,
    )
    second = subprocess.run(
        [sys.executable, "-m", "vudo", "run", str(upper), "--input", "-", "-q", "--yes"],
        env=env,
        stdin=first.stdout,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert first.stdout is not None
    first.stdout.close()
    assert first.wait(timeout=120) == 0
    assert second.returncode == 0, second.stderr
    assert second.stdout == b"FIRST LINE\nSECOND LINE\n"


def test_without_output_or_input_the_result_stays_on_stdout(vudo_cli: Vudo, echo: Path) -> None:
    r = vudo_cli("run", str(echo), "-f", "silent")
    assert r.code == 0 and r.stdout.startswith("result: 7\n") and "receipt" in r.stdout
    # --input makes stdout the output's, even when nothing is written
    r = vudo_cli("run", str(echo), "-f", "silent", "--input", "-", input="ignored")
    assert r.code == 0 and r.stdout == "" and "result: 7" in r.stderr


def test_json_carries_the_output_as_text_or_base64(vudo_cli: Vudo, echo: Path) -> None:
    data = vudo_cli("run", str(echo), "--input", "-", "--json", input="héllo").json()
    assert data["output"] == "héllo" and data["output_encoding"] == "utf-8"
    assert data["receipt"]["io"] == {"input": 6, "output": 6}
    binary = echo.parent / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    data = vudo_cli("run", str(echo), "--input", str(binary), "--json").json()
    assert data["output_encoding"] == "base64"
    assert base64.b64decode(data["output"]) == b"\xff\xfe\x00"


def test_env_is_the_users_grant_for_that_run(vudo_cli: Vudo, echo: Path) -> None:
    r = vudo_cli("run", str(echo), "-f", "env", "--env", "NAME=zoë", "--env", "OTHER=1", "-q")
    assert r.code == 0 and r.stdout == "zoë"
    r = vudo_cli("run", str(echo), "-f", "env", "--json")  # no --env: not granted, no value
    assert r.json()["results"] == [-1]
    r = vudo_cli("run", str(echo), "-f", "env", "--env", "NAME=x", "--deny", "sensor_environment")
    assert r.code == 0 and "result: -1" in r.stdout
    r = vudo_cli("run", str(echo), "-f", "env", "--json")
    assert r.json()["granted"] == []


@pytest.mark.parametrize("word", ["NAME", "=value"])
def test_bad_env_words_are_usage_errors(vudo_cli: Vudo, echo: Path, word: str) -> None:
    r = vudo_cli("run", str(echo), "--env", word)
    assert r.code == 2 and "--env" in r.error_line and "hint:" in r.error_line


def test_missing_input_file_is_not_found(vudo_cli: Vudo, echo: Path) -> None:
    r = vudo_cli("run", str(echo), "--input", "no-such-file.txt")
    assert r.code == 5 and "no input file no-such-file.txt" in r.error_line


def test_input_over_the_limit_is_exit_13(env: dict[str, str], echo: Path) -> None:
    # the default input limit is 16 MiB
    done = run_bytes(env, "run", str(echo), "--input", "-", stdin=b"x" * (16 * 1024 * 1024 + 1))
    assert done.returncode == 13
    assert b"over the 16777216-byte input limit" in done.stderr


def test_an_endless_input_is_read_only_up_to_the_limit(vudo_cli: Vudo, echo: Path) -> None:
    r = vudo_cli("run", str(echo), "--input", "/dev/zero")  # never ends: bounded read
    assert r.code == 13 and "input limit" in r.error_line
    r = vudo_cli("run", str(echo), "--input", str(echo.parent))  # a directory
    assert r.code == 2 and "cannot read input file" in r.error_line


def test_run_help_shows_the_io_examples(vudo_cli: Vudo) -> None:
    r = vudo_cli("run", "--help")
    assert "--input FILE" in r.stdout and "--env NAME=VALUE" in r.stdout
    assert "vudo run examples/upper --input notes.txt" in r.stdout
