"""The local store on a real SQLite file: install, query, search, grants, upgrade, damage,
concurrency and kill -9."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vudo.capabilities import Capability
from vudo.errors import InvalidInputError, NotFoundError, VerificationError, VudoError
from vudo.pkg import store as store_module
from vudo.pkg.archive import pack
from vudo.pkg.keys import KeyPair, generate_keypair
from vudo.pkg.signing import sign_package
from vudo.pkg.store import LocalStore, StoreDamagedError

MODULE = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 4


def keypair(byte: int) -> KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


def make_package(
    tmp: Path,
    name: str = "hello-spirit",
    version: str = "0.1.0",
    *,
    signer: KeyPair | None = None,
    description: str = "A simple Spirit",
    capabilities: tuple[str, ...] = ("sensor_time",),
    module: bytes = MODULE,
    author: str | None = None,
) -> Path:
    signer = signer or keypair(1)
    root = tmp / "src" / f"{name}-{version}-{signer.public_hex[:6]}-{len(module)}"
    root.mkdir(parents=True, exist_ok=True)
    caps = ", ".join(f'"{c}"' for c in capabilities)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{author or signer.public_hex}"\n'
        f'description = "{description}"\ncapabilities = [{caps}]\n'
    )
    (root / "module.wasm").write_bytes(module)
    out = pack(root / "spirit.toml", root / "module.wasm", root / f"{name}-{version}.spirit")
    sign_package(out, signer)
    return out


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    with LocalStore(tmp_path / "registry", clock=lambda: 1000.0) as s:
        yield s  # type: ignore[misc]


def test_install_get_list_uninstall(tmp_path: Path, store: LocalStore) -> None:
    pkg = make_package(tmp_path)
    result = store.install(pkg)
    assert not result.already_installed and result.author_matches
    spirit = result.spirit
    assert (spirit.name, str(spirit.version)) == ("hello-spirit", "0.1.0")
    assert spirit.path == store.objects_dir / f"{spirit.digest}.spirit"
    assert spirit.path.read_bytes() == pkg.read_bytes()
    assert spirit.signer == keypair(1).public_hex
    assert spirit.capabilities == (Capability.SENSOR_TIME,)
    assert store.get("hello-spirit") == spirit
    assert [s.spec for s in store.list()] == ["hello-spirit@0.1.0"]
    assert store.check().ok
    removed = store.uninstall("hello-spirit")
    assert [s.spec for s in removed] == ["hello-spirit@0.1.0"]
    assert store.list() == []
    assert not spirit.path.exists()
    assert store.check().ok


def test_install_is_idempotent_and_refuses_different_bytes(
    tmp_path: Path, store: LocalStore
) -> None:
    pkg = make_package(tmp_path)
    first = store.install(pkg)
    again = store.install(pkg)
    assert again.already_installed and again.spirit == first.spirit
    other = make_package(tmp_path / "other", module=MODULE + b"x")
    with pytest.raises(InvalidInputError, match="different contents"):
        store.install(other)
    assert store.count() == 1


def test_install_refuses_tampered_package_and_leaves_nothing(
    tmp_path: Path, store: LocalStore
) -> None:
    pkg = make_package(tmp_path)
    data = bytearray(pkg.read_bytes())
    data[200] ^= 1
    pkg.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        store.install(pkg)
    assert store.count() == 0
    assert list(store.objects_dir.iterdir()) == []
    assert list(store.tmp_dir.iterdir()) == []


def test_get_with_requirement_and_did_you_mean(tmp_path: Path, store: LocalStore) -> None:
    for v in ("0.1.0", "0.2.0", "1.0.0", "1.1.0-beta.1"):
        store.install(make_package(tmp_path, version=v))
    assert str(store.get("hello-spirit").version) == "1.0.0"
    assert str(store.get("hello-spirit", "^0.1").version) == "0.1.0"
    assert str(store.get("hello-spirit", "<1").version) == "0.2.0"
    assert str(store.get("hello-spirit", "^1.1.0-beta").version) == "1.1.0-beta.1"
    with pytest.raises(NotFoundError, match="matches") as info:
        store.get("hello-spirit", "^2")
    assert "0.1.0" in (info.value.hint or "")
    with pytest.raises(NotFoundError) as info:
        store.get("helo-spirit")
    assert info.value.hint == 'did you mean "hello-spirit"?'
    store.uninstall("hello-spirit", "0.2.0")
    assert [str(s.version) for s in store.versions("hello-spirit")] == [
        "0.1.0",
        "1.0.0",
        "1.1.0-beta.1",
    ]
    with pytest.raises(NotFoundError):
        store.uninstall("hello-spirit", "0.2.0")


def test_search_ranking_and_filters(tmp_path: Path, store: LocalStore) -> None:
    a, b = keypair(1), keypair(2)
    store.install(make_package(tmp_path, "say-hello", "1.0.0", signer=a))
    store.install(
        make_package(tmp_path, "hello-world", "2.0.0", signer=b, capabilities=("actuator_log",))
    )
    store.install(make_package(tmp_path, "hello", "0.3.0", signer=a))
    store.install(make_package(tmp_path, "hello", "0.4.0", signer=a))
    store.install(
        make_package(tmp_path, "greeter", "1.0.0", signer=a, description="Says Hello to everyone")
    )
    store.install(
        make_package(tmp_path, "unrelated", "1.0.0", signer=a, description="nothing to see")
    )
    hits = store.search("hello")
    assert [s.spec for s in hits] == [
        "hello@0.4.0",
        "hello-world@2.0.0",
        "say-hello@1.0.0",
        "greeter@1.0.0",
    ]
    assert [s.name for s in store.search("HELLO")] == [s.name for s in hits]
    assert [s.name for s in store.search("hello", capability="actuator_log")] == ["hello-world"]
    assert [s.name for s in store.search("hello", author=b.public_hex[:12])] == ["hello-world"]
    assert [s.spec for s in store.search("hello", requirement="<0.4")] == ["hello@0.3.0"]
    assert [s.name for s in store.search("he")][:2] == ["hello", "hello-world"]
    assert store.search("zzzzz") == []
    assert len(store.search("")) == 5
    assert [s.name for s in store.search("", limit=2)] == ["greeter", "hello"]
    with pytest.raises(InvalidInputError):
        store.search("x", capability="sensor_tim")
    assert [s.name for s in store.search('he"llo')] == []
    assert [s.name for s in store.search("50%_")] == []


def test_grants_are_stored_per_name(tmp_path: Path, store: LocalStore) -> None:
    store.install(make_package(tmp_path))
    assert store.grants_for("hello-spirit") == []
    grants = [{"capability": "sensor_time", "scope": "global", "signature": "ab" * 32}]
    store.save_grants("hello-spirit", grants)
    assert store.grants_for("hello-spirit") == grants
    assert store.info("hello-spirit").grants == tuple(grants)
    with pytest.raises(NotFoundError):
        store.save_grants("nope", grants)
    with pytest.raises(InvalidInputError):
        store.save_grants("hello-spirit", [{"bad": object()}])
    store.uninstall("hello-spirit")
    assert store.grants_for("hello-spirit") == []


def test_info_and_candidates(tmp_path: Path, store: LocalStore) -> None:
    store.install(make_package(tmp_path, version="1.0.0"))
    store.install(make_package(tmp_path, version="1.2.0"))
    info = store.info("hello-spirit")
    assert str(info.spirit.version) == "1.2.0"
    assert info.manifest.name == "hello-spirit"
    assert [str(v) for v in info.versions] == ["1.0.0", "1.2.0"]
    assert info.pinned_signer == keypair(1).public_hex
    assert str(store.info("hello-spirit", "1.0.0").spirit.version) == "1.0.0"
    assert str(store.info("hello-spirit", "~1.0").spirit.version) == "1.0.0"
    assert str(store.info("hello-spirit", "^1").spirit.version) == "1.2.0"
    with pytest.raises(NotFoundError):
        store.info("hello-spirit", "3.0.0")
    cands = sorted(store.candidates("hello-spirit"), key=lambda c: c.version)
    assert [str(c.version) for c in cands] == ["1.0.0", "1.2.0"]
    assert cands[0].digest == store.info("hello-spirit", "1.0.0").spirit.digest
    assert cands[0].signer == keypair(1).public_hex
    assert store.fetch("hello-spirit", "1.0.0").exists()


def test_upgrade_from_another_store_as_source(tmp_path: Path, store: LocalStore) -> None:
    store.install(make_package(tmp_path, version="1.0.0"))
    with LocalStore(tmp_path / "upstream") as upstream:
        for v, caps in (("1.1.0", ("sensor_time", "actuator_log")), ("2.0.0", ())):
            upstream.install(make_package(tmp_path, version=v, capabilities=caps))
        plan = store.plan_upgrade("hello-spirit", upstream, "^1")
        assert plan is not None and str(plan.version) == "1.1.0"
        assert plan.added_capabilities == (Capability.ACTUATOR_LOG,) and plan.widens
        result = store.upgrade("hello-spirit", upstream, "^1")
        assert result.upgraded and str(result.new.version) == "1.1.0"
        assert str(store.get("hello-spirit").version) == "1.1.0"
        again = store.upgrade("hello-spirit", upstream, "^1")
        assert not again.upgraded
        top = store.upgrade("hello-spirit", upstream)
        assert str(top.new.version) == "2.0.0"
        assert top.removed_capabilities == (Capability.ACTUATOR_LOG, Capability.SENSOR_TIME)


def test_deleted_index_is_detected_and_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path, version="1.0.0"))
        s.install(make_package(tmp_path, "other", "0.1.0", signer=keypair(2)))
        s.save_grants("other", [{"capability": "sensor_time"}])
    (root / "index.sqlite3").unlink()
    with pytest.raises(StoreDamagedError) as info:
        LocalStore(root)
    assert "repair" in (info.value.hint or "")
    store, count = LocalStore.rebuild_index(root)
    with store:
        assert count == 2
        assert [s.spec for s in store.list()] == ["hello-spirit@1.0.0", "other@0.1.0"]
        assert store.pinned_signer("other") == keypair(2).public_hex
        assert store.check().ok


def test_corrupt_index_is_detected_and_rebuilt_with_salvage(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path))
        s.save_grants("hello-spirit", [{"capability": "sensor_time"}])
        s.trust_key(keypair(5).public_hex, "colleague")
    (root / "index.sqlite3").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreDamagedError):
        LocalStore(root)
    store, count = LocalStore.rebuild_index(root)
    with store:
        assert count == 1
        assert store.get("hello-spirit").name == "hello-spirit"
    assert list(root.glob("index.sqlite3.damaged-*"))


def test_emptied_index_file_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path))
    (root / "index.sqlite3").write_bytes(b"")
    with pytest.raises(StoreDamagedError):
        LocalStore(root)


def test_rebuild_keeps_salvaged_grants_and_trust(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path))
        s.save_grants("hello-spirit", [{"capability": "sensor_time"}])
        s.trust_key(keypair(5).public_hex, "colleague")
        s.conn.execute("DROP TABLE spirits_fts")  # damage: search table gone
    with LocalStore(root) as s, pytest.raises(StoreDamagedError):
        s.search("hello")
    store, count = LocalStore.rebuild_index(root)
    with store:
        assert count == 1
        assert store.grants_for("hello-spirit") == [{"capability": "sensor_time"}]
        assert store.trusted_keys() == [keypair(5).public_hex]
        assert [s.name for s in store.search("hello")] == ["hello-spirit"]


def test_check_and_repair_orphans_and_missing_objects(tmp_path: Path, store: LocalStore) -> None:
    spirit = store.install(make_package(tmp_path)).spirit
    other = store.install(make_package(tmp_path, "other")).spirit
    orphan = store.objects_dir / ("f" * 64 + ".spirit")
    orphan.write_bytes(b"junk")
    stale = store.tmp_dir / "install-999999999-abc.partial"
    stale.write_bytes(b"half")
    other.path.unlink()
    report = store.check()
    assert not report.ok
    assert report.orphan_objects == (orphan,)
    assert report.stale_temp_files == (stale,)
    assert report.missing_objects == ("other@0.1.0",)
    store.repair()
    assert store.check().ok
    assert [s.spec for s in store.list()] == [spirit.spec]


def _install_worker(root: str, packages: list[str]) -> int:
    with LocalStore(Path(root)) as s:
        for p in packages:
            s.install(Path(p))
    return len(packages)


@pytest.mark.slow
def test_concurrent_installs_from_eight_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    shared = make_package(tmp_path, "shared", "1.0.0")
    jobs = []
    for w in range(8):
        pkgs = [str(make_package(tmp_path, f"spirit-{w}-{i}", "1.0.0")) for i in range(3)]
        jobs.append((str(root), [*pkgs, str(shared)]))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        results = pool.starmap(_install_worker, jobs)
    assert results == [4] * 8
    with LocalStore(root) as s:
        assert s.count() == 8 * 3 + 1
        assert s.check(deep=True).ok


KILL_SCRIPT = """
import sys
from pathlib import Path
from vudo.pkg.store import LocalStore
with LocalStore(Path(sys.argv[1])) as s:
    s.install(Path(sys.argv[2]))
