"""`vudo run` of a project calling an installed dependency (host_spirit_call): resolved
through the manifest and spirit.lock, run as the dependency's own identity with its own
grants, and reported as a nested receipt (text and --json)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The ``vudo_cli`` fixture (tests/cli/conftest.py): runs vudo in a subprocess.
Vudo = Callable[..., Any]


CALLEE = """(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "lowercase here")
  (func (export "run") (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 14)))
    (i32.const 0)))
"""


def caller(dep: str) -> str:
    return f"""(module
  (import "vudo" "host_spirit_call"
    (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{dep}")
  (data (i32.const 32) "run")
  (func (export "main") (result i64)
    (call $call (i32.const 0) (i32.const {len(dep)}) (i32.const 32) (i32.const 3)
                (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 64))))
"""


def _project(vudo_cli: Vudo, tmp_path: Path, name: str, wat: str, caps: str) -> Path:
    assert vudo_cli("new", name).code == 0
    root = tmp_path / name
    (root / "src" / "main.wat").write_text(wat)
    manifest = root / "spirit.toml"
    lines = [
        f"capabilities = [{caps}]" if line.startswith("capabilities") else line
        for line in manifest.read_text().splitlines()
    ]
    manifest.write_text("\n".join(lines) + "\n")
    return root


def _setup(vudo_cli: Vudo, tmp_path: Path, dep: str = "lowercase") -> Path:
    callee = _project(vudo_cli, tmp_path, "lowercase", CALLEE, '"actuator_log"')
    with (callee / "spirit.toml").open("a") as fh:
        fh.write("\n[pricing]\nbase_cost = 100\n")
    assert vudo_cli("summon", "./lowercase", "--yes").code == 0
    root = _project(vudo_cli, tmp_path, "caller", caller(dep), '"cross_sandbox_call"')
    with (root / "spirit.toml").open("a") as fh:
        fh.write('\n[dependencies]\nlowercase = "^0.1"\n')
    built = vudo_cli("build", "--path", "caller")
    assert built.code == 0, built.stderr
    assert (root / "spirit.lock").is_file()
    return root


def test_a_project_calls_its_locked_dependency(vudo_cli: Vudo, tmp_path: Path) -> None:
    _setup(vudo_cli, tmp_path)
    done = vudo_cli("run", "./caller")
    assert done.code == 0, done.stderr
    assert "result: 0" in done.stdout
    assert "called      lowercase.run: ok" in done.stdout
    assert "actuator_log 1" in done.stdout
    assert "[info] lowercase here" in done.stderr

    data = vudo_cli("run", "./caller", "--json").json()
    (child,) = data["receipt"]["calls"]
    assert child["module"] == "lowercase" and child["outcome"] == "ok"
    assert child["host_calls"] == {"actuator_log": {"allowed": 1, "denied": 0}}
    assert child["price"] == 100  # under lowercase's own [pricing]
    assert data["receipt"]["host_calls"] == {"cross_sandbox_call": {"allowed": 1, "denied": 0}}

    # the callee's grants are its own: revoking its log leaves the caller's alone, and the
    # note says whose grant it is
    assert vudo_cli("revoke", "lowercase", "actuator_log").code == 0
    done = vudo_cli("run", "./caller")
    assert done.code == 0
    assert "actuator_log 0/1 denied" in done.stdout
    assert "`vudo grant lowercase actuator_log`" in done.stderr


def test_a_name_not_in_the_manifest_is_not_found(vudo_cli: Vudo, tmp_path: Path) -> None:
    # "hello" is installed too, but not a dependency of the caller: never looked up
    _setup(vudo_cli, tmp_path, dep="hello")
    assert vudo_cli("new", "hello").code == 0
    assert vudo_cli("summon", "./hello", "--yes").code == 0
    data = vudo_cli("run", "./caller", "--json").json()
    assert data["results"] == [-9]
    assert data["receipt"]["calls"] == []
    done = vudo_cli("run", "./caller")
    assert "result: -9" in done.stdout
    assert "note: host_spirit_call: hello is not a dependency in" in done.stderr


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_titlecase_example_runs_from_python(
    env: dict[str, str], tmp_path: Path, vudo_cli: Vudo
) -> None:
    """examples/titlecase/run.py: bytes in, bytes out, through its dependency lowercase."""
    for name in ("lowercase", "titlecase"):
        shutil.copytree(EXAMPLES / name, tmp_path / name, ignore=shutil.ignore_patterns("target"))
    script = tmp_path / "titlecase" / "run.py"
    done = subprocess.run(
        [sys.executable, str(script), "hELLO wORLD, from THE sPIRITS"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"Hello World, From The Spirits\n"
    assert b"called lowercase" in done.stderr
    assert b"io {'input': 29, 'output': 29}" in done.stderr
    # set up once: the second run reads stdin and finds lowercase installed and locked
    again = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        input=b"second TIME\n",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert again.stdout == b"Second Time\n", again.stderr.decode()
    # the receipt of a CLI run nests lowercase's under titlecase's
    data = vudo_cli("run", str(tmp_path / "titlecase"), "--yes", "--json").json()
    assert [c["module"] for c in data["receipt"]["calls"]] == ["lowercase"]


def test_an_installed_caller_and_a_missing_locked_dependency(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    _setup(vudo_cli, tmp_path)
    # installed, the caller reaches its dependency by its manifest's requirement, and runs
    # as its own installed identity
    assert vudo_cli("summon", "./caller", "--yes").code == 0
    data = vudo_cli("run", "caller", "--json").json()
    assert data["kind"] == "installed" and data["results"] == [0]
    assert [c["module"] for c in data["receipt"]["calls"]] == ["lowercase"]
    # the package the lock pins is gone: NOT_FOUND, and the note says why
    gone = vudo_cli("uninstall", "lowercase")
    assert gone.code == 0, gone.stderr
    done = vudo_cli("run", "./caller")
    assert "result: -9" in done.stdout, done.stderr
    assert "note: host_spirit_call: lowercase:" in done.stderr


def test_check_warns_when_calls_can_reach_nothing(vudo_cli: Vudo, tmp_path: Path) -> None:
    _project(vudo_cli, tmp_path, "lonely", caller("lowercase"), '"cross_sandbox_call"')
    assert vudo_cli("build", "--path", "lonely", "--yes").code == 0
    done = vudo_cli("check", "--path", "lonely")
    assert done.code == 0
    assert "imports host_spirit_call but spirit.toml has no [dependencies]" in done.stderr + (
        done.stdout
    )
