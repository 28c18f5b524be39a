"""A client for the OCI distribution spec (GHCR, Docker Hub, Harbor, Zot, CNCF Distribution).

Only what vudo needs: manifests and blobs by repository, tag lists, the catalog, blob
uploads (monolithic and chunked), existence checks (HEAD) so a retried push does not send
a blob twice, and deletes. Built on httpx (pooled connections, separate connect and read
timeouts, streamed bodies) rather than oras-py, which reads a blob into memory to upload
it, sets no timeouts, and logs token responses at debug level.

Everything a registry sends is hostile input: a manifest is read into at most
:data:`MAX_MANIFEST_BYTES`, JSON is parsed with a nesting bound, a blob is streamed into a
file while it is hashed and counted against the size its descriptor gives, and a digest
the server names (``Docker-Content-Digest``) must equal the one computed here.

Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Basic`` sends the
stored user name and password, ``Bearer`` trades them (or nothing, anonymously) at the
realm for a token scoped to the repository (the Docker token protocol). Secrets are never
part of a message, a ``repr`` or a log.

httpx and socket failures become vudo errors in :func:`translate_http_error` (the one
boundary for this module); HTTP statuses in :func:`status_error`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import queue
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.errors import (
    InvalidInputError,
    NotFoundError,
    RegistryError,
    VerificationError,
    VudoError,
    printable,
)
from vudo.hashing import sha256
from vudo.resources import Resource

if TYPE_CHECKING:
    import httpx


def _load_httpx() -> None:
    """Import httpx (~150 ms) when the first request is made, not with this module: a
    search answered from the cache, or parsing a URL, never needs it. The functions that
    name httpx run only once a client exists (or an httpx exception is in flight)."""
    global httpx
    import httpx  # lazy: httpx (~150 ms) only once a request is made


MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:" + sha256(EMPTY_BLOB).hexdigest()
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_TOKEN_BYTES = 1024 * 1024
MAX_LIST_PAGES = 1000
# Blobs up to this size go in one streamed PUT; larger ones in PATCH chunks of this size
# (every request is a round trip and, on htpasswd registries, a bcrypt check; a retry
# starts a new session either way, so smaller chunks would buy nothing).
DEFAULT_CHUNK = 128 * 1024 * 1024
# A body slower than this on average (after the read timeout) is abandoned.
MIN_RATE = 16 * 1024
# Connections kept open to one registry (a cold search fetches this many at a time).
POOL_CONNECTIONS = 16
# Blobs from this size are hashed on a helper thread while they download.
PIPELINE_MIN = 4 * 1024 * 1024
_PENDING = 16  # chunks (of up to 1 MiB) waiting for the hashing thread

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

Progress = Callable[[int, int], None]
"""(bytes done, bytes total) during a blob transfer."""


def _no_progress(done: int, total: int) -> None:
    """Default progress callback: report nothing."""


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (the only hosts spoken to in
    plain HTTP)."""
    bare = host.strip("[]").lower()
    if bare in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class OciLocation:
    """Where an ``oci://HOST[:PORT]/NAMESPACE`` registry is: ``base`` is the HTTP(S) root."""

    host: str
    port: int | None
    namespace: str
    url: str  # as the user wrote it, normalised (oci://host:port/ns)

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    @property
    def secure(self) -> bool:
        return not is_loopback(self.host)

    @property
    def base(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.netloc}"

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}" if self.namespace else name


