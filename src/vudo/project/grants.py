"""``vudo grant`` and ``vudo revoke``: what an installed Spirit may do.

Grants are issued by the user's key to the identity the Spirit runs as (an installed
Spirit's is its (signer, name) :class:`~vudo.engine.identity.SpiritIdentity`) and stored per
Spirit name in the local store; ``vudo run NAME`` loads exactly those.
:func:`sign_grants` is the one place grants are signed for the user: at install, on
upgrade, by ``vudo grant``, and for the grants of one run; :func:`usable_grants` is the one
place stored grants are admitted to a run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vudo.capabilities import AnyCapability, Capability, parse_any_capability
from vudo.display import iso_time
from vudo.engine.grants import Grant, Scope, issue_grant, parse_grant_spec, verify_grant
from vudo.errors import InvalidInputError, NotFoundError, UsageError, VudoError
from vudo.home import keys_dir
from vudo.pkg.keys import (
    PRIVATE_KEY_FILE,
    KeyFile,
    ensure_keypair,
    fingerprint,
    generate_keypair,
    load_keypair,
    save_keypair,
)

if TYPE_CHECKING:
    from vudo.pkg.keys import KeyPair
    from vudo.pkg.store import LocalStore


def sign_grants(
    granted: Iterable[tuple[AnyCapability, str]],
    *,
    home: Path,
    now: float,
    grantee: str,
    expires_at: int | None = None,
) -> tuple[tuple[Grant, ...], str]:
    """One signed grant per (capability, scope), from the user's key to ``grantee`` (the
    identity key of the Spirit that runs with them); returns the grants and the user's key
    (the granter to trust)."""
    kp = ensure_keypair(home)
    grants = tuple(
        issue_grant(
            kp.signing_key,
            cap,
            Scope.parse(scope),
            grantee,
            issued_at=int(now),
            expires_at=expires_at,
        )
        for cap, scope in granted
    )
    return grants, kp.public_hex


def installed_grantee(signer: str, name: str) -> str:
    """The grantee of an installed Spirit's grants: its (signer, name) identity's key."""
    from vudo.engine.identity import SpiritIdentity  # lazy: nacl only when one is issued

    return SpiritIdentity.installed(signer, name).key


def usable_grants(stored: Iterable[Grant], *, home: Path, grantee: str) -> tuple[Grant, ...]:
    """The stored grants a run as ``grantee`` may use.

    Only grants the user's key made count: one some other key wrote into the store is
    ignored, never newly trusted. Those made for ``grantee`` count as they are; those made
    for the user's own key (stored before Spirits had identities, when every Spirit ran as
    the user) are the same consent and are re-signed for ``grantee`` with the same scope,
    issue time and expiry. Grants for any other identity are ignored.
    """
    kp = None
    usable: list[Grant] = []
    for grant in stored:
        if grant.grantee == grantee:
            if kp is None:
                kp = ensure_keypair(home)
            if grant.granter == kp.public_hex:
                usable.append(grant)
            continue
        if kp is None:
            kp = ensure_keypair(home)
        if grant.granter == kp.public_hex and grant.grantee == kp.public_hex and _verifies(grant):
            usable.append(
                issue_grant(
                    kp.signing_key,
                    grant.capability,
                    grant.scope,
                    grantee,
                    issued_at=grant.issued_at,
                    expires_at=grant.expires_at,
                )
            )
    return tuple(usable)


def _verifies(grant: Grant) -> bool:
    """Whether the user's key really signed ``grant`` (before it is re-signed)."""
    try:
        verify_grant(grant)
    except VudoError:
        return False
    return True


_DURATION = re.compile(r"^\s*([-+]?\d+)\s*([smhdw])\s*$")
MAX_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, *, now: float) -> int:
    """``30d``/``12h``/``15m``/``2w``, or an ISO date or date-time -> Unix seconds."""
    match = _DURATION.match(text)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise UsageError(
                f'expiry "{text.strip()}" is not a positive duration',
                hint="a grant expires after a positive duration such as 30d "
                "or 12h; leave --expires out for a grant that does not expire",
            )
        seconds = int(now) + amount * _SECONDS[match.group(2)]
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f'invalid expiry "{text}"',
                hint="use a duration like 30d, 12h, 15m, or a date like 2027-01-31",
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int(when.timestamp())
    if seconds <= now:
        raise UsageError(f'expiry "{text}" is in the past', hint="pick a later time, e.g. 30d")
    if seconds > MAX_EXPIRY:
        # Later than any date can show (or a grant can carry): a bigger duration would
        # be stored and then break every command that prints the grant.
        raise UsageError(
            f'expiry "{text}" is after 9999-12-31',
            hint="leave --expires out for a grant that does not expire",
        )
    return seconds


