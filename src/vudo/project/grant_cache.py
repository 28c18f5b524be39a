"""The signed grants of one run, kept so that running the same Spirit again signs nothing.

Every run's grants are signed by the user's key for the run's identity
(:func:`vudo.project.grants.sign_grants`, the one place that signs), and the sandbox
verifies each before it admits it. A project run (``vudo run DIR``, the README's quick
start) is granted its manifest's capabilities every time: the same (grantee, capability,
scope) list, signed by the same key. Loading the key and signing cost more than the run
itself (PyNaCl's signing module and the key file), so :func:`run_grants` keeps the
signatures under ``<home>/cache/grants/``, one small file per (grantee, plan, key), and a
repeat run re-uses them:

* the file is named by a SHA-256 over the grantee, the ordered (capability, scope) list,
  the user's public key and the private key file's identity (inode, size, times, mode),
  so another key, a rotated or replaced key file, or a changed plan never finds it;
* a kept grant is verified before it is re-used (and again by the sandbox), and one
  issued after ``now`` (a clock that went back) is not re-used: anything amiss signs
  afresh, as a run without the cache would.

It holds the issue time and one signature per grant, in plan order; the rest of each
grant is the plan itself. Only grants without expiry are kept (a run's grants have none).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from vudo.capabilities import AnyCapability
from vudo.engine.grants import Grant, Scope, verify_grant
from vudo.errors import VudoError
from vudo.files import write_atomic
from vudo.hashing import sha256
from vudo.home import grant_cache_dir, keys_dir

__all__ = ["run_grants"]

_TAG = "vudo-run-grants-v1"
_HEX = frozenset("0123456789abcdef")


def run_grants(
    granted: Iterable[tuple[AnyCapability, str]], *, home: Path, now: float, grantee: str
) -> tuple[tuple[Grant, ...], str]:
    """One signed grant per (capability, scope) for ``grantee``, and the user's public
    key (the granter to trust), as :func:`~vudo.project.grants.sign_grants` returns them:
    re-used from the cache when this key signed exactly this list for ``grantee`` before,
    else signed now and kept."""
    plan = list(granted)
    found = _entry(home, grantee, plan)
    if found is not None:
        kept = _read(found[0], found[1], plan, grantee, now)
        if kept is not None:
            return kept, found[1]
    from vudo.project.grants import sign_grants  # lazy: the key and nacl's signer on a miss

    grants, granter = sign_grants(plan, home=home, now=now, grantee=grantee)
    found = _entry(home, grantee, plan)  # (the key may have been made just now)
    if found is not None and found[1] == granter:
        _write(found[0], grants)
    return grants, granter


def _entry(
    home: Path, grantee: str, plan: list[tuple[AnyCapability, str]]
) -> tuple[Path, str] | None:
    """The cache file for this plan under the user's current key, and that public key;
    None when there is no key pair yet (or its public half cannot be read)."""
    keys = keys_dir(home)
    try:
        public = (keys / "public.key").read_text(encoding="ascii").strip().lower()
        st = os.stat(keys / "private.key")
    except (OSError, UnicodeDecodeError):
        return None
    if len(public) != 64 or not _HEX.issuperset(public):
        return None
    material = "\0".join(
        [
            _TAG,
            grantee,
            public,
            f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_mode}",
            *(f"{cap.value}={scope}" for cap, scope in plan),
        ]
    )
    name = sha256(material.encode("utf-8", "surrogateescape")).hexdigest()
    return grant_cache_dir(home) / name, public


def _read(
    path: Path, granter: str, plan: list[tuple[AnyCapability, str]], grantee: str, now: float
) -> tuple[Grant, ...] | None:
    """The kept grants, each verified; None when there are none to re-use."""
    try:
        lines = path.read_text(encoding="ascii").split()
        issued_at = int(lines[0])
        if len(lines) != len(plan) + 1 or issued_at > int(now) or issued_at < 0:
            return None
        grants = tuple(
            Grant(
                capability=cap,
                scope=Scope.parse(scope),
                granter=granter,
                grantee=grantee,
                issued_at=issued_at,
                expires_at=None,
                signature=bytes.fromhex(signature),
            )
            for (cap, scope), signature in zip(plan, lines[1:], strict=True)
        )
        for grant in grants:
            verify_grant(grant)
    except (OSError, UnicodeDecodeError, ValueError, IndexError, VudoError):
        return None
    return grants


def _write(path: Path, grants: tuple[Grant, ...]) -> None:
    """Keep ``grants`` (all issued at once, without expiry); a cache that cannot be
    written only means the next run signs again."""
    if any(g.expires_at is not None for g in grants) or len({g.issued_at for g in grants}) > 1:
        return
    issued_at = grants[0].issued_at if grants else 0
    text = "\n".join([str(issued_at), *(g.signature.hex() for g in grants)]) + "\n"
    with contextlib.suppress(OSError, VudoError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("ascii"), what="grant cache")
