"""Directory registries on disk and the same layout over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError, NotFoundError, VerificationError, VudoError
from vudo.home import local_registry_dir
from vudo.pkg.archive import pack
from vudo.pkg.keys import KeyPair, generate_keypair
from vudo.pkg.registry import DirectoryRegistry, HttpRegistry, open_registry
from vudo.pkg.signing import sign_package
from vudo.pkg.store import LocalStore
from vudo.pkg.versions import parse_requirement


def keypair(byte: int) -> KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


def make_package(
    tmp: Path,
    name: str = "hello-spirit",
    version: str = "1.0.0",
    *,
    signer: KeyPair | None = None,
    deps: str = "",
    module: bytes = b"",
) -> Path:
    signer = signer or keypair(1)
    root = tmp / "src" / f"{name}-{version}-{signer.public_hex[:6]}-{len(module)}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{signer.public_hex}"\n'
        f'capabilities = ["sensor_time"]\n{deps}'
    )
    (root / "module.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00" + module)
    out = pack(root / "spirit.toml", root / "module.wasm", root / f"{name}-{version}.spirit")
    sign_package(out, signer)
    return out


def test_publish_candidates_fetch(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    first = reg.publish(make_package(tmp_path, version="1.0.0"))
    assert not first.already_published
    reg.publish(make_package(tmp_path, version="1.2.0", deps='[dependencies]\nother = "^0.3"\n'))
    assert reg.names() == ["hello-spirit"]
    cands = sorted(reg.candidates("hello-spirit"), key=lambda c: c.version)
    assert [str(c.version) for c in cands] == ["1.0.0", "1.2.0"]
    assert cands[1].dependencies[0].name == "other"
    assert cands[0].digest == first.digest and cands[0].signer == keypair(1).public_hex
    path = reg.fetch("hello-spirit", "1.0.0")
    assert path == tmp_path / "reg" / "packages" / "hello-spirit" / "hello-spirit-1.0.0.spirit"
    assert list(reg.candidates("unknown")) == []
    with pytest.raises(NotFoundError) as info:
        reg.fetch("hello-spirit", "9.9.9")
    assert info.value.hint == "published versions: 1.0.0, 1.2.0"


def test_publish_is_idempotent_and_versions_are_immutable(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    pkg = make_package(tmp_path)
    reg.publish(pkg)
    assert reg.publish(pkg).already_published
    with pytest.raises(InvalidInputError, match="different contents"):
        reg.publish(make_package(tmp_path, module=b"changed"))
    assert len(reg.entries("hello-spirit")) == 1


def test_publish_refuses_unsigned_tampered_and_foreign_signer(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    src = tmp_path / "u"
    src.mkdir()
    (src / "spirit.toml").write_text(
        f'name = "x"\nversion = "1.0.0"\nauthor = "{keypair(1).public_hex}"\n'
    )
    (src / "module.wasm").write_bytes(b"\x00asm")
    unsigned = pack(src / "spirit.toml", src / "module.wasm", src / "x.spirit")
    with pytest.raises(VerificationError, match="not signed"):
        reg.publish(unsigned)
    reg.publish(make_package(tmp_path, version="1.0.0"))
    other = make_package(tmp_path, version="2.0.0", signer=keypair(2))
    with pytest.raises(VerificationError, match="another key"):
        reg.publish(other)
    reg.publish(other, allow_new_signer=True)
    assert not list((tmp_path / "reg" / "tmp").iterdir())


def test_fetch_detects_a_swapped_package_file(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    reg.publish(make_package(tmp_path))
    target = tmp_path / "reg" / "packages" / "hello-spirit" / "hello-spirit-1.0.0.spirit"
    target.write_bytes(make_package(tmp_path / "b", module=b"evil").read_bytes())
    with pytest.raises(VerificationError, match="digest"):
        reg.fetch("hello-spirit", "1.0.0")


def test_missing_registry_and_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        DirectoryRegistry(tmp_path / "nope")
    with pytest.raises(NotFoundError):
        open_registry(tmp_path / "nope")
    assert isinstance(open_registry(tmp_path / "new", create=True), DirectoryRegistry)
    assert isinstance(open_registry((tmp_path / "new").as_uri()), DirectoryRegistry)
    with pytest.raises(InvalidInputError):
        open_registry("ftp://example.com/reg")
    with pytest.raises(InvalidInputError):
        open_registry("http://127.0.0.1:1/")
    assert local_registry_dir(tmp_path) == tmp_path / "registries" / "local"


def test_corrupt_index_is_reported(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    reg.publish(make_package(tmp_path))
    index = tmp_path / "reg" / "index" / "hello-spirit.json"
    index.write_text("{not json")
    with pytest.raises(VerificationError, match="malformed"):
        list(reg.candidates("hello-spirit"))
    index.write_text(index.read_text().replace("{not json", '{"format": "other"}'))
    with pytest.raises(VerificationError):
        reg.entries("hello-spirit")
    with pytest.raises(InvalidInputError):
        reg.entries("../etc/passwd")


def test_publish_then_install_then_upgrade_through_the_store(tmp_path: Path) -> None:
    reg = DirectoryRegistry(tmp_path / "reg", create=True)
    for v in ("1.0.0", "1.1.0", "2.0.0"):
        reg.publish(make_package(tmp_path, version=v))
    with LocalStore(tmp_path / "store") as store:
        best = parse_requirement("^1").select(c.version for c in reg.candidates("hello-spirit"))
        assert best is not None
        store.install(reg.fetch("hello-spirit", best))
        assert str(store.get("hello-spirit").version) == "1.1.0"
        result = store.upgrade("hello-spirit", reg)
        assert result.upgraded and str(result.new.version) == "2.0.0"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[DirectoryRegistry, str]]:
    reg = DirectoryRegistry(tmp_path / "served", create=True)
    handler = functools.partial(_QuietHandler, directory=str(reg.path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield reg, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_registry_reads_a_served_directory(
    tmp_path: Path, served: tuple[DirectoryRegistry, str]
) -> None:
    reg, url = served
    reg.publish(make_package(tmp_path, version="1.0.0"))
    reg.publish(make_package(tmp_path, version="1.5.0"))
    remote = open_registry(url, cache_dir=tmp_path / "cache")
    assert isinstance(remote, HttpRegistry)
    with remote:
        assert remote.names() == ["hello-spirit"]
        assert sorted(str(c.version) for c in remote.candidates("hello-spirit")) == [
            "1.0.0",
            "1.5.0",
        ]
        assert list(remote.candidates("unknown")) == []
        path = remote.fetch("hello-spirit", "1.5.0")
        assert path.parent == tmp_path / "cache"
        assert path.read_bytes() == reg.fetch("hello-spirit", "1.5.0").read_bytes()
        assert remote.fetch("hello-spirit", "1.5.0") == path  # cached
        with LocalStore(tmp_path / "store") as store:
            assert store.install(path).spirit.spec == "hello-spirit@1.5.0"


def test_http_registry_detects_tampered_download(
    tmp_path: Path, served: tuple[DirectoryRegistry, str]
) -> None:
    reg, url = served
    reg.publish(make_package(tmp_path))
    served_file = reg.path / "packages" / "hello-spirit" / "hello-spirit-1.0.0.spirit"
    data = bytearray(served_file.read_bytes())
    data[50] ^= 1
    served_file.write_bytes(bytes(data))
    remote = HttpRegistry(url, cache_dir=tmp_path / "cache")
    with pytest.raises(VerificationError, match="digest"):
        remote.fetch("hello-spirit", "1.0.0")
    assert not list((tmp_path / "cache").iterdir())
    served_file.unlink()
    with pytest.raises(NotFoundError, match="404"):
        remote.fetch("hello-spirit", "1.0.0")


def test_http_registry_unreachable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = HttpRegistry(f"http://127.0.0.1:{port}/", cache_dir=tmp_path, timeout=2)
    with pytest.raises(VudoError, match="cannot reach"):
        list(remote.candidates("hello-spirit"))


def test_urllib_error_translation_covers_each_kind() -> None:
    import email.message
    import http.client
    import urllib.error

    from vudo.pkg.registry import translate_urllib_error

    headers = email.message.Message()
    cases = [
        (urllib.error.HTTPError("u", 404, "Not Found", headers, None), NotFoundError),
        (urllib.error.HTTPError("u", 500, "Boom", headers, None), VudoError),
        (urllib.error.URLError("refused"), VudoError),
        (TimeoutError("timed out"), VudoError),
        (http.client.RemoteDisconnected("gone"), VudoError),
        (http.client.IncompleteRead(b"x"), VudoError),
        (ConnectionResetError("reset"), VudoError),
    ]
    for exc, expected in cases:
        err = translate_urllib_error(exc, "http://x/")
        assert isinstance(err, expected), exc
        assert err.hint
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()
