"""Registries as the user configured them: opening one by name or URL with its
credentials and CA, the default registry, login/logout, yank, and remote ``info``.

``--registry`` takes a configured name (``vudo registry add``) or a URL/path; without it
the configured default is used, and without one the built-in directory registry under
the home. The CLI and the TUI call these; the protocol lives in :mod:`vudo.pkg.oci` and
:class:`vudo.pkg.registry.OciRegistry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.errors import NotFoundError, UsageError
from vudo.project.layout import Progress, no_progress

if TYPE_CHECKING:
    from vudo.pkg.config import NamedRegistry
    from vudo.pkg.registry import PublishedVersion, Registry


def transfer_progress(progress: Progress, label: str, *,
                      clock: Callable[[], float] = time.monotonic,
                      after: float = 1.0) -> Callable[[int, int], None]:
    """A byte-count callback that reports through ``progress`` once a transfer has run
    longer than ``after`` seconds (short transfers show nothing)."""
    started: list[float] = []

    def report(done: int, total: int) -> None:
        now = clock()
        if not started:
            started.append(now)
        elapsed = now - started[0]
        if elapsed < after or total <= 0:
            return
        width = 24
        filled = min(width, done * width // total)
        rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
        progress(f"{label} [{'#' * filled}{'.' * (width - filled)}] "
                 f"{done * 100 // total:3d}%  {done / 1e6:.1f}/{total / 1e6:.1f} MB  "
                 f"{rate:.1f} MB/s")

    return report


def _docker_config() -> Path:
    from vudo.pkg.config import docker_config_path

    return docker_config_path()


def open_named(entry: NamedRegistry, *, home: Path, progress: Progress = no_progress,
               create: bool = False, label: str = "transferring") -> Registry:
    """Open a registry entry (from config, or a bare URL/path) with what it needs:
    credentials and CA for OCI, the HTTP cache directory."""
    from vudo.home import cache_dir
    from vudo.pkg.registry import open_registry

    options: dict[str, Any] = {}
    if entry.url.startswith("oci://"):
        from vudo.pkg.config import credentials_for
        from vudo.pkg.oci import parse_oci_url

        host = parse_oci_url(entry.url).netloc
        options = {"credentials": credentials_for(home, host, docker_config=_docker_config()),
                   "ca_file": entry.ca_file,
                   "progress": transfer_progress(progress, label)}
    return open_registry(entry.url, cache_dir=cache_dir(home) / "registries", create=create,
                         **options)


def open_spec(spec: str | None, *, home: Path, progress: Progress = no_progress,
              label: str = "transferring") -> Registry:
    """``--registry`` as given (name, URL or path), or the default when None: the
    configured one, else the built-in directory registry."""
    from vudo.pkg.config import default_registry, lookup_registry
    from vudo.project.registries import local_registry

    if spec is None:
        entry = default_registry(home)
        if entry is None:
            return local_registry(home)
        return open_named(entry, home=home, progress=progress, label=label)
    return open_named(lookup_registry(home, spec), home=home, progress=progress, label=label)


# --------------------------------------------------------------------------- login


def login(registry: str, *, home: Path, username: str | None = None,
          password: str | None = None, token: str | None = None,
          ca_file: Path | None = None) -> str:
    """Check the credentials against the registry, then store them (mode 0600) under its
    host; returns the host. Nothing is stored when the registry refuses them."""
    from vudo.pkg.config import load_config, registry_host, save_credentials
    from vudo.pkg.oci import Credentials, OciClient, parse_oci_url

    if token is None and (username is None or password is None):
        raise UsageError("login needs --username with --password-stdin, or --token-stdin",
                         hint="echo \"$TOKEN\" | vudo login REGISTRY --username me "
                         "--password-stdin")
    host = registry_host(registry, home=home)
    named = load_config(home).get(registry) if "://" not in registry else None
    url = named.url if named else (registry if registry.startswith("oci://")
                                   else f"oci://{host}")
    ca = ca_file or (named.ca_file if named else None)
    creds = Credentials(token=token) if token is not None else Credentials(username, password)
    with OciClient(parse_oci_url(url), credentials=creds, ca_file=ca) as client:
        client.ping()
    save_credentials(home, host, creds)
    return host


def logout(registry: str, *, home: Path) -> tuple[str, bool]:
    from vudo.pkg.config import registry_host, remove_credentials

    host = registry_host(registry, home=home)
    return host, remove_credentials(home, host)


# --------------------------------------------------------------------------- yank / info


def yank(spec: str, *, home: Path, registry: str | None = None, undo: bool = False) -> bool:
    """Mark ``NAME@VERSION`` yanked (or not, with ``undo``) in an OCI registry."""
    from vudo.pkg.registry import OciRegistry
    from vudo.project.installed import split_spec
    from vudo.project.registries import registry_label

    name, version = split_spec(spec)
    if version is None:
        raise UsageError(f"yank needs an exact version: {name}@VERSION",
                         hint=f"e.g. vudo yank {name}@1.0.0")
    with open_spec(registry, home=home) as reg:
        if not isinstance(reg, OciRegistry):
            raise UsageError(f"{registry_label(reg)} is not an OCI registry",
                             hint="yank works on oci:// registries (--registry NAME|URL)")
        return reg.yank(name, version, undo=undo)


@dataclass(frozen=True, slots=True)
class RemoteInfo:
    """A Spirit as a registry describes it, before it is installed."""

    name: str
    registry: str
    versions: tuple[PublishedVersion, ...]

    @property
    def newest(self) -> PublishedVersion:
        live = [e for e in self.versions if not e.yanked] or list(self.versions)
        return max(live, key=lambda e: e.version)


def info_available(name: str, *, home: Path, registry: str | None = None) -> RemoteInfo:
    """``vudo info NAME --available``: every version a registry holds, with yanks."""
    from vudo.pkg.manifest import validate_name
    from vudo.pkg.registry import OciRegistry
    from vudo.project.registries import registry_label

    validate_name(name, what="Spirit name")
    with open_spec(registry, home=home) as reg:
        entries = reg.entries(name, fresh=True) if isinstance(reg, OciRegistry) else \
            reg.entries(name)
        if not entries:
            raise NotFoundError(f"{name} is not in the registry {registry_label(reg)}",
                                hint="see `vudo search --available`")
        return RemoteInfo(name, registry_label(reg), tuple(entries))


__all__ = [
    "RemoteInfo",
    "info_available",
    "login",
    "logout",
    "open_named",
    "open_spec",
    "transfer_progress",
    "yank",
]
