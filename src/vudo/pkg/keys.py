"""Ed25519 key pairs: generate, save, load, fingerprint.

A user's key pair lives in ``<home>/keys/`` (``private.key``, mode 0600, and
``public.key``); both hold one line of hex: the 32-byte seed and the 32-byte public key.
The public key in hex (64 chars) is what manifests name as ``author`` and what the store
pins for trust on first use.

PyNaCl's exceptions become vudo errors at :func:`vudo.boundaries.nacl_errors`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing

from vudo import boundaries
from vudo.boundaries import nacl_errors
from vudo.errors import InvalidInputError, NotFoundError, VerificationError
from vudo.files import write_atomic
from vudo.hashing import sha256

PRIVATE_KEY_FILE = "private.key"
PUBLIC_KEY_FILE = "public.key"

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def fingerprint(public_hex: str) -> str:
    """Short, human-comparable name of a public key: 16 hex of its SHA-256, in groups of 4."""
    digest = sha256(bytes.fromhex(public_hex)).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An Ed25519 signing key and its public half."""

    signing_key: nacl.signing.SigningKey

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def public_hex(self) -> str:
        """The public key as 64 lowercase hex chars (the form manifests and the store use)."""
        return self.public_bytes.hex()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_hex)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        with nacl_errors("signing"):
            return bytes(self.signing_key.sign(message).signature)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A key pair where it is kept (``vudo keys show``, ``generate``, ``import``): the
    public key, its fingerprint and the private key's file, never the key itself."""

    public_key: str
    private_key: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "fingerprint": self.fingerprint,
            "private_key": str(self.private_key),
        }


@dataclass(frozen=True, slots=True)
class KeyExport:
    """``vudo keys export``: the private key's hex seed written to ``file``, or, without
    one, the seed itself (the point of exporting to stdout)."""

    public_key: str
    file: Path | None
    seed_hex: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def to_json(self) -> dict[str, Any]:
        head = {"public_key": self.public_key, "fingerprint": self.fingerprint}
        if self.file is not None:
            return {**head, "file": str(self.file)}
        return {**head, "private_key_hex": self.seed_hex}


def export_keypair(kp: KeyPair, target: Path | None = None) -> KeyExport:
    """The private key's one-line hex seed (the format of ``keys/private.key``): written
    to ``target`` (created exclusively, mode 0600 from the start: never over another
    file), or returned when there is no ``target``."""
    seed = bytes(kp.signing_key).hex()
    if target is None:
        return KeyExport(kp.public_hex, None, seed)
    if not _create_exclusive(target, (seed + "\n").encode("ascii"), 0o600):
        raise InvalidInputError(
            f"{target} already exists", hint="pick a new file name; an export never overwrites"
        )
    return KeyExport(kp.public_hex, target, None)


def generate_keypair(random: Callable[[int], bytes] = os.urandom) -> KeyPair:
    """A fresh key pair from 32 bytes of ``random`` (tests pass a seeded source)."""
    seed = random(32)
    if len(seed) != 32:
        raise InvalidInputError("key seed must be 32 bytes")
    with nacl_errors("generating key"):
        return KeyPair(nacl.signing.SigningKey(seed))


def keypair_from_seed_hex(text: str, *, source: str = "key") -> KeyPair:
    """Parse the one-line hex seed format of ``private.key``."""
    value = text.strip()
    if not _HEX64.fullmatch(value):
        raise InvalidInputError(
            f"{source} is not a vudo private key (expected 64 hex characters)",
            hint="generate one with `vudo keys generate`",
        )
    with nacl_errors(f"loading {source}"):
        return KeyPair(nacl.signing.SigningKey(bytes.fromhex(value)))


def parse_public_key(text: str, *, source: str = "public key") -> str:
    """Validate a 64-hex Ed25519 public key and return it lowercased."""
    value = text.strip()
    if not _HEX64.fullmatch(value):
        raise InvalidInputError(
            f"{source} is not an Ed25519 public key (expected 64 hex characters)",
            hint="pass the 64-hex key shown by `vudo keys show`, or a public.key file",
        )
    if value.strip("0") == "":
        raise InvalidInputError(f"{source} is the all-zero key", hint="use a real public key")
    with nacl_errors(f"loading {source}"):
        nacl.signing.VerifyKey(bytes.fromhex(value))
    return value.lower()


