"""publish, install (with dependencies and consent) and upgrade, via subprocess."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]

RANDOM_IMPORT = '(import "vudo" "host_random_bytes" (func (param i32 i32) (result i32)))\n  '


def _release(vudo_cli: Vudo, root: Path, *extra: str) -> Path:
    for cmd in (["pack"], ["sign"], ["publish", *extra]):
        r = vudo_cli(*cmd, cwd=root)
        assert r.code == 0, (cmd, r.stderr)
    return root


@pytest.fixture
def published(vudo_cli: Vudo, tmp_path: Path) -> Path:
    assert vudo_cli("new", "lib").code == 0
    return _release(vudo_cli, tmp_path / "lib")


def test_publish_json_and_install_from_default_registry(
    vudo_cli: Vudo, tmp_path: Path, home: Path
) -> None:
    assert vudo_cli("new", "lib").code == 0
    root = tmp_path / "lib"
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    r = vudo_cli("publish", "--json", cwd=root)
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["name"] == "lib" and data["version"] == "0.1.0"
    assert Path(data["registry"]) == home / "registries" / "local"
    assert data["already_published"] is False
    assert vudo_cli("publish", "--json", cwd=root).json()["already_published"] is True

    r = vudo_cli("install", "lib@^0.1", "--yes", "--json")
    assert r.code == 0, r.stderr
    [installed] = r.json()
    assert installed["installed"]["name"] == "lib"
    assert {g["capability"] for g in installed["granted"]} == {"sensor_time", "actuator_log"}
    r = vudo_cli("run", "lib", "-q", cwd=home)
    assert r.code == 0 and r.stdout.strip() == "25"


def test_install_needs_consent_on_non_tty(vudo_cli: Vudo, published: Path) -> None:
    r = vudo_cli("install", "lib")
    assert r.code == 2 and "--yes" in r.error_line
    assert vudo_cli("list", "--json").json() == []


def test_install_unknown_name_exit_5(vudo_cli: Vudo, published: Path) -> None:
    r = vudo_cli("install", "lbi", "--yes")
    assert r.code == 5 and "lbi" in r.error_line


def test_install_with_dependencies(vudo_cli: Vudo, tmp_path: Path, published: Path) -> None:
    assert vudo_cli("new", "app").code == 0
    app = tmp_path / "app"
    manifest = app / "spirit.toml"
    manifest.write_text(manifest.read_text() + '\n[dependencies]\nlib = "^0.1"\n')
    assert vudo_cli("check", cwd=app).code == 0
    r = vudo_cli("build", "--json", cwd=app)
    assert r.code == 0, r.stderr
    lock = Path(r.json()["lockfile"])
    assert lock == app / "spirit.lock"
    text = lock.read_text()
    assert 'name = "lib"' in text and 'version = "0.1.0"' in text
    assert "digest = " in text and "signer = " in text
    assert vudo_cli("build", "--locked", cwd=app).code == 0
    lock.write_text(text.replace('digest = "', 'digest = "0'))  # a different package
    r = vudo_cli("build", "--locked", cwd=app)
    assert r.code == 6 and "out of date" in r.error_line and "--locked" in r.error_line
    lock.unlink()
    r = vudo_cli("build", "--locked", cwd=app)
    assert r.code == 5 and "spirit.lock" in r.error_line
    assert vudo_cli("build", cwd=app).code == 0 and lock.read_text() == text
    _release(vudo_cli, app)
    r = vudo_cli("install", "app", "--yes", "--json")
    assert r.code == 0, r.stderr
    assert [i["installed"]["name"] for i in r.json()] == ["lib", "app"]


def test_dependency_conflict_exit_6(vudo_cli: Vudo, tmp_path: Path, published: Path) -> None:
    assert vudo_cli("new", "mid").code == 0
    mid = tmp_path / "mid"
    (mid / "spirit.toml").write_text(
        (mid / "spirit.toml").read_text() + '\n[dependencies]\nlib = ">=0.2"\n'
    )
    _release(vudo_cli, mid)
    assert vudo_cli("new", "app").code == 0
    app = tmp_path / "app"
    (app / "spirit.toml").write_text(
        (app / "spirit.toml").read_text() + '\n[dependencies]\nlib = "^0.1"\nmid = "*"\n'
    )
    r = vudo_cli("check", "--json", cwd=app)
    assert r.code == 3
    [problem] = [p for p in r.json()["problems"] if p["area"] == "dependencies"]
    assert "lib" in problem["message"] and problem["severity"] == "error"
    r = vudo_cli("build", cwd=app)
    assert r.code == 6 and "lib" in r.error_line
    assert not (app / "spirit.lock").exists()
    _release(vudo_cli, app)  # pack builds the module; dependencies are not its job
    r = vudo_cli("install", "app", "--yes")
    assert r.code == 6
    assert (
        "app 0.1.0 needs lib ^0.1" in r.error_line and "mid 0.1.0 needs lib >=0.2" in r.error_line
    )
    assert vudo_cli("list", "--json").json() == []


def test_missing_dependency_exit_5(vudo_cli: Vudo, tmp_path: Path, published: Path) -> None:
    assert vudo_cli("new", "app").code == 0
    app = tmp_path / "app"
    (app / "spirit.toml").write_text(
        (app / "spirit.toml").read_text() + '\n[dependencies]\nghost = "^1"\n'
    )
    _release(vudo_cli, app)
    r = vudo_cli("install", "app", "--yes")
    assert r.code == 5 and "ghost" in r.error_line


def test_registry_path_missing_exit_5(vudo_cli: Vudo, tmp_path: Path, published: Path) -> None:
    r = vudo_cli("publish", "--registry", str(tmp_path / "missing"), cwd=published)
    assert r.code == 5 and "does not exist" in r.error_line and "hint:" in r.error_line
    r = vudo_cli("install", "lib", "--yes", "--registry", str(tmp_path / "missing"))
    assert r.code == 5
    r = vudo_cli("publish", "--registry", "ftp://example.invalid/x", cwd=published)
    assert r.code == 3


def test_publish_to_a_named_directory_and_install_from_it(
    vudo_cli: Vudo, tmp_path: Path, published: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    r = vudo_cli("publish", "--registry", str(shared), cwd=published)
    assert r.code == 0, r.stderr
    assert (shared / "index" / "lib.json").is_file()
    r = vudo_cli("install", "lib", "--registry", str(shared), "--grant", "actuator_log", "--json")
    assert r.code == 0, r.stderr
    assert r.json()[0]["denied"] == ["sensor_time"]


def test_publish_unsigned_exit_4(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "raw").code == 0
    root = tmp_path / "raw"
    assert vudo_cli("pack", cwd=root).code == 0
    r = vudo_cli("publish", cwd=root)
    assert r.code == 4 and "not signed" in r.error_line


def test_upgrade_asks_again_when_capabilities_widen(vudo_cli: Vudo, published: Path) -> None:
    assert vudo_cli("install", "lib", "--yes").code == 0
    r = vudo_cli("upgrade", "--json")
    assert r.code == 0 and r.json()[0]["upgraded"] is False

    manifest = published / "spirit.toml"
    manifest.write_text(
        manifest.read_text()
        .replace("patch = 0", "patch = 1")
        .replace('"actuator_log"]', '"actuator_log", "sensor_random"]')
    )
    src = published / "src" / "main.wat"
    src.write_text(src.read_text().replace("(memory (export", RANDOM_IMPORT + "(memory (export"))
    assert vudo_cli("build", cwd=published).code == 0
    _release(vudo_cli, published)

    r = vudo_cli("upgrade", "lib")
    assert r.code == 2 and "not a terminal" in r.error_line
    assert "+ sensor_random" in r.stderr
    r = vudo_cli("upgrade", "lib", "--yes", "--json")
    assert r.code == 0, r.stderr
    [outcome] = r.json()
    assert outcome["upgraded"] is True and outcome["new"] == "0.1.1"
    assert outcome["added"] == ["sensor_random"]
    assert {g["capability"] for g in outcome["granted"]} == {
        "sensor_time",
        "actuator_log",
        "sensor_random",
    }


def test_upgrade_unknown_name_exit_5(vudo_cli: Vudo) -> None:
    r = vudo_cli("upgrade", "ghost")
    assert r.code == 5


def test_search_available_in_registries(vudo_cli: Vudo, published: Path) -> None:
    r = vudo_cli("search", "li", "--available", "--json")
    assert r.code == 0, r.stderr
    [entry] = r.json()
    assert entry["name"] == "lib" and entry["installed_version"] is None
    assert entry["capabilities"] == ["sensor_time", "actuator_log"]
    assert vudo_cli("search", "li").stdout.startswith("no installed Spirit")
    assert vudo_cli("install", "lib", "--yes").code == 0
    r = vudo_cli("search", "--available")
    assert "lib" in r.stdout and "0.1.0" in r.stdout
    assert vudo_cli("search", "zzz", "--available", "--json").json() == []
    r = vudo_cli("search", "--available", "--capability", "storage_read", "--json")
    assert r.json() == []


def test_install_from_an_http_registry(vudo_cli: Vudo, tmp_path: Path, published: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    assert vudo_cli("publish", "--registry", str(served), cwd=published).code == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            r = vudo_cli("search", "--available", "--registry", url, "--json")
            assert r.code == 0, r.stderr
            assert [e["name"] for e in r.json()] == ["lib"]
            r = vudo_cli("install", "lib", "--registry", url, "--yes", "--json")
            assert r.code == 0, r.stderr
            assert r.json()[0]["installed"]["name"] == "lib"
            r = vudo_cli("publish", "--registry", url, cwd=published)
            assert r.code == 2 and "read-only" in r.error_line
        finally:
            server.shutdown()
            thread.join()


def test_publish_by_another_signer_needs_allow_new_signer(
    vudo_cli: Vudo, tmp_path: Path, published: Path
) -> None:
    from vudo.pkg.keys import ensure_keypair

    other = tmp_path / "other"
    other.mkdir()
    ensure_keypair(other)
    manifest = published / "spirit.toml"
    manifest.write_text(manifest.read_text().replace("patch = 0", "patch = 1"))
    assert vudo_cli("pack", cwd=published).code == 0
    key = str(other / "keys" / "private.key")
    assert vudo_cli("sign", "--key", key, cwd=published).code == 0
    r = vudo_cli("publish", cwd=published)
    assert r.code == 4 and "--allow-new-signer" in r.error_line
    r = vudo_cli("publish", "--allow-new-signer", "--json", cwd=published)
    assert r.code == 0, r.stderr
    assert r.json()["version"] == "0.1.1"


def _bump(vudo_cli: Vudo, root: Path, patch: int) -> None:
    manifest = root / "spirit.toml"
    manifest.write_text(manifest.read_text().replace("patch = 0", f"patch = {patch}"))
    _release(vudo_cli, root)


def test_upgrade_prune_removes_superseded_versions(
    vudo_cli: Vudo, published: Path, tmp_path: Path
) -> None:
    assert vudo_cli("install", "lib", "--yes").code == 0
    _bump(vudo_cli, published, 1)
    r = vudo_cli("upgrade", "lib", "--json")  # without --prune both versions stay
    assert r.code == 0 and r.json()[0]["pruned"] == []
    assert [s["version"] for s in vudo_cli("list", "--json").json()] == ["0.1.0", "0.1.1"]
    # an app that needs exactly the old one keeps it from being pruned
    assert vudo_cli("new", "app").code == 0
    app = tmp_path / "app"
    (app / "spirit.toml").write_text(
        (app / "spirit.toml").read_text() + '\n[dependencies]\nlib = "=0.1.0"\n'
    )
    _release(vudo_cli, app)
    assert vudo_cli("install", "app", "--yes").code == 0
    r = vudo_cli("upgrade", "lib", "--prune")
    assert r.code == 0, r.stderr
    assert "kept lib 0.1.0: app 0.1.0 needs lib =0.1.0" in r.stderr
    assert vudo_cli("uninstall", "app").code == 0
    r = vudo_cli("upgrade", "--prune")
    assert r.code == 0 and "pruned lib 0.1.0 (superseded)" in r.stdout
    assert [(s["name"], s["version"]) for s in vudo_cli("list", "--json").json()] == [
        ("lib", "0.1.1")
    ]


def test_uninstall_warns_about_dependents(vudo_cli: Vudo, published: Path, tmp_path: Path) -> None:
    assert vudo_cli("new", "app").code == 0
    app = tmp_path / "app"
    (app / "spirit.toml").write_text(
        (app / "spirit.toml").read_text() + '\n[dependencies]\nlib = "^0.1"\n'
    )
    _release(vudo_cli, app)
    assert vudo_cli("install", "app", "--yes").code == 0
    r = vudo_cli("uninstall", "lib", "--json")
    assert r.code == 0
    assert r.json()["broken_dependents"] == ["app 0.1.0 needs lib ^0.1"]
    assert "warning: app 0.1.0 needs lib ^0.1; it will not run until" in r.stderr
    r = vudo_cli("uninstall", "app")  # nothing depends on app
    assert r.code == 0 and "warning" not in r.stderr
