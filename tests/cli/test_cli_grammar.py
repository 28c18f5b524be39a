"""One grammar for the command line: the same flags everywhere, JSON on failure, exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vudo.cli.app import COMMANDS, build_parser

Vudo = Callable[..., Any]


def _options(name: str) -> set[str]:
    parser = build_parser(name)
    sub = next(a for a in parser._actions if a.dest == "command")
    return {s for a in sub.choices[name]._actions for s in a.option_strings}  # type: ignore[union-attr]


JSON_COMMANDS = [c.name for c in COMMANDS if "--json" in _options(c.name)]

#: A failing input for each command, and the exit code it must give.
FAILING: dict[str, tuple[tuple[str, ...], int]] = {
    "new": (("Bad Name",), 3),
    "build": (("--path", "nowhere"), 5),
    "run": (("nowhere.wat",), 5),
    "test": (("--path", "nowhere"), 5),
    "pack": (("--path", "nowhere"), 5),
    "sign": (("nowhere.spirit",), 5),
    "publish": (("nowhere.spirit",), 5),
    "summon": (("nowhere.spirit",), 5),
    "install": (("no-such-spirit", "--yes"), 5),
    "uninstall": (("no-such-spirit",), 5),
    "list": (("extra-word",), 2),
    "search": (("--capability", "telepathy"), 2),
    "info": (("no-such-spirit",), 5),
    "upgrade": (("no-such-spirit",), 5),
    "repair": (("extra-word",), 2),
    "check": (("--path", "nowhere"), 5),
    "tree": (("--path", "nowhere"), 5),
    "why": (("lib", "--path", "nowhere"), 5),
    "fmt": (("--path", "nowhere"), 5),
    "doc": (("--path", "nowhere"), 5),
    "keys": (("show",), 5),
    "grant": (("no-such-spirit", "sensor_time"), 5),
    "revoke": (("no-such-spirit", "sensor_time"), 5),
    "capabilities": (("telepathy",), 2),
    "cache": (("bogus",), 2),
    "verify": (("nowhere.spirit",), 5),
    "yank": (("no-such-spirit@0.1.0", "--registry", "nowhere"), 5),
    "registry": (("remove", "no-such-registry"), 5),
    "login": (("no-such-registry", "--password-stdin"), 2),
    "logout": (("no-such-registry",), 5),
    "credit": (("bogus",), 2),
    "storage": (("get", "no-such-spirit", "key"), 5),
    "trust": (("nowhere",), 5),
    "untrust": (("nowhere",), 5),
}


def _assert_json_error(r: Any, code: int) -> None:
    assert r.code == code, r.stdout + r.stderr
    data = r.json()  # stdout is one JSON document, nothing else
    assert set(data) == {"error"}
    error = data["error"]
    assert set(error) == {"title", "message", "hint", "exit_code"}
    assert error["exit_code"] == code and error["title"] and error["message"]
    assert r.error_line.startswith("error: ")  # and the one line on stderr, as ever


@pytest.mark.parametrize("name", JSON_COMMANDS)
def test_every_command_prints_json_on_failure(vudo_cli: Vudo, name: str) -> None:
    argv, code = FAILING.get(name, (("--no-such-flag",), 2))
    _assert_json_error(vudo_cli(name, *argv, "--json"), code)
    # argparse's own errors (an unknown flag) are JSON too
    _assert_json_error(vudo_cli(name, "--json", "--no-such-flag"), 2)


def test_json_failure_without_a_command(vudo_cli: Vudo) -> None:
    _assert_json_error(vudo_cli("--json"), 2)


def test_every_json_command_has_a_specific_failing_case() -> None:
    # A new command joins FAILING with an input that fails in its own way.
    assert set(JSON_COMMANDS) <= set(FAILING), set(JSON_COMMANDS) - set(FAILING)


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        (
            {"--path"},
            ["build", "run", "test", "pack", "check", "fmt", "doc", "tui", "sign", "publish"],
        ),
        (
            {"--fuel", "--timeout", "--memory", "--grant", "--deny", "--env", "--input"}
            | {"--dir", "--ro-dir"},
            ["run", "test"],
        ),
        ({"--grant", "--deny", "--yes", "--trust-signer"}, ["summon", "install"]),
        ({"--registry"}, ["install", "publish", "search", "upgrade"]),
        ({"-q", "--quiet", "-v", "--verbose"}, [c.name for c in COMMANDS if c.name != "dol"]),
    ],
)
def test_flags_meaning_the_same_are_spelled_the_same(group: set[str], commands: list[str]) -> None:
    for name in commands:
        assert group <= _options(name), (name, group - _options(name))


@pytest.fixture
def project(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    return tmp_path / "demo"


def test_run_test_and_tui_take_the_project_like_build(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("build", "--path", "demo").code == 0
    r = vudo_cli("run", "--path", "demo", "-q")
    assert r.code == 0 and r.stdout == "25\n", r.stderr
    assert vudo_cli("test", "--path", "demo").code == 0
    r = vudo_cli("run", "demo", "--path", "demo")
    assert r.code == 2 and "pass one of them" in r.error_line
    r = vudo_cli("tui", "--path", "nowhere")  # a missing project is one line, not a UI
    assert r.code == 5 and "nowhere" in r.error_line


def test_quiet_and_verbose_are_global(vudo_cli: Vudo, project: Path) -> None:
    before = vudo_cli("-q", "run", cwd=project)
    after = vudo_cli("run", "-q", cwd=project)
    assert before.code == after.code == 0
    assert before.stdout == after.stdout == "25\n"
    r = vudo_cli("-v", "run", cwd=project)
    assert "host call  host_time_now() -> " in r.stderr and "allowed [sensor_time]" in r.stderr
    r = vudo_cli("build", "-q", cwd=project)
    assert r.code == 0 and r.stderr == ""


def test_test_takes_the_grants_and_limits_run_takes(vudo_cli: Vudo, project: Path) -> None:
    src = project / "src" / "main.wat"
    # a test that fails unless host_time_now is allowed (a denied call returns -1)
    src.write_text(
        src.read_text().replace(
            '(func (export "test_add")',
            '(func (export "test_clock") (result i32)\n'
            "    (i64.lt_s (call $time_now) (i64.const 0)))\n"
            '  (func (export "test_add")',
            1,
        )
    )
    assert "test_clock" in src.read_text()
    r = vudo_cli("test", "clock", "--json", cwd=project)
    assert r.code == 0, r.stdout + r.stderr
    r = vudo_cli("test", "clock", "--deny", "sensor_time", "--json", cwd=project)
    assert r.code == 14
    data = r.json()
    assert data["failed"] == 1 and data["error"]["exit_code"] == 14
    r = vudo_cli("test", "clock", "--deny", "sensor_tim", cwd=project)
    assert r.code == 2 and 'did you mean "sensor_time"' in r.error_line
    r = vudo_cli("test", "--memory", "lots", cwd=project)
    assert r.code == 2 and 'invalid size "lots"' in r.error_line
    r = vudo_cli("test", "--memory", "64KiB", "--fuel", "1", "--json", cwd=project)
    assert r.code == 14
    assert {t["outcome"] for t in r.json()["tests"]} == {"fuel exhausted"}


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "x.wat", "--grant", "sensor_time=nowhere"),
        ("run", "x.wat", "--deny", "telepathy"),
        ("grant", "demo", "telepathy"),
        ("grant", "demo", "sensor_time", "--scope", "nowhere"),
        ("revoke", "demo", "telepathy"),
        ("summon", "x.spirit", "--grant", "telepathy"),
        ("install", "demo", "--grant", "sensor_time=nowhere"),
        ("search", "--capability", "telepathy"),
        ("grant", "demo", "sensor_time", "--expires", "someday"),
        ("run", "x.wat", "--memory", "lots"),
        ("run", "x.wat", "--fuel", "lots"),
    ],
)
def test_a_bad_value_on_the_command_line_is_exit_2_everywhere(
    vudo_cli: Vudo, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    (tmp_path / "x.wat").write_text('(module (func (export "main")))')
    r = vudo_cli(*argv)
    assert r.code == 2, r.stderr
    assert "(hint: " in r.error_line


def test_a_denied_call_says_what_would_allow_it(
    vudo_cli: Vudo, project: Path, tmp_path: Path
) -> None:
    # a project: the capability is declared, this run withheld it
    r = vudo_cli("run", "--deny", "sensor_time", cwd=project)
    assert r.code == 0, r.stderr
    assert "note: host calls needing sensor_time were denied" in r.stderr
    assert (
        "host_time_now (no grant for sensor_time); to allow it: run without --deny "
        "sensor_time" in r.stderr
    )
    # a project whose manifest lost it: the build names the exact manifest line
    manifest = project / "spirit.toml"
    manifest.write_text(
        manifest.read_text().replace(
            'capabilities = ["sensor_time", "actuator_log"]', 'capabilities = ["actuator_log"]'
        )
    )
    r = vudo_cli("run", cwd=project)
    assert r.code == 7
    assert 'capabilities = ["actuator_log", "sensor_time"]' in r.error_line
    # a loose module: --grant
    wat = tmp_path / "loose.wat"
    wat.write_text((project / "src" / "main.wat").read_text())
    r = vudo_cli("run", str(wat))
    assert "to allow it: pass --grant sensor_time" in r.stderr
    # an installed Spirit: the exact `vudo grant`
    manifest.write_text(
        manifest.read_text().replace(
            'capabilities = ["actuator_log"]', 'capabilities = ["sensor_time", "actuator_log"]'
        )
    )
    assert vudo_cli("summon", str(project), "--grant", "actuator_log").code == 0
    r = vudo_cli("run", "demo", cwd=project)  # (beside the project, "demo" is the project)
    assert "to allow it: vudo grant demo sensor_time\n" in r.stderr, r.stderr


NET = """(module
  (import "vudo" "host_network_connect" (func $connect (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "127.0.0.1:9")
  (func (export "main") (result i64) (call $connect (i32.const 0) (i32.const 11))))
"""


def test_a_scope_that_does_not_cover_the_target_is_named(vudo_cli: Vudo, tmp_path: Path) -> None:
    wat = tmp_path / "net.wat"
    wat.write_text(NET)
    r = vudo_cli("run", str(wat), "--grant", "network_connect=domain:example.com:*")
    assert r.code == 0, r.stderr
    assert "the grant's scope domain:example.com:* does not cover 127.0.0.1:9" in r.stderr
    assert "pass --grant network_connect=domain:127.0.0.1:9" in r.stderr


def test_test_takes_the_variables_and_directories_run_takes(
    vudo_cli: Vudo, project: Path, tmp_path: Path
) -> None:
    """``vudo test --env K=V --dir D`` gives every test what ``vudo run`` would: a test that
    reads a variable, and one that opens the preopened directory, pass only with them."""
    wasi = "wasi_snapshot_preview1"
    (project / "src" / "main.wat").write_text(
        f"""(module
  (import "vudo" "host_env_get" (func $env (param i32 i32 i32 i32) (result i32)))
  (import "{wasi}" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "MODE")
  (func (export "test_env") (result i32)
    (i32.ne (call $env (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 8)) (i32.const 4)))
  (func (export "test_dir") (result i32)
    (call $prestat (i32.const 3) (i32.const 32))))
"""
    )
    (project / "spirit.toml").write_text(
        (project / "spirit.toml")
        .read_text()
        .replace('["sensor_time", "actuator_log"]', '["sensor_environment"]')
    )
    data = tmp_path / "data"
    data.mkdir()
    r = vudo_cli("test", "--json", cwd=project)
    assert r.code == 14, r.stdout + r.stderr
    assert {t["name"]: t["passed"] for t in r.json()["tests"]} == {
        "test_env": False,
        "test_dir": False,
    }
    r = vudo_cli("test", "--env", "MODE=fast", "--ro-dir", str(data), "--json", cwd=project)
    assert r.code == 0, r.stdout + r.stderr
    assert r.json()["passed"] == 2
    r = vudo_cli("test", "--env", "MODE", cwd=project)
    assert r.code == 2 and "NAME=VALUE" in r.error_line
    r = vudo_cli("test", "--dir", str(tmp_path / "nowhere"), cwd=project)
    assert r.code == 2
