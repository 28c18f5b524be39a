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
import dataclasses
import fcntl
import http.client
import json
import os
import re
import socket
import time
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
from vudo.hashing import sha256
from vudo.pkg.archive import (
    MemberDigests,
    digest_package,
    sha256_file,
)
from vudo.pkg.manifest import (
    Manifest,
    canonical_manifest_bytes,
    canonical_name,
    manifest_from_dict,
    validate_name,
)
from vudo.pkg.oci import (
    EMPTY_BLOB,
    EMPTY_DIGEST,
    Descriptor,
    OciClient,
    build_manifest,
    bytes_reader,
    file_reader,
    parse_image_manifest,
    parse_oci_url,
)
from vudo.pkg.signing import CheckedPackage, check_package
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
    yanked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "digest": self.digest,
            "signer": self.signer,
            "size": self.size,
            "file": self.file,
            "manifest": self.manifest,
        }

    def candidate(self, source: str) -> Candidate:
        manifest = manifest_from_dict(self.manifest, filename=f"{self.name}@{self.version}")
        return candidate_from_manifest(
            manifest, source=source, digest=self.digest, signer=self.signer
        )


@dataclass(frozen=True, slots=True)
class SpiritSummary:
    """A name's newest (not yanked) version, as ``search --available`` lists it."""

    name: str
    version: str
    description: str
    capabilities: tuple[str, ...]
    signer: str
    author: str


def summarize(name: str, entries: Iterable[PublishedVersion]) -> SpiritSummary | None:
    """The summary of ``name`` from its version entries (None when all are yanked)."""
    live = [e for e in entries if not e.yanked]
    if not live:
        return None
    newest = max(live, key=lambda e: e.version)
    m = manifest_from_dict(newest.manifest, filename=f"{name}@{newest.version}")
    return SpiritSummary(
        name,
        str(newest.version),
        m.description,
        tuple(c.value for c in m.capabilities),
        newest.signer,
        m.author,
    )


def summaries(registry: Registry) -> list[SpiritSummary]:
    """Every Spirit a registry holds, newest version each (an OCI registry answers from
    its cache; the others read their index)."""
    if isinstance(registry, OciRegistry):
        return registry.summaries()
    found = (summarize(name, registry.entries(name)) for name in registry.names())
    return [s for s in found if s is not None]


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


def check_publishable(manifest: Manifest) -> None:
    """Cargo's rule: a package with ``path`` dependencies cannot be published (nobody
    else has those directories)."""
    paths = [d.name for d in manifest.dependencies if d.path is not None]
    if paths:
        raise InvalidInputError(
            f"{manifest.name} has path dependencies ({', '.join(paths)}), which nobody else "
            "can install",
            hint="publish those first and depend on them by version",
        )


def _bad_index(where: str, what: str) -> VerificationError:
    return VerificationError(
        f"registry index {where} is malformed: {what}",
        hint="the registry is damaged; republish or repair it",
    )


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
        if not (
            isinstance(digest, str)
            and _HEX64.fullmatch(digest)
            and isinstance(signer, str)
            and _HEX64.fullmatch(signer)
            and isinstance(size, int)
            and isinstance(file, str)
            and isinstance(manifest, dict)
        ):
            raise _bad_index(where, f"bad entry for {version}")
        expected = f"packages/{name}/{name}-{version}.spirit"
        if file != expected:
            raise _bad_index(where, f"file of {version} is {file!r}, expected {expected!r}")
        entries.append(PublishedVersion(name, version, digest, signer, size, file, manifest))
    return entries


def _index_bytes(name: str, entries: Iterable[PublishedVersion]) -> bytes:
    ordered = sorted(entries, key=lambda e: e.version)
    body = {"format": REGISTRY_FORMAT, "name": name, "versions": [e.to_dict() for e in ordered]}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def _select(
    entries: list[PublishedVersion], name: str, version: Version | str, where: str
) -> PublishedVersion:
    wanted = parse_version(str(version))
    for e in entries:
        if e.version == wanted:
            return e
    listed = ", ".join(str(e.version) for e in entries) or "none"
    raise NotFoundError(
        f"{name} {wanted} is not in the registry {where}", hint=f"published versions: {listed}"
    )


