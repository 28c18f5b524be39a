"""Trust on first use and explicitly trusted keys, as a pure rule and through the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from vudo.errors import VerificationError
from vudo.pkg.archive import pack
from vudo.pkg.keys import KeyPair, generate_keypair
from vudo.pkg.signing import sign_package
from vudo.pkg.store import LocalStore
from vudo.pkg.trust import TrustPolicy, decide


def keypair(byte: int) -> KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


A, B, C = keypair(1).public_hex, keypair(2).public_hex, keypair(3).public_hex


def make_package(
    tmp: Path, version: str, signer: KeyPair, author: str | None = None, name: str = "hello-spirit"
) -> Path:
    root = tmp / f"{name}-{version}-{signer.public_hex[:8]}-{(author or '')[:4]}"
    root.mkdir(parents=True)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{author or signer.public_hex}"\n'
    )
    (root / "module.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    out = pack(root / "spirit.toml", root / "module.wasm", root / "p.spirit")
    sign_package(out, signer)
    return out


def test_first_install_pins_the_signer() -> None:
    d = decide("x", signer=A, author=A, pinned=None, trusted=(), policy=TrustPolicy())
    assert d.pin == A


def test_same_signer_keeps_pin() -> None:
    d = decide("x", signer=A, author=A, pinned=A, trusted=(), policy=TrustPolicy())
    assert d.pin is None


def test_other_signer_is_refused_with_hint() -> None:
    with pytest.raises(VerificationError) as info:
        decide("x", signer=B, author=B, pinned=A, trusted=(), policy=TrustPolicy())
    assert f"vudo keys trust {B}" in (info.value.hint or "")
    assert info.value.exit_code == 4


def test_trusted_signer_is_accepted_without_repinning() -> None:
    d = decide("x", signer=B, author=B, pinned=A, trusted={B}, policy=TrustPolicy())
    assert d.pin is None
    d = decide(
        "x", signer=B, author=B, pinned=A, trusted=(), policy=TrustPolicy.trusting(B.upper())
    )
    assert d.pin is None


def test_repin_policy_replaces_the_pin() -> None:
    d = decide("x", signer=B, author=B, pinned=A, trusted=(), policy=TrustPolicy(repin=True))
    assert d.pin == B


def test_author_mismatch_needs_a_trusted_signer() -> None:
    with pytest.raises(VerificationError, match="manifest author is"):
        decide("x", signer=B, author=A, pinned=None, trusted=(), policy=TrustPolicy())
    d = decide("x", signer=B, author=A, pinned=None, trusted={B}, policy=TrustPolicy())
    assert d.pin == B and any("signed by" in n for n in d.notes)
    d = decide(
        "x",
        signer=B,
        author=A,
        pinned=None,
        trusted=(),
        policy=TrustPolicy(allow_author_mismatch=True),
    )
    assert d.pin == B


def test_tofu_through_the_store(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "registry") as store:
        store.install(make_package(tmp_path, "1.0.0", keypair(1)))
        assert store.pinned_signer("hello-spirit") == A
        evil = make_package(tmp_path, "1.1.0", keypair(2))
        with pytest.raises(VerificationError, match="first installed signed by"):
            store.install(evil)
        assert [str(s.version) for s in store.versions("hello-spirit")] == ["1.0.0"]
        # uninstalling does not forget the pin
        store.uninstall("hello-spirit")
        with pytest.raises(VerificationError):
            store.install(evil)
        # the user trusts the new key: accepted, pin unchanged
        store.trust_key(B, "new maintainer")
        assert store.trusted_keys() == [B]
        store.install(evil)
        assert store.pinned_signer("hello-spirit") == A
        assert store.untrust_key(B)
        with pytest.raises(VerificationError):
            store.install(make_package(tmp_path, "1.2.0", keypair(2)))
        # explicit re-pin
        store.install(make_package(tmp_path, "1.3.0", keypair(3)), policy=TrustPolicy(repin=True))
        assert store.pinned_signer("hello-spirit") == C
        assert store.unpin("hello-spirit")
        assert store.pins() == {}


def test_author_mismatch_through_the_store(tmp_path: Path) -> None:
    """The CLI's seed flow: author "aaa…", signed with the user's key, then summoned."""
    user = keypair(4)
    pkg = make_package(tmp_path, "0.1.0", user, author="a" * 64)
    with LocalStore(tmp_path / "registry") as store:
        with pytest.raises(VerificationError, match="manifest author"):
            store.install(pkg)
        result = store.install(pkg, policy=TrustPolicy.trusting(user.public_hex))
        assert not result.author_matches
        assert result.spirit.signer == user.public_hex
        assert result.spirit.author == "a" * 64
        assert store.pinned_signer("hello-spirit") == user.public_hex
