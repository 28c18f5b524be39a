"""Registries to publish Spirits to and install them from.

A *directory registry* is a plain directory any static web server can serve::

    <registry>/
      index.json                     {"format": "vudo-registry/1", "names": [...]}
      index/<name>.json              {"format": ..., "name": ..., "versions": [entry, ...]}
      packages/<name>/<name>-<version>.spirit

Each version entry records ``version``, ``digest`` (SHA-256 of the package file),
``signer``, ``size``, ``file`` (path relative to the registry root) and the canonical
``manifest`` (so the resolver sees dependencies without downloading packages).

:class:`DirectoryRegistry` publishes (verify first, refuse overwriting a published
version with other bytes, refuse a name already published under another signer unless
told) and reads; :class:`HttpRegistry` reads the same layout over HTTP with urllib,
checking each downloaded file against the digest in the index. Both are
:class:`~vudo.pkg.sources.CandidateSource` and have ``fetch(name, version) -> Path``,
which is what :meth:`vudo.pkg.store.LocalStore.upgrade` and ``vudo install`` use.
Whatever a registry hands over is verified again by the store before it is installed:
a registry is a transport, not an authority.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.errors import InvalidInputError, NotFoundError, VerificationError, VudoError
from vudo.files import write_atomic
from vudo.pkg.archive import open_regular, sha256_file, stream_file
from vudo.pkg.manifest import (
    canonical_manifest_bytes,
    canonical_name,
    manifest_from_dict,
    validate_name,
)
from vudo.pkg.signing import verify_package
from vudo.pkg.sources import Candidate, candidate_from_manifest
from vudo.pkg.versions import Version, parse_version
from vudo.resources import Resource

REGISTRY_FORMAT = "vudo-registry/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")  # always fullmatch
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_PACKAGE_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """One published version as the index records it."""

    name: str
    version: Version
    digest: str
    signer: str
    size: int
    file: str
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"version": str(self.version), "digest": self.digest, "signer": self.signer,
                "size": self.size, "file": self.file, "manifest": self.manifest}

    def candidate(self, source: str) -> Candidate:
        manifest = manifest_from_dict(self.manifest, filename=f"{self.name}@{self.version}")
        return candidate_from_manifest(manifest, source=source, digest=self.digest,
                                       signer=self.signer)


@dataclass(frozen=True, slots=True)
class PublishResult:
    name: str
    version: Version
    digest: str
    signer: str
    path: Path
    already_published: bool


def _check_name(name: str) -> str:
    return validate_name(name, what="Spirit name")


def _bad_index(where: str, what: str) -> VerificationError:
    return VerificationError(f"registry index {where} is malformed: {what}",
                             hint="the registry is damaged; republish or repair it")


def _parse_index(data: bytes, name: str, where: str) -> list[PublishedVersion]:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _bad_index(where, f"not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != REGISTRY_FORMAT:
        raise _bad_index(where, f"format is not {REGISTRY_FORMAT}")
    if body.get("name") != name or not isinstance(body.get("versions"), list):
        raise _bad_index(where, "wrong name or no versions list")
    entries: list[PublishedVersion] = []
    for item in body["versions"]:
        if not isinstance(item, dict):
            raise _bad_index(where, "a version entry is not an object")
        try:
            version = parse_version(str(item["version"]))
            digest, signer, size, file = item["digest"], item["signer"], item["size"], item["file"]
            manifest = item["manifest"]
        except KeyError as exc:
            raise _bad_index(where, f"entry lacks {exc}") from None
        except InvalidInputError as exc:
            raise _bad_index(where, exc.message) from None
        if not (isinstance(digest, str) and _HEX64.fullmatch(digest) and isinstance(signer, str)
                and _HEX64.fullmatch(signer) and isinstance(size, int) and isinstance(file, str)
                and isinstance(manifest, dict)):
            raise _bad_index(where, f"bad entry for {version}")
        expected = f"packages/{name}/{name}-{version}.spirit"
        if file != expected:
            raise _bad_index(where, f"file of {version} is {file!r}, expected {expected!r}")
        entries.append(PublishedVersion(name, version, digest, signer, size, file, manifest))
    return entries


def _index_bytes(name: str, entries: Iterable[PublishedVersion]) -> bytes:
    ordered = sorted(entries, key=lambda e: e.version)
    body = {"format": REGISTRY_FORMAT, "name": name,
            "versions": [e.to_dict() for e in ordered]}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def _select(entries: list[PublishedVersion], name: str, version: Version | str,
            where: str) -> PublishedVersion:
    wanted = parse_version(str(version))
    for e in entries:
        if e.version == wanted:
            return e
    listed = ", ".join(str(e.version) for e in entries) or "none"
    raise NotFoundError(f"{name} {wanted} is not in the registry {where}",
                        hint=f"published versions: {listed}")


class DirectoryRegistry(Resource):
    """A registry in a local directory (the default one lives under ``~/.vudo``).

    ``create`` makes the directory on first use; otherwise a missing directory is a
    NotFoundError (``vudo publish --registry /typo``).
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            if not create:
                raise NotFoundError(f"registry directory {self.path} does not exist",
                                    hint="check the --registry path, or create the directory")
            self.path.mkdir(parents=True, exist_ok=True)
        self.label = f"registry+{self.path.resolve().as_uri()}"

    def close(self) -> None:
        """Nothing to release; present so every registry is used the same way."""

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise publishers (processes) on an advisory lock file."""
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _index_path(self, name: str) -> Path:
        return self.path / "index" / f"{_check_name(name)}.json"

    def entries(self, name: str) -> list[PublishedVersion]:
        """Every published version of ``name`` (empty if none), lowest first."""
        path = self._index_path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        return _parse_index(data, name, str(path))

    def names(self) -> list[str]:
        try:
            body = json.loads((self.path / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise _bad_index(str(self.path / "index.json"), str(exc)) from None
        names = body.get("names") if isinstance(body, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad_index(str(self.path / "index.json"), "names is not a list")
        return list(names)

    def candidates(self, name: str) -> Iterable[Candidate]:
        return [e.candidate(self.label) for e in self.entries(name)]

    def fetch(self, name: str, version: Version | str) -> Path:
        """The package file of a published version, checked against its index digest."""
        entry = _select(self.entries(name), name, version, str(self.path))
        path = self.path / entry.file
        if not path.is_file():
            raise NotFoundError(f"the registry lists {name} {entry.version} but "
                                f"{path} is missing", hint="republish it")
        if sha256_file(path) != entry.digest:
            raise VerificationError(
                f"{path} does not match the digest in the registry index",
                hint="the registry was modified; republish the package")
        return path

    def publish(self, package: Path, *, allow_new_signer: bool = False) -> PublishResult:
        """Verify ``package`` and add it to the registry.

        Publishing the same bytes again is a no-op; other bytes under a published version
        are refused (versions are immutable), as is a name already published by another
        signer unless ``allow_new_signer``.
        """
        package = Path(package)
        tmp_dir = self.path / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        tmp = tmp_dir / f"publish-{os.getpid()}-{uuid.uuid4().hex}.partial"
        try:
            digest, size = _copy_hashing(package, tmp)
            verified = verify_package(tmp)
            m = verified.manifest
            name = _check_name(m.name)
            with self._locked():
                taken = [n for n in self.names()
                         if n != name and canonical_name(n) == canonical_name(name)]
                if taken:
                    raise InvalidInputError(
                        f'cannot publish "{name}": "{taken[0]}" is already published, and '
                        "names are compared without regard to case and to - versus _",
                        hint=f'publish as "{taken[0]}" if it is yours, or choose another name')
                entries = self.entries(name)
                for e in entries:
                    if e.version == m.version:
                        if e.digest != digest:
                            raise InvalidInputError(
                                f"{name} {m.version} is already published with different "
                                "contents", hint="published versions are immutable; bump "
                                "the version in spirit.toml and publish again")
                        return PublishResult(name, e.version, digest, e.signer,
                                             self.path / e.file, already_published=True)
                signers = {e.signer for e in entries}
                if signers and verified.signer not in signers and not allow_new_signer:
                    raise VerificationError(
                        f"{name} is published in this registry by another key",
                        hint="publish under a new name, or pass --allow-new-signer if the "
                        "owner changed keys")
                rel = f"packages/{name}/{name}-{m.version}.spirit"
                target = self.path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                manifest = json.loads(canonical_manifest_bytes(m))
                entry = PublishedVersion(name, m.version, digest, verified.signer, size, rel,
                                      manifest)
                index = self._index_path(name)
                index.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(index, _index_bytes(name, [*entries, entry]), fsync=True)
                names = sorted({*self.names(), name})
                write_atomic(self.path / "index.json", (json.dumps(
                    {"format": REGISTRY_FORMAT, "names": names}, indent=1) + "\n").encode())
            return PublishResult(name, m.version, digest, verified.signer, target,
                                 already_published=False)
        finally:
            tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ HTTP (read-only)

_URLLIB_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, OSError,
)


def translate_urllib_error(exc: BaseException, url: str) -> VudoError:
    """Map urllib / http.client / socket errors to vudo errors (the one HTTP boundary)."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 404:
            return NotFoundError(f"{url} not found (HTTP 404)",
                                 hint="check the registry URL and the Spirit name")
        return VudoError(f"registry request {url} failed: HTTP {exc.code} {exc.reason}",
                         hint="the registry server reported an error; try again later")
    if isinstance(exc, urllib.error.URLError):
        return VudoError(f"cannot reach registry at {url}: {exc.reason}",
                         hint="check the --registry URL and your network")
    if isinstance(exc, socket.timeout | TimeoutError):
        return VudoError(f"registry request {url} timed out", hint="try again later")
    if isinstance(exc, http.client.HTTPException):
        return VudoError(f"registry at {url} sent a bad HTTP response ({exc!r})",
                         hint="the server is not a vudo registry, or the connection broke")
    return VudoError(f"registry request {url} failed: {exc}", hint="try again later")


