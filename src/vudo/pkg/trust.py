"""Who may sign a Spirit: trust on first use, plus keys the user trusts explicitly.

The rules, applied when a package is installed (:meth:`vudo.pkg.store.LocalStore.install`):

1. The manifest's ``author`` should be the key that signed the package. A package whose
   author is someone else is accepted only if its signer is trusted (the user's own key,
   a key added with ``vudo keys trust``, or a key passed in the policy), or if the policy
   explicitly allows author mismatches. So ``vudo sign`` of a colleague's package followed
   by ``vudo summon`` works on the signer's machine, and nowhere else by accident.
2. The first install of a name pins its signer (trust on first use). A later package of
   that name signed by a different key is refused, unless that key is trusted, or the
   policy says to re-pin (``--trust-signer``), which replaces the pin.

The decision is a pure function (:func:`decide`) so it is easy to test and to explain;
persistence of pins and trusted keys lives in the store's SQLite index.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from vudo.errors import VerificationError
from vudo.pkg.keys import fingerprint


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """How permissive one install is.

    ``trusted_keys`` are accepted as signers for any name in addition to the persisted
    trusted keys (the CLI passes the user's own public key). ``allow_author_mismatch``
    accepts a package whose manifest author is not its signer. ``repin`` accepts a new
    signer for an already pinned name and pins it (the user said so explicitly).
    """

    trusted_keys: frozenset[str] = field(default_factory=frozenset)
    allow_author_mismatch: bool = False
    repin: bool = False

    @classmethod
    def trusting(cls, *keys: str) -> TrustPolicy:
        return cls(trusted_keys=frozenset(k.lower() for k in keys))


@dataclass(frozen=True, slots=True)
class TrustDecision:
    """The outcome of :func:`decide`: whether to (re)pin, and notes to show the user."""

    pin: str | None
    """The signer to record as the name's pin, or None to keep the current pin."""
    notes: tuple[str, ...] = ()


def _short(key: str) -> str:
    return f"{key[:16]}… ({fingerprint(key)})"


def decide(
    name: str,
    *,
    signer: str,
    author: str,
    pinned: str | None,
    trusted: Collection[str],
    policy: TrustPolicy,
) -> TrustDecision:
    """Decide whether a package of ``name`` signed by ``signer`` may be installed.

    Raises VerificationError (exit 4) with a hint on how to trust the key when refused.
    """
    signer = signer.lower()
    author = author.lower()
    is_trusted = signer in trusted or signer in policy.trusted_keys
    notes: list[str] = []
    if author != signer:
        if not (is_trusted or policy.allow_author_mismatch):
            raise VerificationError(
                f"{name}: manifest author is {_short(author)}, but the package is signed "
                f"by {_short(signer)}",
                hint=f"if you trust the signer, run `vudo keys trust {signer}` "
                "(or install with --trust-signer)",
            )
        notes.append(f"manifest author is {author}, signed by {signer}")
    if pinned is None:
        return TrustDecision(pin=signer, notes=(*notes, f"pinned {name} to signer {signer}"))
    if pinned == signer:
        return TrustDecision(pin=None, notes=tuple(notes))
    if policy.repin:
        return TrustDecision(
            pin=signer, notes=(*notes, f"re-pinned {name} from {pinned} to {signer}")
        )
    if is_trusted:
        return TrustDecision(
            pin=None, notes=(*notes, f"{name} is pinned to {pinned}; accepted trusted {signer}")
        )
    raise VerificationError(
        f"{name} was first installed signed by {_short(pinned)}, but this package is "
        f"signed by {_short(signer)}",
        hint=f"if the new key is genuine, run `vudo keys trust {signer}` "
        "(or install with --trust-signer to re-pin)",
    )
