"""Registries: where Spirits are published and found (``--registry``, ``vudo search
--available``, the TUI's registry browser).

A registry is a directory, an HTTP(S) URL or an ``oci://`` registry, or the name of one in
``config.toml``; with none named, the configured default is used, else the built-in
directory registry under the home (``<home>/registries/local``), created on first use.
Publishing to one is :func:`vudo.project.packaging.publish`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.capabilities import parse_capability
from vudo.errors import NotFoundError
from vudo.home import download_cache_dir, local_registry_dir, migrate_home
from vudo.pkg.config import (
    NamedRegistry,
    credentials_for,
    default_registry,
    docker_config_path,
    load_config,
    lookup_registry,
)
from vudo.pkg.oci import parse_oci_url
from vudo.pkg.registry import (
    DirectoryRegistry,
    Fetched,
    OciRegistry,
    Registry,
    SpiritSummary,
    open_registry,
    summaries,
)
from vudo.pkg.signing import check_package
from vudo.pkg.sources import Candidate
from vudo.pkg.store import check_query, open_store
from vudo.pkg.versions import Version, parse_version
from vudo.project.layout import Progress, no_progress


def registry_label(registry: Registry) -> str:
    """What to call a registry in output: its URL or directory."""
    return str(getattr(registry, "url", None) or getattr(registry, "path", ""))


def local_registry(home: Path) -> DirectoryRegistry:
    """The built-in directory registry of ``home`` (created empty on first use)."""
    migrate_home(home)
    return DirectoryRegistry(local_registry_dir(home), create=True)


def transfer_progress(
    progress: Progress,
    label: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    after: float = 1.0,
) -> Callable[[int, int], None]:
    """A byte-count callback that reports through ``progress`` once a transfer has run
    longer than ``after`` seconds (short transfers show nothing)."""
    started: list[float] = []
    shown = [0.0]

    def report(done: int, total: int) -> None:
        now = clock()
        if not started:
            started.append(now)
        elapsed = now - started[0]
        if elapsed < after or total <= 0 or (now - shown[0] < 0.1 and done < total):
            return  # quiet for the first second, then at most ten lines a second
        shown[0] = now
        width = 24
        filled = min(width, done * width // total)
        rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
        progress(
            f"{label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{done * 100 // total:3d}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB  "
            f"{rate:.1f} MB/s"
        )

    return report


def open_named(
    entry: NamedRegistry,
    *,
    home: Path,
    progress: Progress = no_progress,
    create: bool = False,
    label: str = "transferring",
) -> Registry:
    """Open a registry entry (from config, or a bare URL/path) with what it needs:
    credentials and CA for OCI, the HTTP cache directory."""
    options: dict[str, Any] = {}
    if entry.url.startswith("oci://"):
        host = parse_oci_url(entry.url).netloc
        options = {
            "credentials": credentials_for(home, host, docker_config=docker_config_path()),
            "ca_file": entry.ca_file,
            "progress": transfer_progress(progress, label),
        }
    return open_registry(entry.url, cache_dir=download_cache_dir(home), create=create, **options)


def open_spec(
    spec: str | None, *, home: Path, progress: Progress = no_progress, label: str = "transferring"
) -> Registry:
    """``--registry`` as given (name, URL or path), or the default when None: the
    configured one, else the built-in directory registry."""
    if spec is None:
        entry = default_registry(home)
        if entry is None:
            return local_registry(home)
        return open_named(entry, home=home, progress=progress, label=label)
    return open_named(lookup_registry(home, spec), home=home, progress=progress, label=label)


def open_registries(
    locations: Sequence[str], *, home: Path, progress: Progress = no_progress
) -> list[Registry]:
    """The registries named by ``--registry`` (configured names, URLs or paths), or the
    default one (``vudo registry add --default``, else the built-in directory registry
    under the home, created empty on first use) when none is named."""
    if not locations:
        return [open_spec(None, home=home, progress=progress, label="downloading")]
    opened: list[Registry] = []
    try:
        for location in locations:
            opened.append(open_spec(location, home=home, progress=progress, label="downloading"))
    except BaseException:
        for registry in opened:
            registry.close()
        raise
    return opened


def named_registries(home: Path, progress: Progress = no_progress) -> dict[str, Registry]:
    """Every configured registry by name, for dependencies that say ``registry = "NAME"``."""
    return {
        r.name: open_named(r, home=home, progress=progress, label="downloading")
        for r in load_config(home).registries
    }


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
        return self.fetch_from(name, version)[0].path

    def fetch_from(self, name: str, version: Version | str) -> tuple[Fetched, Registry]:
        """The package, checked, and the registry it came from (an OCI registry checks a
        package as it downloads it; the others' are read once)."""
        if isinstance(version, str):
            version = parse_version(version)
        for registry in self.registries:
            if any(c.version == version for c in registry.candidates(name)):
                if isinstance(registry, OciRegistry):
                    return registry.fetch_checked(name, version), registry
                path = Path(registry.fetch(name, version))
                return Fetched(path, check_package(path)), registry
        raise NotFoundError(f"no registry has {name} {version}", hint="check --registry")


@dataclass(frozen=True, slots=True)
class BrowseEntry(SpiritSummary):
    """A registry's summary of a Spirit (its newest version), where it was found, and
    which version, if any, is installed."""

    registry: str
    installed_version: str | None

    @classmethod
    def of(
        cls, summary: SpiritSummary, *, registry: str, installed_version: str | None
    ) -> BrowseEntry:
        fields = {f: getattr(summary, f) for f in SpiritSummary.__dataclass_fields__}
        return cls(**fields, registry=registry, installed_version=installed_version)

    @property
    def upgradable(self) -> bool:
        return self.installed_version is not None and parse_version(self.version) > parse_version(
            self.installed_version
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "capabilities": list(self.capabilities),
            "signer": self.signer,
            "author": self.author,
            "registry": self.registry,
            "installed_version": self.installed_version,
            "upgradable": self.upgradable,
        }


def browse(
    query: str = "",
    *,
    home: Path,
    registries: Sequence[str] = (),
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
            label = registry_label(registry)
            for summary in summaries(registry):
                name = summary.name
                if name in found:
                    continue
                if (
                    needle
                    and needle not in name.lower()
                    and needle not in summary.description.lower()
                ):
                    continue
                if cap is not None and cap not in summary.capabilities:
                    continue
                found[name] = BrowseEntry.of(
                    summary, registry=label, installed_version=installed.get(name)
                )
    finally:
        for registry in opened:
            registry.close()
    return sorted(found.values(), key=lambda e: (not e.name.startswith(needle), e.name))
