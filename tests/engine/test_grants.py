"""Grants: scopes, canonical encoding, signatures checked once, cheap per-call checks."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest

from vudo.capabilities import Capability
from vudo.engine.grants import (
    CANONICAL_VERSION,
    Decision,
    Grant,
    GrantChecker,
    RevocationList,
    Scope,
    ScopeKind,
    issue_grant,
    verify_grant,
)
from vudo.errors import InvalidInputError, VerificationError

C = Capability


def hexkey(sk: nacl.signing.SigningKey) -> str:
    return bytes(sk.verify_key).hex()


@pytest.fixture
def granter() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes(range(32)))


@pytest.fixture
def spirit() -> str:
    return hexkey(nacl.signing.SigningKey(bytes(range(1, 33))))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def checker(
    granter: nacl.signing.SigningKey,
    spirit: str,
    *grants: Grant,
    now: float = 1000,
    revocations: RevocationList | None = None,
    trusted: tuple[str, ...] | None = None,
) -> GrantChecker:
    return GrantChecker(
        grants,
        grantee=spirit,
        trusted_granters=(hexkey(granter),) if trusted is None else trusted,
        revocations=revocations,
        clock=Clock(now),
    )


def grant(
    granter: nacl.signing.SigningKey,
    spirit: str,
    cap: Capability = C.STORAGE_READ,
    scope: str = "global",
    *,
    issued_at: int = 100,
    expires_at: int | None = None,
) -> Grant:
    return issue_grant(
        granter, cap, Scope.parse(scope), spirit, issued_at=issued_at, expires_at=expires_at
    )


# --- scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "global",
        "sandboxed",
        "peer:" + "ab" * 32,
        "domain:127.0.0.1:*",
        "domain:*.example.com:443",
        "domain:[::1]:8080",
        "domain:local?ost:1",
    ],
)
def test_scope_round_trips_through_text(text: str) -> None:
    scope = Scope.parse(text)
    assert str(scope) == text
    assert Scope.parse(str(scope)) == scope


def test_scope_parse_normalises_case_and_port() -> None:
    assert str(Scope.parse("GLOBAL")) == "global"
    assert str(Scope.parse("peer:" + "AB" * 32)) == "peer:" + "ab" * 32
    assert str(Scope.parse("domain:Example.COM:0443")) == "domain:example.com:443"
    assert Scope.parse("domain:a:1") == Scope.domain("a:1")
    assert Scope.global_().kind is ScopeKind.GLOBAL
    assert Scope.sandboxed().kind is ScopeKind.SANDBOXED
    assert Scope.peer("cd" * 32).value == "cd" * 32


@pytest.mark.parametrize(
    "text",
    [
        "",
        "everything",
        "global:x",
        "sandboxed:1",
        "peer",
        "peer:",
        "peer:abc",
        "peer:" + "zz" * 32,
        "domain",
        "domain:",
        "domain:example.com",
        "domain:example.com:http",
        "domain:example.com:70000",
        "domain::80",
        "domain:exa mple.com:80",
        "domain:a/b:80",
        "net:127.0.0.1:*",
        "domain:a..b:80",
        "domain:.example.com:80",
        "domain:example.com.:80",
        "domain:127.0.0.256:*",
        "domain:127.0.1:*",
        "domain:1.2.3.4.5:*",
        "domain:127.000.0.1:*",
        "domain:127.0.0.0?:*",
        "domain:*.*:*",
        "domain:1**.0.0.1:*",
        "domain:" + "a" * 64 + ".com:1",
        "domain:" + "a." * 127 + "com:1",
        "domain:[::1%eth0]:*",
        "domain:[fe80::*]:*",
        "domain:[fe80:*:*]:*",
        "domain:[::ffff:127.0.0.1]:*",
        "domain:[zz::1]:1",
        "domain:[]:1",
        "domain:[::1:1",
        "domain:[1:2:3:4:5:6:7:8:9]:1",
        "domain:127.0.0.1\n:*",
    ],
)
def test_scope_parse_rejects_bad_text_clearly(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Scope.parse(text)
    assert info.value.hint


def test_scope_parse_rejects_non_text() -> None:
    with pytest.raises(InvalidInputError):
        Scope.parse(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Scope(ScopeKind.DOMAIN, None)
    with pytest.raises(InvalidInputError):
        Scope("planet")  # type: ignore[arg-type]


def test_global_scope_allows_everything() -> None:
    scope = Scope.parse("global")
    assert scope.allows(None)
    assert scope.allows("10.0.0.1:22")
    assert scope.allows("ab" * 32)


def test_sandboxed_scope_allows_only_untargeted_calls() -> None:
    scope = Scope.parse("sandboxed")
    assert scope.allows(None)
    assert not scope.allows("127.0.0.1:80")
    assert not scope.allows("ab" * 32)


def test_peer_scope_allows_only_that_key() -> None:
    scope = Scope.parse("peer:" + "ab" * 32)
    assert scope.allows("ab" * 32)
    assert scope.allows("AB" * 32)
    assert not scope.allows("cd" * 32)
    assert not scope.allows(None)


@pytest.mark.parametrize(
    ("pattern", "target", "allowed"),
    [
        ("127.0.0.1:*", "127.0.0.1:80", True),
        ("127.0.0.1:*", "127.0.0.1:65535", True),
        ("127.0.0.1:*", "127.0.0.2:80", False),
        ("127.0.0.1:*", "127.0.0.10:80", False),
        ("127.0.0.1:8080", "127.0.0.1:8080", True),
        ("127.0.0.1:8080", "127.0.0.1:8081", False),
        ("127.0.0.1:8080", "127.0.0.1:80", False),
        ("*.example.com:443", "api.example.com:443", True),
        ("*.example.com:443", "a.b.example.com:443", False),  # `*` is one label, no dot
        ("*.example.com:443", "API.Example.COM:443", True),
        ("*.example.com:443", "example.com:443", False),
        ("*.example.com:443", "api.example.com:80", False),
        ("*.example.com:443", "evilexample.com:443", False),
        ("*.example.com:443", "api.example.com.evil.org:443", False),
        ("example.com:*", "exampleXcom:80", False),
        ("127.0.0.?:*", "127.0.0.7:1", True),
        ("127.0.0.?:*", "127.0.0.77:1", False),
        ("[::1]:8080", "[::1]:8080", True),
        ("[::1]:8080", "[::2]:8080", False),
        ("*:*", "anything.at.all:1", True),
        ("127.0.0.1:*", "127.0.0.1", False),
        ("api-*.example.com:*", "api-v2.example.com:1", True),
        ("api-*.example.com:*", "api-v2.x.example.com:1", False),
        ("*.*.example.com:*", "a.b.example.com:1", True),
        ("127.0.0.*:*", "127.0.0.1:80", True),
        ("127.0.0.*:*", "127.0.0.255:80", True),
        ("127.0.0.*:*", "127.0.1.1:80", False),
        ("127.*.*.1:*", "127.9.8.1:80", True),
        ("*.*.*.*:*", "10.1.2.3:22", True),
        ("127.0.0.??:*", "127.0.0.42:1", True),
        ("127.0.0.??:*", "127.0.0.7:1", False),
        # a spelling never normalised (leading zeros, octal, short forms) matches nothing
        ("127.0.0.*:*", "127.0.0.01:80", False),
        ("127.0.0.??:*", "127.0.0.01:80", False),
        ("*:*", "127.1:80", False),
        ("*:*", "2130706433:80", False),
        # an address pattern matches addresses, never a host name by its text
        ("127.0.0.*:*", "127.0.0.evil:80", False),
        ("127.0.0.*:*", "127.0.0.1.nip.io:80", False),
        ("10.*.*.*:*", "10.0.0.example:80", False),
        ("127.0.0.1:*", "localhost:80", False),
        ("[::1]:*", "localhost:80", False),
        # and a name pattern matches names, never an address literal
        ("*:*", "127.0.0.1:80", False),
        ("*:*", "[::1]:80", False),
        ("[0:0::1]:80", "[::1]:80", True),
        ("[fe80:*:*:*:*:*:*:*]:*", "[fe80::1]:1", True),
        ("[fe80:*:*:*:*:*:*:*]:*", "[fe81::1]:1", False),
        ("[2001:db8:*:*:*:*:*:1]:*", "[2001:db8:5::1]:1", True),
        ("[2001:db8:*:*:*:*:*:1]:*", "[2001:db8:5::2]:1", False),
        ("[::1]:*", "127.0.0.1:1", False),
    ],
)
def test_domain_scope_matches_host_and_port(pattern: str, target: str, allowed: bool) -> None:
    scope = Scope.parse("domain:" + pattern)
    assert scope.allows(target) is allowed
    assert not scope.allows(None)


# --- grants: encoding, issue, dict round trip ---------------------------------------------


def test_issue_grant_signs_canonical_bytes(granter: nacl.signing.SigningKey, spirit: str) -> None:
    g = grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.1:*", expires_at=200)
    assert g.granter == hexkey(granter)
    assert g.grantee == spirit
    assert len(g.signature) == 64
    granter.verify_key.verify(g.canonical_bytes(), g.signature)  # raises if wrong


def test_canonical_bytes_are_versioned_length_prefixed_and_exact(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    g = grant(granter, spirit, C.STORAGE_READ, "sandboxed", issued_at=5, expires_at=None)
    data = g.canonical_bytes()
    fields = []
    rest = data
    while rest:
        n = int.from_bytes(rest[:4], "big")
        fields.append(rest[4 : 4 + n].decode())
        rest = rest[4 + n :]
    assert fields == [
        CANONICAL_VERSION,
        "storage_read",
        "sandboxed",
        hexkey(granter),
        spirit,
        "5",
        "",
    ]


def test_canonical_bytes_change_with_every_field(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    base = grant(granter, spirit, C.STORAGE_READ, "global", issued_at=100, expires_at=200)
    other = hexkey(nacl.signing.SigningKey(bytes(32)))
    variants = [
        grant(granter, spirit, C.STORAGE_WRITE, "global", issued_at=100, expires_at=200),
        grant(granter, spirit, C.STORAGE_READ, "sandboxed", issued_at=100, expires_at=200),
        grant(granter, other, C.STORAGE_READ, "global", issued_at=100, expires_at=200),
        grant(granter, spirit, C.STORAGE_READ, "global", issued_at=101, expires_at=200),
        grant(granter, spirit, C.STORAGE_READ, "global", issued_at=100, expires_at=201),
        grant(granter, spirit, C.STORAGE_READ, "global", issued_at=100, expires_at=None),
        grant(
            nacl.signing.SigningKey(bytes(32)),
            spirit,
            C.STORAGE_READ,
            "global",
            issued_at=100,
            expires_at=200,
        ),
    ]
    encodings = {v.canonical_bytes() for v in variants} | {base.canonical_bytes()}
    assert len(encodings) == len(variants) + 1
    assert len({v.grant_id for v in variants}) == len(variants)


def test_grant_dict_round_trip_through_json(granter: nacl.signing.SigningKey, spirit: str) -> None:
    g = grant(granter, spirit, C.NETWORK_LISTEN, "domain:*.example.com:443", expires_at=500)
    data = json.loads(json.dumps(g.to_dict()))
    assert Grant.from_dict(data) == g
    no_expiry = grant(granter, spirit)
    d = no_expiry.to_dict()
    del d["expires_at"]
    assert Grant.from_dict(d) == no_expiry


def _mutate(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = dict(d)
    if value is _DELETE:
        del out[key]
    else:
        out[key] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("capability", "storage_reed"),
        ("capability", 3),
        ("capability", _DELETE),
        ("scope", "planet"),
        ("scope", None),
        ("granter", "abc"),
        ("granter", None),
        ("grantee", "zz" * 32),
        ("issued_at", "100"),
        ("issued_at", -1),
        ("issued_at", True),
        ("issued_at", 1.5),
        ("expires_at", 50),
        ("expires_at", 100),
        ("expires_at", "200"),
        ("signature", "00" * 63),
        ("signature", "xyz"),
        ("signature", 7),
        ("signature", _DELETE),
        ("extra", 1),
    ],
)
def test_from_dict_rejects_bad_input(
    granter: nacl.signing.SigningKey, spirit: str, key: str, value: Any
) -> None:
    good = grant(granter, spirit, issued_at=100, expires_at=200).to_dict()
    with pytest.raises(InvalidInputError):
        Grant.from_dict(_mutate(good, key, value))


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(InvalidInputError):
        Grant.from_dict([1, 2])  # type: ignore[arg-type]


def test_issue_grant_needs_a_signing_key(spirit: str) -> None:
    with pytest.raises(InvalidInputError):
        issue_grant(b"k" * 32, C.SENSOR_TIME, Scope.global_(), spirit, issued_at=1)  # type: ignore[arg-type]


# --- the checker -----------------------------------------------------------------------


def test_valid_grant_allows_and_missing_capability_denies(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    ch = checker(granter, spirit, grant(granter, spirit, C.STORAGE_READ))
    assert ch.check(C.STORAGE_READ) == Decision(True, "granted")
    denied = ch.check(C.STORAGE_WRITE)
    assert not denied.allowed
    assert not denied
    assert "no grant for storage_write" in denied.reason


def test_every_capability_allowed_when_granted_and_denied_otherwise(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    for cap in Capability:
        if cap is Capability.UNRESTRICTED:
            continue
        ch = checker(granter, spirit, grant(granter, spirit, cap))
        assert ch.check(cap).allowed
        others = [c for c in Capability if c not in (cap, Capability.UNRESTRICTED)]
        assert not any(ch.check(c).allowed for c in others)


def test_forged_signature_is_rejected_at_admission_with_reason(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    good = grant(granter, spirit, C.STORAGE_WRITE)
    forged = Grant(
        capability=good.capability,
        scope=good.scope,
        granter=good.granter,
        grantee=good.grantee,
        issued_at=good.issued_at,
        expires_at=good.expires_at,
        signature=bytes([good.signature[0] ^ 1]) + good.signature[1:],
    )
    ch = checker(granter, spirit, forged)
    assert ch.admitted == ()
    assert ch.rejected[0][0] == forged
    assert "forged" in ch.rejected[0][1]
    decision = ch.check(C.STORAGE_WRITE)
    assert not decision.allowed
    assert "forged" in decision.reason


def test_altered_field_invalidates_signature(granter: nacl.signing.SigningKey, spirit: str) -> None:
    good = grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.1:80")
    widened = Grant(
        capability=good.capability,
        scope=Scope.parse("global"),
        granter=good.granter,
        grantee=good.grantee,
        issued_at=good.issued_at,
        expires_at=good.expires_at,
        signature=good.signature,
    )
    ch = checker(granter, spirit, widened)
    assert not ch.check(C.NETWORK_CONNECT, "10.0.0.1:22").allowed
    assert not ch.check(C.NETWORK_CONNECT, "127.0.0.1:80").allowed


def test_zero_signature_is_rejected(granter: nacl.signing.SigningKey, spirit: str) -> None:
    good = grant(granter, spirit, C.SENSOR_TIME)
    zero = Grant.from_dict({**good.to_dict(), "signature": "00" * 64})
    ch = checker(granter, spirit, zero)
    decision = ch.check(C.SENSOR_TIME)
    assert not decision.allowed
    assert "zero signature" in decision.reason


def test_signature_by_another_key_is_rejected(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    mallory = nacl.signing.SigningKey(b"m" * 32)
    real = grant(granter, spirit, C.ACTUATOR_CREDIT)
    # Mallory signs the grant's bytes but claims the trusted granter issued it.
    claimed = Grant(
        capability=real.capability,
        scope=real.scope,
        granter=hexkey(granter),
        grantee=spirit,
        issued_at=real.issued_at,
        expires_at=None,
        signature=bytes(mallory.sign(real.canonical_bytes()).signature),
    )
    ch = checker(granter, spirit, claimed)
    assert not ch.check(C.ACTUATOR_CREDIT).allowed
    assert "signature" in ch.check(C.ACTUATOR_CREDIT).reason


def test_untrusted_granter_is_rejected_even_with_valid_signature(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    mallory = nacl.signing.SigningKey(b"m" * 32)
    self_signed = grant(mallory, spirit, C.STORAGE_READ)
    ch = checker(granter, spirit, self_signed)
    decision = ch.check(C.STORAGE_READ)
    assert not decision.allowed
    assert "not trusted" in decision.reason
    assert checker(granter, spirit, self_signed, trusted=()).check(C.STORAGE_READ).allowed is False


def test_invalid_granter_key_point_is_rejected_not_raised(spirit: str) -> None:
    # A well-formed hex string that is not a valid Ed25519 point (all 0xff).
    bogus = "ff" * 32
    g = Grant(
        capability=C.SENSOR_TIME,
        scope=Scope.global_(),
        granter=bogus,
        grantee=spirit,
        issued_at=1,
        expires_at=None,
        signature=b"\x01" * 64,
    )
    ch = GrantChecker([g], grantee=spirit, trusted_granters=[bogus], clock=Clock(10))
    assert not ch.check(C.SENSOR_TIME).allowed
    assert "signature" in ch.rejected[0][1]


def test_wrong_grantee_is_rejected(granter: nacl.signing.SigningKey, spirit: str) -> None:
    other = hexkey(nacl.signing.SigningKey(b"o" * 32))
    ch = checker(granter, spirit, grant(granter, other, C.STORAGE_READ))
    decision = ch.check(C.STORAGE_READ)
    assert not decision.allowed
    assert "another key" in decision.reason


def test_expired_and_not_yet_valid_grants_are_denied(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    g = grant(granter, spirit, C.SENSOR_RANDOM, issued_at=100, expires_at=200)
    clock = Clock(150)
    ch = GrantChecker([g], grantee=spirit, trusted_granters=[hexkey(granter)], clock=clock)
    assert ch.check(C.SENSOR_RANDOM).allowed
    clock.now = 199.999
    assert ch.check(C.SENSOR_RANDOM).allowed
    clock.now = 200
    decision = ch.check(C.SENSOR_RANDOM)
    assert not decision.allowed and "expired" in decision.reason
    clock.now = 99
    decision = ch.check(C.SENSOR_RANDOM)
    assert not decision.allowed and "not valid before" in decision.reason


def test_revocation_applies_while_running(granter: nacl.signing.SigningKey, spirit: str) -> None:
    g = grant(granter, spirit, C.STORAGE_DELETE)
    revocations = RevocationList()
    ch = checker(granter, spirit, g, revocations=revocations)
    assert ch.check(C.STORAGE_DELETE).allowed
    revocations.revoke(g)
    decision = ch.check(C.STORAGE_DELETE)
    assert not decision.allowed and "revoked" in decision.reason
    revocations.unrevoke(g.grant_id)
    assert ch.check(C.STORAGE_DELETE).allowed
    pre = RevocationList([g.grant_id])
    assert not checker(granter, spirit, g, revocations=pre).check(C.STORAGE_DELETE).allowed


def test_wrong_scope_is_denied(granter: nacl.signing.SigningKey, spirit: str) -> None:
    ch = checker(granter, spirit, grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.1:*"))
    assert ch.check(C.NETWORK_CONNECT, "127.0.0.1:9000").allowed
    decision = ch.check(C.NETWORK_CONNECT, "192.168.1.1:9000")
    assert not decision.allowed and "outside the grant's scope" in decision.reason
    assert not ch.check(C.NETWORK_CONNECT, None).allowed


def test_scope_denial_names_the_grant_and_the_target(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    ch = checker(granter, spirit, grant(granter, spirit, C.NETWORK_CONNECT, "domain:10.*.*.*:443"))
    decision = ch.check(C.NETWORK_CONNECT, "10.0.0.example:443")
    assert not decision.allowed
    assert "10.0.0.example:443" in decision.reason and "domain:10.*.*.*:443" in decision.reason


@pytest.mark.parametrize(
    ("scopes", "name", "address", "allowed"),
    [
        # a name grant reaches the public addresses its name resolves to
        (["domain:example.com:443"], "example.com:443", "93.184.216.34", True),
        (["domain:example.com:443"], "example.com:443", "[2606:2800:220:1::1]", True),
        # ... never loopback, private, link-local or unspecified ones (DNS rebinding)
        (["domain:example.com:443"], "example.com:443", "127.0.0.1", False),
        (["domain:example.com:443"], "example.com:443", "10.0.0.5", False),
        (["domain:example.com:443"], "example.com:443", "192.168.1.1", False),
        (["domain:example.com:443"], "example.com:443", "169.254.169.254", False),
        (["domain:example.com:443"], "example.com:443", "0.0.0.0", False),
        (["domain:example.com:443"], "example.com:443", "[::1]", False),
        (["domain:*:*"], "anything.example:1", "127.0.0.1", False),
        (["domain:*:*"], "localhost:1", "127.0.0.1", False),  # only a localhost pattern
        (["domain:*.localhost:*"], "localhost.evil.com:1", "127.0.0.1", False),
        # localhost names reach loopback only
        (["domain:localhost:*"], "localhost:8080", "127.0.0.1", True),
        (["domain:localhost:*"], "localhost:8080", "[::1]", True),
        (["domain:*.localhost:*"], "app.localhost:1", "127.0.0.2", True),
        (["domain:localhost:*"], "localhost:8080", "10.0.0.1", False),
        (["domain:localhost:*"], "localhost:8080", "93.184.216.34", False),
        # an address grant covers a name that resolves into its range
        (["domain:nas.lan:445", "domain:192.168.1.*:445"], "nas.lan:445", "192.168.1.10", True),
        (["domain:nas.lan:445", "domain:192.168.1.*:445"], "nas.lan:445", "192.168.2.10", False),
        (["domain:nas.lan:445", "domain:192.168.1.*:80"], "nas.lan:445", "192.168.1.10", False),
        (["domain:127.0.0.1:*"], "localhost:80", "127.0.0.1", True),
        (["domain:127.0.0.2:*"], "localhost:80", "127.0.0.1", False),
        (["global"], "localhost:80", "127.0.0.1", True),
        (["sandboxed"], "localhost:80", "127.0.0.1", False),
    ],
)
def test_resolved_address_is_checked_against_the_grants(
    granter: nacl.signing.SigningKey,
    spirit: str,
    scopes: list[str],
    name: str,
    address: str,
    allowed: bool,
) -> None:
    ch = checker(granter, spirit, *(grant(granter, spirit, C.NETWORK_CONNECT, s) for s in scopes))
    decision = ch.check_resolved(C.NETWORK_CONNECT, name, address)
    assert decision.allowed is allowed, decision.reason
    if not allowed:
        assert name in decision.reason and address in decision.reason


def test_resolved_check_skips_expired_and_revoked_grants(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    revocations = RevocationList()
    g = grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.*:*", expires_at=2000)
    ch = checker(granter, spirit, g, revocations=revocations)
    assert ch.check_resolved(C.NETWORK_CONNECT, "localhost:1", "127.0.0.1").allowed
    revocations.revoke(g)
    decision = ch.check_resolved(C.NETWORK_CONNECT, "localhost:1", "127.0.0.1")
    assert not decision.allowed and "revoked" in decision.reason
    expired = checker(granter, spirit, g, now=3000)
    assert not expired.check_resolved(C.NETWORK_CONNECT, "localhost:1", "127.0.0.1").allowed
    assert (
        not checker(granter, spirit)
        .check_resolved(C.NETWORK_CONNECT, "localhost:1", "127.0.0.1")
        .allowed
    )


def test_any_matching_grant_allows(granter: nacl.signing.SigningKey, spirit: str) -> None:
    ch = checker(
        granter,
        spirit,
        grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.1:80", expires_at=150),
        grant(granter, spirit, C.NETWORK_CONNECT, "domain:127.0.0.1:*"),
    )
    assert ch.check(C.NETWORK_CONNECT, "127.0.0.1:80").allowed
    assert ch.check(C.NETWORK_CONNECT, "127.0.0.1:81").allowed


def test_valid_grant_wins_over_rejected_one(granter: nacl.signing.SigningKey, spirit: str) -> None:
    good = grant(granter, spirit, C.STORAGE_READ)
    zero = Grant.from_dict({**good.to_dict(), "signature": "00" * 64, "issued_at": 1})
    ch = checker(granter, spirit, zero, good)
    assert ch.check(C.STORAGE_READ).allowed
    assert len(ch.admitted) == 1 and len(ch.rejected) == 1


def test_unrestricted_allows_everything_from_trusted_granter(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    ch = checker(granter, spirit, grant(granter, spirit, C.UNRESTRICTED))
    for cap in Capability:
        assert ch.check(cap).allowed
    assert ch.check(C.NETWORK_CONNECT, "10.1.2.3:22").allowed


def test_unrestricted_from_untrusted_granter_allows_nothing(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    mallory = nacl.signing.SigningKey(b"m" * 32)
    ch = checker(granter, spirit, grant(mallory, spirit, C.UNRESTRICTED))
    for cap in Capability:
        decision = ch.check(cap)
        assert not decision.allowed
        assert "not trusted" in decision.reason


def test_unrestricted_can_expire_and_be_revoked(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    g = grant(granter, spirit, C.UNRESTRICTED, expires_at=500)
    revocations = RevocationList()
    assert not checker(granter, spirit, g, now=600).check(C.SENSOR_TIME).allowed
    ch = checker(granter, spirit, g, revocations=revocations, now=300)
    assert ch.check(C.SENSOR_TIME).allowed
    revocations.revoke(g)
    assert not ch.check(C.SENSOR_TIME).allowed


def test_checker_rejects_bad_keys_and_non_grants(spirit: str) -> None:
    with pytest.raises(InvalidInputError):
        GrantChecker([], grantee="nope", trusted_granters=[])
    with pytest.raises(InvalidInputError):
        GrantChecker([], grantee=spirit, trusted_granters=["nope"])
    with pytest.raises(InvalidInputError):
        GrantChecker([{"capability": "x"}], grantee=spirit, trusted_granters=[])  # type: ignore[list-item]


def _refreshing(
    granter: nacl.signing.SigningKey,
    spirit: str,
    source: Any,
    interval: float = 0.0,
    clock: Clock | None = None,
) -> GrantChecker:
    return GrantChecker(
        source(),
        grantee=spirit,
        trusted_granters=(hexkey(granter),),
        clock=clock or Clock(1000),
        refresh=source,
        refresh_interval=interval,
    )


def test_refresh_source_revokes_and_grants_live(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    current = [grant(granter, spirit, C.STORAGE_READ), grant(granter, spirit, C.SENSOR_TIME)]
    ch = _refreshing(granter, spirit, lambda: list(current))
    assert ch.check(C.STORAGE_READ).allowed and ch.check(C.SENSOR_TIME).allowed
    del current[0]  # revoked: the source no longer has it
    decision = ch.check(C.STORAGE_READ)
    assert not decision.allowed and decision.reason == "no grant for storage_read"
    assert ch.check(C.SENSOR_TIME).allowed
    current.append(grant(granter, spirit, C.STORAGE_WRITE))  # granted while running
    assert ch.check(C.STORAGE_WRITE).allowed
    forged = Grant.from_dict(
        {**grant(granter, spirit, C.STORAGE_DELETE).to_dict(), "signature": "11" * 64}
    )
    current.append(forged)
    decision = ch.check(C.STORAGE_DELETE)
    assert not decision.allowed and "signature" in decision.reason
    assert [g for g, _ in ch.rejected] == [forged]
    assert set(ch.admitted) == set(current[:-1])


def test_refresh_polls_at_most_once_per_interval(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    polls = []
    current = [grant(granter, spirit, C.SENSOR_TIME)]

    def source() -> list[Grant]:
        polls.append(1)
        return list(current)

    ch = _refreshing(granter, spirit, source, interval=0.3)
    start = len(polls)
    current.clear()
    assert ch.check(C.SENSOR_TIME).allowed  # not yet: the last poll is recent
    for _ in range(1000):
        ch.check(C.SENSOR_TIME)
    assert len(polls) - start <= 1
    time.sleep(0.35)
    assert not ch.check(C.SENSOR_TIME).allowed


def test_refresh_source_failure_fails_closed_until_it_recovers(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    broken = [False]
    g = grant(granter, spirit, C.SENSOR_TIME)

    def source() -> list[Grant]:
        if broken[0]:
            raise OSError("database is locked")
        return [g]

    ch = _refreshing(granter, spirit, source)
    assert ch.check(C.SENSOR_TIME).allowed
    broken[0] = True
    decision = ch.check(C.SENSOR_TIME)
    assert not decision.allowed and "database is locked" in decision.reason
    broken[0] = False
    assert ch.check(C.SENSOR_TIME).allowed


def test_expiry_takes_effect_between_calls(granter: nacl.signing.SigningKey, spirit: str) -> None:
    clock = Clock(1000)
    ch = GrantChecker(
        [grant(granter, spirit, C.SENSOR_TIME, expires_at=1001)],
        grantee=spirit,
        trusted_granters=(hexkey(granter),),
        clock=clock,
    )
    assert ch.check(C.SENSOR_TIME).allowed
    clock.now = 1001
    assert "expired" in ch.check(C.SENSOR_TIME).reason


def test_revocation_list_validates_and_is_thread_safe(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    with pytest.raises(InvalidInputError):
        RevocationList(["not-an-id"])
    revocations = RevocationList()
    ids = [f"{i:064x}" for i in range(400)]

    def worker(chunk: list[str]) -> None:
        for gid in chunk:
            revocations.revoke(gid)

    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(revocations) == 400
    assert revocations.ids() == frozenset(ids)
    assert ids[7] in revocations
    assert grant(granter, spirit) not in revocations


def test_verify_grant_accepts_genuine_and_refuses_forged_or_zero(
    granter: nacl.signing.SigningKey, spirit: str
) -> None:
    good = grant(granter, spirit)
    verify_grant(good)
    forged = Grant.from_dict({**good.to_dict(), "issued_at": 101})
    with pytest.raises(VerificationError) as info:
        verify_grant(forged)
    assert "forged" in str(info.value) and info.value.hint
    with pytest.raises(VerificationError):
        verify_grant(Grant.from_dict({**good.to_dict(), "signature": "00" * 64}))
    bad_point = Grant.from_dict({**good.to_dict(), "granter": "ff" * 32})
    with pytest.raises((VerificationError, InvalidInputError)):
        verify_grant(bad_point)


def test_the_sandbox_deny_all_checker_answers_like_an_empty_grant_checker() -> None:
    """A sandbox with no grants skips the grants module; its answers must not differ."""
    from vudo.engine.sandbox import _NO_GRANTS

    empty = GrantChecker((), grantee="ab" * 32, trusted_granters=())
    for capability in Capability:
        for target in (None, "127.0.0.1:80"):
            fast, real = _NO_GRANTS.check(capability, target), empty.check(capability, target)
            assert (fast.allowed, fast.reason) == (real.allowed, real.reason)


# --- live grants in a running sandbox ------------------------------------------------------

UNTIL_DENIED = """
(module
  (import "vudo" "host_time_now" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "until_denied") (result i64) (local $n i64)
    (block $done (loop $again
      (br_if $done (i64.eq (call $now) (i64.const -1)))
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br $again)))
    (local.get $n)))
