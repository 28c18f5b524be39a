"""The whole --json document of the commands whose JSON no other test pins down: revoke,
keys trust/export, registry add/list/remove, capabilities, login/yank/logout (against a
real CNCF Distribution server). Each is a result type's to_json() (tests/test_json_forms.py);
these check what a script reading it sees, key for key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from oci_helpers import REGISTRY_PASSWORD, REGISTRY_USER, OciServer

Vudo = Callable[..., Any]


def _ok(r: Any) -> Any:
    assert r.code == 0, r.stderr
    return r.json()


def test_revoke_json(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    for cmd in ("pack", "sign"):
        assert vudo_cli(cmd, cwd=root).code == 0
    assert vudo_cli("summon", str(root / "dist" / "demo-0.1.0.spirit"), "--yes").code == 0
    r = vudo_cli("revoke", "demo", "sensor_time", "--json")
    assert _ok(r) == {"name": "demo", "capability": "sensor_time", "revoked": 1}
    assert [g["capability"] for g in _ok(vudo_cli("info", "demo", "--json"))["grants"]] == [
        "actuator_log"
    ]


def test_keys_trust_and_export_json(vudo_cli: Vudo, tmp_path: Path) -> None:
    mine = _ok(vudo_cli("keys", "generate", "--json"))
    assert set(mine) == {"public_key", "fingerprint", "private_key"}
    friend = "ab" * 32
    assert _ok(vudo_cli("keys", "trust", friend, "--json")) == {"trusted": friend}

    target = tmp_path / "exported.key"
    r = vudo_cli("keys", "export", "-o", str(target), "--json")
    head = {"public_key": mine["public_key"], "fingerprint": mine["fingerprint"]}
    assert _ok(r) == {**head, "file": str(target)}
    seed = target.read_text().strip()
    assert seed not in r.stdout  # written to the file, not printed
    # without -o the seed itself is the point of the export (stderr warns)
    r = vudo_cli("keys", "export", "--json")
    assert _ok(r) == {**head, "private_key_hex": seed}
    assert "private key" in r.stderr


def test_registry_add_list_remove_json(vudo_cli: Vudo, tmp_path: Path) -> None:
    url = "oci://127.0.0.1:5000/team"
    r = vudo_cli("registry", "add", "team", url, "--default", "--json")
    assert _ok(r) == {"name": "team", "url": url, "default": True}
    local = (tmp_path / "local-registry").resolve()
    r = vudo_cli("registry", "add", "local", str(local), "--json")
    assert _ok(r) == {"name": "local", "url": str(local), "default": False}
    assert _ok(vudo_cli("registry", "list", "--json")) == [
        {"name": "team", "url": url, "default": True, "ca_file": None},
        {"name": "local", "url": str(local), "default": False, "ca_file": None},
    ]
    r = vudo_cli("registry", "remove", "team", "--json")
    assert _ok(r) == {"name": "team", "url": url, "removed": True}
    assert [x["name"] for x in _ok(vudo_cli("registry", "list", "--json"))] == ["local"]


def test_capabilities_json_lists_every_capability(vudo_cli: Vudo) -> None:
    from vudo.capabilities import Capability

    rows = _ok(vudo_cli("capabilities", "--json"))
    assert [row["name"] for row in rows] == [c.value for c in Capability]
    for row in rows:
        assert list(row) == ["name", "allows", "host_calls", "wasi_calls", "scopes", "manifest"]
        assert "global" in row["scopes"]
    by_name = {row["name"]: row for row in rows}
    assert "domain:<host>:<port>" in by_name["network_connect"]["scopes"]
    assert "host_time_now" in by_name["sensor_time"]["host_calls"]


def test_login_yank_logout_json(
    vudo_cli: Vudo, tmp_path: Path, oci_server: OciServer, oci_ns: str
) -> None:
    assert vudo_cli("registry", "add", "team", oci_server.url(oci_ns), "--default").code == 0
    r = vudo_cli(
        "login",
        "team",
        "--username",
        REGISTRY_USER,
        "--password-stdin",
        "--json",
        input=REGISTRY_PASSWORD + "\n",
    )
    assert _ok(r) == {"registry": oci_server.host, "logged_in": True, "username": REGISTRY_USER}
    assert REGISTRY_PASSWORD not in r.stdout + r.stderr

    assert vudo_cli("new", "lib").code == 0
    for cmd in ("pack", "sign", "publish"):
        assert vudo_cli(cmd, cwd=tmp_path / "lib").code == 0, cmd
    r = vudo_cli("yank", "lib@0.1.0", "--json")
    assert _ok(r) == {"spirit": "lib@0.1.0", "yanked": True, "changed": True}
    r = vudo_cli("yank", "lib@0.1.0", "--json")
    assert _ok(r) == {"spirit": "lib@0.1.0", "yanked": True, "changed": False}
    r = vudo_cli("yank", "lib@0.1.0", "--undo", "--json")
    assert _ok(r) == {"spirit": "lib@0.1.0", "yanked": False, "changed": True}

    r = vudo_cli("logout", "team", "--json")
    assert _ok(r) == {"registry": oci_server.host, "removed": True}
    r = vudo_cli("logout", "team", "--json")
    assert _ok(r) == {"registry": oci_server.host, "removed": False}
