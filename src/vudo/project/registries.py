"""Registries: where Spirits are published and found (``--registry``, ``vudo search
--available``, the TUI's registry browser).

A registry is a directory or an HTTP(S) URL; with none named, the built-in directory
registry under the home (``<home>/registries/local``) is used, created on first use.
Publishing to one is :func:`vudo.project.packaging.publish`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.capabilities import parse_capability
from vudo.errors import NotFoundError
from vudo.home import cache_dir, local_registry_dir, migrate_home
from vudo.pkg.manifest import manifest_from_dict
from vudo.pkg.registry import DirectoryRegistry, Registry, open_registry
from vudo.pkg.sources import Candidate
from vudo.pkg.store import check_query, open_store
from vudo.pkg.versions import Version, parse_version


def local_registry(home: Path) -> DirectoryRegistry:
    """The built-in directory registry of ``home`` (created empty on first use)."""
    migrate_home(home)
    return DirectoryRegistry(local_registry_dir(home), create=True)


def open_registries(locations: Sequence[str], *, home: Path) -> list[Registry]:
    """The registries named by ``--registry`` (URL or path), or the built-in directory
    registry under the home when none is named."""
    if not locations:
        return [local_registry(home)]
    opened: list[Registry] = []
    try:
        for location in locations:
            opened.append(open_registry(location, cache_dir=cache_dir(home) / "registries"))
    except BaseException:
        for registry in opened:
            registry.close()
        raise
    return opened


class RegistrySet:
    """Several registries as one package source: every version of each, first one wins."""

    def __init__(self, registries: Sequence[Registry]) -> None:
        self.registries = list(registries)

    def candidates(self, name: str) -> list[Candidate]:
        seen: set[Version] = set()
        out = []
        for registry in self.registries:
            for candidate in registry.candidates(name):
                if candidate.version not in seen:
                    seen.add(candidate.version)
                    out.append(candidate)
        return out

    def fetch(self, name: str, version: Version | str) -> Path:
        if isinstance(version, str):
            version = parse_version(version)
        for registry in self.registries:
            if any(c.version == version for c in registry.candidates(name)):
                return Path(registry.fetch(name, version))
        raise NotFoundError(f"no registry has {name} {version}", hint="check --registry")


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    """The newest published version of a Spirit, and whether (which) one is installed."""

    name: str
    version: str
    description: str
    capabilities: tuple[str, ...]
    signer: str
    author: str
    registry: str
    installed_version: str | None

    @property
    def upgradable(self) -> bool:
        return self.installed_version is not None and parse_version(
            self.version) > parse_version(self.installed_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "capabilities": list(self.capabilities), "signer": self.signer,
            "author": self.author, "registry": self.registry,
            "installed_version": self.installed_version, "upgradable": self.upgradable,
        }


def browse(
    query: str = "", *, home: Path, registries: Sequence[str] = (),
    capability: str | None = None,
) -> list[BrowseEntry]:
    """Spirits available in the registries whose name or description contains ``query``
    (``vudo search --available`` and the TUI's registry browser), newest version each."""
    cap = parse_capability(capability).value if capability else None
    needle = check_query(query).strip().lower()
    opened = open_registries(registries, home=home)
    found: dict[str, BrowseEntry] = {}
    try:
        with open_store(home, read_only=True) as store:
            installed = {s.name: str(s.version) for s in store.list()}
        for registry in opened:
            label = str(getattr(registry, "path", None) or getattr(registry, "url", ""))
            for name in registry.names():
                if name in found:
                    continue
                entries = registry.entries(name)
                if not entries:
                    continue
                newest = max(entries, key=lambda e: e.version)
                m = manifest_from_dict(newest.manifest, filename=f"{name}@{newest.version}")
                caps = tuple(c.value for c in m.capabilities)
                if needle and needle not in name.lower() and \
                        needle not in m.description.lower():
                    continue
                if cap is not None and cap not in caps:
                    continue
                found[name] = BrowseEntry(name, str(newest.version), m.description, caps,
                                          newest.signer, m.author, label,
                                          installed.get(name))
    finally:
        for registry in opened:
            registry.close()
    return sorted(found.values(), key=lambda e: (not e.name.startswith(needle), e.name))