"""


def _run_until_denied(make: Any, cfg: Any) -> tuple[Any, threading.Thread, list[float]]:
    """Start a sandbox looping on host_time_now in a thread; it returns once denied."""
    sb = make(UNTIL_DENIED, cfg)
    ended: list[float] = []

    def run() -> None:
        sb.call("until_denied")
        ended.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive() and not ended  # still allowed, looping
    return sb, thread, ended


def test_revocation_reaches_a_running_sandbox_within_a_second(make: Any) -> None:
    from engine_helpers import config
    from engine_helpers import grant as engine_grant

    current = [engine_grant(C.SENSOR_TIME)]
    sb, thread, ended = _run_until_denied(
        make, config(*current, grant_refresh=lambda: tuple(current), timeout=10.0)
    )
    revoked_at = time.monotonic()
    current.clear()
    thread.join(5)
    assert ended and ended[0] - revoked_at < 1.0
    denied = [c for c in sb.host_calls() if not c.allowed]
    assert len(denied) == 1 and denied[0].reason == "no grant for sensor_time"
    assert sb.receipt().host_calls["sensor_time"]["denied"] == 1


def test_expiry_reaches_a_running_sandbox(make: Any) -> None:
    from engine_helpers import config
    from engine_helpers import grant as engine_grant

    expires = int(time.time()) + 2  # whole seconds: at least 1 s away, so the run starts allowed
    sb, thread, ended = _run_until_denied(
        make, config(engine_grant(C.SENSOR_TIME, expires_at=expires), timeout=10.0)
    )
    thread.join(5)
    assert ended and time.time() - expires < 1.0
    assert "expired" in sb.host_calls()[-1].reason
