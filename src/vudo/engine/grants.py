"""Capability grants: who may let a Spirit do what, where, and until when (DESIGN.md §2).

A :class:`Grant` says "granter lets grantee use capability C within scope S from
``issued_at`` until ``expires_at``", signed by the granter's Ed25519 key over
:meth:`Grant.canonical_bytes`. The sandbox builds one :class:`GrantChecker` per run:
signatures, key formats, grantee and granter trust are checked **once**, at admission;
:meth:`GrantChecker.check` then runs on every host call and does only a dict lookup and a
few comparisons (time window, revocation, scope).

Trust model: a grant is admitted only if its granter is one of ``trusted_granters`` (the
keys the host trusts to hand out capabilities, e.g. the user's own key). A Spirit can
therefore never sign its own way into a capability. ``unrestricted`` grants allow every
capability, and are admitted only from a trusted granter like every other grant.

Scopes (``Scope.parse`` / ``str(scope)`` round-trip):

- ``global``: any target.
- ``sandboxed``: only calls that name no outside target (``target is None``): the
  Spirit's own storage namespace, its own account, its own log. Any named target
  (a network address, a peer key) is denied.
- ``peer:<64 hex>``: only the target equal to that Ed25519 public key (e.g. a credit
  transfer destination, a cross-sandbox call).
- ``path:<host dir>``: a WASI preopen (``--dir``) at that absolute, normalised host
  directory or below it (storage_read/write/delete for files, :mod:`vudo.engine.wasi`).
- ``domain:<host-pattern>:<port-pattern>``: network targets ``"host:port"`` (as normalised
  by :func:`vudo.engine.network.normalize_address`, which turns every numeric spelling the
  C library accepts, ``127.1``, ``2130706433``, ``0x7f.1``, into the address it stands for).
  The port pattern is ``*`` or one port number. The host pattern is one of three kinds,
  validated whole when the scope is parsed:

  * an **IPv4 pattern**, four dot-separated octets, each a number (0-255, no leading
    zero), ``*`` (any one octet) or digits with ``?`` (one digit): ``127.0.0.*``;
  * an **IPv6 pattern** in brackets: one address in any spelling (``[::1]``), or all eight
    groups written out, each a hex group or ``*`` (``[fe80:*:*:*:*:*:*:*]``);
  * a **name pattern**, DNS labels where ``*`` matches any run of characters *within one
    label* and ``?`` one character, never a dot: ``*.example.com`` matches
    ``api.example.com`` but not ``a.b.example.com`` or ``example.com``. A bare ``*`` is
    the one pattern that matches every name.

  Address patterns match addresses only, name patterns names only: ``127.0.0.*`` never
  matches a host *named* ``127.0.0.evil``, and ``*`` never matches ``10.0.0.1``.

  A name is checked twice (see :meth:`GrantChecker.check_resolved`): before it is
  resolved (so a Spirit without a grant cannot make the host look names up), and then
  every address it resolves to. A name grant reaches only *public* addresses
  (``ipaddress`` ``is_global``); a ``localhost`` or ``*.localhost`` pattern reaches
  loopback addresses only (``*`` does not reach ``localhost``). To let a name reach a
  private or loopback address, grant that address (range) too: the resolved address is
  then covered by the address grant. An address grant alone never lets a *name* be looked
  up. So a name whose DNS answer points into your network (DNS rebinding) is denied, and
  the connection goes to exactly the address that was checked.

nacl exceptions are translated by :func:`vudo.boundaries.nacl_errors`: a signature that
does not match becomes :class:`~vudo.errors.VerificationError`, a key that is not a valid
curve point :class:`~vudo.errors.InvalidInputError`.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, NamedTuple, NoReturn

from vudo.boundaries import nacl_errors, verify_signature
from vudo.capabilities import (
    AnyCapability,
    Capability,
    CustomCapability,
    parse_any_capability,
)
from vudo.errors import InvalidInputError, UsageError, VerificationError, VudoError
from vudo.hashing import sha256

if TYPE_CHECKING:
    import nacl.signing

__all__ = [
    "CANONICAL_VERSION",
    "Decision",
    "Grant",
    "GrantChecker",
    "RevocationList",
    "Scope",
    "ScopeKind",
    "issue_grant",
    "parse_grant_spec",
    "verify_grant",
]

#: Domain separator and version tag that starts every canonical encoding. Bump it (and
#: keep verifying the old one) if the field list ever changes.
CANONICAL_VERSION: Final = "vudo.grant.v1"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PORT_PATTERN = re.compile(r"\*|[0-9]{1,5}")
_LABEL_PATTERN = re.compile(r"[a-z0-9_*?-]{1,63}")
_NUMERIC_LABEL = re.compile(r"[0-9*?]+")
_OCTET_PATTERN = re.compile(r"\*|[0-9?]{1,3}")
_GROUP_PATTERN = re.compile(r"\*|[0-9a-f]{1,4}")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_LIKE = re.compile(r"[0-9.]+")
_DOMAIN_HINT: Final = (
    'e.g. "domain:127.0.0.*:*", "domain:[::1]:8080" or '
    '"domain:*.example.com:443" (`*` is one label or one octet)'
)
_SIGNATURE_BYTES: Final = 64
_ZERO_SIGNATURE: Final = bytes(_SIGNATURE_BYTES)
_SCOPE_HINT: Final = (
    'use "global", "sandboxed", "peer:<64 hex>", "domain:<host>:<port>" or "path:<host dir>"'
)
_PATH_HINT: Final = 'e.g. "path:/home/me/data": an absolute, normalised host directory'
#: Longest ``path:`` scope value (PATH_MAX).
MAX_SCOPE_PATH = 4096


def _check_path(value: object) -> str:
    """A ``path:`` scope's host directory, validated whole: absolute, normalised (no
    ``.``/``..``/``//``/trailing ``/`` except the root itself), printable, at most PATH_MAX."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"path scope needs a directory, got {value!r}", hint=_PATH_HINT)
    shown = value if len(value) <= 80 else value[:64] + "..."
    if (
        len(value) > MAX_SCOPE_PATH
        or not value.startswith("/")
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or posixpath.normpath(value) != value
        or value.startswith("//")
    ):
        raise InvalidInputError(
            f'path scope "{shown}" is not an absolute, normalised directory', hint=_PATH_HINT
        )
    return value


