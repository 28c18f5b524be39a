"""Signing and verification on real packages: tamper, truncation, forgery, wrong keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vudo.errors import VerificationError
from vudo.files import write_atomic_with
from vudo.pkg.archive import SIGNATURE_NAME, MemberDigests, PackageReader, ZipWriter, pack
from vudo.pkg.keys import KeyPair, generate_keypair
from vudo.pkg.signing import Envelope, check_package, sign_package, verify_package

MODULE = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 16


def keypair(byte: int) -> KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


def make_package(
    tmp: Path,
    *,
    author: str | None = None,
    name: str = "hello-spirit",
    version: str = "0.1.0",
    signer: KeyPair | None = None,
) -> Path:
    signer = signer or keypair(1)
    root = tmp / f"src-{name}-{version}"
    (root / "static").mkdir(parents=True, exist_ok=True)
    manifest = root / "spirit.toml"
    manifest.write_text(
        f'# my spirit\nname = "{name}"\nversion = "{version}"\n'
        f'author = "{author or signer.public_hex}"\n'
        'description = "A simple hello world Spirit"\n'
        'capabilities = ["sensor_time", "actuator_log"]\n'
    )
    (root / "module.wasm").write_bytes(MODULE)
    (root / "static" / "logo.txt").write_text("logo")
    out = pack(
        manifest, root / "module.wasm", tmp / f"{name}-{version}.spirit", assets=[root / "static"]
    )
    sign_package(out, signer)
    return out


def rewrite(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Write a canonical archive with exactly these members (a careful attacker's tool)."""

    def body(fd: int) -> None:
        writer = ZipWriter(fd)
        for name, data in members:
            writer.add_bytes(name, data)
        writer.finish()

    write_atomic_with(path, body)


def members_of(path: Path) -> list[tuple[str, bytes]]:
    with PackageReader(path) as reader:
        return [(m.name, reader.read(m.name)) for m in reader.members]


def test_sign_and_verify_round_trip(tmp_path: Path) -> None:
    kp = keypair(1)
    out = make_package(tmp_path, signer=kp)
    verified = verify_package(out)
    assert verified.signer == kp.public_hex
    assert verified.author_matches
    assert verified.module == MODULE
    assert verified.manifest.name == "hello-spirit"
    assert verified.assets == {"assets/static/logo.txt": b"logo"}
    assert len(verified.digest) == 64
    assert [f.path for f in verified.files] == [
        "spirit.toml",
        "module.wasm",
        "assets/static/logo.txt",
    ]


