"""The one place each third-party library's exceptions become vudo errors.

nacl (signatures), sqlite3 (the package store, the engine's key-value store and credit
ledger) and tomlkit (manifests, config, lock files) are used by both halves of the core,
which never import each other, so their boundaries live here, below both. wasmtime is
used by the engine alone: its boundary is :func:`vudo.engine.traps.translate` (WAT text:
:func:`vudo.engine.traps.parse_wat`). ``tests/test_boundaries.py`` checks that no other
module catches these libraries' exceptions, and that each handler and table below
covers every exception class the library defines (httpx's ``map_httpcore_exceptions`` is the model).

Nothing third-party (not even sqlite3) is imported at the top: a ``vudo run`` never
loads sqlite3 for the grants module, one without grants never loads nacl, and reading a
manifest that ``tomllib`` accepts never loads tomlkit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from vudo.errors import DiskFullError, InvalidInputError, VerificationError, VudoError

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import Any

    import tomlkit

__all__ = [
    "DatabaseBusyError",
    "DatabaseDamagedError",
    "load_toml",
    "nacl_errors",
    "parse_toml_document",
    "sqlite_errors",
    "translate_nacl_error",
    "translate_sqlite_error",
    "verify_signature",
    "without_bom",
]


# ------------------------------------------------------------------------------ nacl


def _nacl_table() -> dict[type[BaseException], tuple[type[VudoError], str]]:
    """Every exception class PyNaCl defines; an unknown subclass falls back to its
    closest listed base through the MRO."""
    # lazy: nacl only where keys are used; a test keeps this module free of it
    import nacl.exceptions as e

    return {
        e.BadSignatureError: (VerificationError, "signature does not match"),
        e.InvalidkeyError: (InvalidInputError, "invalid key"),
        e.CryptPrefixError: (InvalidInputError, "invalid key prefix"),
        e.ValueError: (InvalidInputError, "invalid cryptographic input"),
        e.TypeError: (InvalidInputError, "invalid cryptographic input type"),
        e.AssertionError: (VudoError, "cryptographic self-check failed"),
        e.UnavailableError: (VudoError, "cryptographic primitive unavailable"),
        e.RuntimeError: (VudoError, "cryptographic runtime error"),
        e.CryptoError: (VudoError, "cryptographic error"),
    }


_MISMATCH_HINT = "the data or the key was changed; get the package again from its source"


def translate_nacl_error(
    exc: BaseException, context: str, *, mismatch_hint: str = _MISMATCH_HINT
) -> VudoError:
    """Map a PyNaCl exception to the vudo error a user should see.

    ``context`` says what was being done ("verify grant"); ``mismatch_hint`` is the hint
    of a signature that does not match (what to do depends on what was signed).
    """
    table = _nacl_table()
    for cls in type(exc).__mro__:
        if cls in table:
            err_cls, what = table[cls]
            detail = str(exc).strip()
            message = f"{context}: {what}" + (f" ({detail})" if detail else "")
            return err_cls(message, hint=mismatch_hint if err_cls is VerificationError else None)
    return VudoError(f"{context}: {exc}")


@contextmanager
def nacl_errors(context: str, *, mismatch_hint: str = _MISMATCH_HINT) -> Iterator[None]:
    """Run the block; a PyNaCl exception leaves it as :func:`translate_nacl_error`'s."""
    # lazy: nacl only where keys are used; a test keeps this module free of it
    import nacl.exceptions

    try:
        yield
    except nacl.exceptions.CryptoError as exc:
        raise translate_nacl_error(exc, context, mismatch_hint=mismatch_hint) from exc


