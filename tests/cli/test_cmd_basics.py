"""Help, usage errors, error rendering and `vudo new` / `vudo dol`, through a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vudo.cli.app import COMMANDS

Vudo = Callable[..., Any]

ALL = [c.name for c in COMMANDS]


def test_help_lists_every_command(vudo_cli: Vudo) -> None:
    r = vudo_cli("--help")
    assert r.code == 0
    for name in ALL:
        assert f"    {name}" in r.stdout
    assert "exit codes" in r.stdout


@pytest.mark.parametrize("name", ALL)
def test_every_command_has_help_with_an_example(vudo_cli: Vudo, name: str) -> None:
    r = vudo_cli(name, "--help")
    assert r.code == 0, r.stderr
    assert "example:\n  vudo " in r.stdout


def test_no_command_prints_help_and_exits_2(vudo_cli: Vudo) -> None:
    r = vudo_cli()
    assert r.code == 2
    assert "COMMAND" in r.stdout


def test_usage_error_is_one_line_exit_2(vudo_cli: Vudo) -> None:
    r = vudo_cli("run", "--fuel", "lots")
    assert r.code == 2
    assert r.stderr.strip() == r.error_line
    assert "--fuel" in r.error_line and "(hint: " in r.error_line
    r = vudo_cli("frobnicate")
    assert r.code == 2 and "invalid choice" in r.error_line


def child_reports(code: str, env: dict[str, str]) -> str:
    """What a fresh Python running ``code`` writes to stderr (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return proc.stderr


def test_help_does_not_import_textual_or_wasmtime(env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from vudo.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('textual', 'wasmtime') if m in sys.modules]\n"
        "sys.stderr.write(repr(bad))\n"
    )
    assert child_reports(code, env) == "[]"


def test_only_the_command_line_sets_the_collector_policy(env: dict[str, str]) -> None:
    """`vudo` (main) collects in big batches and freezes what lives to exit; `import vudo`
    and `run_cli`, which embedders and tests call, leave the collector as they found it."""
    code = (
        "import gc, sys\n"
        "default = gc.get_threshold()\n"
        "import vudo, vudo.cli\n"
        "from vudo.cli.app import run_cli\n"
        "run_cli(['capabilities'])\n"
        "untouched = gc.get_threshold() == default and gc.get_freeze_count() == 0\n"
        "rc = vudo.cli.main(['capabilities'])\n"
        "sys.stderr.write(repr((untouched, rc, gc.get_threshold(), gc.get_freeze_count() > 0)))\n"
    )
    assert child_reports(code, env) == repr((True, 0, (100_000, 10, 10), True))


def test_new_creates_a_project_with_the_users_key_as_author(
    vudo_cli: Vudo, tmp_path: Path, home: Path
) -> None:
    r = vudo_cli("new", "hello-spirit")
    assert r.code == 0, r.stderr
    root = tmp_path / "hello-spirit"
    for rel in ("spirit.toml", "src/main.wat", "README.md", ".gitignore"):
        assert (root / rel).is_file()
    public = (home / "keys" / "public.key").read_text().strip()
    manifest = (root / "spirit.toml").read_text()
    assert f'author = "{public}"' in manifest
    assert 'name = "hello-spirit"' in manifest
    assert "{{" not in (root / "src" / "main.wat").read_text()
    assert "created wat Spirit" in r.stdout


def test_new_json_shape(vudo_cli: Vudo, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    r = vudo_cli("new", "zz", "--template", "c", "--path", "work", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert set(data) == {"name", "path", "template", "author", "files"}
    assert data["template"] == "c" and len(data["author"]) == 64
    assert Path(data["path"]) == tmp_path / "work" / "zz"
    assert any(f.endswith("main.c") for f in data["files"])


def test_new_refuses_an_existing_directory(vudo_cli: Vudo, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    r = vudo_cli("new", "taken")
    assert r.code == 3
    assert "already exists" in r.error_line and "hint:" in r.error_line


@pytest.mark.parametrize("name", ["Hello", "1abc", "a b", "x--y", "_x", "a" * 65])
def test_new_validates_the_name(vudo_cli: Vudo, name: str) -> None:
    r = vudo_cli("new", name)
    assert r.code == 3
    assert "name" in r.error_line and "hint:" in r.error_line


def test_new_unknown_template_is_a_usage_error(vudo_cli: Vudo) -> None:
    r = vudo_cli("new", "ok", "--template", "cobol")
    assert r.code == 2
    assert 'unknown template "cobol"' in r.error_line and "wat, c, zig, rust" in r.error_line


def test_dol_without_toolchain_says_how_to_get_it(vudo_cli: Vudo, env: dict[str, str]) -> None:
    env["PATH"] = str(Path(sys.executable).parent)
    r = vudo_cli("dol", "build")
    assert r.code == 5
    assert "DOL is not available" in r.error_line and "cargo install dol" in r.error_line


def test_dol_hands_off_to_dol_on_path(vudo_cli: Vudo, env: dict[str, str], tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dol"
    fake.write_text('#!/bin/sh\necho "dol got: $*"\nexit 3\n')
    fake.chmod(0o755)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    r = vudo_cli("dol", "check", "--strict", "x.dol")
    assert r.code == 3
    assert r.stdout.strip() == "dol got: check --strict x.dol"


def test_json_is_valid_json(vudo_cli: Vudo) -> None:
    r = vudo_cli("new", "jj", "--json")
    json.loads(r.stdout)


def test_os_errors_are_one_line_exit_1(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "x").code == 0
    r = vudo_cli("doc", "--path", "x", "-o", "/dev/null/docs")
    assert r.code == 1
    assert r.stderr.strip() == r.error_line and "/dev/null/docs" in r.error_line