def _check_key(value: object, what: str) -> str:
    """Return a 64-hex Ed25519 public key in lower case, or raise InvalidInputError."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value.lower()):
        raise InvalidInputError(
            f"{what} must be a 64-hex-character Ed25519 public key, got {value!r}",
            hint="keys are printed by `vudo` as 64 hex characters",
        )
    return value.lower()


class ScopeKind(StrEnum):
    GLOBAL = "global"
    SANDBOXED = "sandboxed"
    PEER = "peer"
    DOMAIN = "domain"
    PATH = "path"


#: What a domain host pattern (and a target host) is: a name, an IPv4 or an IPv6 address.
_NAME, _IPV4, _IPV6 = "name", "ipv4", "ipv6"


def _bad_domain(value: str, why: str) -> InvalidInputError:
    return InvalidInputError(f'domain scope pattern "{value}": {why}', hint=_DOMAIN_HINT)


def _name_regex(host: str, value: str) -> str:
    if host == "*":
        return ".+"  # the one pattern that matches every name, dots included
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL_PATTERN.fullmatch(label) for label in labels):
        raise _bad_domain(
            value,
            f'"{host}" is not a host name pattern (labels of letters, '
            "digits, - and _, at most 63 each, joined by single dots)",
        )
    return r"\.".join(
        "".join("[^.]*" if ch == "*" else "[^.]" if ch == "?" else re.escape(ch) for ch in label)
        for label in labels
    )


def _ipv4_regex(host: str, value: str) -> str:
    octets = host.split(".")
    if len(octets) != 4 or not all(_OCTET_PATTERN.fullmatch(o) for o in octets):
        raise _bad_domain(
            value,
            f'"{host}" is not an IPv4 pattern (four octets, each a '
            "number, * or digits with ?) nor a host name",
        )
    # The regex matches canonical dotted quads only (no leading zeros), so a match alone
    # says the target is an IPv4 address in range.
    parts = []
    for octet in octets:
        if octet == "*":
            parts.append(_OCTET)
        elif "?" in octet:
            if len(octet) > 1 and octet[0] == "0":
                raise _bad_domain(value, f'octet "{octet}" has a leading zero')
            lead, rest = octet[0], octet[1:]
            first = "[1-9]" if lead == "?" and rest else "[0-9]" if lead == "?" else lead
            parts.append(first + rest.replace("?", "[0-9]"))
        elif int(octet) > 255 or (octet != "0" and octet.startswith("0")):
            raise _bad_domain(
                value,
                f'octet "{octet}" is not a number from 0 to 255 written without leading zeros',
            )
        else:
            parts.append(octet)
    return r"\.".join(parts)


def _ipv6_regex(inner: str, value: str) -> str:
    """A regex over the *exploded* form (eight 4-digit groups) of an IPv6 address."""
    if "*" in inner:
        groups = inner.split(":")
        if len(groups) != 8 or not all(_GROUP_PATTERN.fullmatch(g) for g in groups):
            raise _bad_domain(
                value,
                "an IPv6 pattern with * writes all eight groups (no ::), each a hex group or *",
            )
        return ":".join("[0-9a-f]{4}" if g == "*" else g.zfill(4) for g in groups)
    try:
        if "%" in inner:
            raise ValueError
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise _bad_domain(value, f'"[{inner}]" is not an IPv6 address (no zone ids)') from None
    if address.ipv4_mapped is not None:
        raise _bad_domain(value, f"[{inner}] is an IPv4 address: write it as {address.ipv4_mapped}")
    return re.escape(address.exploded)


def _domain_host(host: str, value: str) -> tuple[str, re.Pattern[str]]:
    """Classify and compile a domain host pattern: (kind, regex over canonical targets)."""
    if host.startswith("[") and host.endswith("]") and len(host) > 2:
        return _IPV6, re.compile(_ipv6_regex(host[1:-1], value))
    if host != "*" and all(_NUMERIC_LABEL.fullmatch(label) for label in host.split(".")):
        return _IPV4, re.compile(_ipv4_regex(host, value))
    return _NAME, re.compile(_name_regex(host, value))


def _name_may_reach(scope: Scope, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a *name* grant may lead to ``address``: public addresses, or loopback when
    the pattern names this machine (``localhost``, ``*.localhost``, RFC 6761)."""
    host = str(scope.value).rpartition(":")[0]
    if host == "localhost" or host.endswith(".localhost"):
        return address.is_loopback
    return address.is_global


