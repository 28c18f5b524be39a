"""Which stored grants a run may use: those the user's key made for the run's identity,
and (re-signed) those made for the user's own key before Spirits had identities."""

from __future__ import annotations

from pathlib import Path

import nacl.signing

from vudo.capabilities import Capability as C
from vudo.engine.grants import Grant, Scope, issue_grant, verify_grant
from vudo.engine.identity import SpiritIdentity
from vudo.pkg.keys import ensure_keypair
from vudo.project.grants import installed_grantee, usable_grants


def test_usable_grants_keep_own_resign_legacy_and_drop_the_rest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    kp = ensure_keypair(home)
    me = kp.public_hex
    wallet = installed_grantee("ab" * 32, "wallet")
    assert wallet == SpiritIdentity.installed("ab" * 32, "wallet").key
    other_key = nacl.signing.SigningKey(bytes([9]) * 32)

    def made(
        cap: C,
        grantee: str,
        key: nacl.signing.SigningKey = kp.signing_key,
        expires_at: int | None = None,
    ) -> Grant:
        return issue_grant(
            key, cap, Scope.parse("global"), grantee, issued_at=100, expires_at=expires_at
        )

    own = made(C.STORAGE_READ, wallet)
    legacy = made(C.SENSOR_TIME, me, expires_at=5_000_000_000)
    foreign = made(C.STORAGE_WRITE, wallet, key=other_key)
    foreign_legacy = made(C.ACTUATOR_LOG, me, key=other_key)
    elsewhere = made(C.STORAGE_DELETE, installed_grantee("cd" * 32, "wallet"))
    forged = Grant(C.SENSOR_RANDOM, Scope.parse("global"), me, me, 100, None, bytes([1]) * 64)
    usable = usable_grants(
        [own, legacy, foreign, foreign_legacy, elsewhere, forged], home=home, grantee=wallet
    )
    assert [g.capability for g in usable] == [C.STORAGE_READ, C.SENSOR_TIME]
    assert usable[0] == own
    resigned = usable[1]
    assert resigned.grantee == wallet and resigned.granter == me
    assert (resigned.issued_at, resigned.expires_at) == (100, 5_000_000_000)
    verify_grant(resigned)  # a real signature by the user's key