class DirectoryRegistry(Resource):
    """A registry in a local directory (the default one lives under ``~/.vudo``).

    ``create`` makes the directory on first use; otherwise a missing directory is a
    NotFoundError (``vudo publish --registry /typo``).
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            if not create:
                raise NotFoundError(
                    f"registry directory {self.path} does not exist",
                    hint="check the --registry path, or create the directory",
                )
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
            raise NotFoundError(
                f"the registry lists {name} {entry.version} but {path} is missing",
                hint="republish it",
            )
        if sha256_file(path) != entry.digest:
            raise VerificationError(
                f"{path} does not match the digest in the registry index",
                hint="the registry was modified; republish the package",
            )
        return path

    def publish(
        self, package: Path, *, allow_new_signer: bool = False, dry_run: bool = False
    ) -> PublishResult:
        """Verify ``package`` and add it to the registry (with ``dry_run``, only check
        that it could be).

        Publishing the same bytes again is a no-op; other bytes under a published version
        are refused (versions are immutable), as is a name already published by another
        signer unless ``allow_new_signer``.
        """
        package = Path(package)
        tmp_dir = self.path / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        tmp = tmp_dir / f"publish-{os.getpid()}-{uuid.uuid4().hex}.partial"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                digest, size, members = digest_package(package, into=fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            verified = check_package(tmp, streamed=members)
            m = verified.manifest
            name = _check_name(m.name)
            check_publishable(m)
            with self._locked():
                taken = [
                    n
                    for n in self.names()
                    if n != name and canonical_name(n) == canonical_name(name)
                ]
                if taken:
                    raise InvalidInputError(
                        f'cannot publish "{name}": "{taken[0]}" is already published, and '
                        "names are compared without regard to case and to - versus _",
                        hint=f'publish as "{taken[0]}" if it is yours, or choose another name',
                    )
                entries = self.entries(name)
                for e in entries:
                    if e.version == m.version:
                        if e.digest != digest:
                            raise InvalidInputError(
                                f"{name} {m.version} is already published with different contents",
                                hint="published versions are immutable; bump "
                                "the version in spirit.toml and publish again",
                            )
                        return PublishResult(
                            name,
                            e.version,
                            digest,
                            e.signer,
                            self.path / e.file,
                            already_published=True,
                        )
                signers = {e.signer for e in entries}
                if signers and verified.signer not in signers and not allow_new_signer:
                    raise VerificationError(
                        f"{name} is published in this registry by another key",
                        hint="publish under a new name, or pass --allow-new-signer if the "
                        "owner changed keys",
                    )
                rel = f"packages/{name}/{name}-{m.version}.spirit"
                target = self.path / rel
                if dry_run:
                    return PublishResult(
                        name, m.version, digest, verified.signer, target, already_published=False
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                manifest = json.loads(canonical_manifest_bytes(m))
                entry = PublishedVersion(
                    name, m.version, digest, verified.signer, size, rel, manifest
                )
                index = self._index_path(name)
                index.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(index, _index_bytes(name, [*entries, entry]), fsync=True)
                names = sorted({*self.names(), name})
                write_atomic(
                    self.path / "index.json",
                    (
                        json.dumps({"format": REGISTRY_FORMAT, "names": names}, indent=1) + "\n"
                    ).encode(),
                )
            return PublishResult(
                name, m.version, digest, verified.signer, target, already_published=False
            )
        finally:
            tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ HTTP (read-only)

_URLLIB_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    http.client.HTTPException,
    socket.timeout,
    ConnectionError,
    OSError,
)


def translate_urllib_error(exc: BaseException, url: str) -> VudoError:
    """Map urllib / http.client / socket errors to vudo errors (the one HTTP boundary)."""
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 404:
            return NotFoundError(
                f"{url} not found (HTTP 404)", hint="check the registry URL and the Spirit name"
            )
        return VudoError(
            f"registry request {url} failed: HTTP {exc.code} {exc.reason}",
            hint="the registry server reported an error; try again later",
        )
    if isinstance(exc, urllib.error.URLError):
        return VudoError(
            f"cannot reach registry at {url}: {exc.reason}",
            hint="check the --registry URL and your network",
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return VudoError(f"registry request {url} timed out", hint="try again later")
    if isinstance(exc, http.client.HTTPException):
        return VudoError(
            f"registry at {url} sent a bad HTTP response ({exc!r})",
            hint="the server is not a vudo registry, or the connection broke",
        )
    return VudoError(f"registry request {url} failed: {exc}", hint="try again later")


class HttpRegistry(Resource):
    """A directory registry served over HTTP(S), read-only.

    Downloads go to ``cache_dir`` (named by digest, checked while streaming), so a
    package is fetched once and never trusted before its digest matches the index.
    """

    def __init__(self, url: str, *, cache_dir: Path, timeout: float = 30.0) -> None:
        parsed = _parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInputError(
                f"not an http(s) registry URL: {url}",
                hint="use http://host/path or a directory path",
            )
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
            raise VerificationError(
                f"{url} is larger than {limit} bytes", hint="refusing oversized registry responses"
            )
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
        h = sha256(stream=True)
        total = 0
        try:
            with self._opener.open(url, timeout=self.timeout) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    total += len(chunk)
                    if total > min(entry.size, MAX_PACKAGE_BYTES):
                        raise VerificationError(
                            f"{url} is larger than the {entry.size} bytes the index says",
                            hint="the registry was modified; refusing the download",
                        )
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != entry.digest:
                raise VerificationError(
                    f"{url} does not match the digest in the registry index",
                    hint="the registry or the connection "
                    "altered the package; try again or report it",
                )
            os.replace(tmp, target)
        except _URLLIB_ERRORS as exc:
            raise translate_urllib_error(exc, url) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return target


# ------------------------------------------------------------------ OCI

SPIRIT_ARTIFACT_TYPE = "application/vnd.vudo.spirit.v1"
SPIRIT_LAYER_TYPE = "application/vnd.vudo.spirit.package.v1"
YANK_ARTIFACT_TYPE = "application/vnd.vudo.spirit.yank.v1"
YANK_TAG_PREFIX = "yanked-"
ANN_TITLE = "org.opencontainers.image.title"
ANN_VERSION = "org.opencontainers.image.version"
ANN_DESCRIPTION = "org.opencontainers.image.description"
ANN_CAPABILITIES = "dev.vudo.spirit.capabilities"
ANN_SIGNER = "dev.vudo.spirit.signer"
ANN_MANIFEST = "dev.vudo.spirit.manifest"
CACHE_FRESH_SECONDS = 300.0
FETCH_WORKERS = 16  # concurrent requests of a cold search (oci.POOL_CONNECTIONS kept alive)
MAX_CACHE_BYTES = 256 * 1024 * 1024


def version_tag(version: Version) -> str:
    """The OCI tag of a version: ``+`` (build metadata) is not allowed in tags, so ``_``."""
    return str(version).replace("+", "_")


def tag_version(tag: str) -> Version | None:
    try:
        return parse_version(tag.replace("_", "+"))
    except InvalidInputError:
        return None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A package a registry handed over, with its checked signature. ``sha256`` is set
    for a download into vudo's cache that was checked in the same pass: a private file
    the store may take over (:meth:`vudo.pkg.store.LocalStore.adopt`) rather than copy;
    None for a registry's own file, which must stay where it is."""

    path: Path
    checked: CheckedPackage
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What ``vudo publish`` pushes (or, with ``--dry-run``, would push)."""

    name: str
    version: Version
    reference: str  # HOST/NAMESPACE/NAME:TAG
    digest: str  # of the package (the layer)
    size: int
    signer: str
    annotations: dict[str, str]


class OciRegistry(Resource):
    """A registry speaking the OCI distribution spec (``oci://HOST[:PORT]/NAMESPACE``).

    Spirit ``NAME`` version ``V`` is the artifact ``NAMESPACE/NAME:V`` (artifactType
    :data:`SPIRIT_ARTIFACT_TYPE`, the empty config, one :data:`SPIRIT_LAYER_TYPE` layer
    holding the ``.spirit`` file), with annotations carrying name, version, description,
    capabilities, signer and the canonical manifest (so resolution reads dependencies
    without downloading packages).

    Yanking follows a tag convention that works on any registry, CNCF Distribution
    included (no referrers API needed): version ``V`` is yanked while the tag
    ``yanked-V`` exists in the Spirit's repository. That tag points at a small manifest
    (artifactType :data:`YANK_ARTIFACT_TYPE`) whose ``subject`` is the version's
    manifest, so registries with the referrers API also show it as a referrer. Un-yanking
    deletes that manifest. One tag list therefore says which versions exist and which are
    yanked.

    What ``search --available`` and the resolver read (catalog, tags, each tag's
    annotations) is cached in ``cache_dir`` as JSON: tag lists and the catalog for
    ``fresh_seconds``, a tag's manifest until the tag moves (versions are immutable).
    """

    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path,
        credentials: Any = None,
        ca_file: Path | None = None,
        fresh_seconds: float = CACHE_FRESH_SECONDS,
        clock: Any = None,
        progress: Any = None,
        **client_options: Any,
    ) -> None:

        self.location = parse_oci_url(url)
        self.url = self.location.url
        self.label = f"registry+{self.url}"
        self.cache_dir = Path(cache_dir)
        self.fresh_seconds = fresh_seconds
        self.clock = clock or time.time
        self.progress = progress
        self._client_options = {"credentials": credentials, "ca_file": ca_file, **client_options}
        self._client: Any = None
        key = sha256(self.url.encode()).hexdigest()[:24]
        self._cache_path = self.cache_dir / f"oci-{key}.json"
        self._summary_path = self.cache_dir / f"oci-{key}-summary.json"
        self._cache: dict[str, Any] | None = None
        self._dirty = False
        self._summary: dict[str, Any] | None = None

    @property
    def client(self) -> Any:
        """The protocol client (:class:`vudo.pkg.oci.OciClient`), made on first use."""
        if self._client is None:
            self._client = OciClient(self.location, **self._client_options)
        return self._client

    def close(self) -> None:
        try:
            if (self._dirty and self._cache is not None) or self._summary is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            if self._dirty and self._cache is not None:
                write_atomic(self._cache_path, json.dumps(self._cache).encode())
                self._dirty = False
            if self._summary is not None:
                write_atomic(self._summary_path, json.dumps(self._summary).encode())
                self._summary = None
        finally:
            if self._client is not None:
                self._client.close()

    def _forget_summary(self) -> None:
        """After a publish or yank here: the next search reads the registry again."""
        self._summary = None
        self._summary_path.unlink(missing_ok=True)

    def _cached_summaries(self) -> list[SpiritSummary] | None:
        try:
            if self._summary_path.stat().st_size > MAX_CACHE_BYTES:
                return None
            body = json.loads(self._summary_path.read_bytes())
            if body.get("url") != self.url or not self._fresh(body.get("at")):
                return None
            return [
                SpiritSummary(
                    str(i["name"]),
                    str(i["version"]),
                    str(i["description"]),
                    tuple(str(c) for c in i["capabilities"]),
                    str(i["signer"]),
                    str(i["author"]),
                )
                for i in body["items"]
            ]
        except (OSError, ValueError, RecursionError, KeyError, TypeError, AttributeError):
            return None

    # -- the cache

    def _load_cache(self) -> dict[str, Any]:
        if self._cache is None:
            cache: Any = None
            try:
                if self._cache_path.stat().st_size <= MAX_CACHE_BYTES:
                    cache = json.loads(self._cache_path.read_bytes())
            except (OSError, ValueError, RecursionError):
                cache = None
            if not (
                isinstance(cache, dict)
                and cache.get("url") == self.url
                and isinstance(cache.get("repos"), dict)
            ):
                cache = {"url": self.url, "catalog": None, "repos": {}}
            self._cache = cache
        return self._cache

    def _fresh(self, stamp: Any) -> bool:
        return isinstance(stamp, int | float) and 0 <= self.clock() - stamp < self.fresh_seconds

    def _repo(self, name: str) -> str:
        return self.location.repository(_check_name(name))

    # -- reading

    def names(self) -> list[str]:
        """Every Spirit name in the namespace (the catalog, cached)."""
        cache = self._load_cache()
        catalog = cache.get("catalog")
        if (
            isinstance(catalog, dict)
            and self._fresh(catalog.get("at"))
            and isinstance(catalog.get("names"), list)
        ):
            return [str(n) for n in catalog["names"]]
        prefix = f"{self.location.namespace}/" if self.location.namespace else ""
        names = sorted(
            {
                r[len(prefix) :]
                for r in self.client.catalog()
                if r.startswith(prefix) and _is_name(r[len(prefix) :])
            }
        )
        cache["catalog"] = {"at": self.clock(), "names": names}
        self._dirty = True
        self._warm(names)
        return names

    def _warm(self, names: list[str]) -> None:
        """Refresh stale names' tags and manifests :data:`FETCH_WORKERS` at a time over the
        client's pooled connections: a cold search of a large registry is a round trip per
        name and per new tag, so in series it would take the registry's latency that many
        times over."""
        # lazy: the pool (~7 ms) only for parallel fetches
        from concurrent.futures import ThreadPoolExecutor

        stale = [
            n for n in names if not self._fresh(self._load_cache()["repos"].get(n, {}).get("at"))
        ]
        if len(stale) < 2:
            return
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
            for future in [pool.submit(self._fetch_repo, n, newest_only=True) for n in stale]:
                future.result()

    def _fetch_repo(self, name: str, *, newest_only: bool = False) -> dict[str, Any]:
        """Fetch the tags of ``name`` and any manifest not cached under the same tag;
        with ``newest_only`` (a search), only down to the newest version not yanked that
        is a vudo artifact (one manifest, not one per version): the entry is then marked
        incomplete and resolution fetches the rest when it asks."""
        cache = self._load_cache()
        old = cache["repos"].get(name)
        old_manifests = old.get("manifests", {}) if isinstance(old, dict) else {}
        repo = self._repo(name)
        tags = self.client.list_tags(repo)
        manifests: dict[str, Any] = {}
        parsed = [(tag_version(t), t) for t in tags if not t.startswith(YANK_TAG_PREFIX)]
        versions = sorted(((v, t) for v, t in parsed if v is not None), reverse=True)
        complete, live = True, False
        for version, tag in versions:  # newest first
            if newest_only and live:
                complete = False  # the newest live version is known: enough for a search
                break
            cached = old_manifests.get(tag) if isinstance(old_manifests, dict) else None
            if isinstance(cached, dict):
                manifests[tag] = cached
            else:
                record = self._fetch_manifest(repo, tag)
                if record is None:
                    continue  # deleted between the listing and now
                manifests[tag] = record
            live = f"{YANK_TAG_PREFIX}{tag}" not in tags and (
                self._entry(name, version, manifests[tag]) is not None
            )
        if not complete and isinstance(old_manifests, dict):
            for tag, cached in old_manifests.items():
                if tag in tags and tag not in manifests and isinstance(cached, dict):
                    manifests[tag] = cached
        entry = {"at": self.clock(), "tags": tags, "manifests": manifests, "complete": complete}
        cache["repos"][name] = entry
        self._dirty = True
        return entry

    def _fetch_manifest(self, repo: str, tag: str) -> dict[str, Any] | None:
        """What the cache keeps of one tag's manifest (None if the tag is gone)."""
        try:
            m = self.client.get_manifest(repo, tag)
        except NotFoundError:
            return None
        return {
            "digest": m.digest,
            "annotations": dict(m.annotations),
            "artifact_type": m.artifact_type,
            "layers": [d.to_dict() for d in m.layers],
        }

    def summaries(self) -> list[SpiritSummary]:
        """Every Spirit here, newest version each: from a small summary file while it is
        fresh (a warm search reads only that), else worked out from the catalog, tags and
        annotations (cached as well)."""
        cached = self._cached_summaries()
        if cached is not None:
            return cached
        out: list[SpiritSummary] = []
        for name in self.names():
            made = summarize(name, self.entries(name, complete=False))
            if made is not None:
                out.append(made)
        self._summary = {
            "url": self.url,
            "at": self.clock(),
            "items": [
                {
                    "name": m.name,
                    "version": m.version,
                    "description": m.description,
                    "capabilities": list(m.capabilities),
                    "signer": m.signer,
                    "author": m.author,
                }
                for m in out
            ],
        }
        return out

    def _repo_entry(self, name: str, *, fresh: bool, complete: bool = True) -> dict[str, Any]:
        entry = self._load_cache()["repos"].get(name)
        if (
            fresh
            or not isinstance(entry, dict)
            or not self._fresh(entry.get("at"))
            or (complete and entry.get("complete") is False)
        ):
            entry = self._fetch_repo(name, newest_only=not complete)
        return entry  # type: ignore[no-any-return]

    def entries(
        self, name: str, *, fresh: bool = False, complete: bool = True
    ) -> list[PublishedVersion]:
        """Every vudo version of ``name`` here, lowest first (yanked ones flagged);
        tags that are not vudo artifacts are left out. With ``complete`` False (a
        search), versions below the newest live one may be missing."""
        entry = self._repo_entry(name, fresh=fresh, complete=complete)
        tags = set(entry.get("tags") or [])
        out: list[PublishedVersion] = []
        for tag, m in (entry.get("manifests") or {}).items():
            version = tag_version(tag)
            record = self._entry(name, version, m) if version is not None else None
            if record is not None:
                out.append(dataclasses.replace(record, yanked=f"{YANK_TAG_PREFIX}{tag}" in tags))
        return sorted(out, key=lambda e: e.version)

    def _entry(self, name: str, version: Version, m: Any) -> PublishedVersion | None:
        if not isinstance(m, dict) or m.get("artifact_type") != SPIRIT_ARTIFACT_TYPE:
            return None
        ann = m.get("annotations") or {}
        layers = m.get("layers") or []
        if (
            len(layers) != 1
            or not isinstance(layers[0], dict)
            or layers[0].get("mediaType") != SPIRIT_LAYER_TYPE
        ):
            return None
        digest = str(layers[0].get("digest", ""))
        signer = ann.get(ANN_SIGNER, "")
        try:
            manifest = json.loads(ann.get(ANN_MANIFEST, ""))
        except (ValueError, RecursionError):
            return None
        if not (
            digest.startswith("sha256:")
            and _HEX64.fullmatch(digest[7:])
            and isinstance(signer, str)
            and _HEX64.fullmatch(signer)
            and isinstance(manifest, dict)
            and manifest.get("name") == name
            and ann.get(ANN_TITLE) == name
            and ann.get(ANN_VERSION) == str(version)
        ):
            return None
        return PublishedVersion(
            name,
            version,
            digest[7:],
            signer,
            int(layers[0].get("size", 0)),
            f"{self.location.netloc}/{self._repo(name)}:{version_tag(version)}",
            manifest,
        )

    def candidates(self, name: str) -> Iterable[Candidate]:
        """Every version here from fresh tags; yanked ones are flagged, and the resolver
        skips them unless a lock names them."""
        return [
            dataclasses.replace(e.candidate(self.label), yanked=e.yanked)
            for e in self.entries(name, fresh=True)
        ]

    def fetch(self, name: str, version: Version | str) -> Path:
        """Download version ``version`` of ``name`` (once) into the cache: the tag's
        manifest must be a vudo artifact, the layer must match its digest and the package
        its signature and name before the path is returned."""
        return self.fetch_checked(name, version).path

    def fetch_checked(self, name: str, version: Version | str) -> Fetched:
        """:meth:`fetch`, and the package's checked signature (so installing does not
        check it again)."""
        wanted = parse_version(str(version))
        repo = self._repo(name)
        tag = version_tag(wanted)
        ref = f"{self.location.netloc}/{repo}:{tag}"
        m = self.client.get_manifest(repo, tag)
        m = parse_image_manifest(m.raw, m.digest, ref, max_layer=MAX_PACKAGE_BYTES)
        if m.artifact_type != SPIRIT_ARTIFACT_TYPE:
            raise VerificationError(
                f"{ref} is not a vudo Spirit (artifactType {str(m.artifact_type)[:80]!r})",
                hint="the repository holds another kind of artifact; check the name",
            )
        if len(m.layers) != 1 or m.layers[0].media_type != SPIRIT_LAYER_TYPE:
            raise VerificationError(
                f"{ref} does not hold one {SPIRIT_LAYER_TYPE} layer",
                hint="the artifact was not pushed by vudo; refusing it",
            )
        layer = m.layers[0]
        digest = layer.digest[7:]
        target = self.cache_dir / f"{digest}.spirit"
        if target.is_file():
            cached, _, members = digest_package(target)
            if cached == digest:
                checked = self._check_package(target, name, wanted, ref, streamed=members)
                return Fetched(target, checked, digest)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f".{digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
        try:
            # One pass: the layer is hashed, and its members hashed and CRC-checked, as
            # it arrives; checking the signature then reads only headers.
            members = MemberDigests()
            self.client.fetch_blob(
                repo, layer, tmp, progress=self.progress or _quiet, sink=members.update
            )
            checked = self._check_package(tmp, name, wanted, ref, streamed=members)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return Fetched(target, dataclasses.replace(checked, path=target), digest)

    @staticmethod
    def _check_package(
        path: Path, name: str, version: Version, ref: str, *, streamed: MemberDigests | None = None
    ) -> CheckedPackage:
        checked = check_package(path, streamed=streamed)
        if checked.manifest.name != name or checked.manifest.version != version:
            raise VerificationError(
                f"{ref} holds {checked.manifest.name} {checked.manifest.version}",
                hint="the registry serves another package under this tag; refusing it",
            )
        return checked

    # -- writing

    def plan(self, package: Path) -> tuple[PublishPlan, CheckedPackage]:
        """Verify ``package`` and say what publishing it pushes (nothing is sent)."""
        # One read of the package: the layer digest and every member's digest.
        digest, size, members = digest_package(Path(package))
        verified = check_package(Path(package), streamed=members)
        m = verified.manifest
        name = _check_name(m.name)
        check_publishable(m)
        annotations = {
            ANN_TITLE: name,
            ANN_VERSION: str(m.version),
            ANN_DESCRIPTION: m.description,
            ANN_CAPABILITIES: ",".join(c.value for c in m.capabilities),
            ANN_SIGNER: verified.signer,
            ANN_MANIFEST: canonical_manifest_bytes(m).decode(),
        }
        ref = f"{self.location.netloc}/{self._repo(name)}:{version_tag(m.version)}"
        return (
            PublishPlan(
                name,
                m.version,
                ref,
                digest,
                size,
                verified.signer,
                annotations,
            ),
            verified,
        )

    def publish(
        self, package: Path, *, allow_new_signer: bool = False, dry_run: bool = False
    ) -> PublishResult:
        """Push a signed package as an OCI artifact. Versions are immutable: the same
        bytes again are a no-op, other bytes are refused; a name published by another
        signer is refused unless ``allow_new_signer``."""
        # lazy: the pool (~7 ms) only for parallel fetches
        from concurrent.futures import ThreadPoolExecutor

        package = Path(package)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Loading the CA store (~40 ms) overlaps reading and checking the package.
            warming = pool.submit(self.client.warm)
            plan, verified = self.plan(package)
            warming.result()
        repo = self._repo(plan.name)
        tag = version_tag(plan.version)
        layer = Descriptor(
            SPIRIT_LAYER_TYPE,
            "sha256:" + plan.digest,
            plan.size,
            {ANN_TITLE: f"{plan.name}-{plan.version}.spirit"},
        )
        raw = build_manifest(
            artifact_type=SPIRIT_ARTIFACT_TYPE, layers=[layer], annotations=plan.annotations
        )
        manifest_digest = "sha256:" + sha256(raw).hexdigest()
        existing = self.client.manifest_digest(repo, tag)
        if existing is not None:
            if existing != manifest_digest:
                raise InvalidInputError(
                    f"{plan.name} {plan.version} is already published with different contents",
                    hint="published versions are immutable; bump the version "
                    "in spirit.toml and publish again",
                )
            return PublishResult(
                plan.name, plan.version, plan.digest, plan.signer, package, already_published=True
            )
        others = {e.signer for e in self.entries(plan.name, fresh=True)}
        if others and plan.signer not in others and not allow_new_signer:
            raise VerificationError(
                f"{plan.name} is published in this registry by another key",
                hint="publish under a new name, or pass --allow-new-signer if the owner "
                "changed keys",
            )
        if not dry_run:
            self.client.upload_blob(repo, EMPTY_DIGEST, len(EMPTY_BLOB), bytes_reader(EMPTY_BLOB))
            self.client.upload_blob(
                repo,
                layer.digest,
                layer.size,
                file_reader(package),
                progress=self.progress or _quiet,
            )
            self.client.put_manifest(repo, tag, raw)
            self._load_cache()["repos"].pop(plan.name, None)
            self._dirty = True
            self._forget_summary()
        del verified
        return PublishResult(
            plan.name, plan.version, plan.digest, plan.signer, package, already_published=False
        )

    def yank(self, name: str, version: Version | str, *, undo: bool = False) -> bool:
        """Mark (or unmark) a published version as yanked; False if it already was (not)."""
        wanted = parse_version(str(version))
        entries = self.entries(name, fresh=True)
        entry = next((e for e in entries if e.version == wanted), None)
        if entry is None:
            listed = ", ".join(str(e.version) for e in entries) or "none"
            raise NotFoundError(
                f"{name} {wanted} is not in the registry {self.url}",
                hint=f"published versions: {listed}",
            )
        repo = self._repo(name)
        tag = version_tag(wanted)
        yank_tag = f"{YANK_TAG_PREFIX}{tag}"
        self._load_cache()["repos"].pop(name, None)
        self._dirty = True
        self._forget_summary()
        if undo:
            digest = self.client.manifest_digest(repo, yank_tag)
            if digest is None:
                return False
            self.client.delete_manifest(repo, digest)
            return True
        if entry.yanked:
            return False
        subject_digest = self.client.manifest_digest(repo, tag)
        subject = self.client.get_manifest(repo, tag)
        if subject_digest is None:
            raise NotFoundError(f"{name} {wanted} vanished from {self.url}", hint="try again")
        raw = build_manifest(
            artifact_type=YANK_ARTIFACT_TYPE,
            layers=[Descriptor("application/vnd.oci.empty.v1+json", EMPTY_DIGEST, 2)],
            annotations={ANN_TITLE: name, ANN_VERSION: str(wanted), "dev.vudo.yanked": "true"},
            subject=Descriptor(
                "application/vnd.oci.image.manifest.v1+json", subject.digest, len(subject.raw)
            ),
        )
        self.client.put_manifest(repo, yank_tag, raw)
        return True


def _is_name(text: str) -> bool:
    try:
        validate_name(text)
    except InvalidInputError:
        return False
    return True


def _quiet(done: int, total: int) -> None:
    """No progress report."""


Registry = DirectoryRegistry | HttpRegistry | OciRegistry


def _parse_url(url: str) -> urllib.parse.ParseResult:
    """``urlparse`` with its ValueErrors ("Invalid IPv6 URL", a port out of range, ...)
    turned into InvalidInputError; the port is read here so a bad one fails now."""
    try:
        parsed = urllib.parse.urlparse(url)
        parsed.port  # noqa: B018 -- raises ValueError for a port that is not 0..65535
    except ValueError as exc:
        raise InvalidInputError(
            f"invalid registry URL {url}: {exc}",
            hint="use http://host[:port]/path or a directory path",
        ) from None
    if any(ord(c) < 0x20 or c == "\x7f" or (c == " " and parsed.scheme != "file") for c in url):
        raise InvalidInputError(
            f"invalid registry URL {url!r}: spaces or control characters",
            hint="percent-encode them (%20)",
        )
    return parsed


def open_registry(
    location: str | Path, *, cache_dir: Path | None = None, create: bool = False, **oci_options: Any
) -> Registry:
    """A registry from a URL (``oci://``, ``http(s)://``, ``file://``) or a directory
    path; ``oci_options`` (credentials, ca_file, progress, ...) go to :class:`OciRegistry`."""
    text = str(location)
    if text.startswith("oci://"):
        if cache_dir is None:
            raise InvalidInputError("an OCI registry needs a cache directory")
        return OciRegistry(text, cache_dir=cache_dir, **oci_options)
    if text.startswith(("http://", "https://")):
        if cache_dir is None:
            raise InvalidInputError("an HTTP registry needs a cache directory")
        return HttpRegistry(text, cache_dir=cache_dir)
    if text.startswith("file://"):
        text = urllib.parse.unquote(_parse_url(text).path)
    elif "://" in text:
        raise InvalidInputError(
            f"unsupported registry URL {text}",
            hint="use oci://, http://, https://, file:// or a directory path",
        )
    return DirectoryRegistry(Path(text).expanduser(), create=create)


__all__ = [
    "REGISTRY_FORMAT",
    "DirectoryRegistry",
    "Fetched",
    "HttpRegistry",
    "OciRegistry",
    "PublishPlan",
    "PublishResult",
    "PublishedVersion",
    "Registry",
    "SpiritSummary",
    "open_registry",
    "summaries",
    "translate_urllib_error",
]
