"""What a user does with remote registries beyond install and publish: login/logout,
yank, and ``info --available`` (opening registries is :mod:`vudo.project.registries`).

``--registry`` takes a configured name (``vudo registry add``) or a URL/path; without it
the configured default is used, and without one the built-in directory registry under
the home. The CLI and the TUI call these; the protocol lives in :mod:`vudo.pkg.oci` and
:class:`vudo.pkg.registry.OciRegistry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.errors import NotFoundError, UsageError
from vudo.pkg.config import load_config, registry_host, remove_credentials, save_credentials
from vudo.pkg.manifest import Manifest, manifest_from_dict, validate_name
from vudo.pkg.oci import Credentials, OciClient, parse_oci_url
from vudo.pkg.registry import OciRegistry, PublishedVersion
from vudo.pkg.versions import parse_version
from vudo.project.installed import split_spec
from vudo.project.registries import open_spec, registry_label

# --------------------------------------------------------------------------- login


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A login that the registry accepted: its host and the user name (never the secret)."""

    registry: str
    username: str | None

    def to_json(self) -> dict[str, object]:
        return {"registry": self.registry, "logged_in": True, "username": self.username}


@dataclass(frozen=True, slots=True)
class LogoutResult:
    """A logout: the registry host, and whether credentials were stored for it."""

    registry: str
    removed: bool

    def to_json(self) -> dict[str, object]:
        return {"registry": self.registry, "removed": self.removed}


def login(
    registry: str,
    *,
    home: Path,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    ca_file: Path | None = None,
) -> LoginResult:
    """Check the credentials against the registry, then store them (mode 0600) under its
    host. Nothing is stored when the registry refuses them."""
    if token is None and (username is None or password is None):
        raise UsageError(
            "login needs --username with --password-stdin, or --token-stdin",
            hint='echo "$TOKEN" | vudo login REGISTRY --username me --password-stdin',
        )
    host = registry_host(registry, home=home)
    named = load_config(home).get(registry) if "://" not in registry else None
    url = named.url if named else (registry if registry.startswith("oci://") else f"oci://{host}")
    ca = ca_file or (named.ca_file if named else None)
    creds = Credentials(token=token) if token is not None else Credentials(username, password)
    with OciClient(parse_oci_url(url), credentials=creds, ca_file=ca) as client:
        client.ping()
    save_credentials(home, host, creds)
    return LoginResult(host, username)


def logout(registry: str, *, home: Path) -> LogoutResult:
    """Forget the stored credentials of the registry's host."""
    host = registry_host(registry, home=home)
    return LogoutResult(host, remove_credentials(home, host))


# --------------------------------------------------------------------------- yank / info


@dataclass(frozen=True, slots=True)
class YankResult:
    """A yank (or its undo): the ``NAME@VERSION`` named, whether it is now yanked, and
    whether that changed anything."""

    spirit: str
    yanked: bool
    changed: bool

    def to_json(self) -> dict[str, object]:
        return {"spirit": self.spirit, "yanked": self.yanked, "changed": self.changed}


def yank(spec: str, *, home: Path, registry: str | None = None, undo: bool = False) -> YankResult:
    """Mark ``NAME@VERSION`` yanked (or not, with ``undo``) in an OCI registry."""
    name, version = split_spec(spec)
    if version is None:
        raise UsageError(
            f"yank needs an exact version: {name}@VERSION", hint=f"e.g. vudo yank {name}@1.0.0"
        )
    with open_spec(registry, home=home) as reg:
        if not isinstance(reg, OciRegistry):
            raise UsageError(
                f"{registry_label(reg)} is not an OCI registry",
                hint="yank works on oci:// registries (--registry NAME|URL)",
            )
        return YankResult(spec, not undo, reg.yank(name, version, undo=undo))


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

    def describe(self, version: str | None = None) -> AvailableSpirit:
        """One version (default: the newest not yanked) with its manifest read;
        NotFoundError when the registry does not hold ``version``."""
        shown = self.newest
        if version is not None:
            wanted = parse_version(version)
            found = next((e for e in self.versions if e.version == wanted), None)
            if found is None:
                raise NotFoundError(
                    f"{self.name} {wanted} is not in the registry {self.registry}",
                    hint="published: " + ", ".join(str(e.version) for e in self.versions),
                )
            shown = found
        manifest = manifest_from_dict(shown.manifest, filename=f"{self.name}@{shown.version}")
        return AvailableSpirit(self, shown, manifest)


@dataclass(frozen=True, slots=True)
class AvailableSpirit:
    """``vudo info NAME[@VERSION] --available``: one published version, its manifest,
    and every version the registry holds (with yanks)."""

    remote: RemoteInfo
    shown: PublishedVersion
    manifest: Manifest

    def to_json(self) -> dict[str, Any]:
        m, shown = self.manifest, self.shown
        return {
            "name": self.remote.name,
            "version": str(shown.version),
            "registry": self.remote.registry,
            "description": m.description,
            "author": m.author,
            "signer": shown.signer,
            "digest": shown.digest,
            "size": shown.size,
            "capabilities": [c.value for c in m.capabilities],
            "dependencies": {d.name: d.to_value() for d in m.dependencies},
            "versions": [
                {"version": str(e.version), "yanked": e.yanked, "digest": e.digest}
                for e in self.remote.versions
            ],
        }


def info_available(name: str, *, home: Path, registry: str | None = None) -> RemoteInfo:
    """``vudo info NAME --available``: every version a registry holds, with yanks."""
    validate_name(name, what="Spirit name")
    with open_spec(registry, home=home) as reg:
        entries = (
            reg.entries(name, fresh=True) if isinstance(reg, OciRegistry) else reg.entries(name)
        )
        if not entries:
            raise NotFoundError(
                f"{name} is not in the registry {registry_label(reg)}",
                hint="see `vudo search --available`",
            )
        return RemoteInfo(name, registry_label(reg), tuple(entries))


__all__ = [
    "AvailableSpirit",
    "LoginResult",
    "LogoutResult",
    "RemoteInfo",
    "YankResult",
    "info_available",
    "login",
    "logout",
    "yank",
]
