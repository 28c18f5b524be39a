"""Key pairs on real files: generation, permissions, malformed files, nacl error mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError, NotFoundError, VerificationError
from vudo.pkg import keys
from vudo.pkg.keys import (
    ensure_keypair,
    fingerprint,
    generate_keypair,
    load_keypair,
    load_public_key,
    save_keypair,
    verify_signature,
)


def seeded(byte: int) -> keys.KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


def test_generate_save_load_round_trip(tmp_path: Path) -> None:
    kp = generate_keypair()
    path = save_keypair(kp, tmp_path / "keys")
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys" / "public.key").read_text().strip() == kp.public_hex
    again = load_keypair(tmp_path / "keys")
    assert again.public_hex == kp.public_hex
    assert load_keypair(path).public_hex == kp.public_hex
    assert len(kp.public_hex) == 64


def test_seeded_generation_is_repeatable_and_fingerprint_grouped() -> None:
    a, b = seeded(7), seeded(7)
    assert a.public_hex == b.public_hex
    assert a.fingerprint == fingerprint(a.public_hex)
    groups = a.fingerprint.split(":")
    assert [len(g) for g in groups] == [4, 4, 4, 4]
    assert seeded(8).fingerprint != a.fingerprint


def test_ensure_keypair_creates_once(tmp_path: Path) -> None:
    first = ensure_keypair(tmp_path)
    second = ensure_keypair(tmp_path)
    assert first.public_hex == second.public_hex
    assert (tmp_path / "keys" / "private.key").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_private_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = save_keypair(seeded(1), tmp_path)
    os.chmod(path, mode)
    with pytest.raises(InvalidInputError) as info:
        load_keypair(path)
    assert info.value.hint == f"chmod 600 {path}"


@pytest.mark.parametrize("content", [b"", b"zz" * 32, b"ab" * 31, b"\xff\xfe garbage", b"ab" * 33])
def test_malformed_private_key_is_invalid_input(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "private.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(InvalidInputError):
        load_keypair(path)


def test_missing_key_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_keypair(tmp_path / "nope.key")


def test_mismatched_public_key_file_is_refused(tmp_path: Path) -> None:
    save_keypair(seeded(1), tmp_path)
    (tmp_path / "public.key").write_text(seeded(2).public_hex + "\n")
    with pytest.raises(InvalidInputError, match="does not belong"):
        load_keypair(tmp_path)


def test_save_refuses_to_replace_a_different_key(tmp_path: Path) -> None:
    save_keypair(seeded(1), tmp_path)
    with pytest.raises(InvalidInputError):
        save_keypair(seeded(2), tmp_path)
    save_keypair(seeded(2), tmp_path, overwrite=True)
    assert load_keypair(tmp_path).public_hex == seeded(2).public_hex


def test_load_public_key_from_hex_file_and_dir(tmp_path: Path) -> None:
    kp = seeded(3)
    save_keypair(kp, tmp_path)
    assert load_public_key(kp.public_hex.upper()) == kp.public_hex
    assert load_public_key(tmp_path / "public.key") == kp.public_hex
    assert load_public_key(tmp_path) == kp.public_hex
    with pytest.raises(InvalidInputError):
        load_public_key("0" * 64)
    with pytest.raises(InvalidInputError):
        load_public_key("not-a-key")


def test_signatures_verify_and_forgeries_fail() -> None:
    kp = seeded(4)
    sig = kp.sign(b"message")
    verify_signature(kp.public_hex, b"message", sig, context="test")
    with pytest.raises(VerificationError):
        verify_signature(kp.public_hex, b"messagf", sig, context="test")
    with pytest.raises(VerificationError):
        verify_signature(seeded(5).public_hex, b"message", sig, context="test")
    with pytest.raises(VerificationError):
        verify_signature(kp.public_hex, b"message", bytes(64), context="test")
    with pytest.raises(VerificationError):
        verify_signature(kp.public_hex, b"message", sig[:63], context="test")
