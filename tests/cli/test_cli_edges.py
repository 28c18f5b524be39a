"""The edges a new user trips on, each tried through the real command line."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vudo.capabilities import Capability

Vudo = Callable[..., Any]


@pytest.fixture
def project(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "demo").code == 0
    return tmp_path / "demo"


def test_capabilities_lists_what_each_allows(vudo_cli: Vudo) -> None:
    r = vudo_cli("capabilities")
    assert r.code == 0, r.stderr
    for cap in Capability:
        assert re.search(rf"^{cap.value} +{re.escape(cap.description)}$", r.stdout, re.M), cap
    assert "calls: host_network_connect; scopes: global, domain:<host>:<port>" in r.stdout
    data = vudo_cli("capabilities", "sensor_time", "--json").json()
    assert data == [
        {
            "name": "sensor_time",
            "allows": "read the current time",
            "host_calls": ["host_time_now"],
            "wasi_calls": ["clock_time_get", "clock_res_get"],
            "scopes": ["global", "sandboxed"],
            "manifest": True,
        }
    ]
    r = vudo_cli("capabilities", "telepathy")
    assert r.code == 2 and "`vudo capabilities` lists them" in r.error_line
    r = vudo_cli("grant", "demo", "sensor_tmie")  # the hint that pointed at `vudo doc`
    assert r.code == 2 and 'did you mean "sensor_time"' in r.error_line


def test_dol_passes_every_word_to_the_toolchain(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path
) -> None:
    r = vudo_cli("dol", "--version")
    assert r.code == 5
    assert "DOL is not available" in r.error_line and "cargo install dol" in r.error_line
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dol = bin_dir / "dol"
    dol.write_text('#!/bin/sh\necho "dol got: $*"\nexit 3\n')
    dol.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    r = vudo_cli("dol", "--version")
    assert r.stdout == "dol got: --version\n" and r.code == 3  # its own exit code
    r = vudo_cli("dol", "build", "-q", "--release")
    assert r.stdout == "dol got: build -q --release\n"
    r = vudo_cli("dol", "--help")  # vudo's help for the command, with an example
    assert r.code == 0 and "example:" in r.stdout


def test_test_aligns_its_columns_and_shows_each_time(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("test", cwd=project)
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()[:-1]
    assert len(lines) == 2
    pattern = re.compile(r"PASS  (test_\w+) +([\d,]+) fuel +(\d+\.\d ms|\d+\.\d\d s)")
    matches = [pattern.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert len({line.index(" fuel") for line in lines}) == 1  # the columns line up
    assert len({len(line) for line in lines}) == 1


def test_tui_outside_a_terminal_is_one_line(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("tui", cwd=project)  # stdin and stdout are pipes here
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.strip() == r.error_line
    assert "needs a terminal" in r.error_line and "vudo run" in r.error_line
    r = vudo_cli("tui", "nowhere", cwd=project)
    assert r.code == 5 and "no project directory at nowhere" in r.error_line


def test_info_and_verify_inspect_a_package_before_install(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("pack", cwd=project).code == 0
    assert vudo_cli("sign", cwd=project).code == 0
    package = project / "dist" / "demo-0.1.0.spirit"
    r = vudo_cli("info", str(package))
    assert r.code == 0, r.stderr
    assert r.stdout.startswith(f"demo 0.1.0  (package {package}: signature valid, not installed)\n")
    assert "capabilities  sensor_time, actuator_log" in r.stdout
    assert re.search(r"^  module\.wasm +\d+ B +sha256:[0-9a-f]{12}$", r.stdout, re.M), r.stdout
    data = vudo_cli("info", str(package), "--json").json()
    assert data["valid"] is True and data["installed_versions"] == []
    assert {f["path"] for f in data["files"]} >= {"module.wasm"}
    r = vudo_cli("verify", str(package))
    assert r.code == 0 and r.stdout.startswith(f"verified {package}: every file matches")
    assert (
        vudo_cli("verify", str(package), "--json").json()
        == vudo_cli("sign", "--verify", str(package), "--json").json()
    )  # the same check
    assert vudo_cli("summon", str(package), "--yes").code == 0
    assert vudo_cli("info", str(package), "--json").json()["installed_versions"] == ["0.1.0"]
    # a flipped byte: both refuse with exit 4 and show nothing of the manifest
    data_bytes = bytearray(package.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0xFF
    tampered = project / "tampered.spirit"
    tampered.write_bytes(bytes(data_bytes))
    for argv in (("info", str(tampered)), ("verify", str(tampered))):
        r = vudo_cli(*argv)
        assert r.code in (3, 4) and r.stdout == "", (argv, r.stderr)