def parse_oci_url(url: str) -> OciLocation:
    """Parse ``oci://HOST[:PORT][/NAMESPACE]``; InvalidInputError naming what is wrong."""
    hint = "use oci://HOST[:PORT]/NAMESPACE, e.g. oci://ghcr.io/my-org"
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise InvalidInputError(
            f"invalid registry URL {url!r}: spaces or control characters", hint=hint
        )
    if not url.startswith("oci://"):
        raise InvalidInputError(f"not an oci:// registry URL: {url}", hint=hint)
    rest = url[len("oci://") :]
    netloc, _, path = rest.partition("/")
    if "@" in netloc:
        raise InvalidInputError(
            f"invalid registry URL {printable(url)}: credentials do not belong in the URL",
            hint="use `vudo login` for credentials",
        )
    if "?" in rest or "#" in rest:
        raise InvalidInputError(
            f"invalid registry URL {url}: no query or fragment allowed", hint=hint
        )
    m = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?", netloc)
    if not m or not m.group(1) or not _HOST_RE.fullmatch(m.group(1)):
        raise InvalidInputError(f"invalid registry URL {url}: bad host {netloc!r}", hint=hint)
    host = m.group(1).lower()
    port = int(m.group(2)) if m.group(2) else None
    if port is not None and not 0 < port < 65536:
        raise InvalidInputError(
            f"invalid registry URL {url}: port {port} is out of range", hint=hint
        )
    namespace = path.strip("/")
    if namespace and not _REPO_RE.fullmatch(namespace):
        raise InvalidInputError(
            f"invalid registry URL {url}: namespace {namespace!r} is not a valid repository path",
            hint="lowercase letters, digits, '.', '_', '-' and '/' between components",
        )
    netloc_norm = f"{host}:{port}" if port is not None else host
    normal = f"oci://{netloc_norm}/{namespace}" if namespace else f"oci://{netloc_norm}"
    return OciLocation(host, port, namespace, normal)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password, or a token; the secrets never appear in a repr."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def basic(self) -> str | None:
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


# ------------------------------------------------------------------ errors (the boundary)