class HttpRegistry(Resource):
    """A directory registry served over HTTP(S), read-only.

    Downloads go to ``cache_dir`` (named by digest, checked while streaming), so a
    package is fetched once and never trusted before its digest matches the index.
    """

    def __init__(self, url: str, *, cache_dir: Path, timeout: float = 30.0) -> None:
        parsed = _parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInputError(f"not an http(s) registry URL: {url}",
                                    hint="use http://host/path or a directory path")
        self.url = url.rstrip("/") + "/"
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.label = f"registry+{self.url}"
        self._opener = urllib.request.build_opener()

    def close(self) -> None:
        """Connections are per request; nothing stays open."""

    def _get(self, rel: str, limit: int) -> bytes:
        url = urllib.parse.urljoin(self.url, rel)
        try:
            with self._opener.open(url, timeout=self.timeout) as resp:
                data = bytes(resp.read(limit + 1))
        except _URLLIB_ERRORS as exc:
            raise translate_urllib_error(exc, url) from exc
        if len(data) > limit:
            raise VerificationError(f"{url} is larger than {limit} bytes",
                                    hint="refusing oversized registry responses")
        return data

    def entries(self, name: str) -> list[PublishedVersion]:
        rel = f"index/{_check_name(name)}.json"
        try:
            data = self._get(rel, MAX_INDEX_BYTES)
        except NotFoundError:
            return []
        return _parse_index(data, name, self.url + rel)

    def names(self) -> list[str]:
        try:
            body = json.loads(self._get("index.json", MAX_INDEX_BYTES))
        except NotFoundError:
            return []
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise _bad_index(self.url + "index.json", str(exc)) from None
        names = body.get("names") if isinstance(body, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad_index(self.url + "index.json", "names is not a list")
        return list(names)

    def candidates(self, name: str) -> Iterable[Candidate]:
        return [e.candidate(self.label) for e in self.entries(name)]

    def fetch(self, name: str, version: Version | str) -> Path:
        """Download a published version (once) and check it against the index digest."""
        entry = _select(self.entries(name), name, version, self.url)
        target = self.cache_dir / f"{entry.digest}.spirit"
        if target.is_file() and sha256_file(target) == entry.digest:
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        url = urllib.parse.urljoin(self.url, entry.file)
        tmp = self.cache_dir / f".{entry.digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
        h = hashlib.sha256()
        total = 0
        try:
            with self._opener.open(url, timeout=self.timeout) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    total += len(chunk)
                    if total > min(entry.size, MAX_PACKAGE_BYTES):
                        raise VerificationError(
                            f"{url} is larger than the {entry.size} bytes the index says",
                            hint="the registry was modified; refusing the download")
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != entry.digest:
                raise VerificationError(f"{url} does not match the digest in the registry "
                                        "index", hint="the registry or the connection "
                                        "altered the package; try again or report it")
            os.replace(tmp, target)
        except _URLLIB_ERRORS as exc:
            raise translate_urllib_error(exc, url) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return target


Registry = DirectoryRegistry | HttpRegistry


def _parse_url(url: str) -> urllib.parse.ParseResult:
    """``urlparse`` with its ValueErrors ("Invalid IPv6 URL", a port out of range, ...)
    turned into InvalidInputError; the port is read here so a bad one fails now."""
    try:
        parsed = urllib.parse.urlparse(url)
        parsed.port  # noqa: B018 -- raises ValueError for a port that is not 0..65535
    except ValueError as exc:
        raise InvalidInputError(f"invalid registry URL {url}: {exc}",
                                hint="use http://host[:port]/path or a directory path") from None
    if any(ord(c) < 0x20 or c == "\x7f" or (c == " " and parsed.scheme != "file")
           for c in url):
        raise InvalidInputError(f"invalid registry URL {url!r}: spaces or control characters",
                                hint="percent-encode them (%20)")
    return parsed


def open_registry(location: str | Path, *, cache_dir: Path | None = None,
                  create: bool = False) -> Registry:
    """A registry from a URL (``http(s)://``, ``file://``) or a directory path."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        if cache_dir is None:
            raise InvalidInputError("an HTTP registry needs a cache directory")
        return HttpRegistry(text, cache_dir=cache_dir)
    if text.startswith("file://"):
        text = urllib.parse.unquote(_parse_url(text).path)
    elif "://" in text:
        raise InvalidInputError(f"unsupported registry URL {text}",
                                hint="use http://, https://, file:// or a directory path")
    return DirectoryRegistry(Path(text).expanduser(), create=create)


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    fd = open_regular(src, what=".spirit package", hint="run `vudo pack` and `vudo sign`")
    try:
        size = os.fstat(fd).st_size
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for chunk in stream_file(fd, 0, size, h.update):
                view = chunk
                while view:
                    view = view[os.write(out, view):]
            os.fsync(out)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return h.hexdigest(), size


__all__ = [
    "REGISTRY_FORMAT",
    "DirectoryRegistry",
    "HttpRegistry",
    "PublishResult",
    "PublishedVersion",
    "Registry",
    "open_registry",
    "translate_urllib_error",
]