print("done", flush=True)
"""


@pytest.mark.slow
def test_kill_9_during_install_leaves_store_consistent(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path, "small"))
    big = make_package(tmp_path, "big", "1.0.0", module=os.urandom(48 * 1024 * 1024))
    env = {**os.environ, "PYTHONPATH": str(Path(store_module.__file__).parents[2])}
    killed_at = []
    for delay in (0.0, 0.05, 0.15, 0.3, 0.6):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(root), str(big)],
            env=env,
            stdout=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while not list((root / "tmp").glob("install-*")) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        killed_at.append(proc.returncode)
        with LocalStore(root) as s:
            names = [x.name for x in s.list()]
            assert "small" in names
            report = s.check(deep=True)
            assert report.integrity == "ok"
            assert not report.missing_objects and not report.corrupt_objects
            s.repair()
            assert s.check().ok
            if "big" in names:
                s.uninstall("big")
    assert -signal.SIGKILL in killed_at
    with LocalStore(root) as s:
        assert s.install(big).spirit.name == "big"
        assert s.check(deep=True).ok


def test_schema_version_is_recorded_and_a_newer_one_refused(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        assert s.conn.execute("SELECT version FROM schema_version").fetchone()[0] == (
            store_module.SCHEMA_VERSION
        )
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        s.conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(VudoError, match="newer vudo"):
        LocalStore(root)


def test_migration_from_schema_1_builds_the_name_index(tmp_path: Path) -> None:
    """A v1 index (one FTS row per version) is migrated in place to v2 on open."""
    root = tmp_path / "registry"
    root.mkdir()
    conn = sqlite3.connect(root / "index.sqlite3")
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        for statement in store_module._split_sql(store_module._MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO packages (name, version, major, minor, patch, prerelease, digest, "
            "signer, author, description, capabilities, manifest, size, installed_at) VALUES "
            "('old', '1.0.0', 1, 0, 0, '', 'd', 's', 'a', 'an old weather spirit', '', '{}', "
            "1, 0), ('old', '2.0.0', 2, 0, 0, '', 'e', 's', 'a', 'the new weather spirit', "
            "'', '{}', 1, 0)"
        )
        conn.commit()
    finally:
        conn.close()
    with LocalStore(root) as s:
        assert s.conn.execute("SELECT version FROM schema_version").fetchone()[0] == (
            store_module.SCHEMA_VERSION
        )
        assert s.conn.execute("SELECT description FROM spirits").fetchall() == [
            ("the new weather spirit",)
        ]
        assert [x.spec for x in s.search("weather")] == ["old@2.0.0"]
        assert s.origin("old") is None  # v3: rows from before know no registry


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = LocalStore(tmp_path / "registry")
    s.close()
    s.close()
    with pytest.raises(VudoError, match="closed"):
        s.list()


def test_search_uses_the_highest_versions_description(tmp_path: Path, store: LocalStore) -> None:
    store.install(make_package(tmp_path, "forecast", "1.0.0", description="rain gauge"))
    store.install(make_package(tmp_path, "forecast", "2.0.0", description="sun dial"))
    assert [s.spec for s in store.search("sun")] == ["forecast@2.0.0"]
    assert store.search("rain") == []
    store.uninstall("forecast", "2.0.0")
    assert [s.spec for s in store.search("rain")] == ["forecast@1.0.0"]
    store.uninstall("forecast")
    assert store.search("rain") == []
    assert store.conn.execute("SELECT count(*) FROM spirits").fetchone()[0] == 0


def test_repair_rebuilds_an_index_damaged_after_open(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path))
        s.save_grants("hello-spirit", [{"capability": "sensor_time"}])
        s.conn.execute("DROP TABLE spirits_fts")
        report = s.check()
        assert not report.ok and "spirits_fts" in report.integrity
        s.repair()
        assert s.check(deep=True).ok
        assert [x.name for x in s.search("hello")] == ["hello-spirit"]
        assert s.grants_for("hello-spirit") == [{"capability": "sensor_time"}]


def test_check_detects_a_desynchronised_search_index(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    with LocalStore(root) as s:
        s.install(make_package(tmp_path))
        # corrupt the external-content FTS index behind the triggers' back
        s.conn.execute(
            "INSERT INTO spirits_fts (spirits_fts, rowid, name, description) "
            "VALUES ('delete', 1, 'hello-spirit', 'wrong text')"
        )
        report = s.check()
        assert not report.ok and "search index" in report.integrity
        s.repair()
        assert s.check().ok


def test_install_remembers_the_registry_a_spirit_came_from(tmp_path: Path) -> None:
    from test_registry import make_package

    with LocalStore(tmp_path / "registry") as s:
        s.install(make_package(tmp_path, "origin-a", "1.0.0"))
        assert s.origin("origin-a") is None
        s.install(make_package(tmp_path, "origin-a", "1.1.0"), registry="oci://h:1/ns")
        assert s.origin("origin-a") == "oci://h:1/ns"
        assert s.origin("not-installed") is None