def grant_capability(
    name: str,
    capability: str,
    *,
    home: Path,
    scope: str | None = None,
    expires: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Grant:
    """Grant (or replace the grant of) one capability to an installed Spirit.

    ``capability`` may carry its scope as ``CAP=SCOPE`` (as `run --grant` takes it);
    ``scope`` None means ``global``. Both given and different is a UsageError.
    """
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    cap, written = parse_grant_spec(capability)
    if scope is not None:
        _, given = parse_grant_spec(f"{cap.value}={scope}")
        if "=" in capability and given != written:
            raise UsageError(
                f'"{capability}" and --scope {scope} name two different scopes',
                hint="give the scope once, after = or with --scope",
            )
        written = given
    scope = written
    now = clock()
    expires_at = parse_expiry(expires, now=now) if expires else None
    with open_store(home) as store:
        spirit = store.get(name)
        if cap not in spirit.capabilities:
            raise InvalidInputError(
                f'{name} does not ask for "{cap.value}"',
                hint="it asks for: "
                + (", ".join(c.value for c in spirit.capabilities) or "nothing"),
            )
        [grant], _ = sign_grants(
            [(cap, scope)],
            home=home,
            now=now,
            expires_at=expires_at,
            grantee=installed_grantee(spirit.signer, spirit.name),
        )
        # Read, replace and write in one transaction: concurrent grants all stay.
        store.update_grants(
            name,
            lambda current: [
                *(g for g in current if g.get("capability") != cap.value),
                grant.to_dict(),
            ],
        )
    return grant


#: The scopes each capability's calls can be narrowed to (vudo.engine.grants checks them
#: on every call): a call with an outside target (an address, a payee) matches a domain or
#: peer scope; one without matches "sandboxed". Every capability takes "global".
_SCOPES: dict[str, tuple[str, ...]] = {
    "network_connect": ("global", "domain:<host>:<port>"),
    "network_listen": ("global", "domain:127.0.0.1:<port>"),
    "actuator_credit": ("global", "sandboxed", "peer:<key> (transfers to that account)"),
    **dict.fromkeys(
        ("storage_read", "storage_write", "storage_delete"),
        ("global", "sandboxed", "path:<host dir> (WASI files under a preopen)"),
    ),
}


class CapabilityInfo(NamedTuple):
    """What a capability allows (``vudo capabilities``): the host calls and WASI calls
    it guards, the scopes a grant of it can take, and whether a manifest may ask for it."""

    capability: Capability
    host_calls: tuple[str, ...]
    scopes: tuple[str, ...]
    wasi_calls: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.capability.value,
            "allows": self.capability.description,
            "host_calls": list(self.host_calls),
            "wasi_calls": list(self.wasi_calls),
            "scopes": list(self.scopes),
            "manifest": self.capability.manifest_grantable,
        }


def capability_info(capabilities: Iterable[Capability]) -> list[CapabilityInfo]:
    """:class:`CapabilityInfo` of each capability, in the order given."""
    from vudo.engine.abi import host_calls_of  # lazy: the ABI tables only for this listing
    from vudo.engine.wasi_abi import WASI_CAPABILITIES  # lazy: as above

    return [
        CapabilityInfo(
            cap,
            tuple(host_calls_of(cap)),
            _SCOPES.get(cap.value, ("global", "sandboxed")),
            tuple(name for name, caps in WASI_CAPABILITIES.items() if cap in caps),
        )
        for cap in capabilities
    ]


class Revoked(NamedTuple):
    """What :func:`revoke_capability` dropped: the Spirit, the capability as named, and
    how many stored grants of it."""

    name: str
    capability: str
    revoked: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "capability": self.capability, "revoked": self.revoked}


