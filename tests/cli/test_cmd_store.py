"""summon (consent), list, search, info, uninstall, grant, revoke and keys, via subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]


@pytest.fixture
def package(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    return root / "dist" / "demo-0.1.0.spirit"


def test_summon_without_consent_on_non_tty_refuses(vudo_cli: Vudo, package: Path) -> None:
    r = vudo_cli("summon", str(package))
    assert r.code == 2
    assert "not a terminal" in r.error_line and "--yes" in r.error_line
    assert "sensor_time" in r.stderr  # it showed what was asked for
    assert vudo_cli("list", "--json").json() == []


def test_summon_yes_json_shape(vudo_cli: Vudo, package: Path) -> None:
    r = vudo_cli("summon", str(package), "--yes", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert set(data) == {"installed", "already_installed", "granted", "denied", "notes"}
    assert data["installed"]["name"] == "demo" and data["installed"]["version"] == "0.1.0"
    assert {g["capability"] for g in data["granted"]} == {"sensor_time", "actuator_log"}
    r = vudo_cli("summon", str(package), "--yes", "--json")
    assert r.json()["already_installed"] is True


def test_summon_grant_and_deny_choose(vudo_cli: Vudo, package: Path) -> None:
    r = vudo_cli("summon", str(package), "--grant", "actuator_log", "--json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["granted"] == [{"capability": "actuator_log", "scope": "global"}]
    assert data["denied"] == ["sensor_time"]
    run = vudo_cli("run", "demo", "--json", cwd=package.parent).json()
    assert run["kind"] == "installed" and run["results"] == [25]
    calls = run["receipt"]["host_calls"]
    assert calls["actuator_log"] == {"allowed": 1, "denied": 0}
    assert calls["sensor_time"] == {"allowed": 0, "denied": 1}

    r = vudo_cli("summon", str(package), "--yes", "--deny", "actuator_log", "--json")
    assert r.json()["denied"] == ["actuator_log"]


def test_summon_grant_not_asked_for_is_usage_error(vudo_cli: Vudo, package: Path) -> None:
    r = vudo_cli("summon", str(package), "--grant", "storage_write")
    assert r.code == 2 and 'does not ask for "storage_write"' in r.error_line


def test_summon_tampered_package_exit_4(vudo_cli: Vudo, package: Path) -> None:
    raw = bytearray(package.read_bytes())
    raw[raw.index(b"Hello from")] = ord("J")
    package.write_bytes(bytes(raw))
    r = vudo_cli("summon", str(package), "--yes")
    assert r.code == 4 and "hint:" in r.error_line


def test_summon_project_directory_packs_and_signs(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "direct").code == 0
    r = vudo_cli("summon", "direct", "--yes", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["installed"]["name"] == "direct"
    assert (tmp_path / "direct" / "dist" / "direct-0.1.0.spirit").is_file()


def test_summon_missing_source_exit_5(vudo_cli: Vudo) -> None:
    r = vudo_cli("summon", "nothing-here.spirit", "--yes")
    assert r.code == 5


def test_list_search_info(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("list").stdout.startswith("no Spirits installed")
    assert vudo_cli("summon", str(package), "--yes").code == 0
    r = vudo_cli("list")
    assert r.code == 0 and "demo" in r.stdout and "actuator_log" in r.stdout
    listed = vudo_cli("list", "--json").json()
    assert [s["name"] for s in listed] == ["demo"]
    assert set(listed[0]) >= {
        "name",
        "version",
        "digest",
        "signer",
        "author",
        "capabilities",
        "description",
    }

    assert "demo" in vudo_cli("search", "dem").stdout
    assert vudo_cli("search", "zzz").stdout.startswith("no installed Spirit matches")
    assert vudo_cli("search", "--capability", "actuator_log", "--json").json()[0]["name"] == "demo"
    assert vudo_cli("search", "--capability", "storage_read", "--json").json() == []
    r = vudo_cli("search", "--capability", "telepathy")
    assert r.code == 2 and "unknown capability" in r.error_line

    r = vudo_cli("info", "demo")
    assert r.code == 0 and "granted     actuator_log (global)" in r.stdout
    data = vudo_cli("info", "demo@0.1.0", "--json").json()
    assert data["versions"] == ["0.1.0"]
    assert {g["capability"] for g in data["grants"]} == {"sensor_time", "actuator_log"}


def test_unknown_installed_name_exit_5(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("summon", str(package), "--yes").code == 0
    for argv in (
        ["info", "dmeo"],
        ["run", "dmeo"],
        ["uninstall", "dmeo"],
        ["grant", "dmeo", "actuator_log"],
        ["revoke", "dmeo", "actuator_log"],
    ):
        r = vudo_cli(*argv)
        assert r.code == 5, argv
        assert "dmeo" in r.error_line and "hint:" in r.error_line
    r = vudo_cli("info", "demo@9.9.9")
    assert r.code == 5


def test_uninstall(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("summon", str(package), "--yes").code == 0
    r = vudo_cli("uninstall", "demo", "--json")
    assert r.code == 0 and [s["name"] for s in r.json()["removed"]] == ["demo"]
    assert vudo_cli("run", "demo", cwd=package.parent).code == 5


def test_grant_and_revoke(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("summon", str(package), "--grant", "actuator_log").code == 0
    r = vudo_cli("grant", "demo", "sensor_time", "--expires", "30d", "--json")
    assert r.code == 0, r.stderr
    grant = r.json()
    assert grant["capability"] == "sensor_time" and grant["expires_at"] > grant["issued_at"]
    calls = vudo_cli("run", "demo", "--json", cwd=package.parent).json()["receipt"]["host_calls"]
    assert calls["sensor_time"] == {"allowed": 1, "denied": 0}

    r = vudo_cli("revoke", "demo", "sensor_time")
    assert r.code == 0 and "revoked sensor_time" in r.stdout
    calls = vudo_cli("run", "demo", "--json", cwd=package.parent).json()["receipt"]["host_calls"]
    assert calls["sensor_time"] == {"allowed": 0, "denied": 1}
    r = vudo_cli("revoke", "demo", "sensor_time")
    assert r.code == 5

    r = vudo_cli("grant", "demo", "storage_write")
    assert r.code == 3 and "does not ask for" in r.error_line
    r = vudo_cli("grant", "demo", "sensor_time", "--expires", "someday")
    assert r.code == 2 and "invalid expiry" in r.error_line
    r = vudo_cli("grant", "demo", "sensor_time", "--expires", "2001-01-01")
    assert r.code == 2 and "in the past" in r.error_line


@pytest.mark.parametrize("scope", ["domain:a..b:80", "domain:*.*:1", "nonsense"])
def test_a_bad_scope_is_a_usage_error_everywhere(vudo_cli: Vudo, package: Path, scope: str) -> None:
    """`grant --scope`, `grant CAP=SCOPE` and `summon --grant CAP=SCOPE` agree with
    `run --grant CAP=SCOPE`: exit 2 (a malformed word typed on the command line, as
    everywhere), one line, nothing stored or installed."""
    r = vudo_cli("summon", str(package), "--grant", f"actuator_log={scope}")
    assert r.code == 2 and "(hint: " in r.error_line, r.stderr
    assert vudo_cli("list", "--json").json() == []
    assert vudo_cli("grant", "nosuch", "sensor_time", "--scope", scope).code == 2
    assert vudo_cli("summon", str(package), "--grant", "actuator_log").code == 0
    for argv in (["sensor_time", "--scope", scope], [f"sensor_time={scope}"]):
        r = vudo_cli("grant", "demo", *argv)
        assert r.code == 2 and "scope" in r.error_line and "(hint: " in r.error_line, argv
    grants = vudo_cli("info", "demo", "--json").json()["grants"]
    assert [g["capability"] for g in grants] == ["actuator_log"]


def test_grant_takes_the_scope_written_after_the_capability(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("summon", str(package), "--grant", "actuator_log").code == 0
    r = vudo_cli("grant", "demo", "sensor_time=domain:127.0.0.*:*", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["scope"] == "domain:127.0.0.*:*"  # it was silently granted "global"
    r = vudo_cli("grant", "demo", "sensor_time=sandboxed", "--scope", "global")
    assert r.code == 2 and "--scope" in r.error_line
    r = vudo_cli("grant", "demo", "sensor_time=sandboxed", "--scope", "sandboxed", "--json")
    assert r.code == 0 and r.json()["scope"] == "sandboxed"


@pytest.mark.slow
def test_expired_grant_is_denied(vudo_cli: Vudo, package: Path) -> None:
    assert vudo_cli("summon", str(package), "--grant", "actuator_log").code == 0
    r = vudo_cli("grant", "demo", "sensor_time", "--expires", "1s")
    assert r.code == 0
    import time

    time.sleep(2.1)
    calls = vudo_cli("run", "demo", "--json", cwd=package.parent).json()["receipt"]["host_calls"]
    assert calls["sensor_time"] == {"allowed": 0, "denied": 1}


def test_keys(vudo_cli: Vudo, home: Path) -> None:
    r = vudo_cli("keys", "list")
    assert r.code == 0 and "no keys" in r.stdout
    r = vudo_cli("keys", "show")
    assert r.code == 5 and "vudo keys generate" in r.error_line
    r = vudo_cli("keys", "generate", "--json")
    assert r.code == 0
    first = r.json()["public_key"]
    assert (home / "keys" / "private.key").stat().st_mode & 0o777 == 0o600
    r = vudo_cli("keys", "generate")
    assert r.code == 3 and "--force" in r.error_line
    r = vudo_cli("keys", "generate", "--force", "--json")
    second = r.json()["public_key"]
    assert second != first
    r = vudo_cli("keys", "show")
    assert r.stdout.splitlines()[0] == second
    assert vudo_cli("keys", "show", "--json").json()["public_key"] == second
    other = "b" * 63 + "c"
    r = vudo_cli("keys", "trust", other)
    assert r.code in (0, 3)  # not every 64-hex string is a valid curve point
    listed = vudo_cli("keys", "list", "--json").json()
    assert listed[0] == {"key": second, "role": "yours", "fingerprint": listed[0]["fingerprint"]}
    r = vudo_cli("keys", "trust")
    assert r.code == 2
    r = vudo_cli("keys", "frobnicate")
    assert r.code == 2
    assert vudo_cli("keys", "rotate").code == 0  # (was not a command)


def test_consent_cancelled_at_the_terminal_exits_1(env: dict[str, str], package: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        os.write(master, b"n\n")
        proc = subprocess.run(
            [sys.executable, "-m", "vudo", "summon", str(package)],
            env=env,
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 1, proc.stderr
    assert "grant these?" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cancelled: demo was not")


def test_consent_choose_each_at_the_terminal(env: dict[str, str], package: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    try:
        os.write(master, b"c\ny\nn\n")  # choose: sensor_time yes, actuator_log no
        proc = subprocess.run(
            [sys.executable, "-m", "vudo", "summon", str(package), "--json"],
            env=env,
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0, proc.stderr
    import json

    data = json.loads(proc.stdout)
    assert data["granted"] == [{"capability": "sensor_time", "scope": "global"}]
    assert data["denied"] == ["actuator_log"]


def test_repair_healthy_and_damaged_store(vudo_cli: Vudo, package: Path, home: Path) -> None:
    assert vudo_cli("summon", str(package), "--yes").code == 0
    r = vudo_cli("repair", "--json")
    assert r.code == 0 and r.json()["rebuilt"] is False and r.json()["packages"] == 1
    assert "healthy" in vudo_cli("repair").stdout
    (home / "store" / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (home / "store" / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    r = vudo_cli("list")
    assert r.code != 0 and "vudo repair" in r.error_line
    r = vudo_cli("repair", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["rebuilt"] is True and r.json()["packages"] == 1
    assert [s["name"] for s in vudo_cli("list", "--json").json()] == ["demo"]


LOOP_UNTIL_DENIED = """
(module
  (import "vudo" "host_time_now" (func $now (result i64)))
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "looping")
  (data (i32.const 16) "denied")
  (func (export "main") (result i64) (local $n i64)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 7)))
    (block $done (loop $again
      (br_if $done (i64.eq (call $now) (i64.const -1)))
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br $again)))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 6)))
    (local.get $n)))
