"""OCI registries: the distribution-spec client and OciRegistry against a real CNCF
Distribution server (``docker-registry``, htpasswd Basic auth) on loopback, plus tiny
Python servers for the misbehaviours a real registry will not produce on demand."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_registry import keypair, make_package

from oci_helpers import REGISTRY_PASSWORD, REGISTRY_USER, CutProxy, OciServer, TokenFront
from vudo.errors import InvalidInputError, NotFoundError, RegistryError, VerificationError
from vudo.pkg.config import (
    add_registry,
    credentials_for,
    default_registry,
    load_config,
    lookup_registry,
    registry_host,
    remove_credentials,
    remove_registry,
    save_credentials,
)
from vudo.pkg.oci import (
    Credentials,
    OciClient,
    bytes_reader,
    json_depth_ok,
    parse_challenge,
    parse_oci_url,
)
from vudo.pkg.registry import OciRegistry, open_registry
from vudo.pkg.store import LocalStore


def creds() -> Credentials:
    return Credentials(REGISTRY_USER, REGISTRY_PASSWORD)


def no_sleep(_: float) -> None:
    """Backoff without waiting."""


@pytest.fixture
def registry(oci_server: OciServer, oci_ns: str, tmp_path: Path) -> Iterator[OciRegistry]:
    reg = OciRegistry(
        oci_server.url(oci_ns), cache_dir=tmp_path / "cache-a", credentials=creds(), sleep=no_sleep
    )
    yield reg
    reg.close()


def other_home(oci_server: OciServer, oci_ns: str, tmp_path: Path, **kw: object) -> OciRegistry:
    return OciRegistry(
        oci_server.url(oci_ns),
        cache_dir=tmp_path / "cache-b",
        credentials=creds(),
        sleep=no_sleep,
        **kw,
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------ URLs and parsing


@pytest.mark.parametrize(
    "url",
    [
        "oci://",
        "oci:///ns",
        "oci://host:99999/ns",
        "oci://host:x/ns",
        "oci://ho st/ns",
        "oci://user:pw@host/ns",
        "oci://host/Upper",
        "oci://host/ns?x=1",
        "oci://host/ns#f",
        "oci://host/a//b",
        "oci://[::1/ns",
        "oci://host/ns\x1b[2J",
        "http://host/ns",
    ],
)
def test_malformed_oci_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_oci_url(url)
    assert info.value.hint
    assert "\x1b" not in info.value.one_line()


def test_oci_url_parts_and_plain_http_only_on_loopback() -> None:
    loc = parse_oci_url("oci://127.0.0.1:5000/team/spirits")
    assert (loc.host, loc.port, loc.namespace) == ("127.0.0.1", 5000, "team/spirits")
    assert loc.base == "http://127.0.0.1:5000"
    assert loc.repository("hello") == "team/spirits/hello"
    assert parse_oci_url("oci://[::1]:5000/x").base == "http://[::1]:5000"
    assert parse_oci_url("oci://localhost/x").base == "http://localhost"
    assert parse_oci_url("oci://ghcr.io/org").base == "https://ghcr.io"
    assert parse_oci_url("oci://127.example.com/org").base == "https://127.example.com"


def test_challenges_parse_and_secrets_stay_out_of_repr() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull",
    }
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert parse_challenge('Bearer realm="x" junk"') == ("", {})
    text = repr(Credentials("u", "hunter2")) + repr(Credentials(token="tok-123"))
    assert "hunter2" not in text and "tok-123" not in text


def test_json_depth_bound() -> None:
    deep: object = []
    for _ in range(100):
        deep = [deep]
    assert not json_depth_ok(deep)
    assert json_depth_ok({"a": [1, {"b": 2}]})


# ------------------------------------------------------------------ publish and install


def test_publish_from_one_home_install_from_another(
    registry: OciRegistry, oci_server: OciServer, oci_ns: str, tmp_path: Path
) -> None:
    pkg = make_package(tmp_path, "hello-spirit", "1.0.0")
    result = registry.publish(pkg)
    assert not result.already_published
    assert registry.publish(pkg).already_published  # same bytes: a no-op

    with other_home(oci_server, oci_ns, tmp_path) as reader:
        assert reader.names() == ["hello-spirit"]
        [entry] = reader.entries("hello-spirit")
        assert str(entry.version) == "1.0.0" and entry.signer == keypair(1).public_hex
        assert entry.digest == hashlib.sha256(pkg.read_bytes()).hexdigest()
        path = reader.fetch("hello-spirit", "1.0.0")
        assert path.read_bytes() == pkg.read_bytes()
        with LocalStore(tmp_path / "store-b") as store:
            installed = store.install(path).spirit
        assert str(installed.version) == "1.0.0"

    # the artifact is what the design says, as any OCI client sees it
    client = OciClient(registry.location, credentials=creds())
    with client:
        m = client.get_manifest(f"{oci_ns}/hello-spirit", "1.0.0")
    body = json.loads(m.raw)
    assert body["artifactType"] == "application/vnd.vudo.spirit.v1"
    assert body["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [lay["mediaType"] for lay in body["layers"]] == [
        "application/vnd.vudo.spirit.package.v1"
    ]
    ann = body["annotations"]
    assert ann["org.opencontainers.image.title"] == "hello-spirit"
    assert ann["org.opencontainers.image.version"] == "1.0.0"
    assert ann["dev.vudo.spirit.capabilities"] == "sensor_time"
    assert ann["dev.vudo.spirit.signer"] == keypair(1).public_hex


def test_a_checked_download_is_moved_into_the_store_not_copied(
    registry: OciRegistry, oci_server: OciServer, oci_ns: str, tmp_path: Path
) -> None:
    """The pull checked the package as it arrived: the store takes the file over (one
    write of the bytes in all), and what it installs is exactly what was published."""
    import os
    import stat

    pkg = make_package(tmp_path, "moved", "1.0.0")
    registry.publish(pkg)
    sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
    with other_home(oci_server, oci_ns, tmp_path) as reader:
        fetched = reader.fetch_checked("moved", "1.0.0")
        assert fetched.sha256 == sha and fetched.checked.signer == keypair(1).public_hex
        inode = os.stat(fetched.path).st_ino
        with LocalStore(tmp_path / "store-m") as store:
            spirit = store.adopt(fetched.path, fetched.checked, sha).spirit
            assert spirit.digest == sha and not fetched.path.exists()
            assert os.stat(spirit.path).st_ino == inode  # moved, not copied
            assert stat.S_IMODE(os.stat(spirit.path).st_mode) == 0o644
            assert spirit.path.read_bytes() == pkg.read_bytes()
            with pytest.raises(NotFoundError, match="is gone"):  # another vudo took it
                store.adopt(fetched.path, fetched.checked, sha)
            # fetched again (downloaded again: the cache gave its copy away), adopting
            # an identical version is a no-op
            again = reader.fetch_checked("moved", "1.0.0")
            assert store.adopt(again.path, again.checked, sha).already_installed


def test_a_download_on_another_filesystem_is_copied_and_checked(
    registry: OciRegistry, oci_server: OciServer, oci_ns: str, tmp_path: Path
) -> None:
    """A cache on another filesystem than the store (here tmpfs /dev/shm): the file
    cannot be moved, so the store copies and checks it as any install does."""
    import os
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (tmpfs /dev/shm) beside the temp directory")
    pkg = make_package(tmp_path, "crossfs", "1.0.0")
    registry.publish(pkg)
    cache = Path(tempfile.mkdtemp(dir=shm))
    try:
        with OciRegistry(
            oci_server.url(oci_ns), cache_dir=cache, credentials=creds(), sleep=no_sleep
        ) as reader:
            fetched = reader.fetch_checked("crossfs", "1.0.0")
            assert fetched.sha256 is not None
            with LocalStore(tmp_path / "store-x") as store:
                spirit = store.adopt(fetched.path, fetched.checked, fetched.sha256).spirit
            assert spirit.path.read_bytes() == pkg.read_bytes()
            assert fetched.path.exists()  # copied, the cache keeps its file
    finally:
        shutil.rmtree(cache)


def test_unsigned_or_altered_packages_are_refused_before_anything_is_sent(
    registry: OciRegistry, tmp_path: Path
) -> None:
    """Publishing requires a signature over every byte: an unsigned package, or a
    signed one changed after signing, is refused and the registry never hears of it."""
    from vudo.pkg.archive import pack

    root = tmp_path / "unsigned"
    root.mkdir()
    (root / "spirit.toml").write_text(
        f'name = "unsigned"\nversion = "1.0.0"\nauthor = "{keypair(1).public_hex}"\n'
    )
    (root / "module.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    unsigned = pack(root / "spirit.toml", root / "module.wasm", root / "unsigned-1.0.0.spirit")
    with pytest.raises(VerificationError, match="not signed"):
        registry.publish(unsigned)
    signed = make_package(tmp_path, "altered", "1.0.0", module=b"m" * 1000)
    data = bytearray(signed.read_bytes())
    data[data.index(b"m" * 1000) + 10] ^= 1
    signed.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        registry.publish(signed)
    with OciClient(registry.location, credentials=creds()) as client:
        repos = client.catalog()
    assert not any(r.endswith(("/unsigned", "/altered")) for r in repos)


def test_versions_are_immutable_and_signers_pinned(registry: OciRegistry, tmp_path: Path) -> None:
    registry.publish(make_package(tmp_path, "imm", "1.0.0"))
    with pytest.raises(InvalidInputError, match="already published with different"):
        registry.publish(make_package(tmp_path, "imm", "1.0.0", module=b"changed"))
    with pytest.raises(VerificationError, match="another key"):
        registry.publish(make_package(tmp_path, "imm", "1.1.0", signer=keypair(2)))
    registry.publish(
        make_package(tmp_path, "imm", "1.1.0", signer=keypair(2)), allow_new_signer=True
    )
    assert [str(e.version) for e in registry.entries("imm", fresh=True)] == ["1.0.0", "1.1.0"]


def test_path_dependencies_refused_and_dry_run_pushes_nothing(
    registry: OciRegistry, tmp_path: Path
) -> None:
    pkg = make_package(
        tmp_path, "withpath", "1.0.0", deps='[dependencies]\nlib = { path = "../lib" }\n'
    )
    with pytest.raises(InvalidInputError, match="path dependencies"):
        registry.publish(pkg)
    plain = make_package(tmp_path, "dry", "1.0.0")
    result = registry.publish(plain, dry_run=True)
    assert not result.already_published
    assert registry.entries("dry", fresh=True) == []


def test_yank_hides_a_version_from_resolution_and_undo_restores_it(
    registry: OciRegistry, tmp_path: Path
) -> None:
    for v in ("1.0.0", "1.1.0"):
        registry.publish(make_package(tmp_path, "yk", v))
    assert registry.yank("yk", "1.1.0")
    assert not registry.yank("yk", "1.1.0")  # already yanked
    entries = registry.entries("yk", fresh=True)
    assert [(str(e.version), e.yanked) for e in entries] == [("1.0.0", False), ("1.1.0", True)]
    assert [(str(c.version), c.yanked) for c in registry.candidates("yk")] == [
        ("1.0.0", False),
        ("1.1.0", True),
    ]
    from vudo.pkg.manifest import Dependency
    from vudo.pkg.resolve import resolve
    from vudo.pkg.versions import parse_requirement

    picked = resolve([Dependency("yk", parse_requirement("*"))], [registry])
    assert str(picked["yk"].version) == "1.0.0"  # the resolver skips the yanked one
    # a yanked version can still be fetched by exact version (a lock that names it)
    assert registry.fetch("yk", "1.1.0").is_file()
    assert registry.yank("yk", "1.1.0", undo=True)
    assert not registry.yank("yk", "1.1.0", undo=True)
    assert not any(c.yanked for c in registry.candidates("yk"))
    with pytest.raises(NotFoundError):
        registry.yank("yk", "9.9.9")


def test_search_listing_is_cached_with_a_freshness_bound(
    oci_server: OciServer, oci_ns: str, registry: OciRegistry, tmp_path: Path
) -> None:
    registry.publish(make_package(tmp_path, "cached-a", "1.0.0"))
    now = [1000.0]
    reader = other_home(oci_server, oci_ns, tmp_path, clock=lambda: now[0])
    with reader:
        assert reader.names() == ["cached-a"]
        assert [str(e.version) for e in reader.entries("cached-a")] == ["1.0.0"]
    registry.publish(make_package(tmp_path, "cached-b", "1.0.0"))
    registry.publish(make_package(tmp_path, "cached-a", "2.0.0"))
    with other_home(oci_server, oci_ns, tmp_path, clock=lambda: now[0]) as again:
        assert again.names() == ["cached-a"]  # from the cache file, still fresh
        assert [str(e.version) for e in again.entries("cached-a")] == ["1.0.0"]
    now[0] += 301
    with other_home(oci_server, oci_ns, tmp_path, clock=lambda: now[0]) as later:
        assert later.names() == ["cached-a", "cached-b"]
        assert [str(e.version) for e in later.entries("cached-a")] == ["1.0.0", "2.0.0"]


def test_a_cold_search_reads_one_manifest_per_spirit(
    oci_server: OciServer, oci_ns: str, registry: OciRegistry, tmp_path: Path
) -> None:
    """A search needs each Spirit's newest live version, so a cold one fetches that
    version's manifest (and, past a yanked one, the next), not every version's;
    resolution then fetches the rest."""
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        registry.publish(make_package(tmp_path, "many-versions", version))
    registry.publish(make_package(tmp_path, "one-version", "1.0.0"))
    registry.yank("many-versions", "2.0.0")
    with other_home(oci_server, oci_ns, tmp_path) as reader:
        found = {s.name: s.version for s in reader.summaries()}
        assert found == {"many-versions": "1.1.0", "one-version": "1.0.0"}
        cached = reader._load_cache()["repos"]["many-versions"]
        assert sorted(cached["manifests"]) == ["1.1.0", "2.0.0"] and not cached["complete"]
        versions = [(str(e.version), e.yanked) for e in reader.entries("many-versions")]
        assert versions == [("1.0.0", False), ("1.1.0", False), ("2.0.0", True)]
        assert reader._load_cache()["repos"]["many-versions"]["complete"]


# ------------------------------------------------------------------ hostile and broken


def test_wrong_password_and_anonymous_are_refused_without_leaking(
    oci_server: OciServer, oci_ns: str, tmp_path: Path
) -> None:
    bad = OciRegistry(
        oci_server.url(oci_ns),
        cache_dir=tmp_path / "c",
        credentials=Credentials(REGISTRY_USER, "wrong-Pa55-XYZ"),
        sleep=no_sleep,
    )
    with bad, pytest.raises(RegistryError) as info:
        bad.publish(make_package(tmp_path, "nope", "1.0.0"))
    line = info.value.one_line()
    assert "401" in line and "wrong-Pa55-XYZ" not in line and "hint:" in line
    with (
        OciRegistry(oci_server.url(oci_ns), cache_dir=tmp_path / "c2") as anon,
        pytest.raises(RegistryError, match="authentication failed"),
    ):
        anon.names()


def test_an_altered_blob_is_refused_and_nothing_is_cached(
    registry: OciRegistry, oci_server: OciServer, oci_ns: str, tmp_path: Path
) -> None:
    pkg = make_package(tmp_path, "altered", "1.0.0", module=b"original")
    registry.publish(pkg)
    digest = hashlib.sha256(pkg.read_bytes()).hexdigest()
    data = next(oci_server.storage.rglob(f"blobs/sha256/{digest[:2]}/{digest}/data"))
    raw = bytearray(data.read_bytes())
    raw[-40] ^= 0xFF
    data.write_bytes(bytes(raw))
    try:
        with other_home(oci_server, oci_ns, tmp_path) as reader:
            with pytest.raises(VerificationError, match="does not match its digest"):
                reader.fetch("altered", "1.0.0")
            assert not [
                p for p in reader.cache_dir.glob("*") if p.suffix in (".spirit", ".partial")
            ]
    finally:
        data.write_bytes(pkg.read_bytes())


def test_registry_down_mid_pull_leaves_nothing(
    registry: OciRegistry, oci_server: OciServer, oci_ns: str, cut_proxy: CutProxy, tmp_path: Path
) -> None:
    registry.publish(make_package(tmp_path, "bigpull", "1.0.0", module=b"x" * 600_000))
    url = f"oci://127.0.0.1:{cut_proxy.port}/{oci_ns}"
    with OciRegistry(
        url, cache_dir=tmp_path / "cache-cut", credentials=creds(), sleep=no_sleep, retries=1
    ) as reader:
        reader.entries("bigpull")
        cut_proxy.cut_after = 200_000  # every later response dies part-way
        with pytest.raises(RegistryError) as info:
            reader.fetch("bigpull", "1.0.0")
        assert "hint:" in info.value.one_line()
        assert list(reader.cache_dir.glob("*.spirit")) == []
        assert list(reader.cache_dir.glob("*.partial")) == []
        cut_proxy.cut_after = None
        assert reader.fetch("bigpull", "1.0.0").is_file()  # and it recovers


def test_an_interrupted_push_is_retried(
    oci_server: OciServer, oci_ns: str, cut_proxy: CutProxy, tmp_path: Path
) -> None:
    url = f"oci://127.0.0.1:{cut_proxy.port}/{oci_ns}"
    pkg = make_package(tmp_path, "bigpush", "1.0.0", module=b"y" * 900_000)
    cut_proxy.direction = "up"
    cut_proxy.cut_after = 400_000
    with OciRegistry(
        url, cache_dir=tmp_path / "cp", credentials=creds(), sleep=no_sleep, retries=0
    ) as pusher:
        with pytest.raises(RegistryError):
            pusher.publish(pkg)
        assert pusher.entries("bigpush", fresh=True) == []  # no tag: nothing half-published
    cut_proxy.cut_after = None
    with OciRegistry(url, cache_dir=tmp_path / "cp", credentials=creds(), sleep=no_sleep) as pusher:
        assert not pusher.publish(pkg).already_published
    # and within one publish, a cut upload starts a new session by itself
    pkg2 = make_package(tmp_path, "bigpush", "1.1.0", module=b"z" * 900_000)
    cut_proxy.cut_after = 400_000
    cuts_before = cut_proxy.cuts

    def uncut_after_first(_: float) -> None:
        cut_proxy.cut_after = None

    with OciRegistry(
        url, cache_dir=tmp_path / "cp", credentials=creds(), sleep=uncut_after_first
    ) as pusher:
        assert not pusher.publish(pkg2).already_published
    assert cut_proxy.cuts > cuts_before
    with other_home(oci_server, oci_ns, tmp_path) as reader:
        assert reader.fetch("bigpush", "1.1.0").read_bytes() == pkg2.read_bytes()


def test_chunked_upload_round_trips(oci_server: OciServer, oci_ns: str) -> None:
    data = bytes(range(256)) * 40
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    seen: list[tuple[int, int]] = []
    with OciClient(
        parse_oci_url(oci_server.url(oci_ns)), credentials=creds(), chunk_size=1000
    ) as client:
        repo = f"{oci_ns}/chunks"
        assert client.upload_blob(
            repo, digest, len(data), bytes_reader(data), progress=lambda d, t: seen.append((d, t))
        )
        assert not client.upload_blob(repo, digest, len(data), bytes_reader(data))  # HEAD
    assert seen[-1] == (len(data), len(data)) and len(seen) > 5


def test_not_a_vudo_artifact_and_wrong_layer_type(
    oci_server: OciServer, oci_ns: str, registry: OciRegistry
) -> None:
    from vudo.pkg.oci import EMPTY_DIGEST, Descriptor, build_manifest

    data = b"not a spirit"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with OciClient(registry.location, credentials=creds()) as client:
        for name, artifact, media in (
            ("image", "application/vnd.example.thing", "application/octet-stream"),
            ("badlayer", "application/vnd.vudo.spirit.v1", "application/x-tar"),
        ):
            repo = f"{oci_ns}/{name}"
            client.upload_blob(repo, digest, len(data), bytes_reader(data))
            client.upload_blob(repo, EMPTY_DIGEST, 2, bytes_reader(b"{}"))
            client.put_manifest(
                repo,
                "1.0.0",
                build_manifest(
                    artifact_type=artifact,
                    layers=[Descriptor(media, digest, len(data))],
                    annotations={},
                ),
            )
    with pytest.raises(VerificationError, match="is not a vudo Spirit"):
        registry.fetch("image", "1.0.0")
    with pytest.raises(VerificationError, match="does not hold one"):
        registry.fetch("badlayer", "1.0.0")
    assert registry.entries("image") == [] and registry.entries("badlayer") == []
    with pytest.raises(NotFoundError):
        registry.fetch("image", "2.0.0")


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers by ``server.script(handler)``; counts requests."""

    def log_message(self, *args: object) -> None:
        pass

    def _any(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        self.server.script(self)  # type: ignore[attr-defined]

    do_GET = do_HEAD = do_POST = do_PUT = _any


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[_Scripted], None]], tuple[str, object]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(script: Callable[[_Scripted], None]) -> tuple[str, object]:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
        srv.script = script  # type: ignore[attr-defined]
        srv.hits = 0  # type: ignore[attr-defined]
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"oci://127.0.0.1:{srv.server_address[1]}/ns", srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _reply(
    h: _Scripted, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, RegistryError, "authentication failed"),
        (403, RegistryError, "access denied"),
        (404, NotFoundError, "not found"),
        (429, RegistryError, "rate limited"),
        (500, RegistryError, "registry error"),
    ],
)
def test_http_statuses_become_one_line_errors(
    scripted: Callable[..., tuple[str, object]],
    tmp_path: Path,
    status: int,
    error: type[Exception],
    words: str,
) -> None:
    url, srv = scripted(lambda h: _reply(h, status, b"{}", {"WWW-Authenticate": 'Basic realm="x"'}))
    with (
        OciRegistry(
            url,
            cache_dir=tmp_path / "c",
            credentials=Credentials("u", "pw-777"),
            sleep=no_sleep,
            retries=2,
        ) as reg,
        pytest.raises(error) as info,
    ):
        reg.fetch("x", "1.0.0")
    line = info.value.one_line()  # type: ignore[attr-defined]
    assert words in line and "hint:" in line and "pw-777" not in line
    if status in (429, 500):
        assert srv.hits == 3  # type: ignore[attr-defined]  # retried twice with backoff