class _Frozen:
    """Immutable, slotted values without ``dataclasses``: a run admits its grants on every
    start, and the ``dataclasses`` module (it imports ``inspect``) costs more to import than
    a small guest takes to run (see the :mod:`vudo` package docstring). Subclasses set
    their slots with ``object.__setattr__`` in ``__init__``, list the compared fields in
    ``_fields`` and get equality, hashing and a repr over those. The hash is computed
    once (an engine looks its grant checkers up by the grants, per sandbox)."""

    __slots__ = ("_hash",)
    _fields: tuple[str, ...] = ()
    _hash: int

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Frozen)
        return self._key() == other._key()

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            found = hash(self._key())
            object.__setattr__(self, "_hash", found)
            return found

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}")


class Scope(_Frozen):
    """Where a grant applies. Build with :meth:`parse` or the ``global_``/... helpers."""

    __slots__ = ("_family", "_host", "_port", "kind", "value")
    _fields = ("kind", "value")
    kind: ScopeKind
    value: str | None
    _host: re.Pattern[str] | None
    _port: str | None
    _family: str | None

    def __init__(self, kind: ScopeKind | str, value: str | None = None) -> None:
        try:
            checked = ScopeKind(kind)
        except ValueError:
            raise InvalidInputError(f"unknown scope kind {kind!r}", hint=_SCOPE_HINT) from None
        host_regex: re.Pattern[str] | None = None
        port: str | None = None
        family: str | None = None
        if checked in (ScopeKind.GLOBAL, ScopeKind.SANDBOXED):
            if value is not None:
                raise InvalidInputError(f'scope "{checked}" takes no value', hint=_SCOPE_HINT)
        elif checked is ScopeKind.PEER:
            value = _check_key(value, "peer scope")
        elif checked is ScopeKind.PATH:
            value = _check_path(value)
        else:
            host, port = self._split_domain(value)
            family, host_regex = _domain_host(host, str(value))
            value = f"{host}:{port}"
        setattr_ = object.__setattr__
        setattr_(self, "kind", checked)
        setattr_(self, "value", value)
        setattr_(self, "_host", host_regex)
        setattr_(self, "_port", port)
        setattr_(self, "_family", family)

    @staticmethod
    def _split_domain(value: object) -> tuple[str, str]:
        if not isinstance(value, str):
            raise InvalidInputError(
                f"domain scope needs a pattern, got {value!r}", hint=_SCOPE_HINT
            )
        text = value.strip().lower()
        host, sep, port = text.rpartition(":")
        if (
            not sep
            or not host
            or not _PORT_PATTERN.fullmatch(port)
            or (port != "*" and int(port) > 65535)
        ):
            raise InvalidInputError(
                f'domain scope pattern "{value}" is not "<host-pattern>:<port-pattern>"',
                hint='e.g. "domain:127.0.0.1:*" or "domain:*.example.com:443"',
            )
        if port != "*":
            port = str(int(port))
        return host, port

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``global``, ``sandboxed``, ``peer:<key>`` or ``domain:<pattern>``."""
        if not isinstance(text, str):
            raise InvalidInputError(f"scope must be text, got {text!r}", hint=_SCOPE_HINT)
        head, sep, rest = text.strip().partition(":")
        kind = head.lower()
        if not sep and kind in (ScopeKind.GLOBAL, ScopeKind.SANDBOXED):
            return cls(ScopeKind(kind))
        if sep and kind in (ScopeKind.PEER, ScopeKind.DOMAIN):
            return cls(ScopeKind(kind), rest)
        if sep and kind == ScopeKind.PATH:  # the path is taken as written, not stripped
            return cls(ScopeKind.PATH, text.partition(":")[2])
        raise InvalidInputError(f'invalid grant scope "{text}"', hint=_SCOPE_HINT)

    @classmethod
    def global_(cls) -> Scope:
        return cls(ScopeKind.GLOBAL)

    @classmethod
    def sandboxed(cls) -> Scope:
        return cls(ScopeKind.SANDBOXED)

    @classmethod
    def peer(cls, key: str) -> Scope:
        return cls(ScopeKind.PEER, key)

    @classmethod
    def domain(cls, pattern: str) -> Scope:
        return cls(ScopeKind.DOMAIN, pattern)

    @classmethod
    def path(cls, directory: str) -> Scope:
        return cls(ScopeKind.PATH, directory)

    def __str__(self) -> str:
        return self.kind.value if self.value is None else f"{self.kind.value}:{self.value}"

    def allows(self, target: str | None) -> bool:
        """Whether a call naming ``target`` (None: no outside target) is within this scope.

        Domain targets are ``"host:port"`` strings; peer targets are 64-hex keys.
        """
        kind = self.kind
        if kind is ScopeKind.GLOBAL:
            return True
        if target is None:
            return kind is ScopeKind.SANDBOXED
        if kind is ScopeKind.PEER:
            return target.lower() == self.value
        if kind is ScopeKind.PATH:
            # a WASI preopen's host directory: this one, or one below it
            value = str(self.value)
            return target == value or target.startswith(value.rstrip("/") + "/")
        if kind is ScopeKind.DOMAIN:
            host, sep, port = target.lower().rpartition(":")
            if not sep or (self._port != "*" and port != self._port):
                return False
            family = self._family
            assert self._host is not None
            if family is _IPV6:
                if not host.startswith("["):
                    return False
                try:
                    host = ipaddress.IPv6Address(host[1:-1]).exploded
                except ValueError:
                    return False
                return self._host.fullmatch(host) is not None
            if self._host.fullmatch(host) is None:
                return False
            # An IPv4 pattern's regex matches canonical dotted quads only; a name pattern
            # must not match an address (its regex could: the bare ``*`` matches anything).
            # Digits and dots alone are an address, or a spelling of one never normalised.
            return family is _IPV4 or not (host[:1] == "[" or _IPV4_LIKE.fullmatch(host))
        return False


def parse_grant_spec(text: str) -> tuple[AnyCapability, str]:
    """``CAP`` or ``CAP=SCOPE`` (``--grant``, ``vudo grant``) -> (capability, scope text,
    ``global`` by default). The scope is validated whole and normalised here, so every
    command that takes one refuses a bad scope alike (InvalidInputError, exit 3) before it
    does anything; ``unrestricted`` cannot be granted this way (UsageError)."""
    name, _, scope = text.partition("=")
    cap = parse_any_capability(name.strip())
    if cap is Capability.UNRESTRICTED:
        raise UsageError(
            '"unrestricted" cannot be granted from the command line',
            hint="grant the specific capabilities the Spirit needs",
        )
    return cap, str(Scope.parse(scope.strip() or "global"))


def _field(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


class Grant(_Frozen):
    """A signed capability grant. Construct with :func:`issue_grant` or :meth:`from_dict`.

    Constructing one directly validates the field formats but not the signature: the
    signature is checked when a :class:`GrantChecker` admits the grant.
    """

    __slots__ = (
        "capability",
        "expires_at",
        "grantee",
        "granter",
        "issued_at",
        "scope",
        "signature",
    )
    _fields = (
        "capability",
        "scope",
        "granter",
        "grantee",
        "issued_at",
        "expires_at",
        "signature",
    )
    capability: AnyCapability
    scope: Scope
    granter: str
    grantee: str
    issued_at: int
    expires_at: int | None
    signature: bytes

    def __init__(
        self,
        capability: AnyCapability,
        scope: Scope,
        granter: str,
        grantee: str,
        issued_at: int,
        expires_at: int | None,
        signature: bytes,
    ) -> None:
        if not isinstance(capability, Capability | CustomCapability):
            capability = parse_any_capability(str(capability))
        if not isinstance(scope, Scope):
            raise InvalidInputError(f"grant scope must be a Scope, got {scope!r}")
        granter = _check_key(granter, "grant granter")
        grantee = _check_key(grantee, "grant grantee")
        if type(issued_at) is not int or issued_at < 0:
            raise InvalidInputError(
                f"grant issued_at must be Unix seconds (a non-negative integer), got {issued_at!r}"
            )
        if expires_at is not None and (type(expires_at) is not int or expires_at <= issued_at):
            raise InvalidInputError(
                f"grant expires_at must be an integer after issued_at ({issued_at}), "
                f"got {expires_at!r}",
                hint="leave it out for a grant that does not expire",
            )
        if not isinstance(signature, bytes) or len(signature) != _SIGNATURE_BYTES:
            raise InvalidInputError(
                f"grant signature must be {_SIGNATURE_BYTES} bytes",
                hint="re-issue the grant with `issue_grant`",
            )
        setattr_ = object.__setattr__
        setattr_(self, "capability", capability)
        setattr_(self, "scope", scope)
        setattr_(self, "granter", granter)
        setattr_(self, "grantee", grantee)
        setattr_(self, "issued_at", issued_at)
        setattr_(self, "expires_at", expires_at)
        setattr_(self, "signature", signature)

    def canonical_bytes(self) -> bytes:
        """The exact bytes the granter signs: every field except the signature.

        Encoding (version ``vudo.grant.v1``): seven fields, each a big-endian uint32 byte
        length followed by UTF-8 text, in this order: the version tag
        ``"vudo.grant.v1"``, capability name, ``str(scope)``, granter (lower-case hex),
        grantee (lower-case hex), issued_at (decimal), expires_at (decimal, or the empty
        string for "never"). Length prefixes make it unambiguous; every field has one
        spelling, so equal grants encode to equal bytes.
        """
        return b"".join(
            _field(text)
            for text in (
                CANONICAL_VERSION,
                self.capability.value,
                str(self.scope),
                self.granter,
                self.grantee,
                str(self.issued_at),
                "" if self.expires_at is None else str(self.expires_at),
            )
        )

    @property
    def grant_id(self) -> str:
        """SHA-256 hex of :meth:`canonical_bytes`: what a :class:`RevocationList` holds."""
        return sha256(self.canonical_bytes()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "capability": self.capability.value,
            "scope": str(self.scope),
            "granter": self.granter,
            "grantee": self.grantee,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grant:
        """Validate and read a dict written by :meth:`to_dict` (InvalidInputError if bad)."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"a grant must be a JSON object, got {type(data).__name__}")
        fields = cls._fields
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InvalidInputError(
                f'unknown grant field "{unknown[0]}"', hint=f"fields are: {', '.join(fields)}"
            )
        missing = [name for name in fields if name not in data and name != "expires_at"]
        if missing:
            raise InvalidInputError(f'grant is missing field "{missing[0]}"')
        capability = data["capability"]
        if not isinstance(capability, str):
            raise InvalidInputError(f"grant capability must be a name, got {capability!r}")
        signature = data["signature"]
        if not isinstance(signature, str):
            raise InvalidInputError("grant signature must be a hex string")
        try:
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            raise InvalidInputError("grant signature is not valid hex") from None
        return cls(
            capability=parse_any_capability(capability),
            scope=Scope.parse(data["scope"]),
            granter=data["granter"],
            grantee=data["grantee"],
            issued_at=data["issued_at"],
            expires_at=data.get("expires_at"),
            signature=raw_signature,
        )


