"""``vudo grant`` and ``vudo revoke``: what an installed Spirit may do.

Grants are issued by the user's key to the user's key (the identity installed Spirits run
as) and stored per Spirit name in the local store; ``vudo run NAME`` loads exactly those.
:func:`sign_grants` is the one place grants are signed for the user: at install, on
upgrade, by ``vudo grant``, and for the grants of one run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vudo.capabilities import Capability, parse_capability, parse_grant_spec
from vudo.engine.grants import Grant, Scope, issue_grant, verify_grant
from vudo.errors import InvalidInputError, NotFoundError, UsageError, VudoError
from vudo.pkg.keys import ensure_keypair


def sign_grants(
    granted: Iterable[tuple[Capability, str]], *, home: Path, now: float,
    expires_at: int | None = None,
) -> tuple[tuple[Grant, ...], str]:
    """One signed grant per (capability, scope), from and to the user's key; returns the
    grants and that key (the granter to trust, and the identity to run as)."""
    kp = ensure_keypair(home)
    grants = tuple(
        issue_grant(kp.signing_key, cap, Scope.parse(scope), kp.public_hex,
                    issued_at=int(now), expires_at=expires_at)
        for cap, scope in granted
    )
    return grants, kp.public_hex


_DURATION = re.compile(r"^\s*([-+]?\d+)\s*([smhdw])\s*$")
MAX_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, *, now: float) -> int:
    """``30d``/``12h``/``15m``/``2w``, or an ISO date or date-time -> Unix seconds."""
    match = _DURATION.match(text)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise UsageError(f'expiry "{text.strip()}" is not a positive duration',
                             hint="a grant expires after a positive duration such as 30d "
                             "or 12h; leave --expires out for a grant that does not expire")
        seconds = int(now) + amount * _SECONDS[match.group(2)]
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f'invalid expiry "{text}"',
                hint="use a duration like 30d, 12h, 15m, or a date like 2027-01-31") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int(when.timestamp())
    if seconds <= now:
        raise UsageError(f'expiry "{text}" is in the past',
                         hint="pick a later time, e.g. 30d")
    if seconds > MAX_EXPIRY:
        # Later than any date can show (or a grant can carry): a bigger duration would
        # be stored and then break every command that prints the grant.
        raise UsageError(f'expiry "{text}" is after 9999-12-31',
                         hint="leave --expires out for a grant that does not expire")
    return seconds


def grant_capability(
    name: str, capability: str, *, home: Path, scope: str = "global",
    expires: str | None = None, clock: Callable[[], float] = time.time,
) -> Grant:
    """Grant (or replace the grant of) one capability to an installed Spirit."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    cap, _ = parse_grant_spec(capability)
    now = clock()
    expires_at = parse_expiry(expires, now=now) if expires else None
    with open_store(home) as store:
        spirit = store.get(name)
        if cap not in spirit.capabilities:
            raise InvalidInputError(
                f'{name} does not ask for "{cap.value}"',
                hint="it asks for: " + (", ".join(c.value for c in spirit.capabilities)
                                        or "nothing"),
            )
        [grant], _ = sign_grants([(cap, scope)], home=home, now=now, expires_at=expires_at)
        # Read, replace and write in one transaction: concurrent grants all stay.
        store.update_grants(name, lambda current: [
            *(g for g in current if g.get("capability") != cap.value), grant.to_dict()])
    return grant


def revoke_capability(name: str, capability: str, *, home: Path) -> int:
    """Drop every stored grant of ``capability`` for ``name``; returns how many."""
    from vudo.pkg.store import open_store  # lazy: runs import this module; no sqlite3 there

    cap = parse_capability(capability)
    dropped = 0

    def without(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal dropped
        kept = [g for g in current if g.get("capability") != cap.value]
        dropped = len(current) - len(kept)
        if not dropped:  # raising leaves the stored grants untouched
            raise NotFoundError(f'{name} has no grant of "{cap.value}"',
                                hint=f"see `vudo info {name}`")
        return kept

    with open_store(home) as store:
        store.get(name)
        store.update_grants(name, without)
    return dropped


def grant_rows(grants: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored grants as display rows (capability, scope, expiry, granter), each checked:
    ``valid`` is False, with the reason in ``problem``, for a grant the sandbox would
    refuse (malformed, or its signature does not hold), so it is never shown as given."""
    rows = []
    for g in grants:
        expires = g.get("expires_at")
        problem: str | None = None
        try:
            verify_grant(Grant.from_dict(g))
        except VudoError as err:
            problem = err.message
        rows.append({
            "capability": g.get("capability"), "scope": g.get("scope"),
            "granter": g.get("granter"), "issued_at": g.get("issued_at"),
            "expires_at": expires if isinstance(expires, int) else None,
            "valid": problem is None, "problem": problem,
        })
    return rows
