"""Every Spirit is its own (DESIGN.md §2 "Identity"), through real `vudo` subprocesses.

Storage, credit and grants belong to the run's identity, never to a name the Spirit chose:
a loose `wallet.wat` must not read the installed `wallet`'s storage, a project folder named
`wallet` is not the installed `wallet`, and two runs of one file share their storage.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]

#: Adds one to the byte at storage key "secret" (0 when absent) and returns it.
COUNTER = """(module
  (import "vudo" "host_storage_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "vudo" "host_storage_read" (func $r (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "secret")
  (func (export "main") (result i32)
    (local $n i32)
    (if (i32.gt_s (call $r (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 1))
                  (i32.const 0))
      (then (local.set $n (i32.load8_u (i32.const 16)))))
    (local.set $n (i32.add (local.get $n) (i32.const 1)))
    (i32.store8 (i32.const 16) (local.get $n))
    (drop (call $w (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 1)))
    (local.get $n)))
"""

#: The attacker: reads key "secret" and returns the host call's result (-9 NOT_FOUND when
#: it is not there) or the byte it read.
THIEF = """(module
  (import "vudo" "host_storage_read" (func $r (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "secret")
  (func (export "main") (result i32)
    (local $got i32)
    (local.set $got (call $r (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 1)))
    (if (result i32) (i32.lt_s (local.get $got) (i32.const 0))
      (then (local.get $got))
      (else (i32.load8_u (i32.const 16))))))
"""


def make_wallet(vudo_cli: Vudo, where: Path) -> Path:
    """A `wallet` project that keeps a counter in storage key "secret"."""
    assert vudo_cli("new", "wallet", cwd=where).code == 0
    root = where / "wallet"
    (root / "src" / "main.wat").write_text(COUNTER)
    manifest = root / "spirit.toml"
    manifest.write_text(
        manifest.read_text().replace(
            '["sensor_time", "actuator_log"]', '["storage_read", "storage_write"]'
        )
    )
    return root


@pytest.fixture
def installed_wallet(vudo_cli: Vudo, tmp_path: Path) -> Path:
    """`wallet` installed (storage granted) and run twice: its secret is 2."""
    src = tmp_path / "src"
    src.mkdir()
    root = make_wallet(vudo_cli, src)
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    r = vudo_cli("summon", str(root / "dist" / "wallet-0.1.0.spirit"), "--yes")
    assert r.code == 0, r.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert [vudo_cli("run", "wallet", "-q", cwd=elsewhere).stdout.strip() for _ in range(2)] == [
        "1",
        "2",
    ]
    return elsewhere


def test_a_file_named_wallet_cannot_read_the_installed_wallets_storage(
    vudo_cli: Vudo, installed_wallet: Path
) -> None:
    thief = installed_wallet / "wallet.wat"
    thief.write_text(THIEF)
    r = vudo_cli("run", "wallet.wat", "--grant", "storage_read", "-q", cwd=installed_wallet)
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "-9"  # NOT_FOUND: its own, empty storage
    # and the installed wallet still has its own
    assert vudo_cli("run", "wallet", "-q", cwd=installed_wallet).stdout.strip() == "3"


def test_a_project_named_wallet_is_not_the_installed_wallet(
    vudo_cli: Vudo, installed_wallet: Path, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir()
    project = make_wallet(vudo_cli, tmp_path / "work")
    r = vudo_cli("run", "-q", cwd=project)
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "1"  # its own counter, not the installed wallet's 3rd
    installed = vudo_cli("run", "wallet", "--json", cwd=installed_wallet).json()
    dev = vudo_cli("run", "--json", cwd=project).json()
    assert installed["results"] == [3] and dev["results"] == [2]
    assert installed["identity"]["kind"] == "installed" and dev["identity"]["kind"] == "project"
    assert installed["identity"]["key"] != dev["identity"]["key"]


def test_two_runs_of_one_file_share_storage_and_a_changed_file_does_not(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    counter = tmp_path / "counter.wat"
    counter.write_text(COUNTER)
    grants = ("--grant", "storage_read", "--grant", "storage_write", "-q")
    assert [vudo_cli("run", "counter.wat", *grants).stdout.strip() for _ in range(2)] == ["1", "2"]
    copy = tmp_path / "other-name.wat"
    copy.write_text(COUNTER)  # the same module under another name: the same identity
    assert vudo_cli("run", "other-name.wat", *grants).stdout.strip() == "3"
    counter.write_text(
        COUNTER.replace(
            '(data (i32.const 0) "secret")',
            '(data (i32.const 0) "secret") (global i32 i32.const 1)',
        )
    )
    assert vudo_cli("run", "counter.wat", *grants).stdout.strip() == "1"


def test_storage_kept_under_an_installed_name_moves_to_its_identity_once(
    vudo_cli: Vudo, installed_wallet: Path, home: Path
) -> None:
    # An older vudo kept storage under the bare name: put the counter back there.
    db = sqlite3.connect(home / "data" / "storage.sqlite")
    with db:
        db.execute("DELETE FROM kv")
        db.execute("DELETE FROM usage")
        db.execute("INSERT INTO kv VALUES ('wallet', CAST('secret' AS BLOB), x'07')")
        db.execute("INSERT INTO usage VALUES ('wallet', 7)")
    db.close()
    thief = installed_wallet / "wallet.wat"
    thief.write_text(THIEF)
    r = vudo_cli("run", "wallet.wat", "--grant", "storage_read", "-q", cwd=installed_wallet)
    assert r.stdout.strip() == "-9"  # a loose file never inherits a name's storage
    r = vudo_cli("run", "wallet", cwd=installed_wallet)  # not -q: that silences notes
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "result: 8"
    assert "moved 1 storage key kept under the name 'wallet' to installed wallet" in r.stderr
    r = vudo_cli("run", "wallet", cwd=installed_wallet)
    assert r.stdout.splitlines()[0] == "result: 9" and "moved" not in r.stderr


def test_a_bare_name_means_the_installed_spirit_even_beside_a_folder_of_that_name(
    vudo_cli: Vudo, installed_wallet: Path
) -> None:
    make_wallet(vudo_cli, installed_wallet)  # a `wallet/` project right here
    r = vudo_cli("run", "wallet", "--json", cwd=installed_wallet)
    assert r.code == 0, r.stderr
    assert r.json()["kind"] == "installed" and r.json()["results"] == [3]
    for spec in ("./wallet", "wallet/"):
        r = vudo_cli("run", spec, "--json", cwd=installed_wallet)
        assert r.code == 0, r.stderr
        assert r.json()["kind"] == "project", spec
    assert vudo_cli("uninstall", "wallet").code == 0
    r = vudo_cli("run", "wallet", cwd=installed_wallet)
    assert r.code == 5
    assert 'no Spirit named "wallet" is installed' in r.error_line
    assert "`vudo run ./wallet`" in r.error_line
    r = vudo_cli("run", "nothing-here", cwd=installed_wallet)
    assert r.code == 5 and "./nothing-here" not in r.error_line