def issue_grant(
    signing_key: nacl.signing.SigningKey,
    capability: AnyCapability,
    scope: Scope,
    grantee: str,
    *,
    issued_at: int,
    expires_at: int | None = None,
) -> Grant:
    """Sign a new grant with the granter's key; the granter is that key's public half."""
    import nacl.signing  # lazy: nacl (~9 ms) only when a grant is signed

    if not isinstance(signing_key, nacl.signing.SigningKey):
        raise InvalidInputError("issue_grant needs a nacl.signing.SigningKey")
    unsigned = Grant(
        capability=capability,
        scope=scope,
        granter=bytes(signing_key.verify_key).hex(),
        grantee=grantee,
        issued_at=issued_at,
        expires_at=expires_at,
        signature=_ZERO_SIGNATURE,
    )
    with nacl_errors("sign grant"):
        signature = signing_key.sign(unsigned.canonical_bytes()).signature
    return Grant(
        capability=unsigned.capability,
        scope=scope,
        granter=unsigned.granter,
        grantee=unsigned.grantee,
        issued_at=issued_at,
        expires_at=expires_at,
        signature=bytes(signature),
    )


_REISSUE = "forged or altered: re-issue the grant with the granter's key"


def verify_grant(grant: Grant) -> None:
    """Raise VerificationError unless ``grant.granter`` signed exactly this grant.

    A zero signature is refused outright; a granter key that is not a valid Ed25519 point
    is InvalidInputError.
    """
    if grant.signature == _ZERO_SIGNATURE:
        raise VerificationError("grant has a zero signature", hint="sign it with issue_grant")
    verify_signature(
        grant.signature,
        grant.canonical_bytes(),
        bytes.fromhex(grant.granter),
        context="verify grant",
        mismatch_hint=_REISSUE,
    )