def test_retry_after_429_then_success(
    scripted: Callable[..., tuple[str, object]], tmp_path: Path
) -> None:
    calls = [0]
    delays: list[float] = []

    def script(h: _Scripted) -> None:
        calls[0] += 1
        if calls[0] < 3:
            _reply(h, 429, b"", {"Retry-After": "2"})
        else:
            _reply(h, 200, json.dumps({"name": "ns/x", "tags": ["1.0.0"]}).encode())

    url, _ = scripted(script)
    with OciClient(parse_oci_url(url), sleep=delays.append) as client:
        assert client.list_tags("ns/x") == ["1.0.0"]
    assert delays == [2.0, 2.0]


def test_oversized_and_deep_manifests_are_refused(
    scripted: Callable[..., tuple[str, object]], tmp_path: Path
) -> None:
    big = b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}"
    url, _ = scripted(lambda h: _reply(h, 200, big))
    with (
        OciRegistry(url, cache_dir=tmp_path / "c", sleep=no_sleep) as reg,
        pytest.raises(VerificationError, match="limit"),
    ):
        reg.fetch("x", "1.0.0")
    deep = b"[" * 200 + b"]" * 200
    url, _ = scripted(lambda h: _reply(h, 200, deep))
    with (
        OciRegistry(url, cache_dir=tmp_path / "c", sleep=no_sleep) as reg,
        pytest.raises(VerificationError, match="nested"),
    ):
        reg.fetch("x", "1.0.0")