def verify_signature(
    signature: bytes,
    message: bytes,
    public_key: bytes,
    *,
    context: str,
    mismatch_hint: str = _MISMATCH_HINT,
) -> None:
    """Raise VerificationError unless ``public_key`` made the Ed25519 ``signature`` of
    ``message`` (InvalidInputError for a key or signature of the wrong length).

    libsodium's ``crypto_sign_open``, called through PyNaCl's own cffi module
    (``nacl._sodium``, what ``nacl.bindings`` and ``nacl.signing`` wrap): a run verifies
    its grants on every start, and importing ``nacl.bindings`` loads every binding module
    (~7 ms) where ``nacl._sodium`` costs under 1 ms.
    """
    with nacl_errors(context, mismatch_hint=mismatch_hint):
        import nacl.exceptions  # lazy: nacl only where signatures are checked
        from nacl._sodium import ffi, lib  # lazy: likewise (see above for why not bindings)

        if len(public_key) != 32:
            raise nacl.exceptions.ValueError("the public key must be 32 bytes")
        if len(signature) != 64:
            raise nacl.exceptions.BadSignatureError("the signature must be 64 bytes")
        if ffi.init_once(lib.sodium_init, "libsodium") == -1:  # the tag nacl.bindings uses
            raise nacl.exceptions.RuntimeError("could not initialize libsodium")
        signed = signature + message  # crypto_sign_open, as nacl.bindings calls it
        opened = ffi.new("unsigned char[]", len(signed))
        opened_len = ffi.new("unsigned long long *")
        if lib.crypto_sign_open(opened, opened_len, signed, len(signed), public_key) != 0:
            raise nacl.exceptions.BadSignatureError("Signature was forged or corrupt")


# --------------------------------------------------------------------------- sqlite3


class DatabaseDamagedError(VudoError):
    """An SQLite file is not a database, or is malformed or inconsistent."""

    title = "database damaged"


class DatabaseBusyError(VudoError):
    """Another process held an SQLite file's write lock longer than the busy timeout."""

    title = "database busy"


def _sqlite_table() -> dict[type[BaseException], tuple[bool, str]]:
    """Every exception class sqlite3 defines: (damaged?, what failed). A test checks it
    is complete; an unknown subclass falls back to its closest listed base (MRO)."""
    import sqlite3  # lazy: sqlite3 (~3 ms) only for database callers (a test checks it)

    return {
        sqlite3.IntegrityError: (False, "constraint failed"),
        sqlite3.DataError: (False, "rejected a value"),
        sqlite3.OperationalError: (False, "operation failed"),
        sqlite3.InternalError: (True, "SQLite internal error"),
        sqlite3.ProgrammingError: (False, "misused"),
        sqlite3.NotSupportedError: (False, "SQLite feature not supported"),
        sqlite3.InterfaceError: (False, "interface error"),
        sqlite3.DatabaseError: (True, "is damaged"),
        sqlite3.Warning: (False, "SQLite warning"),
        sqlite3.Error: (False, "SQLite error"),
    }


#: sqlite3's words for a file that is not (or no longer) the database it should be.
_DAMAGE_WORDS = (
    "malformed",
    "not a database",
    "no such table",
    "no such column",
    "disk image",
    "corrupt",
)


def translate_sqlite_error(
    exc: BaseException,
    context: str,
    *,
    what: str = "the database",
    damaged: type[VudoError] = DatabaseDamagedError,
    busy: type[VudoError] = DatabaseBusyError,
    damaged_hint: str | None = None,
    hint: str | None = None,
) -> VudoError:
    """Map a sqlite3 exception to a vudo error.

    ``context`` says what was being done, ``what`` names the database in the message
    ("the store index"). A full disk is DiskFullError; a lock held too long ``busy``; a
    damaged file ``damaged`` with ``damaged_hint`` (what to do depends on what the file
    holds: rebuild an index, restore a ledger); anything else a VudoError with ``hint``.
    """
    import sqlite3  # lazy: sqlite3 (~3 ms) only for database callers (a test checks it)

    text = str(exc)
    lowered = text.lower()
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in lowered:
        return DiskFullError(
            f"{context}: the disk is full ({text})",
            hint="free some space and run it again; nothing was changed",
        )
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in lowered or "busy" in lowered):
        return busy(
            f"{context}: {what} is busy ({text})",
            hint="another vudo process is using it; try again",
        )
    if any(word in lowered for word in _DAMAGE_WORDS):
        return damaged(f"{context}: {what} is damaged ({text})", hint=damaged_hint)
    table = _sqlite_table()
    for cls in type(exc).__mro__:
        if cls in table:
            is_damage, failed = table[cls]
            if is_damage:
                return damaged(f"{context}: {what} {failed} ({text})", hint=damaged_hint)
            return VudoError(f"{context}: {what}: {failed} ({text})", hint=hint)
    return VudoError(f"{context}: {text}", hint=hint)


