"""Workspace trust: a project folder you did not write is not built or run before you say
so (run, build, test), the answer is remembered per real path and capability set, asked
again when the set widens, and managed with `vudo trust` / `vudo untrust`."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vudo

Vudo = Callable[..., Any]
REPO = Path(vudo.__file__).resolve().parents[2]

MAIN = """(module
  (import "vudo" "host_time_now" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "main") (result i32) (drop (call $now)) (i32.const 7))
  (func (export "test_ok") (result i32) (i32.const 0)))
"""


def foreign(where: Path, *, author: str = "00" * 32, caps: str = '["sensor_time"]') -> Path:
    """A project someone else wrote (as if cloned): not made by `vudo new` here."""
    root = where / "foreign"
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "main.wat").write_text(MAIN)
    (root / "spirit.toml").write_text(
        f'name = "foreign"\nversion = "0.1.0"\nauthor = "{author}"\n'
        f'description = "someone else\'s"\ncapabilities = {caps}\n'
    )
    return root


def test_an_untrusted_folder_is_neither_built_nor_run_without_consent(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    root = foreign(tmp_path)
    for argv in (
        ("run", "./foreign"),
        ("build", "--path", "foreign"),
        ("test", "--path", "foreign"),
        ("run", "foreign/spirit.toml"),
    ):
        r = vudo_cli(*argv)
        assert r.code == 2, (argv, r.stderr)
        assert "is not a trusted folder" in r.error_line and "--yes" in r.error_line
        assert "sensor_time" in r.stderr and "building compiles its WAT" in r.stderr
    assert not (root / "target").exists()  # nothing was built
    assert vudo_cli("trust", "--list", "--json").json() == []


def test_yes_trusts_remembers_and_a_wider_set_asks_again(vudo_cli: Vudo, tmp_path: Path) -> None:
    root = foreign(tmp_path)
    r = vudo_cli("run", "./foreign", "--yes")  # not -q: that silences the notes too
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "result: 7" and "trusted " in r.stderr
    r = vudo_cli("run", "./foreign", "-q")  # remembered: no question
    assert r.code == 0 and "trust" not in r.stderr
    assert vudo_cli("test", "--path", "foreign").code == 0
    [entry] = vudo_cli("trust", "--list", "--json").json()
    assert entry["path"] == str(root.resolve()) and entry["capabilities"] == ["sensor_time"]
    manifest = root / "spirit.toml"
    manifest.write_text(
        manifest.read_text().replace('["sensor_time"]', '["sensor_time", "storage_read"]')
    )
    r = vudo_cli("run", "./foreign", "-q")
    assert r.code == 2 and "asks for more than you trusted" in r.stderr
    assert "+ storage_read" in r.stderr and "  sensor_time" in r.stderr
    # a narrower set is still covered by what was trusted
    manifest.write_text(manifest.read_text().replace('["sensor_time", "storage_read"]', "[]"))
    r = vudo_cli("run", "./foreign", "-q")  # past the trust check, to the build's linter
    assert r.code == 7 and "trust" not in r.stderr and "sensor_time" in r.error_line


def test_trust_and_untrust_manage_folders(vudo_cli: Vudo, tmp_path: Path) -> None:
    root = foreign(tmp_path)
    r = vudo_cli("trust", "foreign")
    assert r.code == 0 and f"trusted {root.resolve()} with sensor_time" in r.stdout
    assert vudo_cli("run", "./foreign", "-q").stdout.strip() == "7"
    assert "capabilities: sensor_time" in vudo_cli("trust", "--list").stdout
    r = vudo_cli("untrust", "foreign", "--json")
    assert r.code == 0 and r.json()["path"] == str(root.resolve())
    assert vudo_cli("run", "./foreign").code == 2
    r = vudo_cli("untrust", "foreign")
    assert r.code == 5 and "trust --list" in r.error_line
    r = vudo_cli("trust", "nowhere")
    assert r.code == 5 and "hint:" in r.error_line
    r = vudo_cli("trust", "foreign", "--list")
    assert r.code == 2
    assert vudo_cli("trust", "--list").stdout.strip() == "no trusted folders"
    # a symlink to the folder is the same folder (real paths)
    (tmp_path / "link").symlink_to(root)
    assert vudo_cli("trust", "link").code == 0
    assert vudo_cli("run", "./foreign", "-q").code == 0


def test_asked_at_the_terminal_once(env: dict[str, str], tmp_path: Path) -> None:
    foreign(tmp_path)

    def at_terminal(answer: bytes) -> subprocess.CompletedProcess[str]:
        master, slave = pty.openpty()
        try:
            os.write(master, answer)
            return subprocess.run(
                [sys.executable, "-m", "vudo", "run", "./foreign", "-q"],
                env=env,
                cwd=tmp_path,
                stdin=slave,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(slave)
            os.close(master)

    no = at_terminal(b"n\n")
    assert no.returncode == 1, no.stderr
    assert "trust this folder to build and run?" in no.stderr
    assert no.stderr.strip().splitlines()[-1].startswith("error: cancelled:")
    yes = at_terminal(b"y\n")
    assert yes.returncode == 0, yes.stderr
    assert yes.stdout.strip() == "7"
    again = at_terminal(b"")
    assert again.returncode == 0 and "trust this folder" not in again.stderr


def test_what_is_trusted_without_asking(vudo_cli: Vudo, tmp_path: Path, home: Path) -> None:
    # your own key as the manifest's author
    me = vudo_cli("keys", "show", "--json")
    if me.code != 0:
        assert vudo_cli("keys", "generate").code == 0
        me = vudo_cli("keys", "show", "--json")
    mine = foreign(tmp_path / "mine", author=me.json()["public_key"])
    assert vudo_cli("run", str(mine), "-q").stdout.strip() == "7"
    # a folder vudo new made, whatever its manifest says later
    assert vudo_cli("new", "made-here").code == 0
    manifest = tmp_path / "made-here" / "spirit.toml"
    text = re.sub(r'author = "[0-9a-f]{64}"', 'author = "' + "00" * 32 + '"', manifest.read_text())
    manifest.write_text(
        text.replace(
            '["sensor_time", "actuator_log"]', '["sensor_time", "actuator_log", "storage_read"]'
        )
    )
    assert vudo_cli("run", "./made-here", "-q").code == 0
    assert vudo_cli("trust", "--list", "--json").json()[0]["reason"] == "created"
    assert (home / "trusted.json").is_file()
    # a copy of a bundled example elsewhere is someone else's folder
    shutil.copytree(
        REPO / "examples" / "hello",
        tmp_path / "hello",
        ignore=shutil.ignore_patterns("target", "dist", "doc"),
    )
    assert vudo_cli("run", "./hello").code == 2


def test_the_bundled_examples_are_trusted_on_a_fresh_home(tmp_path: Path) -> None:
    """The README's quick start (`vudo run examples/hello`) asks nothing: the examples
    ship with vudo (checked on the core, so the test builds nothing inside the checkout)."""
    from vudo.project.workspace import bundled_roots, check_trust

    assert REPO / "examples" in bundled_roots()
    assert check_trust(REPO / "examples" / "hello", home=tmp_path / "fresh") is None
    copy = tmp_path / "hello"
    shutil.copytree(
        REPO / "examples" / "hello", copy, ignore=shutil.ignore_patterns("target", "dist", "doc")
    )
    request = check_trust(copy, home=tmp_path / "fresh")
    assert request is not None and request.name == "hello" and request.previous is None


def test_an_older_homes_trusted_toml_is_read_then_replaced(
    vudo_cli: Vudo, tmp_path: Path, home: Path
) -> None:
    """Homes before trusted.json listed the folders in trusted.toml: they stay trusted,
    and the first change writes trusted.json and removes the TOML file."""
    root = foreign(tmp_path)
    home.mkdir(parents=True, exist_ok=True)
    (home / "trusted.toml").write_text(
        "# Folders you trust vudo to build and run.\n\n[[folder]]\n"
        f"path = {json.dumps(str(root.resolve()))}\n"
        'capabilities = ["sensor_time"]\nreason = "consent"\ntrusted_at = 1700000000\n'
    )
    assert vudo_cli("run", str(root), "-q").stdout.strip() == "7"  # trusted, as before
    listed = vudo_cli("trust", "--list", "--json").json()
    assert [(e["path"], e["trusted_at"]) for e in listed] == [(str(root.resolve()), 1700000000)]
    other = foreign(tmp_path / "other")
    assert vudo_cli("trust", str(other)).code == 0
    assert not (home / "trusted.toml").exists()
    paths = {e["path"] for e in vudo_cli("trust", "--list", "--json").json()}
    assert paths == {str(root.resolve()), str(other.resolve())}
    # a damaged file is an error that names it, never an empty trust list
    (home / "trusted.json").write_text('{"folder": [')
    r = vudo_cli("run", str(root))
    assert r.code == 3 and "trusted.json is damaged" in r.error_line
