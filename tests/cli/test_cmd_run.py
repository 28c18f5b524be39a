"""`vudo run` and `vudo test` through a real subprocess, on real wasmtime."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import vudo

Vudo = Callable[..., Any]
REPO = Path(vudo.__file__).resolve().parents[2]

LOOPY = """(module
  (memory (export "memory") 1)
  (func (export "spin") (loop $l (br $l)))
  (func (export "boom") (result i32) unreachable)
  (func (export "grow") (result i32) (memory.grow (i32.const 1000)))
  (func (export "half") (param f64) (result f64) (f64.mul (local.get 0) (f64.const 0.5)))
  (func (export "neg") (param i64) (result i64) (i64.sub (i64.const 0) (local.get 0))))
"""


@pytest.fixture
def project(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    return tmp_path / "demo"


@pytest.fixture
def loopy(tmp_path: Path) -> Path:
    path = tmp_path / "loopy.wat"
    path.write_text(LOOPY)
    return path


def test_run_project_in_cwd_builds_and_grants_declared_capabilities(
    vudo_cli: Vudo, project: Path
) -> None:
    r = vudo_cli("run", cwd=project)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "result: 25"
    assert "receipt   demo.main: ok" in r.stdout
    assert "actuator_log 1 allowed" in r.stdout and "sensor_time 1 allowed" in r.stdout
    assert "Hello from a vudo Spirit!" in r.stderr  # the guest's log line
    assert (project / "target" / "demo.wasm").is_file()


def test_run_the_bundled_example(vudo_cli: Vudo, tmp_path: Path) -> None:
    example = tmp_path / "hello"
    shutil.copytree(
        REPO / "examples" / "hello", example, ignore=shutil.ignore_patterns("target", "dist", "doc")
    )
    r = vudo_cli("run", "./hello", "--fuel", "1000000", "--yes")  # a copy: not vudo's own
    assert r.code == 0, r.stderr
    assert "result: 25" in r.stdout and "price" in r.stdout


def test_run_json_shape(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("run", str(project), "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert set(data) == {
        "spirit",
        "kind",
        "identity",
        "function",
        "args",
        "results",
        "output",
        "output_encoding",
        "granted",
        "not_granted",
        "receipt",
        "error",
    }
    assert data["kind"] == "project" and data["results"] == [25] and data["error"] is None
    assert data["output"] == "" and data["output_encoding"] == "utf-8"
    assert data["identity"]["kind"] == "project" and len(data["identity"]["key"]) == 64
    assert {"capability": "actuator_log", "scope": "global"} in data["granted"]
    receipt = data["receipt"]
    assert receipt["outcome"] == "ok" and receipt["fuel_used"] > 0
    assert receipt["host_calls"]["actuator_log"] == {"allowed": 1, "denied": 0}


def test_run_arguments_are_converted(vudo_cli: Vudo, project: Path, loopy: Path) -> None:
    r = vudo_cli("run", "-f", "add", "--quiet", "--", "-2", "3", cwd=project)
    assert r.code == 0 and r.stdout.strip() == "1"
    r = vudo_cli("run", str(loopy), "-f", "half", "-q", "--", "3")
    assert r.stdout.strip() == "1.5"
    r = vudo_cli("run", str(loopy), "-f", "neg", "-q", "--", "0x10")
    assert r.stdout.strip() == "-16"


def test_run_wrong_argument_types_exit_2(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("run", "-f", "add", "--", "2", "three", cwd=project)
    assert r.code == 2
    assert 'must be an integer (i32), got "three"' in r.error_line and "hint:" in r.error_line
    r = vudo_cli("run", "-f", "add", "--", "2", cwd=project)
    assert r.code == 2 and "takes 2 arguments, got 1" in r.error_line


def test_run_unknown_function_exit_5_lists_exports(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("run", "-f", "nope", cwd=project)
    assert r.code == 5
    assert '"nope"' in r.error_line and "main, add, test_greeting_length" in r.error_line


def test_run_loose_module_gets_no_capabilities_unless_granted(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    wat = tmp_path / "hello.wat"
    shutil.copy(REPO / "examples" / "hello" / "src" / "main.wat", wat)
    r = vudo_cli("run", str(wat), "--json")
    assert r.code == 0
    calls = r.json()["receipt"]["host_calls"]
    assert calls["actuator_log"] == {"allowed": 0, "denied": 1}
    r = vudo_cli("run", str(wat))
    assert "were denied" in r.stderr
    r = vudo_cli("run", str(wat), "--grant", "actuator_log", "--grant", "sensor_time", "--json")
    calls = r.json()["receipt"]["host_calls"]
    assert calls["actuator_log"] == {"allowed": 1, "denied": 0}
    assert calls["sensor_time"] == {"allowed": 1, "denied": 0}


def test_run_deny_withholds_a_declared_capability(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("run", "--deny", "actuator_log", "--json", cwd=project)
    assert r.code == 0
    data = r.json()
    assert data["receipt"]["host_calls"]["actuator_log"] == {"allowed": 0, "denied": 1}
    assert data["not_granted"] == ["actuator_log"]


def test_run_bad_grant_is_a_usage_error(vudo_cli: Vudo, project: Path) -> None:
    # A word typed on the command line that does not parse is a usage error (2) in every
    # command; the same name in a manifest is invalid input (3).
    r = vudo_cli("run", "--grant", "actuator_lgo", cwd=project)
    assert r.code == 2 and 'did you mean "actuator_log"' in r.error_line


@pytest.mark.parametrize(
    "scope",
    [
        "domain:a..b:80",
        "domain:*.*:1",
        "domain:127.0.1:*",
        "domain:[fe80::*]:*",
        "nonsense",
        "peer:abc",
    ],
)
def test_run_bad_grant_scope_is_a_usage_error(vudo_cli: Vudo, project: Path, scope: str) -> None:
    # typed on the command line: exit 2, as every malformed --grant word (one grammar)
    r = vudo_cli("run", "--grant", f"actuator_log={scope}", cwd=project)
    assert r.code == 2, r.stderr
    assert "scope" in r.error_line and "(hint: " in r.error_line


def test_run_wasm_binary(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("build", cwd=project).code == 0
    r = vudo_cli("run", str(project / "target" / "demo.wasm"), "-q")
    assert r.code == 0 and r.stdout.strip() == "25"


def test_run_trap_exit_10(vudo_cli: Vudo, loopy: Path) -> None:
    r = vudo_cli("run", str(loopy), "-f", "boom")
    assert r.code == 10
    assert "receipt   loopy.boom: trap" in r.stdout and r.error_line


def test_run_fuel_exhausted_exit_11(vudo_cli: Vudo, loopy: Path) -> None:
    r = vudo_cli("run", str(loopy), "-f", "spin", "--fuel", "5000", "--json")
    assert r.code == 11
    data = r.json()
    assert data["receipt"]["outcome"] == "fuel exhausted"
    assert data["error"]["exit_code"] == 11 and data["receipt"]["fuel_used"] == 5000


def test_run_timeout_exit_12(vudo_cli: Vudo, loopy: Path) -> None:
    r = vudo_cli("run", str(loopy), "-f", "spin", "--timeout", "0.2", "--fuel", "10000000000000")
    assert r.code == 12
    assert "timeout" in r.stdout


def test_run_memory_limit_exit_13(vudo_cli: Vudo, tmp_path: Path, loopy: Path) -> None:
    big = tmp_path / "big.wat"
    big.write_text('(module (memory (export "memory") 32) (func (export "main")))')
    assert vudo_cli("run", str(big), "--memory", "4MiB").code == 0
    r = vudo_cli("run", str(big), "--memory", "1MiB")
    assert r.code == 13, r.stdout + r.stderr
    r = vudo_cli("run", str(loopy), "-f", "grow", "--memory", "lots")
    assert r.code == 2 and 'invalid size "lots"' in r.error_line


def test_run_missing_target_exit_5(vudo_cli: Vudo, tmp_path: Path) -> None:
    r = vudo_cli("run", "./missing.wasm")
    assert r.code == 5 and "no Spirit at ./missing.wasm" in r.error_line
    r = vudo_cli("run")  # cwd has no project
    assert r.code == 5 and "spirit.toml" in r.error_line


def test_run_invalid_module_exit_3(vudo_cli: Vudo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wat"
    bad.write_text('(module (func (export "main") (i32.bogus)))')
    r = vudo_cli("run", str(bad))
    assert r.code == 3 and "bad.wat:1:" in r.error_line
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\0asm\x01\0\0\0garbage")
    assert vudo_cli("run", str(junk)).code == 3


def test_run_signed_package_is_verified_first(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("pack", cwd=project).code == 0
    package = project / "dist" / "demo-0.1.0.spirit"
    r = vudo_cli("run", str(package))
    assert r.code == 4 and "not signed" in r.error_line
    assert vudo_cli("sign", cwd=project).code == 0
    r = vudo_cli("run", str(package), "--grant", "actuator_log", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["kind"] == "package" and data["results"] == [25]
    assert data["not_granted"] == ["sensor_time"]
    raw = bytearray(package.read_bytes())
    raw[raw.index(b"Hello from")] = ord("J")
    package.write_bytes(bytes(raw))
    r = vudo_cli("run", str(package))
    assert r.code == 4 and "hint:" in r.error_line


def test_run_does_not_import_textual(env: dict[str, str], loopy: Path) -> None:
    code = (
        "import sys\n"
        "from vudo.cli import main\n"
        f"rc = main(['run', {str(loopy)!r}, '-f', 'half', '-q', '--', '2'])\n"
        "assert rc == 0, rc\n"
        "sys.stderr.write(repr([m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich')]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.endswith("[]")


# ---------------------------------------------------------------- vudo test


def test_test_passes(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("test", cwd=project)
    assert r.code == 0, r.stderr
    assert "PASS  test_greeting_length" in r.stdout and "PASS  test_add" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"


def test_test_filter_and_json(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("test", "--path", str(project), "add", "--json")
    assert r.code == 0
    data = r.json()
    assert data["passed"] == 1 and data["failed"] == 0
    assert [t["name"] for t in data["tests"]] == ["test_add"]
    assert set(data["tests"][0]) == {
        "name",
        "passed",
        "outcome",
        "detail",
        "results",
        "fuel_used",
        "seconds",
        "logs",
    }


def test_test_failures_exit_14(vudo_cli: Vudo, project: Path) -> None:
    src = project / "src" / "main.wat"
    text = (
        src.read_text()
        .replace(
            '(func (export "test_add")',
            '(func (export "test_traps") unreachable)\n'
            '  (func (export "test_spins") (loop $l (br $l)))\n'
            '  (func (export "test_add")',
        )
        .replace("(i32.const 3)) (i32.const 5)", "(i32.const 3)) (i32.const 6)")
    )
    src.write_text(text)
    r = vudo_cli("test", "--json", cwd=project)
    assert r.code == 14
    by_name = {t["name"]: t for t in r.json()["tests"]}
    assert by_name["test_greeting_length"]["passed"] is True
    assert (
        by_name["test_add"]["outcome"] == "failed"
        and "returned -1" in by_name["test_add"]["detail"]
    )
    assert by_name["test_traps"]["outcome"] == "trap"
    assert by_name["test_spins"]["outcome"] in ("fuel exhausted", "timeout")
    r = vudo_cli("test", "--fuel", "100000", cwd=project)
    assert r.code == 14
    assert r.stdout.strip().splitlines()[-1] == "1 passed, 3 failed"
    spins = next(ln for ln in r.stdout.splitlines() if "test_spins" in ln)
    assert spins.endswith("(fuel exhausted: all fuel used)"), spins  # said it twice
    assert "3 failed" in r.error_line


def test_test_missing_project_exit_5(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("test", "--path", str(tmp_path / "none")).code == 5


def test_test_build_failure_exit_7(vudo_cli: Vudo, project: Path) -> None:
    (project / "src" / "main.wat").write_text("(module (oops))")
    assert vudo_cli("test", cwd=project).code == 7


def test_ctrl_c_terminates_the_guest_and_exits_130(env: dict[str, str], loopy: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vudo",
            "run",
            str(loopy),
            "-f",
            "spin",
            "--timeout",
            "30",
            "--fuel",
            "100000000000000",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 5
    assert proc.returncode == 130, err
    assert "receipt   loopy.spin: terminated" in out
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in err


def test_live_progress_on_a_terminal(env: dict[str, str], loopy: Path) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vudo",
                "run",
                str(loopy),
                "-f",
                "spin",
                "--timeout",
                "1",
                "--fuel",
                "100000000000000",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=30,
            check=False,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 12
    assert "running" in shown and "fuel" in shown and "host calls" in shown


def test_run_builds_a_stale_project_and_shows_compiler_errors(
    vudo_cli: Vudo, project: Path
) -> None:
    src = project / "src" / "main.wat"
    src.write_text(src.read_text().replace("(i32.add", "(i32.plus"))
    r = vudo_cli("run", cwd=project)
    assert r.code == 7
    assert "src/main.wat:" in r.error_line
    assert "-->" in r.stderr  # the full diagnostic came first


STORAGE = """(module
  (import "vudo" "host_storage_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "vudo" "host_storage_read" (func $r (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "counter")
  ;; read the 1-byte counter at key "counter" (0 when absent), add one, write it back
  (func (export "main") (result i32)
    (local $n i32)
    (if (i32.gt_s (call $r (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 1))
                  (i32.const 0))
      (then (local.set $n (i32.load8_u (i32.const 16)))))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (i32.store8 (i32.const 16) (local.get $n))
    (drop (call $w (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 1)))
    (local.get $n)))
"""


def test_run_persists_storage_between_runs(vudo_cli: Vudo, project: Path) -> None:
    (project / "src" / "main.wat").write_text(STORAGE)
    manifest = project / "spirit.toml"
    manifest.write_text(
        manifest.read_text().replace(
            '["sensor_time", "actuator_log"]', '["storage_read", "storage_write"]'
        )
    )
    assert [vudo_cli("run", "-q", cwd=project).stdout.strip() for _ in range(3)] == ["1", "2", "3"]
    r = vudo_cli("run", "--deny", "storage_write", "--json", cwd=project)
    assert r.json()["receipt"]["host_calls"]["storage_write"] == {"allowed": 0, "denied": 1}