def test_signing_is_deterministic_and_replaces_old_signature(tmp_path: Path) -> None:
    a = make_package(tmp_path / "a")
    b = make_package(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    result = sign_package(a, keypair(2))
    assert not result.author_matches
    assert result.author == keypair(1).public_hex
    verified = verify_package(a)
    assert verified.signer == keypair(2).public_hex
    assert not verified.author_matches
    assert [m for m, _ in members_of(a)].count(SIGNATURE_NAME) == 1


def test_unsigned_package_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    rewrite(out, [(n, d) for n, d in members_of(out) if n != SIGNATURE_NAME])
    with pytest.raises(VerificationError, match="not signed"):
        verify_package(out)


def test_flip_a_byte_in_every_member_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    original = members_of(out)
    for index, (name, data) in enumerate(original):
        for pos in sorted({0, len(data) // 2, len(data) - 1}):
            tampered = bytearray(data)
            tampered[pos] ^= 0x20
            members = list(original)
            members[index] = (name, bytes(tampered))
            rewrite(out, members)
            with pytest.raises(VerificationError):
                verify_package(out)


def test_raw_byte_flip_anywhere_in_the_file_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    original = out.read_bytes()
    for pos in range(0, len(original), 11):
        flipped = bytearray(original)
        flipped[pos] ^= 0x04
        out.write_bytes(bytes(flipped))
        with pytest.raises(VerificationError):
            verify_package(out)


def test_every_byte_of_the_signature_envelope_is_covered(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    original = out.read_bytes()
    with PackageReader(out) as reader:
        sig = reader.member(SIGNATURE_NAME)
    for pos in range(sig.data_offset, sig.end):
        flipped = bytearray(original)
        flipped[pos] ^= 0x01
        out.write_bytes(bytes(flipped))
        with pytest.raises(VerificationError):
            verify_package(out)


def test_reformatted_envelope_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    members = members_of(out)
    body = json.loads(members[-1][1])
    members[-1] = (SIGNATURE_NAME, json.dumps(body, indent=4, sort_keys=True).encode())
    rewrite(out, members)
    with pytest.raises(VerificationError, match="canonical"):
        verify_package(out)


def test_added_member_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    members = members_of(out)
    members.insert(-1, ("assets/static/zzz.txt", b"extra"))
    rewrite(out, members)
    with pytest.raises(VerificationError, match="not covered"):
        verify_package(out)


def test_removed_member_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    rewrite(out, [(n, d) for n, d in members_of(out) if n != "assets/static/logo.txt"])
    with pytest.raises(VerificationError, match="missing"):
        verify_package(out)


def _edit_envelope(out: Path, edit: object) -> None:
    members = members_of(out)
    name, data = members[-1]
    assert name == SIGNATURE_NAME
    body = json.loads(data)
    assert callable(edit)
    edit(body)
    # written canonically, as a careful forger would, so the specific check is reached
    members[-1] = (name, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
    rewrite(out, members)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda b: b.update(signature=b["signature"][:100]), "truncated"),
        (lambda b: b.update(signature=""), "truncated"),
        (lambda b: b.update(signature="0" * 128), "zero"),
        (
            lambda b: b.update(
                signature=("1" if b["signature"][0] != "1" else "2") + b["signature"][1:]
            ),
            "signature",
        ),
        (lambda b: b.update(signer=keypair(9).public_hex), "signature"),
        (lambda b: b.update(digest="0" * 64), "digest"),
        (lambda b: b.pop("files"), "fields"),
        (lambda b: b.update(extra=1), "fields"),
        (lambda b: b.update(algorithm="rsa"), "algorithm"),
        (lambda b: b["files"][1].update(size=1), "changed"),
        (lambda b: b.update(manifest_sha256="1" * 64), "signature"),
    ],
)
def test_envelope_forgery_is_refused(tmp_path: Path, edit: object, match: str) -> None:
    out = make_package(tmp_path)
    _edit_envelope(out, edit)
    with pytest.raises(VerificationError, match=match):
        verify_package(out)


def test_wrong_key_resigned_envelope_still_verifies_as_that_signer(tmp_path: Path) -> None:
    """Re-signing with an attacker key is detectable: the signer changes (trust catches it)."""
    out = make_package(tmp_path)
    sign_package(out, keypair(7))
    assert verify_package(out).signer == keypair(7).public_hex


def test_signature_truncated_in_the_file_is_refused(tmp_path: Path) -> None:
    out = make_package(tmp_path)
    out.write_bytes(out.read_bytes()[:-40])
    with pytest.raises(VerificationError):
        verify_package(out)
    out.write_bytes(b"\x00" * 100)
    with pytest.raises(VerificationError):
        verify_package(out)


def test_envelope_parse_rejects_non_json() -> None:
    with pytest.raises(VerificationError):
        Envelope.parse(b"\xff\xfe")
    with pytest.raises(VerificationError):
        Envelope.parse(b"[]")


def test_pack_and_sign_in_one_pass_equals_pack_then_sign(tmp_path: Path) -> None:
    from vudo.pkg.signing import pack_and_sign

    kp = keypair(3)
    root = tmp_path / "proj"
    (root / "static").mkdir(parents=True)
    (root / "spirit.toml").write_text(
        f'name = "one-pass"\nversion = "1.0.0"\nauthor = "{"a" * 64}"\n'
    )
    (root / "module.wasm").write_bytes(MODULE)
    (root / "static" / "empty.txt").write_bytes(b"")
    (root / "static" / "data.bin").write_bytes(bytes(range(200)))
    two = pack(
        root / "spirit.toml",
        root / "module.wasm",
        tmp_path / "two.spirit",
        assets=[root / "static"],
    )
    signed = sign_package(two, kp)
    one = pack_and_sign(
        root / "spirit.toml",
        root / "module.wasm",
        tmp_path / "one.spirit",
        kp,
        assets=[root / "static"],
    )
    assert one.path.read_bytes() == two.read_bytes()
    assert one.digest == signed.digest
    assert not one.author_matches and one.author == "a" * 64
    assert verify_package(one.path).assets["assets/static/empty.txt"] == b""


def test_large_module_round_trip_tamper_and_corrupt_source(tmp_path: Path) -> None:
    """A module big enough for the two-thread pipeline: verify returns exactly its bytes,
    a byte flipped deep inside it is refused, and signing a package whose module fails
    its CRC is refused and leaves the file as it was (nothing half-written beside it)."""
    import os

    from vudo.pkg.archive import PIPELINE_MIN, SPAN
    from vudo.pkg.signing import pack_and_sign

    kp = keypair(4)
    big = b"\x00asm\x01\x00\x00\x00" + os.urandom(max(PIPELINE_MIN, SPAN) + SPAN // 2)
    root = tmp_path / "big"
    root.mkdir()
    (root / "spirit.toml").write_text(
        f'name = "big"\nversion = "1.0.0"\nauthor = "{kp.public_hex}"\n'
    )
    (root / "module.wasm").write_bytes(big)
    one = pack_and_sign(root / "spirit.toml", root / "module.wasm", tmp_path / "one.spirit", kp)
    two = pack(root / "spirit.toml", root / "module.wasm", tmp_path / "two.spirit")
    sign_package(two, kp)
    assert one.path.read_bytes() == two.read_bytes()
    module_bytes = verify_package(two).module
    assert type(module_bytes) is bytes  # callers (engine.load) take bytes, not a view
    assert module_bytes == big

    with PackageReader(two) as reader:
        module = reader.member("module.wasm")
    for pos in (SPAN + 3, len(big) - 1):
        members = members_of(one.path)
        assert members[1][0] == "module.wasm"
        flipped = bytearray(members[1][1])
        flipped[pos] ^= 0x10
        members[1] = ("module.wasm", bytes(flipped))
        rewrite(two, members)  # with a matching CRC, so the SHA-256 must catch it
        with pytest.raises(VerificationError, match="changed after signing"):
            verify_package(two)
        raw = bytearray(one.path.read_bytes())
        raw[module.data_offset + pos] ^= 0x10
        two.write_bytes(bytes(raw))
        with pytest.raises(VerificationError, match="CRC"):
            verify_package(two)

    unsigned = pack(root / "spirit.toml", root / "module.wasm", tmp_path / "u.spirit")
    corrupt = bytearray(unsigned.read_bytes())
    corrupt[module.data_offset + SPAN + 3] ^= 0x10
    unsigned.write_bytes(bytes(corrupt))
    with pytest.raises(VerificationError, match="CRC"):
        sign_package(unsigned, kp)
    assert unsigned.read_bytes() == bytes(corrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "big",
        "one.spirit",
        "two.spirit",
        "u.spirit",
    ]


def test_crc_edited_in_both_headers_is_refused(tmp_path: Path) -> None:
    """The signature covers member data, not the headers' CRC fields, and a consistent
    edit of both copies passes the header comparison: verify must check the data's CRC."""
    import struct

    out = make_package(tmp_path)
    with PackageReader(out) as reader:
        crc = reader.member("module.wasm").crc
    original = out.read_bytes()
    assert original.count(struct.pack("<I", crc)) == 2  # local and central header
    out.write_bytes(original.replace(struct.pack("<I", crc), struct.pack("<I", crc ^ 0x5A5A5A5A)))
    with pytest.raises(VerificationError, match="CRC"):
        verify_package(out)


def _streamed(data: bytes, step: int) -> MemberDigests:
    digests = MemberDigests()
    for at in range(0, len(data), step):
        digests.update(data[at : at + step])
    return digests


@pytest.mark.parametrize("step", [1, 29, 4096, 1 << 20])
def test_check_with_streamed_digests_matches_full_verification(tmp_path: Path, step: int) -> None:
    """A download's member digests (any chunking) let the signature be checked without
    reading member data again, with the same result as verify_package."""
    package = make_package(tmp_path)
    full = verify_package(package)
    checked = check_package(package, streamed=_streamed(package.read_bytes(), step))
    assert (checked.digest, checked.signer, checked.files, checked.manifest) == (
        full.digest,
        full.signer,
        full.files,
        full.manifest,
    )
    assert check_package(package) == checked  # and without streamed digests: read once


def test_streamed_digests_of_other_bytes_are_refused(tmp_path: Path) -> None:
    """The digests must come from the bytes of the file (a module byte changed on the
    way, or in the file and the stream alike, is refused; the caller's part is that the
    file is the private one it wrote from that stream)."""
    package = make_package(tmp_path)
    good = package.read_bytes()
    at = good.index(MODULE) + 100
    bad = good[:at] + bytes([good[at] ^ 1]) + good[at + 1 :]
    with pytest.raises(VerificationError, match="differ from its directory"):
        check_package(package, streamed=_streamed(bad, 4096))
    package.write_bytes(bad)
    with pytest.raises(VerificationError):
        check_package(package, streamed=_streamed(bad, 4096))
