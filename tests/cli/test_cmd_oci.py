"""OCI registries from the command line, against a real CNCF Distribution server:
registry add/list/remove, login/logout, publish, install from a second home, upgrade
from the remembered registry, yank, search and info --available, and the bad inputs."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oci_helpers import REGISTRY_PASSWORD, REGISTRY_USER, OciServer

Vudo = Callable[..., Any]


def _setup(cli: Vudo, server: OciServer, ns: str) -> None:
    r = cli("registry", "add", "team", server.url(ns), "--default")
    assert r.code == 0, r.stderr
    r = cli(
        "login",
        "team",
        "--username",
        REGISTRY_USER,
        "--password-stdin",
        input=REGISTRY_PASSWORD + "\n",
    )
    assert r.code == 0, r.stderr
    assert REGISTRY_PASSWORD not in r.stdout + r.stderr


def _release(cli: Vudo, root: Path, *extra: str) -> Any:
    for cmd in (["pack"], ["sign"]):
        r = cli(*cmd, cwd=root)
        assert r.code == 0, (cmd, r.stderr)
    return cli("publish", *extra, cwd=root)


def _bump(root: Path, version: str, description: str | None = None) -> None:
    text = (root / "spirit.toml").read_text()
    text = re.sub(r"(?m)^version = .*$", f'version = "{version}"', text)
    if description is not None:
        text = re.sub(r"(?m)^description = .*$", f'description = "{description}"', text)
    (root / "spirit.toml").write_text(text)


def test_registry_config_commands_and_bad_input(vudo_cli: Vudo, home: Path) -> None:
    r = vudo_cli("registry", "list")
    assert r.code == 0 and "no registries configured" in r.stdout
    assert vudo_cli("registry", "add", "team", "oci://127.0.0.1:5000/ns", "--default").code == 0
    assert vudo_cli("registry", "add", "local", str(home / "dir")).code == 0
    rows = vudo_cli("registry", "list", "--json").json()
    assert [(x["name"], x["default"]) for x in rows] == [("team", True), ("local", False)]
    r = vudo_cli("registry", "add", "team", "oci://127.0.0.1:5000/other")
    assert r.code == 2 and "already configured" in r.error_line

    for url in (
        "oci://host:99999/ns",
        "oci://ho st/ns",
        "oci://u:pw@host/ns",
        "gopher://x/y",
        "oci://host/UPPER",
    ):
        r = vudo_cli("registry", "add", "bad", url)
        assert r.code == 3, (url, r.stderr)
        assert "hint:" in r.error_line and "pw@" not in r.error_line.split("hint")[1]
    r = vudo_cli("registry", "add", "Bad Name", "oci://h/ns")
    assert r.code == 2 and "invalid registry name" in r.error_line

    r = vudo_cli("install", "x", "--registry", "nosuch", "--yes")
    assert r.code == 5 and "no registry named 'nosuch'" in r.error_line
    assert "team" in r.error_line  # the hint lists the configured ones
    r = vudo_cli("registry", "remove", "nosuch")
    assert r.code == 5
    assert vudo_cli("registry", "remove", "team").code == 0
    assert [x["name"] for x in vudo_cli("registry", "list", "--json").json()] == ["local"]


def test_login_wrong_password_then_right_then_logout(
    vudo_cli: Vudo, home: Path, oci_server: OciServer, oci_ns: str
) -> None:
    assert vudo_cli("registry", "add", "team", oci_server.url(oci_ns)).code == 0
    wrong = "Wr0ng-pa55word-ZZZ"
    r = vudo_cli(
        "login", "team", "--username", REGISTRY_USER, "--password-stdin", input=wrong + "\n"
    )
    assert r.code == 1, r.stderr
    assert "authentication failed" in r.error_line and "hint:" in r.error_line
    assert wrong not in r.stdout + r.stderr
    assert not (home / "credentials.toml").exists()

    r = vudo_cli("login", "team", "--username", REGISTRY_USER, "--password-stdin")
    assert r.code == 2  # empty stdin
    r = vudo_cli("login", "team", "--password-stdin", input="x\n")
    assert r.code == 2 and "--username" in r.error_line

    r = vudo_cli(
        "login",
        "team",
        "--username",
        REGISTRY_USER,
        "--password-stdin",
        input=REGISTRY_PASSWORD + "\n",
    )
    assert r.code == 0 and f"logged in to {oci_server.host}" in r.stdout
    creds = home / "credentials.toml"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert REGISTRY_PASSWORD in creds.read_text()
    assert REGISTRY_PASSWORD not in (home / "config.toml").read_text()
    assert REGISTRY_PASSWORD not in r.stdout + r.stderr

    r = vudo_cli("logout", "team")
    assert r.code == 0 and "logged out" in r.stdout
    assert REGISTRY_PASSWORD not in creds.read_text()
    assert "no stored credentials" in vudo_cli("logout", "team").stdout


def test_publish_install_upgrade_yank_search_info(
    vudo_cli: Vudo,
    vudo_second: Vudo,
    tmp_path: Path,
    home: Path,
    oci_server: OciServer,
    oci_ns: str,
) -> None:
    _setup(vudo_cli, oci_server, oci_ns)
    assert vudo_cli("new", "lib").code == 0
    root = tmp_path / "lib"

    r = _release(vudo_cli, root, "--dry-run")
    assert r.code == 0 and "would publish lib 0.1.0" in r.stdout, r.stderr
    r = vudo_cli("publish", "--json", cwd=root)
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["registry"] == oci_server.url(oci_ns) and data["already_published"] is False
    assert vudo_cli("publish", "--json", cwd=root).json()["already_published"] is True

    # a second user, on a fresh home, configures the same default and installs by name
    _setup(vudo_second, oci_server, oci_ns)
    r = vudo_second("search", "--available", "--json")
    assert r.code == 0, r.stderr
    assert [(e["name"], e["version"]) for e in r.json()] == [("lib", "0.1.0")]
    r = vudo_second("info", "lib", "--available", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["versions"] == [{"version": "0.1.0", "yanked": False, "digest": data["digest"]}]
    r = vudo_second("install", "lib", "--yes", "--json")
    assert r.code == 0, r.stderr
    r = vudo_second("run", "lib", "-q")
    assert r.code == 0 and r.stdout.strip() == "25", r.stderr

    # the publisher releases 0.2.0; the second user upgrades from where lib came from
    # (after making a different registry the default: the remembered one is used)
    _bump(root, "0.2.0")
    assert _release(vudo_cli, root).code == 0
    assert vudo_second("registry", "add", "elsewhere", str(tmp_path / "empty-dir")).code == 0
    assert vudo_second("registry", "remove", "team").code == 0
    r = vudo_second("upgrade", "lib", "--json")
    assert r.code == 0, r.stderr
    assert r.json()[0]["new"] == "0.2.0"

    # yank 0.3.0: a fresh install picks 0.2.0; undo makes 0.3.0 the newest again
    _bump(root, "0.3.0")
    assert _release(vudo_cli, root).code == 0
    r = vudo_cli("yank", "lib@0.3.0")
    assert r.code == 0 and "yanked lib@0.3.0" in r.stdout, r.stderr
    r = vudo_cli("info", "lib", "--available", "--json")
    assert [(v["version"], v["yanked"]) for v in r.json()["versions"]] == [
        ("0.1.0", False),
        ("0.2.0", False),
        ("0.3.0", True),
    ]
    assert r.json()["version"] == "0.2.0"
    r = vudo_cli("install", "lib", "--yes", "--json")
    assert r.code == 0, r.stderr
    assert r.json()[0]["installed"]["version"] == "0.2.0"
    assert vudo_cli("yank", "lib@0.3.0", "--undo").code == 0
    r = vudo_cli("install", "lib", "--yes", "--json")
    assert r.json()[0]["installed"]["version"] == "0.3.0"

    r = vudo_cli("yank", "lib")
    assert r.code == 2 and "exact version" in r.error_line
    r = vudo_cli("yank", "lib@9.9.9")
    assert r.code == 5
    r = vudo_cli("yank", "lib@0.1.0", "--registry", str(tmp_path / "dir"))
    assert r.code in (2, 5)

    # versions are immutable
    _bump(root, "0.3.0", "a different 0.3.0")
    r = _release(vudo_cli, root)
    assert r.code == 3 and "immutable" in r.error_line


def test_publish_refuses_path_dependencies(
    vudo_cli: Vudo, tmp_path: Path, oci_server: OciServer, oci_ns: str
) -> None:
    _setup(vudo_cli, oci_server, oci_ns)
    assert vudo_cli("new", "dep").code == 0
    assert vudo_cli("new", "app").code == 0
    root = tmp_path / "app"
    with open(root / "spirit.toml", "a") as f:
        f.write('\n[dependencies]\ndep = { path = "../dep" }\n')
    r = _release(vudo_cli, root)
    assert r.code == 3 and "path dependencies" in r.error_line, r.stderr


def test_unreachable_registry_and_not_found(
    vudo_cli: Vudo, tmp_path: Path, oci_server: OciServer, oci_ns: str
) -> None:
    from oci_helpers import free_port

    dead = f"oci://127.0.0.1:{free_port()}/ns"
    r = vudo_cli("install", "lib", "--registry", dead, "--yes")
    assert r.code == 1 and "cannot connect" in r.error_line and "hint:" in r.error_line
    _setup(vudo_cli, oci_server, oci_ns)
    r = vudo_cli("install", "never-published", "--yes")
    assert r.code == 5, r.stderr
    r = vudo_cli("info", "never-published", "--available")
    assert r.code == 5, r.stderr
    assert vudo_cli("list", "--json").json() == []


def test_docker_config_credentials_are_used(
    vudo_cli: Vudo, home: Path, tmp_path: Path, oci_server: OciServer, oci_ns: str
) -> None:
    import base64

    docker = home.parent / ".docker"
    docker.mkdir()
    auth = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {oci_server.host: {"auth": auth}}}))
    assert vudo_cli("new", "dk").code == 0
    r = _release(vudo_cli, tmp_path / "dk", "--registry", oci_server.url(oci_ns))
    assert r.code == 0, r.stderr
    assert REGISTRY_PASSWORD not in r.stdout + r.stderr


def test_an_altered_blob_installs_nothing(
    vudo_cli: Vudo, vudo_second: Vudo, tmp_path: Path, oci_server: OciServer, oci_ns: str
) -> None:
    _setup(vudo_cli, oci_server, oci_ns)
    assert vudo_cli("new", "tampered").code == 0
    r = _release(vudo_cli, tmp_path / "tampered", "--json")
    assert r.code == 0, r.stderr
    digest = r.json()["digest"]
    [data] = oci_server.storage.rglob(f"blobs/sha256/{digest[:2]}/{digest}/data")
    original = data.read_bytes()
    data.write_bytes(original[:-50] + bytes(b ^ 0x55 for b in original[-50:]))
    try:
        _setup(vudo_second, oci_server, oci_ns)
        r = vudo_second("install", "tampered", "--yes")
        assert r.code == 4 and "does not match its digest" in r.error_line, r.stderr
        assert vudo_second("list", "--json").json() == []
    finally:
        data.write_bytes(original)


def test_transfer_progress_shows_only_after_a_second() -> None:
    from vudo.project.registries import transfer_progress

    now = [0.0]
    lines: list[str] = []
    report = transfer_progress(lines.append, "uploading", clock=lambda: now[0])
    report(0, 100)
    now[0] = 0.5
    report(40, 100)
    assert lines == []  # a short transfer shows nothing
    now[0] = 2.0
    report(50, 100)
    assert len(lines) == 1 and lines[0].startswith("uploading [") and " 50%" in lines[0]


def test_a_published_spirit_with_a_git_dependency_installs(
    vudo_cli: Vudo,
    vudo_second: Vudo,
    env: dict[str, str],
    tmp_path: Path,
    oci_server: OciServer,
    oci_ns: str,
) -> None:
    """Published Spirits may depend on git (not path) sources: a second user installs
    one by name, and its git dependency is fetched, packed and signed there and
    installed with it (install said "pass git=GitSource(cache_dir) to resolve()")."""
    import subprocess

    _setup(vudo_cli, oci_server, oci_ns)
    assert vudo_cli("new", "gitlib").code == 0
    git = ["git", "-c", "user.email=qa@example.com", "-c", "user.name=qa"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], cwd=tmp_path / "gitlib", env=env, check=True)
    assert vudo_cli("new", "gitapp").code == 0
    manifest = tmp_path / "gitapp" / "spirit.toml"
    manifest.write_text(
        manifest.read_text() + "\n[dependencies]\n"
        f'gitlib = {{ git = "file://{tmp_path / "gitlib"}", rev = "HEAD" }}\n'
    )
    r = _release(vudo_cli, tmp_path / "gitapp")
    assert r.code == 0, r.stderr

    _setup(vudo_second, oci_server, oci_ns)
    r = vudo_second("install", "gitapp", "--yes", "--json")
    assert r.code == 0, r.stderr
    assert sorted(e["installed"]["name"] for e in r.json()) == ["gitapp", "gitlib"]
    r = vudo_second("list", "--json")
    assert r.code == 0, r.stderr
    assert sorted(s["name"] for s in r.json()) == ["gitapp", "gitlib"]
    r = vudo_second("run", "gitapp", "-q")
    assert r.code == 0, r.stderr


def _hostile_registry(scenario: str) -> Any:
    """A loopback server answering every request the way ``scenario`` says: an HTTP
    status, or tags listing 1.0.0 whose manifest is another kind of artifact, has a
    layer of the wrong media type, or is larger than any manifest may be."""
    import hashlib
    import http.server
    import threading

    from vudo.pkg.oci import Descriptor, build_manifest

    layer = b"not a spirit"
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    manifests = {
        "not-vudo": build_manifest(
            artifact_type="application/vnd.example.image",
            layers=[Descriptor("application/octet-stream", digest, len(layer))],
            annotations={},
        ),
        "wrong-layer": build_manifest(
            artifact_type="application/vnd.vudo.spirit.v1",
            layers=[Descriptor("application/x-tar", digest, len(layer))],
            annotations={},
        ),
        "oversized": b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}',
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            if scenario.isdigit():
                self._reply(int(scenario), b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
            elif self.path.startswith("/v2/_catalog"):
                self._reply(200, json.dumps({"repositories": ["ns/victim"]}).encode(), {})
            elif self.path.startswith("/v2/ns/victim/tags/list"):
                self._reply(200, json.dumps({"name": "ns/victim", "tags": ["1.0.0"]}).encode(), {})
            elif self.path == "/v2/ns/victim/manifests/1.0.0":
                self._reply(
                    200,
                    manifests[scenario],
                    {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                )
            elif self.path == f"/v2/ns/victim/blobs/{digest}":
                self._reply(200, layer, {})
            else:
                self._reply(404, b"{}", {})

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("scenario", "code", "search_code", "words"),
    [
        ("401", 1, 1, "authentication failed"),
        ("403", 1, 1, "access denied"),
        ("404", 5, 5, "victim"),
        ("429", 1, 1, "rate limited"),
        ("500", 1, 1, "registry error"),
        ("not-vudo", 5, 0, "victim"),
        ("wrong-layer", 5, 0, "victim"),
        ("oversized", 4, 4, "limit"),
    ],
)
def test_a_hostile_registry_gets_one_line_errors_and_installs_nothing(
    vudo_cli: Vudo, home: Path, scenario: str, code: int, search_code: int, words: str
) -> None:
    """Each bad answer is one `error:` line with a hint and its exit code, through
    install, info --available and search --available; nothing is installed and the
    stored password never shows (a foreign artifact is no Spirit: not found, not listed)."""
    from vudo.pkg.config import save_credentials
    from vudo.pkg.oci import Credentials

    server = _hostile_registry(scenario)
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        save_credentials(home, host, Credentials("someone", "Hostile-Pa55-XYZ"))
        for args, expected in (
            (["install", "victim", "--yes"], code),
            (["info", "victim", "--available"], code),
            (["search", "--available", "--json"], search_code),
        ):
            r = vudo_cli(*args, "--registry", f"oci://{host}/ns")
            assert "Hostile-Pa55-XYZ" not in r.stdout + r.stderr
            assert r.code == expected, (args, r.stderr)
            if expected == 0:
                assert r.json() == []
                continue
            assert r.stderr.count("error:") == 1 and "hint:" in r.error_line, r.stderr
            if args[0] != "search":
                assert words in r.error_line, r.error_line
            elif scenario == "404":  # GHCR and Docker Hub have no catalog either
                assert "no _catalog API" in r.error_line, r.error_line
        assert vudo_cli("list", "--json").json() == []
    finally:
        server.shutdown()
        server.server_close()
