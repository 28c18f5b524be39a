"""Named registries (``~/.vudo/config.toml``) and registry credentials
(``~/.vudo/credentials.toml``, mode 0600).

``config.toml``::

    default = "work"                 # used when --registry is absent
    [registries.work]
    url = "oci://registry.example.com/team"
    ca_file = "/etc/ssl/private-ca.pem"   # optional, for a private CA

``credentials.toml`` maps a registry host (``host[:port]``) to a user name and password
or a token. It is written with mode 0600 through a temporary file and never read into
anything that is printed: :class:`~vudo.pkg.oci.Credentials` hides its secrets from
``repr``. Docker's ``~/.docker/config.json`` ``auths`` (base64 ``user:password``) for the
same host are used when vudo has none of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from vudo.boundaries import load_toml
from vudo.errors import InvalidInputError, NotFoundError, UsageError
from vudo.files import write_atomic
from vudo.pkg.oci import Credentials, parse_oci_url

CONFIG_FILE = "config.toml"
CREDENTIALS_FILE = "credentials.toml"
MAX_CONFIG_BYTES = 1024 * 1024
_REGISTRY_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class NamedRegistry:
    name: str
    url: str
    ca_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    registries: tuple[NamedRegistry, ...]
    default: str | None

    def get(self, name: str) -> NamedRegistry | None:
        return next((r for r in self.registries if r.name == name), None)

    def to_json(self) -> list[dict[str, Any]]:
        """``vudo registry list --json``: each named registry, and which is the default."""
        return [
            {
                "name": r.name,
                "url": r.url,
                "default": r.name == self.default,
                "ca_file": str(r.ca_file) if r.ca_file else None,
            }
            for r in self.registries
        ]


@dataclass(frozen=True, slots=True)
class RegistryAdded:
    """What :func:`add_registry` configured, and whether it became the default."""

    entry: NamedRegistry
    default: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.entry.name, "url": self.entry.url, "default": self.default}


@dataclass(frozen=True, slots=True)
class RegistryRemoved:
    """What :func:`remove_registry` took out of the configuration."""

    entry: NamedRegistry

    def to_json(self) -> dict[str, Any]:
        return {"name": self.entry.name, "url": self.entry.url, "removed": True}


def _read_toml(path: Path, what: str) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidInputError(
            f"{path} is over {MAX_CONFIG_BYTES} bytes", hint=f"fix or remove the {what}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not UTF-8 text: {exc}", hint=f"fix or remove the {what}"
        ) from None
    return load_toml(text, str(path), hint=f"fix or remove the {what}")


def _write_private(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=mode, fsync=True, what=path.name)


def check_registry_name(name: str) -> str:
    if not _REGISTRY_NAME.fullmatch(name):
        raise UsageError(
            f"invalid registry name {name!r}",
            hint="lowercase letters, digits, '-' and '_', starting with a letter",
        )
    return name


def looks_like_location(text: str) -> bool:
    """A URL or path (``--registry`` takes these or a configured name)."""
    return "://" in text or "/" in text or text.startswith((".", "~"))


def load_config(home: Path) -> RegistryConfig:
    path = Path(home) / CONFIG_FILE
    body = _read_toml(path, "configuration")
    table = body.get("registries", {})
    if not isinstance(table, dict):
        raise InvalidInputError(
            f"{path}: [registries] is not a table", hint="see `vudo registry --help`"
        )
    found: list[NamedRegistry] = []
    for name, entry in table.items():
        url = entry.get("url") if isinstance(entry, dict) else None
        ca = entry.get("ca_file") if isinstance(entry, dict) else None
        if (
            not isinstance(url, str)
            or not _REGISTRY_NAME.fullmatch(str(name))
            or (ca is not None and not isinstance(ca, str))
        ):
            raise InvalidInputError(
                f"{path}: registry {str(name)!r} is malformed",
                hint='each [registries.NAME] needs url = "..."',
            )
        found.append(NamedRegistry(str(name), url, Path(ca) if ca else None))
    default = body.get("default")
    if default is not None and (
        not isinstance(default, str) or not any(r.name == default for r in found)
    ):
        raise InvalidInputError(
            f"{path}: default names no configured registry",
            hint="`vudo registry add NAME URL --default`",
        )
    return RegistryConfig(tuple(found), default)


def _save_config(home: Path, config: RegistryConfig) -> None:
    doc = tomlkit.document()
    if config.default is not None:
        doc["default"] = config.default
    regs = tomlkit.table(is_super_table=True)
    for r in config.registries:
        t = tomlkit.table()
        t["url"] = r.url
        if r.ca_file is not None:
            t["ca_file"] = str(r.ca_file)
        regs[r.name] = t
    doc["registries"] = regs
    _write_private(Path(home) / CONFIG_FILE, tomlkit.dumps(doc), 0o644)


def validate_registry_url(url: str) -> str:
    """A URL ``vudo registry add`` accepts (oci://, http(s)://, file:// or a path)."""
    # lazy: pkg.registry costs ~120 ms; only `registry add` checks URLs
    from vudo.pkg.registry import _parse_url

    if url.startswith("oci://"):
        return parse_oci_url(url).url
    if url.startswith(("http://", "https://", "file://")):
        _parse_url(url)
        return url
    if "://" in url:
        raise InvalidInputError(
            f"unsupported registry URL {url}",
            hint="use oci://HOST/NAMESPACE, https://, file:// or a path",
        )
    return str(Path(url).expanduser().resolve())


def add_registry(
    home: Path, name: str, url: str, *, default: bool = False, ca_file: Path | None = None
) -> RegistryAdded:
    check_registry_name(name)
    config = load_config(home)
    if config.get(name) is not None:
        raise UsageError(
            f"a registry named {name} is already configured",
            hint=f"remove it first (`vudo registry remove {name}`)",
        )
    if ca_file is not None and not Path(ca_file).is_file():
        raise NotFoundError(f"CA file {ca_file} does not exist", hint="pass a PEM file")
    entry = NamedRegistry(
        name, validate_registry_url(url), Path(ca_file).resolve() if ca_file else None
    )
    _save_config(
        home, RegistryConfig((*config.registries, entry), name if default else config.default)
    )
    return RegistryAdded(entry, default)


def remove_registry(home: Path, name: str) -> RegistryRemoved:
    config = load_config(home)
    entry = config.get(name)
    if entry is None:
        raise NotFoundError(f"no registry named {name} is configured", hint=_known(config))
    rest = tuple(r for r in config.registries if r.name != name)
    _save_config(home, RegistryConfig(rest, None if config.default == name else config.default))
    return RegistryRemoved(entry)


def _known(config: RegistryConfig) -> str:
    names = ", ".join(r.name for r in config.registries)
    return f"configured: {names}" if names else "add one with `vudo registry add NAME URL`"


def lookup_registry(home: Path, spec: str) -> NamedRegistry:
    """``--registry`` as given: a configured name, or a URL or path used as it is."""
    if looks_like_location(spec):
        return NamedRegistry("", spec)
    config = load_config(home)
    entry = config.get(spec)
    if entry is None:
        raise NotFoundError(f"no registry named {spec!r} is configured", hint=_known(config))
    return entry


def default_registry(home: Path) -> NamedRegistry | None:
    """The configured default, or None (the built-in directory registry is used)."""
    config = load_config(home)
    return config.get(config.default) if config.default else None


# ------------------------------------------------------------------ credentials


def registry_host(spec: str, *, home: Path) -> str:
    """The ``host[:port]`` credentials are stored under, from a name, oci:// URL or host."""

    if "://" not in spec and "/" not in spec and not _REGISTRY_NAME.fullmatch(spec):
        return parse_oci_url(f"oci://{spec}").netloc  # a bare host[:port]
    entry = lookup_registry(home, spec) if "://" not in spec else NamedRegistry("", spec)
    if not entry.url.startswith("oci://"):
        raise UsageError(
            f"{spec} is not an OCI registry",
            hint="only oci:// registries "
            "take a login; directory and static HTTP registries are public",
        )
    return parse_oci_url(entry.url).netloc


def save_credentials(home: Path, host: str, credentials: Credentials) -> None:
    path = Path(home) / CREDENTIALS_FILE
    body = _read_toml(path, "credentials file")
    hosts = body.get("hosts", {})
    hosts = dict(hosts) if isinstance(hosts, dict) else {}
    entry: dict[str, str] = {}
    if credentials.token:
        entry["token"] = credentials.token
    else:
        entry["username"] = credentials.username or ""
        entry["password"] = credentials.password or ""
    hosts[host] = entry
    doc = tomlkit.document()
    doc["hosts"] = hosts
    _write_private(path, tomlkit.dumps(doc), 0o600)


def remove_credentials(home: Path, host: str) -> bool:
    path = Path(home) / CREDENTIALS_FILE
    body = _read_toml(path, "credentials file")
    hosts = body.get("hosts", {})
    if not isinstance(hosts, dict) or host not in hosts:
        return False
    rest = {k: v for k, v in hosts.items() if k != host}
    doc = tomlkit.document()
    doc["hosts"] = rest
    _write_private(path, tomlkit.dumps(doc), 0o600)
    return True


def _docker_credentials(host: str, docker_config: Path | None) -> Credentials | None:

    if docker_config is None:
        return None
    try:
        with open(docker_config, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        body = json.loads(data) if len(data) <= MAX_CONFIG_BYTES else {}
    except (OSError, ValueError, RecursionError):
        return None
    auths = body.get("auths") if isinstance(body, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, value in auths.items():
        bare = re.sub(r"^[a-z]+://", "", str(key)).split("/", 1)[0].lower()
        if bare != host or not isinstance(value, dict):
            continue
        encoded = value.get("auth")
        if isinstance(encoded, str):
            try:
                user, sep, password = (
                    base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                return None
            if sep:
                return Credentials(user, password)
        token = value.get("identitytoken")
        if isinstance(token, str) and token:
            return Credentials(token=token)
    return None


def credentials_for(
    home: Path, host: str, *, docker_config: Path | None = None
) -> Credentials | None:
    """vudo's stored credentials for ``host``, else Docker's, else None (anonymous)."""

    body = _read_toml(Path(home) / CREDENTIALS_FILE, "credentials file")
    hosts = body.get("hosts", {})
    entry = hosts.get(host) if isinstance(hosts, dict) else None
    if isinstance(entry, dict):
        token = entry.get("token")
        if isinstance(token, str) and token:
            return Credentials(token=token)
        user, password = entry.get("username"), entry.get("password")
        if isinstance(user, str) and isinstance(password, str):
            return Credentials(user, password)
    return _docker_credentials(host, docker_config)


def docker_config_path(environ: dict[str, str] | None = None) -> Path:
    """Docker's client configuration (``$DOCKER_CONFIG/config.json`` or
    ``~/.docker/config.json``)."""
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


__all__ = [
    "NamedRegistry",
    "RegistryAdded",
    "RegistryConfig",
    "RegistryRemoved",
    "add_registry",
    "credentials_for",
    "default_registry",
    "docker_config_path",
    "load_config",
    "lookup_registry",
    "registry_host",
    "remove_credentials",
    "remove_registry",
    "save_credentials",
]
