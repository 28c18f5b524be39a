"""The embedding API (vudo.load, vudo.api.Spirit, vudo.HostFunctions) on real wasmtime,
a real vudo home in a temp dir, and the README's examples run verbatim."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vudo
from vudo.capabilities import Capability
from vudo.engine import Limits, Notification
from vudo.engine.abi import ErrorCode
from vudo.errors import (
    FuelExhausted,
    GuestTrap,
    InvalidInputError,
    NotFoundError,
    ResourceLimitExceeded,
    UsageError,
)

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# Echoes its input back reversed; "notify" sends a notification; "env" copies the variable
# NAME to the output; "json" writes {"n": <input length>}; "trap" traps; "spin" loops.
PLUGIN = r"""(module
 (import "vudo" "host_input_len" (func $len (result i64)))
 (import "vudo" "host_input_read" (func $read (param i32 i32 i64) (result i32)))
 (import "vudo" "host_output_write" (func $write (param i32 i32) (result i32)))
 (import "vudo" "host_env_get" (func $env (param i32 i32 i32 i32) (result i32)))
 (import "vudo" "host_notify" (func $notify (param i32 i32 i32) (result i32)))
 (memory (export "memory") 1)
 (data (i32.const 0) "NAME")
 (data (i32.const 16) "{\"n\": ")
 (data (i32.const 32) "}")
 (data (i32.const 48) "ding")
 (func (export "reverse") (result i32) (local $n i32) (local $i i32)
   (local.set $n (call $read (i32.const 1024) (i32.const 4096) (i64.const 0)))
   (block $done (loop $l
     (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
     (i32.store8
       (i32.sub (i32.add (i32.const 8192) (local.get $n)) (i32.add (local.get $i) (i32.const 1)))
       (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
     (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
   (drop (call $write (i32.const 8192) (local.get $n)))
   (local.get $n))
 (func (export "notify") (result i32) (call $notify (i32.const 2) (i32.const 48) (i32.const 4)))
 (func (export "env") (result i32) (local $n i32)
   (local.set $n (call $env (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 64)))
   (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (local.get $n))))
   (call $write (i32.const 64) (local.get $n)))
 (func (export "json") (result i32)
   (drop (call $write (i32.const 16) (i32.const 6)))
   (i32.store8 (i32.const 40) (i32.add (i32.const 48) (i32.wrap_i64 (call $len))))
   (drop (call $write (i32.const 40) (i32.const 1)))
   (call $write (i32.const 32) (i32.const 1)))
 (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
 (func (export "trap") unreachable)
 (func (export "spin") (loop $l (br $l))))"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".vudo"
    monkeypatch.setenv("VUDO_HOME", str(path))
    monkeypatch.setenv("HOME", str(tmp_path))
    return path


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "plugin.wat"
    path.write_text(PLUGIN)
    return path


@pytest.fixture
def spirit(plugin: Path, home: Path) -> Iterator[vudo.Spirit]:
    with vudo.load(
        plugin, grants=["sensor_environment", "actuator_notify"], env={"NAME": "zoë"}
    ) as s:
        yield s


def test_bytes_and_str_in_bytes_out(spirit: vudo.Spirit) -> None:
    assert spirit.call("reverse", b"abc\x00\xff") == b"\xff\x00cba"
    assert spirit.results == (5,)
    assert spirit.call("reverse", "héllo") == "héllo".encode()[::-1]
    assert spirit.call("reverse") == b"" and spirit.results == (0,)
    assert spirit.call("add", None, 2, 3) == b"" and spirit.results == (5,)
    with pytest.raises(UsageError, match="input is bytes or str"):
        spirit.call("reverse", 42)  # type: ignore[arg-type]


def test_json_convenience(spirit: vudo.Spirit) -> None:
    assert spirit.call_json("json", [1, 2]) == {"n": 6}  # "[1, 2]" is 6 bytes
    assert spirit.call_json("add", None, 1, 1) is None  # no output
    with pytest.raises(InvalidInputError, match="not JSON"):
        spirit.call_json("reverse", {"a": 1})


def test_env_grants_and_receipt(spirit: vudo.Spirit) -> None:
    assert spirit.call("env") == "zoë".encode()
    assert ("sensor_environment", "global") in spirit.granted
    assert set(spirit.requested) == {Capability.SENSOR_ENVIRONMENT, Capability.ACTUATOR_NOTIFY}
    receipt = spirit.receipt()
    assert receipt.ok and receipt.io == {"output": 4}
    assert receipt.host_calls["sensor_environment"] == {"allowed": 1, "denied": 0}
    assert len(spirit.identity) == 64 and "reverse" in spirit.exports


def test_without_grants_env_is_denied(plugin: Path, home: Path) -> None:
    with vudo.load(plugin) as s:
        s.call("env")
        assert s.results == (ErrorCode.CAPABILITY_DENIED,)
    with vudo.load(plugin, env={"NAME": "x"}, deny=["sensor_environment"]) as s:
        s.call("env")
        assert s.results == (ErrorCode.CAPABILITY_DENIED,)
    with vudo.load(plugin, env={"NAME": "x"}) as s:  # giving env grants it, as --env does
        assert s.call("env") == b"x"


def test_notify_is_an_event(spirit: vudo.Spirit, capsys: pytest.CaptureFixture[str]) -> None:
    events: list[object] = []
    spirit.subscribe(events.append)
    spirit.call("notify")
    assert spirit.results == (0,)
    assert [(e.level, e.message) for e in events if isinstance(e, Notification)] == [(2, "ding")]
    assert capsys.readouterr().err == ""  # a library prints nothing unless asked


def test_failures_raise_and_fuel_can_be_added(plugin: Path, home: Path) -> None:
    with vudo.load(plugin) as s, pytest.raises(GuestTrap):
        s.call("trap")
    with vudo.load(plugin, fuel=100_000) as s:
        with pytest.raises(FuelExhausted):
            s.call("spin")
        s.refuel(1_000)
        assert s.call("add", None, 1, 2) == b"" and s.results == (3,)


def test_limits(plugin: Path, home: Path) -> None:
    with vudo.load(plugin, limits=Limits(max_input_bytes=4, max_output_bytes=2)) as s:
        assert s.limits.max_input_bytes == 4 and s.limits.memory_bytes == Limits().memory_bytes
        with pytest.raises(ResourceLimitExceeded, match="input limit"):
            s.call("reverse", b"12345")
        assert s.call("reverse", b"1234") == b""  # output past its limit: refused
        assert s.results == (4,)
        assert s.call("reverse", b"12") == b"21"


def test_bad_load_arguments(plugin: Path, home: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no installed Spirit named"):
        vudo.load("not-installed")
    with pytest.raises(NotFoundError):
        vudo.load(tmp_path / "missing.wasm")
    with pytest.raises(InvalidInputError, match="unknown capability"):
        vudo.load(plugin, grants=["sensor_tme"])
    with pytest.raises(UsageError, match="not both"):
        vudo.load(plugin, host_functions=vudo.HostFunctions(), engine=object())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="environment variable"):
        vudo.load(plugin, env={"A=B": "c"})


def test_an_installed_spirit_by_name(home: Path, tmp_path: Path) -> None:
    """A Spirit installed with `vudo` runs under its name with the grants stored at install."""
    project = tmp_path / "upper"
    shutil.copytree(REPO / "examples" / "upper", project, ignore=shutil.ignore_patterns("target"))
    env = {"VUDO_HOME": str(home), "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    for argv in (["pack", "--path", str(project)], ["sign", "--path", str(project)]):
        done = subprocess.run(
            [sys.executable, "-m", "vudo", *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    package = next((project / "dist").glob("*.spirit"))
    done = subprocess.run(
        [sys.executable, "-m", "vudo", "summon", str(package), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with vudo.load("upper", env={"CASE": "lower"}) as s:
        assert s.target.kind == "installed"
        assert s.call("main", "MiXeD") == b"mixed"


# -- the README, verbatim ------------------------------------------------------------


def _readme_block(after: str, index: int = 0) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(after) :]
    return re.findall(r"```python\n(.*?)```", section, re.S)[index]


def test_the_readme_embedding_example_runs_verbatim(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _readme_block("### Embedding")
    assert len(code.strip().splitlines()) < 10
    shutil.copytree(
        REPO / "examples" / "upper",
        tmp_path / "examples" / "upper",
        ignore=shutil.ignore_patterns("target"),
    )
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    # the comment on the print line says what it prints
    expected = re.search(r"print\(.*\)\s+# (.*)", code)
    assert expected is not None
    assert printed.getvalue().strip() == expected.group(1).strip()


def test_the_readme_host_function_example_runs_verbatim(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _readme_block("### Embedding", 1)
    (tmp_path / "plugin.wasm").write_bytes(
        __import__("wasmtime").wat2wasm(
            '(module (import "myapp" "lookup" (func $l (param i32 i32) (result i32))) '
            '(memory (export "memory") 1) (data (i32.const 0) "plugin") '
            '(func (export "main") (result i32) (call $l (i32.const 0) (i32.const 6))))'
        )
    )
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"vudo": vudo}
    exec(compile(code, "README.md", "exec"), scope)
    spirit = scope["spirit"]
    assert isinstance(spirit, vudo.Spirit)
    with spirit:
        spirit.call("main")
        assert spirit.results == (6,)
        assert spirit.requested == ("x:myapp.lookup",)
        assert spirit.receipt().host_calls == {"x:myapp.lookup": {"allowed": 1, "denied": 0}}


PLUGIN_SOURCE = r"""(module
  (import "myapp" "lookup" (func $lookup (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "colour")
  (func (export "main") (result i32) (call $lookup (i32.const 0) (i32.const 6))))
"""


def _vudo(home: Path, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"VUDO_HOME": str(home), "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "vudo", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_plugin_project_builds_installs_with_consent_and_runs_in_its_app(
    home: Path, tmp_path: Path
) -> None:
    """A Spirit declaring x:myapp.lookup may import from "myapp": it builds, its consent
    shows the capability, the stored grant lets it call the application's function."""
    done = _vudo(home, tmp_path, "new", "plugin")
    assert done.returncode == 0, done.stderr
    project = tmp_path / "plugin"
    manifest = project / "spirit.toml"
    text = re.sub(
        r"capabilities = \[.*\]", 'capabilities = ["x:myapp.lookup"]', manifest.read_text()
    )
    manifest.write_text(text)
    (project / "src" / "main.wat").write_text(PLUGIN_SOURCE)
    done = _vudo(home, tmp_path, "build", "--path", str(project))
    assert done.returncode == 0, done.stderr
    done = _vudo(home, tmp_path, "check", "--path", str(project), "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == [], done.stdout
    # `vudo run` has no application: the import is refused with the usual error (exit 3)
    done = _vudo(home, tmp_path, "run", str(project))
    assert (
        done.returncode == 3 and 'import "myapp" "lookup" is not from module "vudo"' in done.stderr
    )
    for argv in (["pack", "--path", str(project)], ["sign", "--path", str(project)]):
        done = _vudo(home, tmp_path, *argv)
        assert done.returncode == 0, done.stderr
    package = next((project / "dist").glob("*.spirit"))
    asked = _vudo(home, tmp_path, "summon", str(package))  # no terminal: shown, then refused
    assert asked.returncode != 0 and "x:myapp.lookup" in asked.stderr
    done = _vudo(home, tmp_path, "summon", str(package), "--yes")
    assert done.returncode == 0, done.stderr

    host = vudo.HostFunctions()
    seen: list[str] = []

    @host.function("myapp", params=("i32", "i32"), capability="x:myapp.lookup")
    def lookup(ctx: vudo.HostContext, ptr: int, length: int) -> int:
        seen.append(ctx.read_text(ptr, length))
        return 42

    with vudo.load("plugin", host_functions=host) as spirit:
        assert ("x:myapp.lookup", "global") in spirit.granted
        spirit.call("main")
        assert spirit.results == (42,) and seen == ["colour"]
    done = _vudo(home, tmp_path, "revoke", "plugin", "x:myapp.lookup")
    assert done.returncode == 0, done.stderr
    host2 = vudo.HostFunctions()
    host2.define(
        "myapp", "lookup", lambda ctx, p, n: 42, params=("i32", "i32"), capability="x:myapp.lookup"
    )
    with vudo.load("plugin", host_functions=host2) as spirit:
        spirit.call("main")
        assert spirit.results == (ErrorCode.CAPABILITY_DENIED,)


def test_importing_from_an_application_not_declared_is_a_build_error(
    home: Path, tmp_path: Path
) -> None:
    assert _vudo(home, tmp_path, "new", "stray").returncode == 0
    project = tmp_path / "stray"
    (project / "src" / "main.wat").write_text(PLUGIN_SOURCE)
    done = _vudo(home, tmp_path, "build", "--path", str(project))
    assert done.returncode == 3, done.stderr
    assert 'import "myapp" "lookup" is not from module "vudo"' in done.stderr


def test_the_upper_example_script(home: Path, tmp_path: Path) -> None:
    example = tmp_path / "upper"
    shutil.copytree(REPO / "examples" / "upper", example, ignore=shutil.ignore_patterns("target"))
    env = {"VUDO_HOME": str(home), "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "src")}
    for argv, want in (([], b"HELLO, SPIRITS\n\xff"), (["lower"], b"hello, spirits\n\xff")):
        done = subprocess.run(
            [sys.executable, str(example / "upper.py"), *argv],
            input=b"Hello, Spirits\n\xff",
            env=env,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == want
        assert b"'input': 16, 'output': 16" in done.stderr