@contextmanager
def sqlite_errors(
    context: str,
    *,
    into: Callable[[VudoError], BaseException] | None = None,
    **how: Any,
) -> Iterator[None]:
    """Run the block; a sqlite3 exception leaves it as :func:`translate_sqlite_error`'s
    (keywords ``how``), or as ``into`` of that (the engine hands the guest a code)."""
    import sqlite3  # lazy: kept out of this module (a test); callers have it loaded

    try:
        yield
    except (sqlite3.Error, sqlite3.Warning) as exc:  # Warning is not an Error subclass
        err = translate_sqlite_error(exc, context, **how)
        raise (into(err) if into is not None else err) from exc


# ---------------------------------------------------------------------------- TOML


_TOML_HINT = "check the TOML syntax on that line (quotes, brackets, one `key = value` per line)"


def _strip_position(message: str) -> str:
    message = re.sub(r"\s*at line \d+ col \d+\s*$", "", message).rstrip(".")
    # tomlkit reports running out of text as a NUL character it never saw.
    return message.replace("Unexpected character: '\\x00'", "unexpected end of file")


def without_bom(text: str) -> str:
    """``text`` without a leading UTF-8 byte order mark, which editors on Windows add
    and neither TOML nor JSON allows (tomlkit calls it an "Empty key")."""
    return text.removeprefix("\ufeff")


def parse_toml_document(
    text: str,
    filename: str,
    *,
    error: type[VudoError] = InvalidInputError,
    hint: str = _TOML_HINT,
) -> tomlkit.TOMLDocument:
    """Parse TOML with tomlkit, comments and layout kept (``vudo fmt``, writers that
    edit a file); malformed text is ``error`` naming ``filename:line:col``. Every
    exception tomlkit defines derives from ``TOMLKitError`` (a test checks), so one
    handler covers them all."""
    import tomlkit  # lazy: tomlkit (~20 ms) only for writers that keep a file's layout
    from tomlkit.exceptions import TOMLKitError  # lazy: as above

    try:
        return tomlkit.parse(without_bom(text))
    except TOMLKitError as exc:
        line = getattr(exc, "line", None)
        col = getattr(exc, "col", None)
        where = f"{filename}:{line}:{col}" if line is not None else filename
        detail = _strip_position(str(exc)) or type(exc).__name__
        raise error(f"malformed TOML at {where}: {detail}", hint=hint) from None


def load_toml(
    text: str,
    filename: str,
    *,
    error: type[VudoError] = InvalidInputError,
    hint: str = _TOML_HINT,
) -> dict[str, Any]:
    """Parse TOML into plain values. The standard library's tomllib first (cheap to
    import, on the ``vudo run`` path); what it refuses, tomlkit parses again for a
    message with the line and column (and, should the two parsers ever disagree,
    tomlkit's reading wins)."""
    import tomllib  # lazy: tomllib (~5 ms) is off a plain .wat run; only TOML readers need it

    try:
        return tomllib.loads(without_bom(text))
    except tomllib.TOMLDecodeError:
        pass
    return parse_toml_document(text, filename, error=error, hint=hint).unwrap()
