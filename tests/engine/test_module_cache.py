"""The disk cache of compiled modules is bounded, evicting the least recently used."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vudo.engine import Engine
from vudo.engine.engine import ModuleCache


def _module(n: int) -> str:
    return f'(module (func (export "main") (result i32) (i32.const {n})))'


def _entry_size(tmp_path: Path) -> int:
    with Engine(cache_dir=tmp_path / "probe") as engine:
        engine.load(_module(0))
        return ModuleCache(tmp_path / "probe", "").usage().bytes


def test_least_recently_used_entry_is_evicted(tmp_path: Path) -> None:
    size = _entry_size(tmp_path)
    cache = tmp_path / "cache"
    with Engine(cache_dir=cache, cache_bound=size * 2 + size // 2) as engine:
        engine.load(_module(1))
        engine.load(_module(2))
    time.sleep(0.01)
    with Engine(cache_dir=cache, cache_bound=size * 2 + size // 2) as engine:
        assert engine.load(_module(1)).cache == "hit"  # 1 is now the most recently used
        time.sleep(0.01)
        assert engine.load(_module(3)).cache == "miss"  # over the bound: 2 goes
    with Engine(cache_dir=cache) as engine:
        assert [engine.load(_module(n)).cache for n in (1, 3, 2)] == ["hit", "hit", "miss"]
    usage = ModuleCache(cache, "", bound=123).usage()
    assert (usage.entries, usage.location, usage.bound) == (3, cache, 123)
    assert usage.bytes == 3 * size


def test_an_entry_bigger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    with Engine(cache_dir=tmp_path, cache_bound=100) as engine:
        assert engine.load(_module(1)).cache == "miss"
    assert ModuleCache(tmp_path, "").usage().entries == 0


def test_clear_removes_only_the_caches_own_files(tmp_path: Path) -> None:
    with Engine(cache_dir=tmp_path) as engine:
        engine.load(_module(1))
        engine.load(_module(2))
    (tmp_path / "git").mkdir()  # the git dependency cache lives beside the modules
    (tmp_path / "git" / "repo").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    stale = tmp_path / ("." + "a" * 64 + ".cwasm.123.abcd.partial")
    stale.write_bytes(b"torn")
    assert ModuleCache(tmp_path, "").clear() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["git", "notes.txt"]


def test_stale_temp_files_and_orphan_checksums_are_swept(tmp_path: Path) -> None:
    with Engine(cache_dir=tmp_path) as engine:
        engine.load(_module(1))
    old = time.time() - 7200
    torn = tmp_path / ("." + "b" * 64 + ".cwasm.123.ab12.partial")
    orphan = tmp_path / (("c" * 64) + ".sha256")
    fresh = tmp_path / ("." + "d" * 64 + ".cwasm.456.cd34.partial")  # a writer may still be busy
    for path in (torn, orphan, fresh):
        path.write_bytes(b"x")
    for path in (torn, orphan):
        os.utime(path, (old, old))
    assert ModuleCache(tmp_path, "").usage().entries == 1
    assert not torn.exists() and not orphan.exists() and fresh.exists()