class RevocationList:
    """Revoked grant ids; may change while sandboxes run (thread-safe).

    Reads take no lock: the set is replaced, never mutated, on each change, so a
    membership test on the hot path sees either the old or the new set.
    """

    __slots__ = ("_ids", "_lock")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._ids: frozenset[str] = frozenset(self._id(i) for i in ids)

    @staticmethod
    def _id(item: Grant | str) -> str:
        if isinstance(item, Grant):
            return item.grant_id
        if not isinstance(item, str) or not _HEX64.fullmatch(item.lower()):
            raise InvalidInputError(f"a grant id is 64 hex characters, got {item!r}")
        return item.lower()

    def revoke(self, item: Grant | str) -> None:
        gid = self._id(item)
        with self._lock:
            self._ids = self._ids | {gid}

    def unrevoke(self, item: Grant | str) -> None:
        gid = self._id(item)
        with self._lock:
            self._ids = self._ids - {gid}

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Grant):
            item = item.grant_id
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> frozenset[str]:
        return self._ids


class Decision(NamedTuple):
    """The answer to one capability check; ``reason`` is logged with the host call."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


class _Admitted:
    """A grant that passed admission, flattened for the per-call check."""

    __slots__ = ("allows", "everywhere", "expires_at", "grant", "grant_id", "issued_at", "scope")

    def __init__(self, grant: Grant) -> None:
        self.grant = grant
        self.grant_id = grant.grant_id
        self.issued_at = grant.issued_at
        self.expires_at = grant.expires_at
        self.scope = grant.scope
        self.allows = grant.scope.allows
        #: a global scope allows every target: the check skips the call to ``allows``
        self.everywhere = grant.scope.kind is ScopeKind.GLOBAL


_ALLOWED: Final = Decision(True, "granted")


class GrantChecker:
    """Admits grants once (signatures, keys, trust) and answers per-call checks cheaply.

    ``clock`` returns the current time in **Unix seconds** (``time.time`` by default; a
    nanosecond clock must be divided first). Rejected grants are kept in :attr:`rejected`
    with their reason, which is also given when a call needing that capability is denied.

    Live grants: ``refresh``, when given, returns the grantee's *complete* current grants
    (revoked ones gone, new ones added); :meth:`check` calls it at most once per
    ``refresh_interval`` seconds (one monotonic-clock compare per check otherwise) and
    swaps the result in, so a revocation reaches a running sandbox within about that
    interval. A grant seen before is not verified again (admission is cached by grant id).
    If ``refresh`` raises, the checker fails closed: every capability is denied, naming
    the failure, until a later refresh succeeds. Expiry needs no refresh: every check
    compares the clock with the grant's window.
    """

    def __init__(
        self,
        grants: Iterable[Grant],
        *,
        grantee: str,
        trusted_granters: Iterable[str],
        revocations: RevocationList | None = None,
        clock: Callable[[], float] = time.time,
        refresh: Callable[[], Iterable[Grant]] | None = None,
        refresh_interval: float = 0.5,
    ) -> None:
        self.grantee = _check_key(grantee, "grantee")
        self.trusted_granters = frozenset(
            _check_key(k, "trusted granter") for k in trusted_granters
        )
        self._revocations = revocations if revocations is not None else RevocationList()
        self._clock = clock
        self._seen: dict[str, _Admitted | str] = {}  # grant id -> admitted, or why not
        self._refresh = refresh
        self._interval = refresh_interval
        self._next_poll = time.monotonic() + refresh_interval
        self._poll_lock = threading.Lock()
        self._failure: str | None = None
        self._install(grants)

    def _install(self, grants: Iterable[Grant]) -> None:
        """Admit ``grants`` (new ones only are verified) and swap them in as the current set."""
        admitted: list[_Admitted] = []
        rejected: list[tuple[Grant, str]] = []
        seen, kept = self._seen, {}  # keep only the current grants' answers: bounded
        for grant in grants:
            if not isinstance(grant, Grant):
                raise InvalidInputError(f"expected a Grant, got {type(grant).__name__}")
            gid = grant.grant_id
            known = seen.get(gid)
            if known is None:
                problem = self._admission_problem(grant)
                known = _Admitted(grant) if problem is None else problem
            kept[gid] = known
            if isinstance(known, _Admitted):
                admitted.append(known)
            else:
                rejected.append((grant, known))
        unrestricted = tuple(a for a in admitted if a.grant.capability is Capability.UNRESTRICTED)
        by_cap: dict[AnyCapability, tuple[_Admitted, ...]] = {}
        custom = {a.grant.capability for a in admitted} - set(Capability)
        for cap in (*Capability, *sorted(custom)):
            own = tuple(a for a in admitted if a.grant.capability == cap)
            entries = own if cap is Capability.UNRESTRICTED else own + unrestricted
            if entries:
                by_cap[cap] = entries
        rejected_reason: dict[AnyCapability, str] = {}
        for grant, reason in rejected:
            rejected_reason[grant.capability] = reason
        self._seen = kept
        self.admitted: tuple[Grant, ...] = tuple(a.grant for a in admitted)
        self.rejected: tuple[tuple[Grant, str], ...] = tuple(rejected)
        self._rejected_reason = rejected_reason
        self._by_cap = by_cap  # last: a concurrent check sees the old set or the new one

    def _poll(self) -> None:
        """Re-read the grants from ``refresh`` (one thread at a time; others go on)."""
        if not self._poll_lock.acquire(blocking=False):
            return
        try:
            self._next_poll = time.monotonic() + self._interval
            assert self._refresh is not None
            try:
                grants = tuple(self._refresh())
                self._install(grants)
            except Exception as exc:  # fail closed: an unreadable source grants nothing
                self._failure = f"the current grants could not be read ({exc})"
                self._install(())
            else:
                self._failure = None
        finally:
            self._poll_lock.release()

    def _admission_problem(self, grant: Grant) -> str | None:
        if grant.grantee != self.grantee:
            return f"grant is for another key ({grant.grantee[:12]}...)"
        if grant.granter not in self.trusted_granters:
            return f"granter {grant.granter[:12]}... is not trusted"
        try:
            verify_grant(grant)
        except VudoError as exc:
            return f"invalid grant signature: {exc}"
        return None

    def check(self, capability: AnyCapability, target: str | None = None) -> Decision:
        """Whether a host call needing ``capability`` on ``target`` may go ahead now.

        For a network name this is the first of two checks: the connection must then pass
        :meth:`check_resolved` for the address the name resolved to.
        """
        if self._refresh is not None and time.monotonic() >= self._next_poll:
            self._poll()
        entries = self._by_cap.get(capability)
        if entries is None:
            # an application's own capability no grant names: unrestricted still covers it
            if not isinstance(capability, CustomCapability):
                return self._missing(capability)
            entries = self._by_cap.get(Capability.UNRESTRICTED)
            if entries is None:
                return self._missing(capability)
        now = self._clock()
        revoked = self._revocations.ids()  # the frozenset: no __contains__ call per entry
        problem = ""
        for entry in entries:  # _invalid inlined: this loop is on every host call
            expires = entry.expires_at
            if expires is not None and now >= expires:
                problem = f"grant for {capability} expired at {expires}"
            elif now < entry.issued_at:
                problem = f"grant for {capability} is not valid before {entry.issued_at}"
            elif entry.grant_id in revoked:
                problem = f"grant for {capability} was revoked"
            elif not entry.everywhere and not entry.allows(target):
                problem = f"{target!r} is outside the grant's scope {entry.scope}"
            else:
                return _ALLOWED
        return Decision(False, problem)

    def check_resolved(self, capability: Capability, target: str, address: str) -> Decision:
        """Whether a connection to ``target`` (``"name:port"``, which passed :meth:`check`)
        may go to ``address``, one address the name resolved to (``"1.2.3.4"`` or
        ``"[::1]"``, canonical).

        Allowed by a ``global`` grant, by an address grant covering ``address:port``, or
        by a name grant covering ``target`` when the name may reach that address (a
        public one; loopback for ``localhost`` names).
        """
        entries = self._by_cap.get(capability)
        if entries is None:
            return self._missing(capability)
        port = target.rpartition(":")[2]
        resolved = f"{address}:{port}"
        ip = ipaddress.ip_address(address.strip("[]"))
        now = self._clock()
        problem = ""
        for entry in entries:
            problem = self._invalid(entry, now, capability)
            if problem:
                continue
            named = entry.allows(target)
            if entry.allows(resolved) or (named and _name_may_reach(entry.scope, ip)):
                return _ALLOWED
            problem = f"{target!r} resolved to {address}, outside the grant's scope {entry.scope}"
            if named:
                problem += " (a name grant reaches public addresses only: grant the address too)"
        return Decision(False, problem)

    def _invalid(self, entry: _Admitted, now: float, capability: AnyCapability) -> str:
        """Why an admitted grant does not count right now ("" when it does); :meth:`check`
        has the same tests inlined."""
        expires = entry.expires_at
        if expires is not None and now >= expires:
            return f"grant for {capability} expired at {expires}"
        if now < entry.issued_at:
            return f"grant for {capability} is not valid before {entry.issued_at}"
        if entry.grant_id in self._revocations:
            return f"grant for {capability} was revoked"
        return ""

    def _missing(self, capability: AnyCapability) -> Decision:
        if self._failure is not None:
            return Decision(False, f"no grant for {capability}: {self._failure}")
        reason = self._rejected_reason.get(capability) or self._rejected_reason.get(
            Capability.UNRESTRICTED
        )
        if reason is not None:
            return Decision(False, f"no valid grant for {capability}: {reason}")
        return Decision(False, f"no grant for {capability}")