"""


def test_revoke_reaches_a_running_spirit_within_a_second(
    vudo_cli: Vudo, tmp_path: Path, env: dict[str, str]
) -> None:
    import subprocess
    import sys
    import threading
    import time

    assert vudo_cli("new", "looper").code == 0
    root = tmp_path / "looper"
    (root / "src" / "main.wat").write_text(LOOP_UNTIL_DENIED)
    for step in (["pack"], ["sign"]):
        assert vudo_cli(*step, cwd=root).code == 0
    assert vudo_cli("summon", str(root / "dist" / "looper-0.1.0.spirit"), "--yes").code == 0

    lines: list[tuple[float, str]] = []
    looping = threading.Event()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vudo",
            "run",
            "looper",
            "--timeout",
            "60",
            "--fuel",
            str(10**15),
            "--json",
        ],
        cwd=root / "dist",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr

        def read() -> None:
            for line in stderr:
                lines.append((time.monotonic(), line))
                if "looping" in line:
                    looping.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert looping.wait(60), lines
            time.sleep(0.3)  # well inside the loop
            r = vudo_cli("revoke", "looper", "sensor_time")
            revoked = time.monotonic()
            assert r.code == 0, r.stderr
            out = proc.stdout.read()
            proc.wait(30)
        finally:
            proc.kill()
            reader.join(5)
    [denied_at] = [at for at, line in lines if "denied" in line]
    assert denied_at - revoked < 1.0
    assert proc.returncode == 0
    import json

    result = json.loads(out)
    assert result["results"][0] > 0  # it made allowed calls before the revocation
    assert result["receipt"]["host_calls"]["sensor_time"]["denied"] == 1


def test_a_home_in_the_old_layout_is_moved_and_keeps_working(
    vudo_cli: Vudo, package: Path, home: Path
) -> None:
    """An older vudo kept the store in registry/ and the built-in registry in published/:
    the first command moves them, and what was installed and granted is still there."""
    assert vudo_cli("summon", str(package), "--yes").code == 0
    assert vudo_cli("publish", str(package)).code == 0
    (home / "store").rename(home / "registry")
    (home / "registries" / "local").rename(home / "published")
    (home / "registries").rmdir()
    r = vudo_cli("info", "demo", "--json")
    assert r.code == 0, r.stderr
    assert sorted(g["capability"] for g in r.json()["grants"]) == ["actuator_log", "sensor_time"]
    assert not (home / "registry").exists() and (home / "store").is_dir()
    r = vudo_cli("search", "--available", "--json")
    assert r.code == 0, r.stderr
    assert [e["name"] for e in r.json()] == ["demo"]
    assert not (home / "published").exists() and (home / "registries" / "local").is_dir()