def revoke_capability(name: str, capability: str, *, home: Path) -> Revoked:
    """Drop every stored grant of ``capability`` for ``name``."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    cap = parse_any_capability(capability)
    dropped = 0

    def without(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal dropped
        kept = [g for g in current if g.get("capability") != cap.value]
        dropped = len(current) - len(kept)
        if not dropped:  # raising leaves the stored grants untouched
            raise NotFoundError(
                f'{name} has no grant of "{cap.value}"', hint=f"see `vudo info {name}`"
            )
        return kept

    with open_store(home) as store:
        store.get(name)
        store.update_grants(name, without)
    return Revoked(name, capability, dropped)


class GrantRow(NamedTuple):
    """A stored grant as shown (``vudo info``, ``vudo grant``): checked, so one the
    sandbox would refuse is never shown as given (``valid`` False, ``problem`` says why);
    times as ISO 8601, as every JSON output shows them."""

    capability: Any
    scope: Any
    granter: Any
    issued_at: str | None
    expires_at: str | None
    valid: bool
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


def grant_rows(grants: Iterable[dict[str, Any]]) -> list[GrantRow]:
    """Stored grants as display rows (capability, scope, expiry, granter), each checked:
    ``valid`` is False, with the reason in ``problem``, for a grant the sandbox would
    refuse (malformed, or its signature does not hold), so it is never shown as given."""
    rows = []
    for g in grants:
        expires, issued = g.get("expires_at"), g.get("issued_at")
        problem: str | None = None
        try:
            verify_grant(Grant.from_dict(g))
        except VudoError as err:
            problem = err.message
        rows.append(
            GrantRow(
                g.get("capability"),
                g.get("scope"),
                g.get("granter"),
                # the grant signs Unix seconds; a stored value that is not one shows as no time
                iso_time(issued) if isinstance(issued, int) else None,
                iso_time(expires) if isinstance(expires, int) else None,
                problem is None,
                problem,
            )
        )
    return rows


class KeyRotation(NamedTuple):
    """What :func:`rotate_key` did: the key before and after, where the old one was kept,
    and how many stored grants of each installed Spirit were re-signed."""

    old: str
    new: str
    backup: Path
    resigned: dict[str, int]
    private_key: Path  # where the new key now is

    @property
    def public_key(self) -> str:
        return self.new

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.new)

    def to_json(self) -> dict[str, Any]:
        return {
            **KeyFile(self.new, self.private_key).to_json(),
            "old_public_key": self.old,
            "backup": str(self.backup),
            "resigned": self.resigned,
        }


class KnownKey(NamedTuple):
    """A key ``vudo keys list`` shows: the user's own, a trusted signer, or a signer a
    Spirit name is pinned to (``role`` says which)."""

    key: str
    role: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "role": self.role, "fingerprint": self.fingerprint}


def known_keys(home: Path) -> list[KnownKey]:
    """The user's own key, then the signer keys the store trusts, then those it pins."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    rows: list[KnownKey] = []
    private = keys_dir(home) / PRIVATE_KEY_FILE
    if private.exists():
        kp = load_keypair(private)
        rows.append(KnownKey(kp.public_hex, "yours", kp.fingerprint))
    with open_store(home) as store:
        for key in store.trusted_keys():
            rows.append(KnownKey(key, "trusted", fingerprint(key)))
        for name, key in sorted(store.pins().items()):
            rows.append(KnownKey(key, f"pinned for {name}", fingerprint(key)))
    return rows


class SignerTrust(NamedTuple):
    """``vudo keys trust`` / ``untrust``: the signer key, and whether it is now trusted."""

    key: str
    trusted: bool

    def to_json(self) -> dict[str, Any]:
        return {"trusted" if self.trusted else "untrusted": self.key}


def trust_signer(home: Path, key: str) -> SignerTrust:
    """Trust ``key`` as a signer for any name."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    with open_store(home) as store:
        return SignerTrust(store.trust_key(key), True)


def untrust_signer(home: Path, key: str) -> SignerTrust:
    """Stop trusting ``key`` (NotFoundError when it was not trusted); Spirits pinned to it
    stay installed."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    with open_store(home) as store:
        if not store.untrust_key(key):
            raise NotFoundError(
                f"{key} is not a trusted signer", hint="`vudo keys list` shows the trusted ones"
            )
    return SignerTrust(key, False)


def _backup_dir(keys: Path) -> Path:
    return keys / "backups"


