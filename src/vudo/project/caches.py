"""``vudo cache``: what ``<home>/cache`` holds, and emptying it.

Everything there can be made again: compiled modules (the engine's
:class:`~vudo.engine.engine.ModuleCache`, bounded, least recently used first), the signed
grants a repeat run re-uses (:mod:`vudo.project.grant_cache`), checkouts of git
dependencies and packages and indexes downloaded from registries. Clearing costs only the
time to compile, sign, clone or download again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.engine.engine import CacheUsage, ModuleCache
from vudo.home import cache_dir, download_cache_dir, git_cache_dir, grant_cache_dir

__all__ = ["CachePart", "CacheReport", "cache_report", "clear_caches"]


@dataclass(frozen=True, slots=True)
class CachePart:
    """One cache besides the compiled modules: its entries (files or folders directly
    inside it) and their bytes."""

    name: str
    location: Path
    entries: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": str(self.location),
            "entries": self.entries,
            "bytes": self.bytes,
        }


@dataclass(frozen=True, slots=True)
class CacheReport:
    """The compiled modules (the top-level fields, as before) and the other caches.

    After :func:`clear_caches` it describes what was there before, and ``removed`` how
    many compiled modules went."""

    modules: CacheUsage
    parts: tuple[CachePart, ...]
    removed: int | None = None

    @property
    def bytes(self) -> int:
        return self.modules.bytes + sum(p.bytes for p in self.parts)

    def to_json(self) -> dict[str, Any]:
        document = self.modules.to_json()
        if self.removed is not None:
            document = {"removed": self.removed, **document}
        return {**document, "parts": [p.to_json() for p in self.parts]}


#: The caches besides compiled modules, by the name ``vudo cache`` shows.
_PARTS = (
    ("signed grants", grant_cache_dir),
    ("git checkouts", git_cache_dir),
    ("registry downloads", download_cache_dir),
)


def _part(name: str, location: Path) -> CachePart:
    entries = total = 0
    try:
        top = list(os.scandir(location))
    except OSError:
        return CachePart(name, location, 0, 0)
    for entry in top:
        entries += 1
        if entry.is_dir(follow_symlinks=False):
            for folder, _, files in os.walk(entry.path):
                for file in files:
                    try:
                        total += os.lstat(os.path.join(folder, file)).st_size
                    except OSError:
                        continue
        else:
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return CachePart(name, location, entries, total)


def cache_report(home: Path) -> CacheReport:
    """What ``<home>/cache`` holds, part by part."""
    modules = ModuleCache(cache_dir(home), fingerprint="").usage()
    return CacheReport(modules, tuple(_part(name, where(home)) for name, where in _PARTS))


def clear_caches(home: Path) -> CacheReport:
    """Empty every cache; what they held before."""
    before = cache_report(home)
    removed = ModuleCache(cache_dir(home), fingerprint="").clear()
    for part in before.parts:
        # a file another vudo process is writing just now may stay: it is re-made anyway
        shutil.rmtree(part.location, ignore_errors=True)
    return CacheReport(before.modules, before.parts, removed)
