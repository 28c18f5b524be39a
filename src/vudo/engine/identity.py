"""Who a run is (DESIGN.md §2 "Identity"): one identity per run, everything derives from it.

A Spirit's storage namespace, its credit account and the grantee of its grants all come
from its :class:`SpiritIdentity`, never from a name the Spirit chose (a manifest name or a
file name is the author's claim, not who they are):

* an installed Spirit is ``(signer key, name)``: two signers' ``wallet`` are two Spirits;
* a project run (``vudo run DIR``, ``vudo test``, the TUI) is a development identity bound
  to the project's real path, separate from any installed Spirit of the same name;
* a loose ``.wasm``/``.wat`` is bound to its module digest: two runs of the same file share
  storage; a file that calls itself ``wallet`` shares nothing with the installed one.

The identity's :attr:`~SpiritIdentity.key` is 32 bytes (64 hex, the width of an Ed25519 key,
so it fits every place a grantee or account goes): SHA-256 over a domain tag, the kind and
the subject. Distinct kinds or subjects give distinct keys, so two identities never share
storage or credit.

Credit accounts come from :func:`credit_account`, the one derivation for every account,
the user's own included (``credit_account(user's public key)``). An account is never the
identity's key itself, not even for an identity that is an Ed25519 key (the original VUDO
VM used the key as the account): the engine cannot tell a key from a derived identity (both
are 32 bytes), so one rule for all keeps every account in its own hash domain, apart from
every key that signs or receives grants.

The values are :class:`~typing.NamedTuple` records (like :mod:`vudo.engine.config`'s): every
``vudo run`` builds one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final, Literal, NamedTuple

from vudo.hashing import sha256

__all__ = ["ACCOUNT_TAG", "IDENTITY_TAG", "SpiritIdentity", "credit_account"]

#: Domain tags of the two derivations (changing one changes every account or identity).
IDENTITY_TAG: Final = b"vudo-spirit-identity-v1\0"
ACCOUNT_TAG: Final = b"vudo-credit-account-v1\0"

Kind = Literal["installed", "project", "module", "key"]


def credit_account(identity: str | bytes) -> bytes:
    """The 32-byte credit account of an identity (64 hex or 32 bytes).

    ``SHA-256(b"vudo-credit-account-v1\\0" + identity bytes)``: the one derivation of an
    account, for Spirits and for the user's own key alike.
    """
    raw = bytes.fromhex(identity) if isinstance(identity, str) else bytes(identity)
    if len(raw) != 32:
        raise ValueError(f"an identity is 32 bytes, got {len(raw)}")
    return sha256(ACCOUNT_TAG + raw).digest()


class SpiritIdentity(NamedTuple):
    """One run's identity: what kind, bound to what subject, and its derived 32-byte key.

    Build it with :meth:`installed`, :meth:`project`, :meth:`module` or :meth:`of_key`.
    ``subject`` is the binding in words (``signer/name``, a real path, ``sha256:<hex>``, a
    key) for messages; ``key`` is the 64-hex identity every grant names as its grantee.
    """

    kind: Kind
    subject: str
    key: str

    @classmethod
    def _derive(cls, kind: Kind, subject: str) -> SpiritIdentity:
        data = IDENTITY_TAG + kind.encode() + b"\0" + os.fsencode(subject)
        return cls(kind, subject, sha256(data).hexdigest())

    @classmethod
    def installed(cls, signer: str, name: str) -> SpiritIdentity:
        """An installed Spirit: its package signer's key and its name."""
        if len(signer) != 64 or signer.lower() != signer or not _is_hex(signer):
            raise ValueError(f"a signer is 64 lowercase hex digits, got {signer!r}")
        return cls._derive("installed", f"{signer}/{name}")

    @classmethod
    def project(cls, root: Path) -> SpiritIdentity:
        """A project run: bound to the project directory's real path (links resolved)."""
        return cls._derive("project", str(Path(root).resolve()))

    @classmethod
    def module(cls, wasm: bytes) -> SpiritIdentity:
        """A loose module file: bound to the SHA-256 of its wasm bytes."""
        return cls._derive("module", "sha256:" + sha256(wasm).hexdigest())

    @classmethod
    def of_key(cls, key: str) -> SpiritIdentity:
        """An identity that is an Ed25519 public key itself (the user, a library caller)."""
        if len(key) != 64 or not _is_hex(key):
            raise ValueError(f"a key is 64 hex digits, got {key!r}")
        return cls("key", key.lower(), key.lower())

    @property
    def namespace(self) -> str:
        """The storage namespace: the identity's key (never a name the Spirit chose)."""
        return self.key

    @property
    def account(self) -> bytes:
        """The identity's own credit account (see :func:`credit_account`)."""
        return credit_account(self.key)

    def describe(self) -> str:
        """A short human label: ``installed wallet (signer 1a2b3c4d...)`` and so on."""
        if self.kind == "installed":
            signer, _, name = self.subject.partition("/")
            return f"installed {name} (signer {signer[:12]}...)"
        if self.kind == "module":
            return f"module {self.subject[:19]}..."
        return f"{self.kind} {self.subject}"


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
