"""The key-value store on a real SQLite file: namespaces, quotas, errors, threads, reopen."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.storage import KeyValueStore, StorageQuota
from vudo.errors import VudoError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyValueStore]:
    with KeyValueStore(tmp_path / "storage.sqlite") as kv:
        yield kv


def code_of(excinfo: pytest.ExceptionInfo[HostCallError]) -> ErrorCode:
    return excinfo.value.code


def test_write_read_overwrite_delete(store: KeyValueStore) -> None:
    assert store.read("a", b"k") is None
    store.write("a", b"k", b"v1")
    assert store.read("a", b"k") == b"v1"
    store.write("a", b"k", b"value two")
    assert store.read("a", b"k") == b"value two"
    assert store.delete("a", b"k") is True
    assert store.read("a", b"k") is None
    assert store.delete("a", b"k") is False


def test_empty_value_and_binary_keys(store: KeyValueStore) -> None:
    store.write("a", b"\x00\xff", b"")
    assert store.read("a", b"\x00\xff") == b""
    assert store.keys("a") == [b"\x00\xff"]


def test_namespaces_are_isolated(store: KeyValueStore) -> None:
    store.write("alice", b"k", b"from alice")
    store.write("bob", b"k", b"from bob")
    assert store.read("alice", b"k") == b"from alice"
    assert store.read("bob", b"k") == b"from bob"
    assert store.delete("bob", b"k")
    assert store.read("alice", b"k") == b"from alice"
    assert store.read("carol", b"k") is None
    assert store.keys("bob") == []
    assert store.namespaces() == ["alice"]


def test_keys_and_namespaces_for_inspection(store: KeyValueStore) -> None:
    for key in (b"b", b"a", b"c"):
        store.write("s1", key, b"x")
    store.write("s0", b"z", b"x")
    assert store.keys("s1") == [b"a", b"b", b"c"]
    assert store.namespaces() == ["s0", "s1"]


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "storage.sqlite"
    with KeyValueStore(path) as kv:
        kv.write("spirit", b"counter", b"41")
        kv.write("spirit", b"gone", b"x")
        kv.delete("spirit", b"gone")
    with KeyValueStore(path) as kv:
        assert kv.read("spirit", b"counter") == b"41"
        assert kv.read("spirit", b"gone") is None
        assert kv.used_bytes("spirit") == len(b"counter") + 2
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


@pytest.mark.parametrize("namespace", ["", "x" * 257])
def test_bad_namespace_is_invalid_parameter(store: KeyValueStore, namespace: str) -> None:
    with pytest.raises(HostCallError) as info:
        store.write(namespace, b"k", b"v")
    assert code_of(info) is ErrorCode.INVALID_PARAMETER
    with pytest.raises(HostCallError) as info:
        store.read(namespace, b"k")
    assert code_of(info) is ErrorCode.INVALID_PARAMETER


def test_non_text_namespace_is_invalid_parameter(store: KeyValueStore) -> None:
    with pytest.raises(HostCallError) as info:
        store.read(b"ns", b"k")  # type: ignore[arg-type]
    assert code_of(info) is ErrorCode.INVALID_PARAMETER


@pytest.mark.parametrize("key", [b"", "text", None])
def test_bad_key_is_invalid_parameter(store: KeyValueStore, key: object) -> None:
    for call in (
        lambda: store.read("a", key),  # type: ignore[arg-type]
        lambda: store.write("a", key, b"v"),  # type: ignore[arg-type]
        lambda: store.delete("a", key),  # type: ignore[arg-type]
    ):
        with pytest.raises(HostCallError) as info:
            call()
        assert code_of(info) is ErrorCode.INVALID_PARAMETER


def test_bad_value_is_invalid_parameter(store: KeyValueStore) -> None:
    with pytest.raises(HostCallError) as info:
        store.write("a", b"k", "text")  # type: ignore[arg-type]
    assert code_of(info) is ErrorCode.INVALID_PARAMETER


def test_key_and_value_quotas(tmp_path: Path) -> None:
    quota = StorageQuota(max_key_bytes=4, max_value_bytes=8, max_namespace_bytes=1000)
    with KeyValueStore(tmp_path / "s.sqlite", quota=quota) as kv:
        kv.write("a", b"kkkk", b"v" * 8)
        with pytest.raises(HostCallError) as info:
            kv.write("a", b"kkkkk", b"v")
        assert code_of(info) is ErrorCode.QUOTA_EXCEEDED
        with pytest.raises(HostCallError) as info:
            kv.read("a", b"kkkkk")
        assert code_of(info) is ErrorCode.QUOTA_EXCEEDED
        with pytest.raises(HostCallError) as info:
            kv.write("a", b"k", b"v" * 9)
        assert code_of(info) is ErrorCode.QUOTA_EXCEEDED
        assert kv.read("a", b"k") is None


def test_namespace_total_quota_counts_keys_and_values(tmp_path: Path) -> None:
    quota = StorageQuota(max_key_bytes=10, max_value_bytes=100, max_namespace_bytes=20)
    with KeyValueStore(tmp_path / "s.sqlite", quota=quota) as kv:
        kv.write("a", b"k1", b"x" * 8)  # 10 bytes
        kv.write("a", b"k2", b"x" * 8)  # 20 bytes: exactly at the limit
        assert kv.used_bytes("a") == 20
        with pytest.raises(HostCallError) as info:
            kv.write("a", b"k3", b"")
        assert code_of(info) is ErrorCode.QUOTA_EXCEEDED
        assert "limit is 20" in info.value.detail
        with pytest.raises(HostCallError):
            kv.write("a", b"k1", b"x" * 9)  # growing an existing value
        assert kv.read("a", b"k1") == b"x" * 8
        kv.write("a", b"k1", b"x")  # shrinking is fine
        assert kv.used_bytes("a") == 13
        kv.write("a", b"k3", b"y" * 5)  # 20 again
        # Another namespace has its own budget.
        kv.write("b", b"k1", b"x" * 18)
        assert kv.delete("a", b"k2")
        assert kv.used_bytes("a") == 10
        kv.write("a", b"k4", b"z" * 8)
        assert kv.used_bytes("a") == 20


def test_closed_store_raises_storage_error(tmp_path: Path) -> None:
    kv = KeyValueStore(tmp_path / "s.sqlite")
    kv.close()
    kv.close()
    with pytest.raises(HostCallError) as info:
        kv.read("a", b"k")
    assert code_of(info) is ErrorCode.STORAGE_ERROR
    with pytest.raises(HostCallError) as info:
        kv.namespaces()
    assert code_of(info) is ErrorCode.STORAGE_ERROR


def test_sqlite_failure_becomes_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with KeyValueStore(path, busy_timeout=0.05) as kv:
        kv.write("a", b"k", b"v")
        # Another process-like connection holds the write lock: the write times out.
        other = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(HostCallError) as info:
                kv.write("a", b"k", b"w")
            assert code_of(info) is ErrorCode.STORAGE_ERROR
            assert "locked" in info.value.detail
            other.execute("ROLLBACK")
        finally:
            other.close()
        kv.write("a", b"k", b"w")
        assert kv.read("a", b"k") == b"w"


def test_corrupt_file_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(VudoError) as info:
        KeyValueStore(path)
    assert info.value.hint


def test_missing_directory_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(VudoError):
        KeyValueStore(tmp_path / "no" / "such" / "dir" / "s.sqlite")


def test_concurrent_writers_and_readers(store: KeyValueStore) -> None:
    errors: list[BaseException] = []

    def writer(ns: str) -> None:
        try:
            for i in range(100):
                store.write(ns, f"k{i}".encode(), f"{ns}-{i}".encode())
                assert store.read(ns, f"k{i}".encode()) == f"{ns}-{i}".encode()
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(100):
                store.namespaces()
                store.keys("w0")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.namespaces() == ["w0", "w1", "w2", "w3"]
    for i in range(4):
        assert len(store.keys(f"w{i}")) == 100
        expected = sum(len(f"k{j}") + len(f"w{i}-{j}") for j in range(100))
        assert store.used_bytes(f"w{i}") == expected


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with KeyValueStore(path) as a, KeyValueStore(path) as b:
        a.write("n", b"k", b"1")
        assert b.read("n", b"k") == b"1"
        b.write("n", b"k2", b"22")
        assert a.used_bytes("n") == len(b"k") + 1 + len(b"k2") + 2


def test_move_namespace_moves_keys_and_usage_keeping_newer_values(tmp_path: Path) -> None:
    with KeyValueStore(tmp_path / "s.sqlite") as store:
        store.write("wallet", b"a", b"1")
        store.write("wallet", b"bb", b"22")
        store.write("id", b"bb", b"new")
        store.write("other", b"a", b"x")
        assert store.move_namespace("wallet", "id") == 1
        assert store.keys("wallet") == [] and store.used_bytes("wallet") == 0
        assert store.read("id", b"a") == b"1" and store.read("id", b"bb") == b"new"
        assert store.used_bytes("id") == 2 + 5
        assert store.read("other", b"a") == b"x"
        assert store.move_namespace("wallet", "id") == 0
        assert store.move_namespace("id", "id") == 0