def save_keypair(kp: KeyPair, keys_dir: Path, *, overwrite: bool = False) -> Path:
    """Write ``private.key`` (0600, atomically) and ``public.key`` into ``keys_dir``.

    Refuses to replace a different existing private key unless ``overwrite``: losing a
    key means losing the identity every package signed with it is pinned to.
    """
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = keys_dir / PRIVATE_KEY_FILE
    seed = (bytes(kp.signing_key).hex() + "\n").encode()
    if overwrite:
        write_atomic(private, seed, mode=0o600, fsync=True)
    elif not _create_exclusive(private, seed, 0o600):
        # Already there, perhaps written a moment ago by a concurrent first run: keep it.
        existing = load_keypair(private)
        if existing.public_hex != kp.public_hex:
            raise InvalidInputError(
                f"a different private key already exists at {private}",
                hint="move it away first, or pass overwrite",
            )
    write_atomic(keys_dir / PUBLIC_KEY_FILE, (kp.public_hex + "\n").encode(), fsync=True)
    return private


def _create_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` holding ``data`` unless it exists; False if it already did.

    Written to a temp file and hard-linked into place, so the file appears whole or not
    at all and two processes creating it at once cannot both win (a rename would let
    the second silently replace the first's key).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def load_keypair(path: Path) -> KeyPair:
    """Load a key pair from a keys directory or a ``private.key`` file.

    Refuses a private key readable or writable by group or others, and a ``public.key``
    beside it that does not belong to it.
    """
    file = path / PRIVATE_KEY_FILE if path.is_dir() else path
    not_a_key = InvalidInputError(
        f"{file} is not a vudo private key (expected one line of 64 hex characters)",
        hint="restore it from a backup, or move it away and run `vudo keys generate`",
    )
    try:
        st = file.stat()
        if not stat.S_ISREG(st.st_mode):  # a directory, a fifo: chmod would not help
            raise not_a_key
        if st.st_mode & 0o077:
            raise InvalidInputError(
                f"private key {file} is accessible by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                hint=f"chmod 600 {file}",
            )
        text = file.read_text(encoding="ascii")
    except FileNotFoundError:
        raise NotFoundError(
            f"no private key at {file}", hint="create one with `vudo keys generate`"
        ) from None
    except UnicodeDecodeError:
        raise not_a_key from None
    if not _HEX64.fullmatch(text.strip()):
        raise not_a_key
    kp = keypair_from_seed_hex(text, source=str(file))
    public = file.with_name(PUBLIC_KEY_FILE)
    if public.is_file():
        try:
            pub_text = public.read_text(encoding="ascii")
        except UnicodeDecodeError:
            pub_text = ""
        if pub_text.strip().lower() != kp.public_hex:
            raise InvalidInputError(
                f"{public} does not belong to {file}",
                hint=f"delete {public}; it is rewritten from the private key by `vudo keys show`",
            )
    return kp


def ensure_keypair(home: Path, random: Callable[[int], bytes] = os.urandom) -> KeyPair:
    """The user's key pair under ``<home>/keys``, generated on first use."""
    keys = home / "keys"
    if (keys / PRIVATE_KEY_FILE).exists():
        return load_keypair(keys)
    kp = generate_keypair(random)
    try:
        save_keypair(kp, keys)
    except InvalidInputError:
        if not (keys / PRIVATE_KEY_FILE).is_file():
            raise
        return load_keypair(keys)  # a concurrent first run created it first: use that one
    return kp


def load_public_key(value: str | Path) -> str:
    """A public key from 64 hex chars, a ``public.key`` file, or a keys directory."""
    if isinstance(value, str) and _HEX64.fullmatch(value.strip()):
        return parse_public_key(value)
    path = Path(value)
    if path.is_dir():
        path = path / PUBLIC_KEY_FILE
    if not path.is_file():
        raise InvalidInputError(
            f"{value} is neither a 64-hex public key nor a public key file",
            hint="pass the key shown by `vudo keys show`",
        )
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        text = ""
    return parse_public_key(text, source=str(path))


def verify_signature(public_hex: str, message: bytes, signature: bytes, *, context: str) -> None:
    """Check a detached Ed25519 signature; raise VerificationError if it does not hold."""
    if len(signature) != 64 or signature == bytes(64):
        raise VerificationError(
            f"{context}: malformed or zero signature",
            hint="the package was not signed properly; sign it again with `vudo sign`",
        )
    boundaries.verify_signature(signature, message, bytes.fromhex(public_hex), context=context)
