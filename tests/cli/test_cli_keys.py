"""Keys: rotate without voiding grants, export/import, trust/untrust, --trust-signer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]


@contextmanager
def other_home(env: dict[str, str], home: Path) -> Iterator[Path]:
    """Run the commands inside the block as another user (their own VUDO_HOME)."""
    saved = env["VUDO_HOME"]
    home.mkdir(exist_ok=True)
    env["VUDO_HOME"] = str(home)
    try:
        yield home
    finally:
        env["VUDO_HOME"] = saved


@pytest.fixture
def installed(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    assert vudo_cli("summon", "./demo", "--yes").code == 0
    away = tmp_path / "away"  # beside the project, "demo" would name the project
    away.mkdir()
    return away


def _calls(vudo_cli: Vudo, cwd: Path) -> dict[str, Any]:
    r = vudo_cli("run", "demo", "--json", cwd=cwd)
    assert r.code == 0, r.stderr
    return dict(r.json()["receipt"]["host_calls"])


def test_rotate_resigns_the_stored_grants_and_keeps_the_old_key(
    vudo_cli: Vudo, home: Path, installed: Path
) -> None:
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 1, "denied": 0}
    old = vudo_cli("keys", "show", "--json").json()["public_key"]
    r = vudo_cli("keys", "rotate", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["old_public_key"] == old and data["public_key"] != old
    assert data["resigned"] == {"demo": 2}
    backup = Path(data["backup"]) / "private.key"
    assert backup.stat().st_mode & 0o777 == 0o600
    assert vudo_cli("keys", "show", "--json").json()["public_key"] == data["public_key"]
    # the grants still work, and info shows them valid
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 1, "denied": 0}
    assert "INVALID" not in vudo_cli("info", "demo").stdout
    # generate refuses to replace a key silently; --force rotates like rotate does
    r = vudo_cli("keys", "generate")
    assert r.code == 3 and "vudo keys rotate" in r.error_line and "--force" in r.error_line
    r = vudo_cli("keys", "generate", "--force")
    assert r.code == 0 and "re-signed    2 grants of 1 installed Spirit" in r.stdout
    assert _calls(vudo_cli, installed)["actuator_log"] == {"allowed": 1, "denied": 0}
    assert len(list((home / "keys" / "backups").iterdir())) == 2


def test_rotate_without_a_key_says_how_to_make_one(vudo_cli: Vudo) -> None:
    r = vudo_cli("keys", "rotate")
    assert r.code == 5 and "vudo keys generate" in r.error_line


def test_export_and_import_move_a_key(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path, installed: Path
) -> None:
    mine = vudo_cli("keys", "show", "--json").json()["public_key"]
    exported = tmp_path / "my.key"
    r = vudo_cli("keys", "export", "-o", str(exported))
    assert r.code == 0, r.stderr
    assert exported.stat().st_mode & 0o777 == 0o600
    r = vudo_cli("keys", "export", "-o", str(exported))
    assert r.code == 3 and "never overwrites" in r.error_line
    r = vudo_cli("keys", "export")
    assert len(r.stdout.strip()) == 64 and "private key" in r.stderr
    with other_home(env, tmp_path / "laptop"):
        r = vudo_cli("keys", "import", str(exported), "--json")
        assert r.code == 0, r.stderr
        assert r.json()["public_key"] == mine
        assert vudo_cli("keys", "show", "--json").json()["public_key"] == mine
    # importing over an existing key rotates to it: the grants follow
    with other_home(env, tmp_path / "third"):
        assert vudo_cli("keys", "generate").code == 0
        third = tmp_path / "third.key"
        assert vudo_cli("keys", "export", "-o", str(third)).code == 0
    r = vudo_cli("keys", "import", str(third))
    assert r.code == 0 and f"old key      {mine}" in r.stdout
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 1, "denied": 0}
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    r = vudo_cli("keys", "import", str(garbage))
    assert r.code == 3 and "not a vudo private key" in r.error_line
    assert vudo_cli("keys", "import", str(tmp_path / "missing.key")).code == 5
    r = vudo_cli("keys", "show", "-o", "x")
    assert r.code == 2


def test_trust_and_untrust(vudo_cli: Vudo, env: dict[str, str], tmp_path: Path) -> None:
    with other_home(env, tmp_path / "friend"):
        assert vudo_cli("keys", "generate").code == 0
        friend = vudo_cli("keys", "show", "--json").json()["public_key"]
    assert vudo_cli("keys", "trust", friend).code == 0
    roles = {r["key"]: r["role"] for r in vudo_cli("keys", "list", "--json").json()}
    assert roles[friend] == "trusted"
    r = vudo_cli("keys", "untrust", friend, "--json")
    assert r.code == 0 and r.json() == {"untrusted": friend}
    assert friend not in {r["key"] for r in vudo_cli("keys", "list", "--json").json()}
    r = vudo_cli("keys", "untrust", friend)
    assert r.code == 5 and "not a trusted signer" in r.error_line
    r = vudo_cli("keys", "untrust", "zz")
    assert r.code == 2 and "(hint: " in r.error_line


def _signed_by(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path, who: str, package: Path
) -> Path:
    """``package`` signed by the key of another user ``who`` (a copy)."""
    with other_home(env, tmp_path / who) as home:
        if not (home / "keys" / "private.key").exists():
            assert vudo_cli("keys", "generate").code == 0
        copy = tmp_path / f"{who}-{package.name}"
        copy.write_bytes(package.read_bytes())
        r = vudo_cli("sign", str(copy), "--key", str(home / "keys" / "private.key"))
        assert r.code == 0, r.stderr
    return copy


def test_trust_signer_does_what_its_hints_say(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path
) -> None:
    assert vudo_cli("new", "demo").code == 0
    assert vudo_cli("pack", cwd=tmp_path / "demo").code == 0
    package = tmp_path / "demo" / "dist" / "demo-0.1.0.spirit"
    # signed by someone other than the manifest's author (you)
    by_friend = _signed_by(vudo_cli, env, tmp_path, "friend", package)
    r = vudo_cli("summon", str(by_friend), "--yes")
    assert r.code == 4 and "--trust-signer" in r.error_line
    r = vudo_cli("summon", str(by_friend), "--yes", "--trust-signer", "--json")
    assert r.code == 0, r.stderr
    friend = r.json()["installed"]["signer"]
    assert any(f"pinned demo to signer {friend}" in n for n in r.json()["notes"])
    # now pinned to friend: a third key is refused, and --trust-signer re-pins
    by_stranger = _signed_by(vudo_cli, env, tmp_path, "stranger", package)
    assert vudo_cli("uninstall", "demo").code == 0  # the pin outlives the install
    r = vudo_cli("summon", str(by_stranger), "--yes")
    assert r.code == 4 and "--trust-signer" in r.error_line
    r = vudo_cli("summon", str(by_stranger), "--yes", "--trust-signer", "--json")
    assert r.code == 0, r.stderr
    assert any("re-pinned demo" in n for n in r.json()["notes"])
    # install from a registry takes the same flag
    registry = tmp_path / "registry"
    registry.mkdir()
    r = vudo_cli("publish", str(by_friend), "--registry", str(registry))
    assert r.code == 0, r.stderr
    with other_home(env, tmp_path / "newcomer"):
        r = vudo_cli("install", "demo", "--registry", str(registry), "--yes")
        assert r.code == 4 and "--trust-signer" in r.error_line
        r = vudo_cli(
            "install", "demo", "--registry", str(registry), "--yes", "--trust-signer", "--json"
        )
        assert r.code == 0, r.stderr
        assert json.dumps(r.json()).count("pinned demo") == 1


def _replace_key_by_hand(vudo_cli: Vudo, env: dict[str, str], home: Path, tmp_path: Path) -> None:
    """What a user does without `vudo keys rotate`: another key's files over their own."""
    import shutil

    with other_home(env, tmp_path / "elsewhere") as elsewhere:
        assert vudo_cli("keys", "generate").code == 0
    for name in ("private.key", "public.key"):
        shutil.copy2(elsewhere / "keys" / name, home / "keys" / name)


