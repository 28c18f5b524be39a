"""The seed's end-to-end flow, verbatim, in a temp home, through a real shell."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from oci_helpers import REGISTRY_PASSWORD, REGISTRY_USER, OciServer

SEED_MANIFEST = """name = "hello-spirit"
version = { major = 0, minor = 1, patch = 0 }
author = "%s"
description = "A simple hello world Spirit"
capabilities = ["sensor_time", "actuator_log"]
[pricing]
base_cost = 100
per_fuel_cost = 1
""" % ("a" * 64)


@pytest.fixture
def shell_env(env: dict[str, str], tmp_path: Path, home: Path) -> dict[str, str]:
    """HOME is tmp_path and VUDO_HOME is ~/.vudo, with a `vudo` command on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "vudo"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m vudo "$@"\n')
    script.chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    assert Path(env["VUDO_HOME"]) == Path(env["HOME"]) / ".vudo" == home
    return env


def sh(
    command: str, *, cwd: Path, env: dict[str, str], tty_input: str | None = None
) -> subprocess.CompletedProcess[str]:
    if tty_input is None:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    else:
        # A user at a terminal: stdin is a real pty with the answer typed ahead.
        master, slave = pty.openpty()
        try:
            os.write(master, tty_input.encode())
            proc = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                stdin=slave,
                timeout=120,
                check=False,
            )
        finally:
            os.close(slave)
            os.close(master)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc


def test_seed_flow(
    shell_env: dict[str, str], tmp_path: Path, home: Path, oci_server: OciServer, oci_ns: str
) -> None:
    env = shell_env
    sh("vudo new hello-spirit", cwd=tmp_path, env=env)
    project = tmp_path / "hello-spirit"
    (project / "spirit.toml").write_text(SEED_MANIFEST)

    r = sh("vudo build", cwd=project, env=env)
    assert "built" in r.stdout

    r = sh("vudo run --fuel 1000000", cwd=project, env=env)
    assert "result: 25" in r.stdout
    assert "of 1,000,000" in r.stdout and "price" in r.stdout
    assert "Hello from a vudo Spirit!" in r.stderr

    r = sh("vudo pack", cwd=project, env=env)
    assert (project / "dist" / "hello-spirit-0.1.0.spirit").is_file()

    public = (home / "keys" / "public.key").read_text().strip()
    r = sh("vudo sign --key ~/.vudo/keys/private.key", cwd=project, env=env)
    assert f"signer  {public}" in r.stdout
    assert "is not the signing key" in r.stdout and "a" * 64 in r.stdout

    r = sh("vudo check", cwd=project, env=env)
    assert r.stdout.strip().splitlines()[-1].startswith("ok: hello-spirit")
    assert "not by the manifest's author" in r.stdout

    r = sh("vudo summon ./dist/hello-spirit-0.1.0.spirit", cwd=project, env=env, tty_input="y\n")
    assert "asks for" in r.stderr and "sensor_time" in r.stderr
    assert "installed hello-spirit 0.1.0" in r.stdout
    assert "granted: sensor_time, actuator_log" in r.stdout

    r = sh("vudo search hello", cwd=project, env=env)
    assert "hello-spirit" in r.stdout and "A simple hello world Spirit" in r.stdout

    r = sh("vudo list", cwd=project, env=env)
    assert "hello-spirit" in r.stdout and "0.1.0" in r.stdout
    assert public[:16] in r.stdout

    # and the installed Spirit runs with the grants made at install
    r = sh("vudo run hello-spirit --json", cwd=tmp_path, env=env)
    assert '"results": [\n    25\n  ]' in r.stdout and '"denied": 1' not in r.stdout

    # shared beyond this machine: publish to the team's OCI registry (the configured
    # default, logged in) ...
    url = oci_server.url(oci_ns)
    sh(f"vudo registry add team {url} --default", cwd=project, env=env)
    sh(
        f"printf '%s\\n' '{REGISTRY_PASSWORD}' | vudo login team --username {REGISTRY_USER} "
        "--password-stdin",
        cwd=project,
        env=env,
    )
    r = sh("vudo publish", cwd=project, env=env)
    assert f"published hello-spirit 0.1.0 to {url}" in r.stdout

    # ... and a second user, on a fresh home, installs it by name and runs it
    home2 = tmp_path / "user2" / ".vudo"
    home2.mkdir(parents=True)
    env2 = {**env, "HOME": str(home2.parent), "VUDO_HOME": str(home2)}
    sh(f"vudo registry add team {url} --default", cwd=home2.parent, env=env2)
    sh(
        f"printf '%s\\n' '{REGISTRY_PASSWORD}' | vudo login team --username {REGISTRY_USER} "
        "--password-stdin",
        cwd=home2.parent,
        env=env2,
    )
    # (the seed manifest's author is not the signer: the second user trusts the
    # publisher's key, as the install error would tell them to)
    sh(f"vudo keys trust {public}", cwd=home2.parent, env=env2)
    r = sh("vudo install hello-spirit --yes", cwd=home2.parent, env=env2)
    assert "installed hello-spirit 0.1.0" in r.stdout
    r = sh("vudo run hello-spirit --json", cwd=home2.parent, env=env2)
    assert '"results": [\n    25\n  ]' in r.stdout
