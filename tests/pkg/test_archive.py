"""The .spirit archive on real files: determinism, canonical layout, and archive attacks."""

from __future__ import annotations

import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError, ManifestError, NotFoundError, VerificationError
from vudo.pkg.archive import (
    CHUNK,
    PIPELINE_MIN,
    SPAN,
    ArchiveLimits,
    HashedStream,
    PackageReader,
    extract,
    pack,
    write_package,
)

AUTHOR = "a" * 64
MODULE = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 64


def write_project(
    tmp: Path, *, name: str = "hello-spirit", version: str = "0.1.0", module: bytes = MODULE
) -> tuple[Path, Path]:
    root = tmp / f"{name}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "spirit.toml"
    manifest.write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{AUTHOR}"\n'
        'description = "A simple hello world Spirit"\n'
        'capabilities = ["sensor_time", "actuator_log"]\n'
    )
    wasm = root / "module.wasm"
    wasm.write_bytes(module)
    return manifest, wasm


def test_pack_is_deterministic(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    assets = tmp_path / "static"
    (assets / "sub").mkdir(parents=True)
    (assets / "b.txt").write_text("bee")
    (assets / "sub" / "a.txt").write_text("ay")
    one = pack(manifest, wasm, tmp_path / "one.spirit", assets=[assets])
    # touch every input: new mtimes must not change the bytes
    for p in (manifest, wasm, assets / "b.txt"):
        p.write_bytes(p.read_bytes())
        p.chmod(0o600)
    two = pack(manifest, wasm, tmp_path / "two.spirit", assets=[assets])
    assert one.read_bytes() == two.read_bytes()
    with PackageReader(one) as reader:
        names = [m.name for m in reader.members]
        assert names == [
            "spirit.toml",
            "module.wasm",
            "assets/static/b.txt",
            "assets/static/sub/a.txt",
        ]
        assert reader.read("module.wasm") == MODULE
        assert reader.read("assets/static/sub/a.txt") == b"ay"


def test_archive_is_a_standard_zip(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.read("module.wasm") == MODULE
        info = zf.getinfo("spirit.toml")
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644


def test_pack_refuses_a_bad_manifest_and_missing_module(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    manifest.write_text(manifest.read_text() + "capabilites = []\n")
    with pytest.raises(ManifestError):
        pack(manifest, wasm, tmp_path / "x.spirit")
    assert not (tmp_path / "x.spirit").exists()
    manifest, wasm = write_project(tmp_path / "ok")
    with pytest.raises(NotFoundError):
        pack(manifest, tmp_path / "missing.wasm", tmp_path / "y.spirit")
    assert not list(tmp_path.glob("*.partial"))


def test_asset_symlink_is_refused(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    assets = tmp_path / "assets-src"
    assets.mkdir()
    (assets / "link").symlink_to(manifest)
    with pytest.raises(InvalidInputError):
        pack(manifest, wasm, tmp_path / "x.spirit", assets=[assets])


def test_extract_writes_only_under_dest(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit", assets=[("docs/readme.txt", manifest)])
    files = extract(out, tmp_path / "x")
    assert sorted(p.relative_to(tmp_path / "x").as_posix() for p in files) == [
        "assets/docs/readme.txt",
        "module.wasm",
        "spirit.toml",
    ]
    assert (tmp_path / "x" / "module.wasm").read_bytes() == MODULE


def evil_zip(
    path: Path,
    members: list[tuple[zipfile.ZipInfo | str, bytes]],
    compression: int = zipfile.ZIP_STORED,
) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


BASE: list[tuple[zipfile.ZipInfo | str, bytes]] = [
    ("spirit.toml", b'name = "x"\n'),
    ("module.wasm", b"\x00asm"),
]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("assets/../../evil.txt", "'..'"),
        ("../evil.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/windows/evil", "absolute"),
        ("assets\\..\\evil", "backslash"),
        ("assets/./x", "'..'"),
        ("random.txt", "not a manifest"),
    ],
)
def test_zip_slip_and_absolute_names_are_refused(tmp_path: Path, name: str, why: str) -> None:
    bad = evil_zip(tmp_path / "evil.spirit", [*BASE, (name, b"pwned")])
    with pytest.raises(VerificationError, match=why):
        PackageReader(bad)
    with pytest.raises(VerificationError):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("assets/link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    bad = evil_zip(tmp_path / "evil.spirit", [*BASE, (info, b"/etc/passwd")])
    with pytest.raises(VerificationError, match="symbolic link"):
        PackageReader(bad)


def test_device_and_directory_members_are_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("assets/dev")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o644) << 16
    bad = evil_zip(tmp_path / "dev.spirit", [*BASE, (info, b"")])
    with pytest.raises(VerificationError, match="not a regular file"):
        PackageReader(bad)
    bad = evil_zip(tmp_path / "dir.spirit", [*BASE, ("assets/dir/", b"")])
    with pytest.raises(VerificationError, match="directory"):
        PackageReader(bad)


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Duplicate name"):
        bad = evil_zip(tmp_path / "dup.spirit", [*BASE, ("module.wasm", b"other")])
    with pytest.raises(VerificationError, match="duplicate"):
        PackageReader(bad)
    bad = evil_zip(tmp_path / "case.spirit", [*BASE, ("assets/A", b"1"), ("assets/a", b"2")])
    with pytest.raises(VerificationError, match="duplicate"):
        PackageReader(bad)


def test_compressed_member_bomb_is_refused(tmp_path: Path) -> None:
    # 64 MiB of zeros deflates to ~64 KiB: a classic bomb. Refused without inflating.
    bad = evil_zip(
        tmp_path / "bomb.spirit",
        [BASE[0], ("module.wasm", bytes(64 * 1024 * 1024))],
        zipfile.ZIP_DEFLATED,
    )
    assert bad.stat().st_size < 1024 * 1024
    with pytest.raises(VerificationError, match="compressed"):
        PackageReader(bad)


def test_declared_size_over_limit_is_refused(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    with pytest.raises(VerificationError, match="over the"):
        PackageReader(out, ArchiveLimits(max_member_size=1000))
    with pytest.raises(VerificationError, match="exceed"):
        PackageReader(out, ArchiveLimits(max_total_size=len(MODULE)))
    with pytest.raises(VerificationError, match="members"):
        PackageReader(out, ArchiveLimits(max_members=1))


def test_declared_size_lie_is_refused(tmp_path: Path) -> None:
    """A header that declares fewer bytes than are stored (or more) is refused."""
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    data = bytearray(out.read_bytes())
    import struct

    with PackageReader(out) as reader:
        m = reader.member("module.wasm")
    # patch both sizes of the local header to a huge value
    struct.pack_into("<II", data, m.header_offset + 18, 0xFFFFFFF0, 0xFFFFFFF0)
    out.write_bytes(bytes(data))
    with pytest.raises(VerificationError):
        PackageReader(out)


def test_every_single_byte_flip_outside_data_is_refused(tmp_path: Path) -> None:
    """Headers, directory and end record are checked byte for byte."""
    manifest, wasm = write_project(tmp_path, module=b"\x00asm\x01\x00\x00\x00")
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    original = out.read_bytes()
    with PackageReader(out) as reader:
        data_ranges = [(m.data_offset, m.end) for m in reader.members]
    for pos in range(len(original)):
        if any(a <= pos < b for a, b in data_ranges):
            continue
        flipped = bytearray(original)
        flipped[pos] ^= 0x01
        out.write_bytes(bytes(flipped))
        with pytest.raises((VerificationError, NotFoundError)):
            PackageReader(out).close()


def test_data_flip_fails_crc_and_truncation_is_refused(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    with PackageReader(out) as reader:
        m = reader.member("module.wasm")
    data = bytearray(out.read_bytes())
    data[m.data_offset + 100] ^= 0xFF
    out.write_bytes(bytes(data))
    with PackageReader(out) as reader, pytest.raises(VerificationError, match="CRC"):
        reader.read("module.wasm")
    out.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(VerificationError):
        PackageReader(out)
    out.write_bytes(b"")
    with pytest.raises(VerificationError):
        PackageReader(out)


def test_prepended_and_appended_bytes_are_refused(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    original = out.read_bytes()
    for variant in (b"X" + original, original + b"X"):
        out.write_bytes(variant)
        with pytest.raises(VerificationError):
            PackageReader(out)


def test_write_package_refuses_unknown_manifest_name(tmp_path: Path) -> None:
    _, wasm = write_project(tmp_path)
    with pytest.raises(InvalidInputError):
        write_package(tmp_path / "p.spirit", "Cargo.toml", b"", wasm, [])


def test_unzip_lists_package(tmp_path: Path) -> None:
    manifest, wasm = write_project(tmp_path)
    out = pack(manifest, wasm, tmp_path / "p.spirit")
    assert shutil.which("unzip"), "needs unzip: bash .ci/run installs it"
    result = subprocess.run(["unzip", "-t", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tar_with_hardlink_is_not_a_package(tmp_path: Path) -> None:
    """Only the canonical ZIP layout is read: a tar (where hardlinks live) is refused."""
    import io
    import tarfile

    bad = tmp_path / "evil.spirit"
    with tarfile.open(bad, "w") as tar:
        data = b'name = "x"\n'
        info = tarfile.TarInfo("spirit.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("module.wasm")
        link.type = tarfile.LNKTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(VerificationError, match=r"not a valid \.spirit package"):
        PackageReader(bad)


def test_fifo_and_directory_are_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.spirit"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        PackageReader(fifo)
    with pytest.raises(InvalidInputError, match="directory"):
        PackageReader(tmp_path)
    with pytest.raises(NotFoundError):
        PackageReader(tmp_path / "missing.spirit")
    manifest, _ = write_project(tmp_path)
    with pytest.raises(InvalidInputError):
        pack(manifest, fifo, tmp_path / "x.spirit")


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, PIPELINE_MIN - 1, PIPELINE_MIN, 2 * SPAN + CHUNK + 7]
)
def test_hashed_stream_yields_and_hashes_every_byte_once(tmp_path: Path, size: int) -> None:
    """Inline (small) and two-thread (large) paths, span boundaries, a partial last chunk."""
    import hashlib
    import os
    import threading

    data = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(b"head" + data + b"tail")
    fd = os.open(path, os.O_RDONLY)
    try:
        with HashedStream(fd, 4, size) as stream:
            seen = b"".join(bytes(chunk) for chunk in stream)
            assert stream.hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)
    assert seen == data
    assert not any(t.name == "vudo-sha256" for t in threading.enumerate())


def test_hashed_stream_stops_its_thread_when_abandoned_and_refuses_truncation(
    tmp_path: Path,
) -> None:
    import os
    import threading

    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * SPAN))
    fd = os.open(path, os.O_RDONLY)
    try:
        with HashedStream(fd, 0, 3 * SPAN) as stream:
            chunks = iter(stream)
            next(chunks)
            with pytest.raises(RuntimeError):
                stream.hexdigest()  # not read to the end: no digest of a prefix
        assert not any(t.name == "vudo-sha256" for t in threading.enumerate())
        with (
            HashedStream(fd, 0, 4 * SPAN) as stream,
            pytest.raises(VerificationError, match="truncated"),
        ):
            for _ in stream:
                pass
    finally:
        os.close(fd)
    assert not any(t.name == "vudo-sha256" for t in threading.enumerate())