def test_repair_resigns_grants_made_by_a_backed_up_earlier_key(
    vudo_cli: Vudo, env: dict[str, str], home: Path, tmp_path: Path, installed: Path
) -> None:
    import shutil

    backup = home / "keys" / "backups" / "by-hand"
    backup.mkdir(parents=True)
    for name in ("private.key", "public.key"):
        shutil.copy2(home / "keys" / name, backup / name)
    _replace_key_by_hand(vudo_cli, env, home, tmp_path)
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 0, "denied": 1}
    r = vudo_cli("repair", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["resigned_grants"] == {"demo": 2} and r.json()["foreign_grants"] == []
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 1, "denied": 0}
    assert "the store is healthy" in vudo_cli("repair").stdout  # nothing left to do


def test_repair_reports_grants_made_by_a_key_that_is_not_yours(
    vudo_cli: Vudo, env: dict[str, str], home: Path, tmp_path: Path, installed: Path
) -> None:
    _replace_key_by_hand(vudo_cli, env, home, tmp_path)
    r = vudo_cli("repair")
    assert r.code == 0, r.stderr
    assert "the sensor_time grant of demo was made by key" in r.stdout
    assert "not yours, so runs ignore it" in r.stdout
    assert "`vudo grant demo sensor_time`" in r.stdout
    foreign = vudo_cli("repair", "--json").json()["foreign_grants"]
    assert sorted(g["regrant"] for g in foreign) == [
        "vudo grant demo actuator_log",
        "vudo grant demo sensor_time",
    ]
    # the grants are left as they were (repair never launders consent), and doing what
    # it says gives the consent with the user's key
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 0, "denied": 1}
    assert vudo_cli(*foreign[0]["regrant"].split()[1:]).code == 0
    assert vudo_cli(*foreign[1]["regrant"].split()[1:]).code == 0
    assert _calls(vudo_cli, installed)["sensor_time"] == {"allowed": 1, "denied": 0}
    assert "the store is healthy" in vudo_cli("repair").stdout