def test_oversized_layer_is_refused_before_download(
    scripted: Callable[..., tuple[str, object]], tmp_path: Path
) -> None:
    from vudo.pkg.oci import Descriptor, build_manifest

    raw = build_manifest(
        artifact_type="application/vnd.vudo.spirit.v1",
        layers=[
            Descriptor("application/vnd.vudo.spirit.package.v1", "sha256:" + "a" * 64, 5 * 1024**3)
        ],
        annotations={},
    )
    url, srv = scripted(lambda h: _reply(h, 200, raw))
    with (
        OciRegistry(url, cache_dir=tmp_path / "c", sleep=no_sleep) as reg,
        pytest.raises(VerificationError, match="over the"),
    ):
        reg.fetch("x", "1.0.0")
    assert srv.hits == 1  # type: ignore[attr-defined]  # the blob was never asked for


@pytest.mark.parametrize("gap", [0.7, 0.1])
def test_a_slow_drip_server_is_bounded_by_the_read_timeout(tmp_path: Path, gap: float) -> None:
    """A byte every ``gap`` seconds: over the read timeout, one wait times out; under it,
    the body's average rate does (else a drip could hold the transfer open for days)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"{")
                except OSError:
                    break
                time.sleep(gap)
            conn.close()

    threading.Thread(target=drip, daemon=True).start()
    url = f"oci://127.0.0.1:{lsock.getsockname()[1]}/ns"
    started = time.monotonic()
    try:
        with (
            OciRegistry(
                url, cache_dir=tmp_path / "c", sleep=no_sleep, retries=0, read_timeout=0.5
            ) as reg,
            pytest.raises(RegistryError, match="timed out"),
        ):
            reg.fetch("x", "1.0.0")
    finally:
        stop.set()
        lsock.close()
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ config and credentials


def test_named_registries_and_default(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert default_registry(home) is None
    add_registry(home, "team", "oci://127.0.0.1:5000/team", default=True)
    add_registry(home, "dir", str(tmp_path / "d"))
    config = load_config(home)
    assert [r.name for r in config.registries] == ["team", "dir"]
    assert default_registry(home).url == "oci://127.0.0.1:5000/team"  # type: ignore[union-attr]
    assert lookup_registry(home, "team").url == "oci://127.0.0.1:5000/team"
    assert lookup_registry(home, "oci://x.example/y").url == "oci://x.example/y"
    with pytest.raises(NotFoundError, match="no registry named"):
        lookup_registry(home, "nope")
    with pytest.raises(InvalidInputError):
        add_registry(home, "bad", "oci://host:0x/ns")
    remove_registry(home, "team")
    assert default_registry(home) is None
    with pytest.raises(NotFoundError):
        remove_registry(home, "team")


def test_credentials_file_is_private_and_docker_config_is_a_fallback(tmp_path: Path) -> None:
    import base64
    import os
    import stat

    home = tmp_path / "home"
    add_registry(home, "team", "oci://127.0.0.1:5000/team")
    host = registry_host("team", home=home)
    assert host == "127.0.0.1:5000"
    save_credentials(home, host, Credentials("me", "pa55"))
    mode = stat.S_IMODE(os.stat(home / "credentials.toml").st_mode)
    assert mode == 0o600
    assert "pa55" not in (home / "config.toml").read_text()
    assert credentials_for(home, host) == Credentials("me", "pa55")
    docker = tmp_path / "docker.json"
    docker.write_text(
        json.dumps(
            {
                "auths": {
                    "https://127.0.0.1:5000/v1/": {"auth": base64.b64encode(b"dock:er-pw").decode()}
                }
            }
        )
    )
    assert remove_credentials(home, host)
    assert not remove_credentials(home, host)
    assert credentials_for(home, host, docker_config=docker) == Credentials("dock", "er-pw")
    assert credentials_for(home, "other:1", docker_config=docker) is None


def test_open_registry_knows_oci(tmp_path: Path) -> None:
    reg = open_registry("oci://127.0.0.1:1/ns", cache_dir=tmp_path)
    assert isinstance(reg, OciRegistry)
    reg.close()
    with pytest.raises(InvalidInputError):
        open_registry("oci://127.0.0.1:1/ns")


def test_bearer_token_challenge_with_password_and_with_refresh_token(
    token_front: TokenFront, oci_ns: str, tmp_path: Path
) -> None:
    pkg = make_package(tmp_path, "tokened", "1.0.0")
    with OciRegistry(
        token_front.url(oci_ns), cache_dir=tmp_path / "t1", credentials=creds(), sleep=no_sleep
    ) as reg:
        reg.publish(pkg)
    assert f"repository:{oci_ns}/tokened:pull,push" in token_front.token_requests
    with OciRegistry(
        token_front.url(oci_ns),
        cache_dir=tmp_path / "t2",
        credentials=Credentials(token=token_front.refresh_token),
        sleep=no_sleep,
    ) as reg:
        assert reg.fetch("tokened", "1.0.0").read_bytes() == pkg.read_bytes()
    with (
        OciRegistry(
            token_front.url(oci_ns),
            cache_dir=tmp_path / "t3",
            credentials=Credentials(REGISTRY_USER, "bad-Pa55-QQQ"),
            sleep=no_sleep,
        ) as reg,
        pytest.raises(RegistryError) as info,
    ):
        reg.fetch("tokened", "1.0.0")
    assert "token request" in info.value.one_line()
    assert "bad-Pa55-QQQ" not in info.value.one_line()


def test_tls_is_verified_off_loopback_and_a_private_ca_is_accepted(tmp_path: Path) -> None:
    from oci_helpers import non_loopback_ipv4, self_signed, start_registry

    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve TLS on")
    cert, key = self_signed(tmp_path, ip)
    server = start_registry(tmp_path / "tls", host=ip, tls=(cert, key))
    try:
        url = f"oci://{server.host}/ns"
        assert parse_oci_url(url).base.startswith("https://")
        with (
            OciRegistry(
                url, cache_dir=tmp_path / "c", credentials=creds(), sleep=no_sleep, retries=0
            ) as reg,
            pytest.raises(RegistryError) as info,
        ):
            reg.names()
        assert "TLS verification failed" in info.value.one_line()
        assert "--ca-file" in info.value.one_line()
        pkg = make_package(tmp_path, "secure", "1.0.0")
        with OciRegistry(url, cache_dir=tmp_path / "c", credentials=creds(), ca_file=cert) as reg:
            reg.publish(pkg)
            assert reg.fetch("secure", "1.0.0").read_bytes() == pkg.read_bytes()
        with pytest.raises(InvalidInputError, match="not a PEM"):
            OciClient(parse_oci_url(url), ca_file=pkg)
    finally:
        server.stop()


def test_a_redirect_to_plain_http_elsewhere_is_refused(
    scripted: Callable[..., tuple[str, object]], tmp_path: Path
) -> None:
    url, _ = scripted(
        lambda h: _reply(
            h, 307, b"", {"Location": "http://registry.example.com/v2/ns/x/manifests/1.0.0"}
        )
    )
    with (
        OciRegistry(url, cache_dir=tmp_path / "c", sleep=no_sleep) as reg,
        pytest.raises(RegistryError, match="refusing plain HTTP"),
    ):
        reg.fetch("x", "1.0.0")


def test_an_expired_bearer_token_is_renewed_once(
    token_front: TokenFront, oci_ns: str, tmp_path: Path
) -> None:
    """A token the server no longer honours is renewed after one 401; one past its
    ``expires_in`` is renewed before it is sent; a server refusing every token ends in
    one 401 error after a bounded number of tries, not a loop."""
    now = [1000.0]
    token_front.expires_in = 300
    pkg = make_package(tmp_path, "renewed", "1.0.0")
    with OciRegistry(
        token_front.url(oci_ns), cache_dir=tmp_path / "t", credentials=creds(), sleep=no_sleep
    ) as reg:
        reg.publish(pkg)
    repo = f"{oci_ns}/renewed"
    scope = f"repository:{repo}:pull"
    with OciClient(
        parse_oci_url(token_front.url(oci_ns)),
        credentials=creds(),
        sleep=no_sleep,
        monotonic=lambda: now[0],
    ) as client:
        base = token_front.token_requests.count(scope)
        assert client.list_tags(repo) == ["1.0.0"]
        assert token_front.token_requests.count(scope) == base + 1
        token_front.tokens.clear()  # the server forgot (or revoked) every token
        challenges = token_front.challenges
        assert client.list_tags(repo) == ["1.0.0"]
        assert token_front.token_requests.count(scope) == base + 2
        assert token_front.challenges == challenges + 1
        now[0] += 299  # past expires_in less the early-renewal margin
        assert client.list_tags(repo) == ["1.0.0"]
        assert token_front.token_requests.count(scope) == base + 3
        assert token_front.challenges == challenges + 1  # renewed without a 401 first
        token_front.refuse_tokens = True
        with pytest.raises(RegistryError, match="HTTP 401") as info:
            client.list_tags(repo)
        assert token_front.token_requests.count(scope) <= base + 5
        assert REGISTRY_PASSWORD not in info.value.one_line()