def translate_http_error(exc: BaseException, what: str) -> VudoError:
    """httpx / socket / TLS failures -> vudo errors (the one HTTP boundary of this module).

    ``what`` names the request without any secret ("GET oci://host/ns/name manifest").
    """
    if isinstance(exc, VudoError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return RegistryError(
            f"{what} timed out ({type(exc).__name__})",
            hint="the registry is slow or unreachable; try again later",
        )
    if isinstance(exc, httpx.ConnectError):
        if (
            isinstance(exc.__cause__, ssl.SSLError)
            or "SSL" in str(exc)
            or "certificate" in str(exc)
        ):
            return RegistryError(
                f"{what}: TLS verification failed",
                hint="the registry's certificate is not trusted; pass --ca-file for a private CA",
            )
        return RegistryError(
            f"cannot connect for {what}",
            hint="check the registry URL and that the registry is running",
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return RegistryError(
            f"{what}: the connection broke ({type(exc).__name__})",
            hint="the registry closed the connection; try again",
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return RegistryError(f"{what}: too many redirects", hint="check the registry URL")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return InvalidInputError(f"{what}: unsupported URL", hint="check the registry URL")
    if isinstance(exc, httpx.HTTPError | OSError):
        return RegistryError(f"{what} failed ({type(exc).__name__})", hint="try again later")
    return RegistryError(f"{what} failed ({type(exc).__name__})", hint="try again later")


def status_error(status: int, what: str, *, authenticated: bool) -> VudoError:
    """The vudo error for an unexpected HTTP status of a registry request."""
    if status == 401:
        return RegistryError(
            f"{what}: authentication failed (HTTP 401)",
            hint="log in with `vudo login REGISTRY --username U --password-stdin`"
            if not authenticated
            else "check the user name and password (`vudo login`)",
        )
    if status == 403:
        return RegistryError(
            f"{what}: access denied (HTTP 403)",
            hint="the account lacks permission for this repository",
        )
    if status == 404:
        return NotFoundError(
            f"{what}: not found (HTTP 404)",
            hint="check the registry URL and the Spirit name and version",
        )
    if status == 429:
        return RegistryError(f"{what}: rate limited (HTTP 429)", hint="wait and try again")
    if status >= 500:
        return RegistryError(
            f"{what}: registry error (HTTP {status})", hint="the registry failed; try again later"
        )
    return RegistryError(
        f"{what}: unexpected HTTP {status}", hint="the server may not be an OCI registry"
    )


class _Transient(RegistryError):
    """A connection that broke or timed out (worth a new upload session)."""

    @classmethod
    def wrap(cls, err: VudoError) -> VudoError:
        return cls(err.message, hint=err.hint) if type(err) is RegistryError else err


def _hostile(what: str, problem: str) -> VerificationError:
    return VerificationError(
        f"{what}: {problem}",
        hint="the registry sent something that is not a valid response; refusing it",
    )


def json_depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests at most ``limit`` containers deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return True


def parse_json(data: bytes, what: str) -> Any:
    """Registry JSON, bounded in nesting; VerificationError if it is not."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _hostile(what, f"not JSON ({type(exc).__name__})") from None
    if not json_depth_ok(value):
        raise _hostile(what, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    return value


# ------------------------------------------------------------------ auth challenges

_PARAM_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^",\s]*)\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {...}); ("", {}) if malformed."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if not m or m.end() == pos:
            return "", {}
        value = m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1).lower()] = value
        pos = m.end()
    return scheme.lower(), params


def _next_link(resp: httpx.Response) -> str | None:
    link = resp.headers.get("link")
    if not link:
        return None
    m = re.fullmatch(r'\s*<([^>]*)>\s*;\s*rel="?next"?\s*', link)
    return m.group(1) if m else None


# ------------------------------------------------------------------ the client


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def parse_descriptor(value: Any, what: str, *, max_size: int) -> Descriptor:
    if not isinstance(value, dict):
        raise _hostile(what, "a descriptor is not an object")
    media, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not (
        isinstance(media, str)
        and len(media) <= 255
        and isinstance(digest, str)
        and _DIGEST_RE.fullmatch(digest)
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
    ):
        raise _hostile(what, "a descriptor lacks a valid mediaType, sha256 digest or size")
    if size > max_size:
        raise _hostile(what, f"a blob of {size} bytes is over the {max_size}-byte limit")
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise _hostile(what, "annotations are not a string map")
    artifact = value.get("artifactType")
    return Descriptor(
        media, digest, size, annotations, artifact if isinstance(artifact, str) else None
    )


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """An image manifest as fetched: its raw bytes, digest and parsed fields."""

    raw: bytes
    digest: str
    artifact_type: str | None
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str]


def build_manifest(
    *,
    artifact_type: str,
    layers: list[Descriptor],
    annotations: Mapping[str, str],
    subject: Descriptor | None = None,
) -> bytes:
    """An OCI 1.1 artifact manifest (config is the empty descriptor), canonical JSON."""
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": EMPTY_DIGEST,
            "size": 2,
            "data": base64.b64encode(EMPTY_BLOB).decode(),
        },
        "layers": [d.to_dict() for d in layers],
        "annotations": dict(annotations),
    }
    if subject is not None:
        body["subject"] = subject.to_dict()
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class _Digester(Resource):
    """SHA-256 of a download, and ``sink`` over its chunks, on a helper thread while the
    caller receives and writes (hashlib and zlib release the GIL on large buffers, so on
    a second core checking costs the transfer almost nothing). At most
    :data:`_PENDING` chunks wait, bounding memory; small blobs are hashed inline."""

    def __init__(self, sink: Callable[[bytes], object] | None, *, threaded: bool) -> None:
        self._sha = sha256(stream=True)
        self._sink = sink
        self._failure: list[BaseException] = []
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(_PENDING)
            self._thread = threading.Thread(target=self._run, name="vudo-digest", daemon=True)
            self._thread.start()

    def _take(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        if self._sink is not None:
            self._sink(chunk)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if not self._failure:
                try:
                    self._take(chunk)
                except BaseException as exc:  # reported by hexdigest()
                    self._failure.append(exc)

    def put(self, chunk: bytes) -> None:
        if self._failure:
            raise self._failure[0]
        if self._queue is None:
            self._take(chunk)
        else:
            self._queue.put(chunk)

    def hexdigest(self) -> str:
        """The digest of every chunk put (and any exception ``sink`` raised)."""
        self.close()
        if self._failure:
            raise self._failure[0]
        return self._sha.hexdigest()

    def close(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None


class OciClient(Resource):
    """One registry host: pooled connections, authentication, retries, bounded reads.

    ``sleep`` and ``retries`` are parameters so tests can make backoff instant, ``monotonic``
    so they can let a Bearer token expire.
    """

    def __init__(
        self,
        location: OciLocation,
        *,
        credentials: Credentials | None = None,
        ca_file: Path | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        min_rate: int = MIN_RATE,
        retries: int = 4,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        self.location = location
        self.credentials = credentials or Credentials()
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.chunk_size = chunk_size
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            if not Path(ca_file).is_file():
                raise NotFoundError(
                    f"CA file {ca_file} does not exist", hint="pass a PEM file with --ca-file"
                )
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (ssl.SSLError, OSError) as exc:
                raise InvalidInputError(
                    f"CA file {ca_file} is not a PEM certificate ({type(exc).__name__})",
                    hint="pass a PEM file with --ca-file",
                ) from None
        self._verify = verify
        self._timeouts = (connect_timeout, read_timeout)
        self.min_rate = min_rate
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._scheme: str | None = None  # "basic" or "bearer" once challenged
        self._clock = monotonic
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expires at)
        self._bearer_params: dict[str, str] = {}

    @property
    def _http(self) -> httpx.Client:
        """The pooled client, made on first use: loading the CA store costs ~150 ms, which
        a search answered from the cache never pays."""
        with self._client_lock:
            if self._client is None:
                _load_httpx()
                self._client = httpx.Client(
                    verify=self._verify,
                    follow_redirects=True,
                    max_redirects=5,
                    timeout=httpx.Timeout(self._timeouts[1], connect=self._timeouts[0]),
                    headers={"User-Agent": "vudo"},
                    trust_env=False,
                    limits=httpx.Limits(
                        max_connections=POOL_CONNECTIONS,
                        max_keepalive_connections=POOL_CONNECTIONS,
                    ),
                    event_hooks={"request": [_plain_http_only_to_loopback]},
                )
            return self._client

    def warm(self) -> None:
        """Make the pooled client now (publish does it beside hashing the package)."""
        self._http  # noqa: B018 -- the property makes the client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- names and urls

    def _url(self, path: str) -> str:
        return f"{self.location.base}/v2/{path}"

    def describe(self, repo: str, what: str) -> str:
        return f"{what} {self.location.netloc}/{repo}"

    # -- authentication

    def _auth_header(self, scope: str, what: str) -> str | None:
        if self._scheme == "basic":
            return self.credentials.basic()
        if self._scheme == "bearer":
            held = self._tokens.get(scope)
            if held is not None and self._clock() >= held[1]:
                # Expired by the token server's own ``expires_in``: a new one now, rather
                # than a request (perhaps a large upload) refused with 401 first.
                held = self._tokens[scope] = self._fetch_token(self._bearer_params, scope, what)
            return f"Bearer {held[0]}" if held is not None else None
        if self._scheme is None and self.credentials.token and not self.credentials.username:
            return f"Bearer {self.credentials.token}"
        return None

    def _authenticate(self, resp: httpx.Response, scope: str, what: str, sent: str | None) -> bool:
        """React to a 401 to a request that carried ``sent`` (an Authorization value or
        None): learn the scheme, fetch a token; False when there is nothing new to try.
        Threads share the client, so another may have authenticated meanwhile."""
        scheme, params = parse_challenge(resp.headers.get("www-authenticate", ""))
        if scheme == "basic":
            basic = self.credentials.basic()
            if basic is None or sent == basic:
                return False
            self._scheme = "basic"
            return True
        if scheme == "bearer" and params.get("realm"):
            self._scheme = "bearer"
            self._bearer_params = params
            current = self._tokens.get(scope)
            if current is not None and sent != f"Bearer {current[0]}":
                return True
            # No token yet, or the one sent was refused (expired early, revoked): the
            # caller allows this once more before the 401 stands.
            self._tokens[scope] = self._fetch_token(params, scope, what)
            return True
        return False

    def _fetch_token(self, params: Mapping[str, str], scope: str, what: str) -> tuple[str, float]:
        """A token for ``scope`` from the challenge's realm, and when to stop using it."""
        realm = params["realm"]
        parsed = urllib.parse.urlsplit(realm)
        host = parsed.hostname or ""
        if (
            parsed.scheme not in ("http", "https")
            or not host
            or (parsed.scheme == "http" and not is_loopback(host))
        ):
            raise _hostile(what, "the token realm is not an https URL")
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        headers: dict[str, str] = {}
        try:
            if self.credentials.token and not self.credentials.username:
                resp = self._http.post(
                    realm,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": self.credentials.token,
                        "client_id": "vudo",
                        **query,
                    },
                )
            else:
                basic = self.credentials.basic()
                if basic:
                    headers["Authorization"] = basic
                resp = self._http.get(realm, params=query, headers=headers)
            data = self._read_bounded(resp, MAX_TOKEN_BYTES, f"token for {what}")
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, f"token request for {what}") from None
        if resp.status_code != 200:
            raise status_error(
                resp.status_code,
                f"token request for {what}",
                authenticated=bool(headers) or bool(self.credentials.token),
            )
        body = parse_json(data, f"token for {what}")
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or len(token) > 64 * 1024
            or any(ord(c) < 0x21 or ord(c) > 0x7E for c in token)
        ):
            raise _hostile(f"token for {what}", "no usable token in the response")
        # The Docker token spec: expires_in seconds, 60 when absent. Renewed a little
        # early, so a token does not lapse between being sent and being checked.
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
            lifetime = 60
        lifetime = min(max(float(lifetime), 1.0), 86400.0)
        return token, self._clock() + lifetime - min(10.0, lifetime / 4)

    # -- requests

    def _read_bounded(self, resp: httpx.Response, limit: int, what: str) -> bytes:
        declared = resp.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            resp.close()
            raise _hostile(what, f"{declared} bytes is over the {limit}-byte limit")
        buf = bytearray()
        pace = self._pace(what)
        for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > limit:
                resp.close()
                raise _hostile(what, f"over the {limit}-byte limit")
            pace(len(buf))
        return bytes(buf)

    def _pace(self, what: str) -> Callable[[int], None]:
        """A check that a response body keeps arriving at ``min_rate`` bytes a second on
        average once ``read_timeout`` has passed (curl's --speed-limit): the read timeout
        bounds each wait, this bounds the whole body, so a server dripping a byte just
        inside the read timeout cannot hold a transfer open for days."""
        started = self._clock()
        grace, rate = self._timeouts[1], self.min_rate

        def check(done: int) -> None:
            elapsed = self._clock() - started
            if elapsed > grace and done < (elapsed - grace) * rate:
                raise RegistryError(
                    f"{what} timed out: {done} bytes in {elapsed:.0f} s, under "
                    f"{rate // 1024} KiB/s",
                    hint="the registry is too slow or stalling; try again later",
                )

        return check

    def _retry_delay(self, resp: httpx.Response | None, attempt: int) -> float:
        delay = self.backoff * 2.0**attempt
        if resp is not None:
            after = resp.headers.get("retry-after", "")
            if after.isdigit():
                delay = max(delay, float(after))
        return min(delay, 10.0)

    def send(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        headers: Mapping[str, str] | None = None,
        body: Callable[[], bytes | Iterator[bytes]] | None = None,
        ok: tuple[int, ...] = (200,),
        stream: bool = False,
    ) -> httpx.Response:
        """One request with authentication, retries (429, 5xx, broken connections) and
        status checking. ``body`` makes the request body anew for each attempt. A
        streamed response must be closed by the caller."""
        attempt = 0
        auth_tries = 0
        while True:
            hdrs = dict(headers or {})
            auth = self._auth_header(scope, what)
            if auth:
                hdrs["Authorization"] = auth
            content = body() if body is not None else None
            try:
                request = self._http.build_request(method, url, headers=hdrs, content=content)
                resp = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                # A request that never reached the server is safe to repeat; one that
                # broke part-way is repeated only if it is idempotent (an upload session
                # is gone after a broken PATCH or PUT: upload_blob starts a new one).
                retryable = isinstance(
                    exc, httpx.ConnectError | httpx.PoolTimeout | httpx.ConnectTimeout
                ) or (
                    method in ("GET", "HEAD")
                    and isinstance(
                        exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError
                    )
                )
                if retryable and attempt < self.retries:
                    self.sleep(self._retry_delay(None, attempt))
                    attempt += 1
                    continue
                raise _Transient.wrap(translate_http_error(exc, what)) from None
            except httpx.HTTPError as exc:
                raise translate_http_error(exc, what) from None
            if resp.status_code == 401 and auth_tries < 2:
                resp.close()
                auth_tries += 1
                if self._authenticate(resp, scope, what, auth):
                    continue
                raise status_error(
                    401, what, authenticated=auth is not None or self._scheme is not None
                )
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt < self.retries:
                resp.close()
                self.sleep(self._retry_delay(resp, attempt))
                attempt += 1
                continue
            if resp.status_code not in ok:
                resp.close()
                raise status_error(resp.status_code, what, authenticated=auth is not None)
            if not stream and method == "HEAD":
                resp.close()
            elif not stream:
                try:
                    self._read_bounded(resp, MAX_MANIFEST_BYTES, what)
                except httpx.HTTPError as exc:
                    raise translate_http_error(exc, what) from None
                finally:
                    resp.close()
            return resp

    # -- reading

    def ping(self) -> None:
        """``GET /v2/``: that this is a registry and the credentials are accepted."""
        self.send("GET", self._url(""), scope="", what=f"login to {self.location.netloc}")

    def get_manifest(
        self, repo: str, reference: str, *, accept: str = MANIFEST_MEDIA_TYPE
    ) -> ImageManifest:
        """The manifest ``repo:reference`` (tag or digest), bounded and digest-checked."""
        what = self.describe(repo, f"manifest {reference} of")
        resp = self.send(
            "GET",
            self._url(f"{repo}/manifests/{reference}"),
            scope=f"repository:{repo}:pull",
            what=what,
            headers={"Accept": accept},
            stream=True,
        )
        try:
            raw = self._read_bounded(resp, MAX_MANIFEST_BYTES, what)
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, what) from None
        finally:
            resp.close()
        digest = "sha256:" + sha256(raw).hexdigest()
        named = resp.headers.get("docker-content-digest")
        if named is not None and named != digest:
            raise _hostile(what, "Docker-Content-Digest does not match the manifest's bytes")
        if reference.startswith("sha256:") and reference != digest:
            raise _hostile(what, "the manifest does not match the digest asked for")
        return parse_image_manifest(raw, digest, what)

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest of ``repo:reference`` (HEAD), or None when there is no such tag."""
        what = self.describe(repo, f"manifest {reference} of")
        try:
            resp = self.send(
                "HEAD",
                self._url(f"{repo}/manifests/{reference}"),
                scope=f"repository:{repo}:pull",
                what=what,
                headers={"Accept": MANIFEST_MEDIA_TYPE},
            )
        except NotFoundError:
            return None
        named = str(resp.headers.get("docker-content-digest", ""))
        if not _DIGEST_RE.fullmatch(named):
            # Some registries send no digest on HEAD: fetch it.
            return self.get_manifest(repo, reference).digest
        return named

    def fetch_blob(
        self,
        repo: str,
        desc: Descriptor,
        dest: Path,
        *,
        progress: Progress = _no_progress,
        sink: Callable[[bytes], object] | None = None,
    ) -> None:
        """Stream blob ``desc`` of ``repo`` into ``dest`` (created), checking its size and
        digest while it arrives; on any failure ``dest`` is removed. ``sink`` sees every
        chunk, in order, as it is hashed (a package's members are checked in the same
        pass); an exception from it fails the download."""
        what = self.describe(repo, f"blob {desc.digest[:19]} of")
        done = 0
        try:
            resp = self.send(
                "GET",
                self._url(f"{repo}/blobs/{desc.digest}"),
                scope=f"repository:{repo}:pull",
                what=what,
                stream=True,
            )
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with _Digester(sink, threaded=desc.size >= PIPELINE_MIN) as digester:
                    try:
                        progress(0, desc.size)
                        pace = self._pace(what)
                        for chunk in resp.iter_raw():
                            done += len(chunk)
                            if done > desc.size:
                                raise _hostile(
                                    what, f"more than the {desc.size} bytes its descriptor gives"
                                )
                            digester.put(chunk)
                            view = memoryview(chunk)
                            while view:
                                view = view[os.write(fd, view) :]
                            progress(done, desc.size)
                            pace(done)
                    finally:
                        os.close(fd)
                    digest = digester.hexdigest()
            finally:
                resp.close()
            if done != desc.size:
                raise _hostile(what, f"{done} bytes arrived, the descriptor gives {desc.size}")
            if "sha256:" + digest != desc.digest:
                raise VerificationError(
                    f"{what} does not match its digest",
                    hint="the registry's copy is altered or damaged; refusing it",
                )
        except httpx.HTTPError as exc:
            dest.unlink(missing_ok=True)
            raise translate_http_error(exc, what) from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def list_tags(self, repo: str) -> list[str]:
        """Every tag of ``repo`` (empty when the repository does not exist)."""
        what = self.describe(repo, "tags of")
        try:
            items = self._paged(f"{repo}/tags/list?n=1000", f"repository:{repo}:pull", what, "tags")
        except NotFoundError:
            return []
        return [t for t in items if _TAG_RE.fullmatch(t)]

    def catalog(self) -> list[str]:
        """Every repository the registry lists (the ``_catalog`` extension)."""
        what = f"catalog of {self.location.netloc}"
        try:
            listed = self._paged("_catalog?n=1000", "registry:catalog:*", what, "repositories")
        except NotFoundError:
            # An optional part of the spec that GHCR and Docker Hub, for two, leave out.
            raise NotFoundError(
                f"{self.location.netloc} does not list its repositories (no _catalog API)",
                hint="search --available needs a registry that lists them; "
                "`vudo info NAME --available` and `vudo install NAME` still work",
            ) from None
        return [r for r in listed if _REPO_RE.fullmatch(r)]

    def _paged(self, first: str, scope: str, what: str, key: str) -> list[str]:
        out: list[str] = []
        url: str | None = self._url(first)
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_LIST_PAGES:
                raise _hostile(what, f"more than {MAX_LIST_PAGES} pages")
            resp = self.send("GET", url, scope=scope, what=what, stream=True)
            try:
                data = self._read_bounded(resp, MAX_MANIFEST_BYTES, what)
            except httpx.HTTPError as exc:
                raise translate_http_error(exc, what) from None
            finally:
                resp.close()
            body = parse_json(data, what)
            items = body.get(key) if isinstance(body, dict) else None
            if items is None:
                items = []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise _hostile(what, f"{key} is not a list of strings")
            out.extend(items)
            nxt = _next_link(resp)
            if nxt is None:
                url = None
            else:
                joined = urllib.parse.urljoin(self.location.base + "/", nxt)
                if not joined.startswith(self.location.base + "/v2/"):
                    raise _hostile(what, "a pagination link leaves the registry")
                url = joined
        return out

    # -- writing

    def blob_exists(self, repo: str, digest: str) -> bool:
        what = self.describe(repo, f"blob {digest[:19]} of")
        try:
            self.send(
                "HEAD",
                self._url(f"{repo}/blobs/{digest}"),
                scope=f"repository:{repo}:pull,push",
                what=what,
            )
        except NotFoundError:
            return False
        return True

    def _location(self, resp: httpx.Response, what: str) -> str:
        loc = str(resp.headers.get("location", ""))
        if not loc:
            raise _hostile(what, "no Location for the upload")
        url = urllib.parse.urljoin(self.location.base + "/", loc)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or (
            parsed.scheme == "http" and not is_loopback(parsed.hostname or "")
        ):
            raise _hostile(what, "the upload Location is not an https URL")
        return url

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        read: Callable[[int, int], Iterator[bytes]],
        *,
        chunked: bool | None = None,
        progress: Progress = _no_progress,
    ) -> bool:
        """Upload a blob unless the registry has it; True when bytes were sent.

        ``read(offset, length)`` yields the blob's bytes (called anew for each attempt).
        Monolithic (one PUT) up to ``chunk_size``, chunked (PATCH with Content-Range, then
        PUT) above it, unless ``chunked`` says which."""
        if self.blob_exists(repo, digest):
            progress(size, size)
            return False
        what = self.describe(repo, f"upload of blob {digest[:19]} to")
        scope = f"repository:{repo}:pull,push"
        use_chunks = size > self.chunk_size if chunked is None else chunked
        attempts = 0
        while True:
            try:
                self._upload_once(repo, digest, size, read, use_chunks, scope, what, progress)
                return True
            except _Transient:
                # A broken connection mid-upload: start a new session, a bounded number
                # of times (the session's partial data is discarded by the registry).
                attempts += 1
                if attempts > self.retries:
                    raise
                self.sleep(self._retry_delay(None, attempts))

    def _upload_once(
        self,
        repo: str,
        digest: str,
        size: int,
        read: Callable[[int, int], Iterator[bytes]],
        use_chunks: bool,
        scope: str,
        what: str,
        progress: Progress,
    ) -> None:
        resp = self.send(
            "POST",
            self._url(f"{repo}/blobs/uploads/"),
            scope=scope,
            what=what,
            ok=(202, 201),
            headers={"Content-Length": "0"},
        )
        resp.close()
        session = self._location(resp, what)
        progress(0, size)
        if use_chunks:
            offset = 0
            while offset < size:
                length = min(self.chunk_size, size - offset)
                start = offset

                def chunk_body(start: int = start, length: int = length) -> Iterator[bytes]:
                    return read(start, length)

                resp = self.send(
                    "PATCH",
                    session,
                    scope=scope,
                    what=what,
                    ok=(202,),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + length - 1}",
                        "Content-Length": str(length),
                    },
                    body=chunk_body,
                )
                resp.close()
                session = self._location(resp, what)
                offset += length
                progress(offset, size)
            final = _with_query(session, digest=digest)
            resp = self.send(
                "PUT", final, scope=scope, what=what, ok=(201,), headers={"Content-Length": "0"}
            )
        else:
            sent = [0]

            def whole() -> Iterator[bytes]:
                sent[0] = 0
                for chunk in read(0, size):
                    sent[0] += len(chunk)
                    progress(sent[0], size)
                    yield chunk

            resp = self.send(
                "PUT",
                _with_query(session, digest=digest),
                scope=scope,
                what=what,
                ok=(201,),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                body=whole,
            )
        resp.close()
        named = resp.headers.get("docker-content-digest")
        if named is not None and named != digest:
            raise _hostile(what, "the registry stored a different digest than was sent")
        progress(size, size)

    def put_manifest(self, repo: str, reference: str, raw: bytes) -> str:
        """Store manifest ``raw`` under ``reference``; its digest, cross-checked."""
        digest = "sha256:" + sha256(raw).hexdigest()
        what = self.describe(repo, f"push of manifest {reference} to")
        resp = self.send(
            "PUT",
            self._url(f"{repo}/manifests/{reference}"),
            scope=f"repository:{repo}:pull,push",
            what=what,
            ok=(201,),
            headers={"Content-Type": MANIFEST_MEDIA_TYPE},
            body=lambda: raw,
        )
        resp.close()
        named = resp.headers.get("docker-content-digest")
        if named is not None and named != digest:
            raise _hostile(what, "the registry stored a different digest than was sent")
        return digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        what = self.describe(repo, f"delete of manifest {digest[:19]} in")
        resp = self.send(
            "DELETE",
            self._url(f"{repo}/manifests/{digest}"),
            scope=f"repository:{repo}:pull,push,delete",
            what=what,
            ok=(202, 200, 204),
        )
        resp.close()


def _plain_http_only_to_loopback(request: httpx.Request) -> None:
    """Every request, redirects included: plain HTTP goes to loopback hosts only (a
    redirect from https to http elsewhere would send the next request in the clear)."""
    if request.url.scheme != "https" and not is_loopback(request.url.host):
        raise RegistryError(
            f"refusing plain HTTP to {printable(request.url.host)[:100]}",
            hint="registries off this machine must use https",
        )


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def parse_image_manifest(
    raw: bytes, digest: str, what: str, *, max_layer: int = 1 << 40
) -> ImageManifest:
    """The fields vudo reads from an OCI image manifest; VerificationError if malformed."""
    body = parse_json(raw, what)
    if not isinstance(body, dict) or body.get("schemaVersion") != 2:
        raise _hostile(what, "not an OCI image manifest (schemaVersion is not 2)")
    media = body.get("mediaType")
    if media is not None and media != MANIFEST_MEDIA_TYPE:
        raise _hostile(
            what, f"media type {printable(str(media))[:80]!r} is not an OCI image manifest"
        )
    config = parse_descriptor(body.get("config"), what, max_size=MAX_MANIFEST_BYTES)
    layers_value = body.get("layers")
    if not isinstance(layers_value, list) or len(layers_value) > 64:
        raise _hostile(what, "layers is not a short list")
    layers = tuple(parse_descriptor(d, what, max_size=max_layer) for d in layers_value)
    annotations = body.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise _hostile(what, "annotations are not a string map")
    artifact = body.get("artifactType")
    return ImageManifest(
        raw, digest, artifact if isinstance(artifact, str) else None, config, layers, annotations
    )


def file_reader(path: Path) -> Callable[[int, int], Iterator[bytes]]:
    """``read(offset, length)`` over a file, 1 MiB at a time (an upload body)."""

    def read(offset: int, length: int) -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            left = length
            while left > 0:
                chunk = f.read(min(1 << 20, left))
                if not chunk:
                    raise VerificationError(
                        f"{path} shrank while it was uploaded",
                        hint="do not change the package while publishing",
                    )
                left -= len(chunk)
                yield chunk

    return read


def bytes_reader(data: bytes) -> Callable[[int, int], Iterator[bytes]]:
    def read(offset: int, length: int) -> Iterator[bytes]:
        yield data[offset : offset + length]

    return read


__all__ = [
    "EMPTY_DIGEST",
    "MANIFEST_MEDIA_TYPE",
    "MAX_MANIFEST_BYTES",
    "Credentials",
    "Descriptor",
    "ImageManifest",
    "OciClient",
    "OciLocation",
    "build_manifest",
    "bytes_reader",
    "file_reader",
    "is_loopback",
    "parse_challenge",
    "parse_image_manifest",
    "parse_json",
    "parse_oci_url",
    "status_error",
    "translate_http_error",
]