def rotate_key(
    home: Path, new: KeyPair | None = None, *, clock: Callable[[], float] = time.time
) -> KeyRotation:
    """Replace the user's key with ``new`` (a fresh one by default) without voiding what
    the old one granted.

    The old key is kept under ``keys/backups/<fingerprint>/`` first; then every stored
    grant the old key (or an earlier, backed-up key of this user) made is re-issued by the
    new key to the new key, with the same capability, scope and expiry, in the store's
    write transaction; only then does the new key replace ``keys/private.key``. A grant
    someone else's key wrote into the store is left as it is (it was never honoured, and
    re-signing it would launder it). Packages signed with the old key stay verifiable;
    installs signed with the new key are accepted as the user's own.
    """
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    keys = keys_dir(home)
    if not (keys / PRIVATE_KEY_FILE).exists():
        raise NotFoundError(
            f"no key to rotate in {keys}", hint="create your first key with `vudo keys generate`"
        )
    old = load_keypair(keys)
    new = new or generate_keypair()
    if new.public_hex == old.public_hex:
        raise InvalidInputError("that is already your key", hint="`vudo keys show` shows it")
    backup = _backup_dir(keys) / old.fingerprint.replace(":", "")
    save_keypair(old, backup)  # an existing identical backup is kept as is
    mine = {old.public_hex, *_backed_up_keys(keys)}
    with open_store(home) as store:
        resigned = _resign_grants(store, mine, new, now=int(clock()))
    private = save_keypair(new, keys, overwrite=True)
    return KeyRotation(old.public_hex, new.public_hex, backup, resigned, private)


def _backed_up_keys(keys: Path) -> set[str]:
    """The public keys of this user's earlier keys (kept by :func:`rotate_key`)."""
    return {
        load_keypair(kept).public_hex
        for kept in sorted(_backup_dir(keys).glob("*/" + PRIVATE_KEY_FILE))
    }


def _resign_grants(store: LocalStore, mine: set[str], new: KeyPair, *, now: int) -> dict[str, int]:
    """Re-issue every stored grant made by one of the keys ``mine`` with ``new``, to
    ``new`` (same capability, scope and expiry), each Spirit in one write transaction;
    how many per Spirit. Grants by other keys and unreadable ones are left as they are."""
    resigned: dict[str, int] = {}

    def resign(name: str) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
        def change(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for stored in current:
                try:
                    grant = Grant.from_dict(stored)
                except VudoError:
                    out.append(stored)  # unreadable: `vudo repair` reports it
                    continue
                if grant.granter not in mine or grant.granter == new.public_hex:
                    out.append(stored)
                    continue
                out.append(
                    issue_grant(
                        new.signing_key,
                        grant.capability,
                        grant.scope,
                        new.public_hex,
                        issued_at=now,
                        expires_at=grant.expires_at,
                    ).to_dict()
                )
                resigned[name] = resigned.get(name, 0) + 1
            return out

        return change

    for name in sorted({s.name for s in store.list()}):
        if store.grants_for(name):
            store.update_grants(name, resign(name))
    return resigned


class ForeignGrant(NamedTuple):
    """A stored grant made by a key that is not the user's: runs ignore it."""

    name: str
    capability: str
    scope: str
    granter: str

    @property
    def regrant(self) -> str:
        """The command that gives the same consent with the user's key."""
        scope = "" if self.scope == "global" else f" --scope {self.scope}"
        return f"vudo grant {self.name} {self.capability}{scope}"


class GrantCheck(NamedTuple):
    """What :func:`check_grants` found and fixed."""

    resigned: dict[str, int]  # made by an earlier key of the user's: re-signed
    foreign: tuple[ForeignGrant, ...]  # made by a key that is not the user's: reported


def check_grants(
    store: LocalStore, home: Path, *, clock: Callable[[], float] = time.time
) -> GrantCheck:
    """Check that the stored grants were made by the user's current key (``vudo repair``).

    A run honours only grants the current key made. Grants by one of the user's earlier
    keys (kept under ``keys/backups/`` by ``vudo keys rotate``; a rotation interrupted
    between the store and the key file leaves them) are re-signed with the current key,
    as the rotation would have. Grants by any other key (a key file replaced by hand, a
    store copied from another user) are reported with the ``vudo grant`` command that
    gives the same consent: re-signing them would launder consent the user never gave.
    Unreadable grants are :meth:`LocalStore.check`'s to report. No key yet: nothing to
    check (no grant can have been made by it).
    """
    keys = keys_dir(home)
    if not (keys / PRIVATE_KEY_FILE).exists():
        return GrantCheck({}, ())
    current = load_keypair(keys)
    earlier = _backed_up_keys(keys) - {current.public_hex}
    resigned = _resign_grants(store, earlier, current, now=int(clock())) if earlier else {}
    foreign: list[ForeignGrant] = []
    for name in sorted({s.name for s in store.list()}):
        try:
            stored = store.grants_for(name)
        except VudoError:
            continue  # unreadable: the store check drops them
        for raw in stored:
            try:
                grant = Grant.from_dict(raw)
            except VudoError:
                continue
            if grant.granter != current.public_hex:
                foreign.append(
                    ForeignGrant(name, grant.capability.value, str(grant.scope), grant.granter)
                )
    return GrantCheck(resigned, tuple(foreign))
