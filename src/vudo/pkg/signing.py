"""Signing and verifying ``.spirit`` packages.

The signature envelope (``signature.json``, the archive's last member) records the
signer's public key, the SHA-256 of the manifest's canonical encoding, and the path, size
and SHA-256 of every other member. Those fields, in a canonical JSON encoding, hash to the
package *digest*; the Ed25519 signature is over a domain tag plus that digest. So any
changed, added or removed byte in any member changes a file hash, the digest, or the
member list, and :func:`verify_package` refuses the package (VerificationError, exit 4).

Signing appends the envelope to a copy of the package written beside it and renames it
over the original, so a crash leaves either the old or the new file. Each member is read
once: hashing and copying share the same pass, on two threads
(:class:`~vudo.pkg.archive.HashedStream`). Ed25519 is deterministic, so signing the
same package with the same key twice gives the same bytes.

A manifest whose ``author`` is not the signing key can be signed (a team member signs a
colleague's package); the result says so (``author_matches``) and the CLI prints it.
Install-time policy about that lives in :mod:`vudo.pkg.trust`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.errors import ManifestError, VerificationError
from vudo.files import write_atomic_with
from vudo.hashing import sha256
from vudo.pkg.archive import (
    DEFAULT_LIMITS,
    MODULE_NAME,
    SIGNATURE_NAME,
    ArchiveLimits,
    HashedStream,
    MemberDigests,
    PackageReader,
    ZipWriter,
    prepare_pack,
    write_package,
)
from vudo.pkg.keys import KeyPair, verify_signature
from vudo.pkg.manifest import Manifest, canonical_manifest_bytes, parse_manifest

ENVELOPE_FORMAT = "vudo-spirit-signature/1"
ALGORITHM = "ed25519"
_DOMAIN = b"vudo-spirit-signature/1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_ENVELOPE_KEYS = {
    "format",
    "algorithm",
    "signer",
    "manifest_sha256",
    "files",
    "digest",
    "signature",
}


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One member as the signature covers it."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def package_digest(signer: str, manifest_sha256: str, files: tuple[FileDigest, ...]) -> str:
    """The canonical digest the signature covers (SHA-256 hex)."""
    statement = {
        "algorithm": ALGORITHM,
        "files": [f.to_dict() for f in files],
        "format": ENVELOPE_FORMAT,
        "manifest_sha256": manifest_sha256,
        "signer": signer,
    }
    return sha256(_canonical_json(statement)).hexdigest()


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parsed ``signature.json``."""

    signer: str
    manifest_sha256: str
    files: tuple[FileDigest, ...]
    digest: str
    signature: str

    def to_bytes(self) -> bytes:
        body = {
            "algorithm": ALGORITHM,
            "digest": self.digest,
            "files": [f.to_dict() for f in self.files],
            "format": ENVELOPE_FORMAT,
            "manifest_sha256": self.manifest_sha256,
            "signature": self.signature,
            "signer": self.signer,
        }
        return (json.dumps(body, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes) -> Envelope:
        """Strictly parse an envelope; anything unexpected is a VerificationError."""

        def bad(what: str) -> VerificationError:
            return VerificationError(
                f"package signature envelope is malformed: {what}",
                hint="the signature was damaged or forged; sign the package again with `vudo sign`",
            )

        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise bad(f"not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise bad("not an object")
        if set(body) != _ENVELOPE_KEYS:
            raise bad(f"unexpected fields {sorted(set(body) ^ _ENVELOPE_KEYS)}")
        if body["format"] != ENVELOPE_FORMAT:
            raise bad(f"unknown format {body['format']!r}")
        if body["algorithm"] != ALGORITHM:
            raise bad(f"unsupported algorithm {body['algorithm']!r}")
        for key in ("signer", "manifest_sha256", "digest"):
            if not isinstance(body[key], str) or not _HEX64.fullmatch(body[key]):
                raise bad(f"{key} is not 64 lowercase hex characters")
        if not isinstance(body["signature"], str) or not _HEX128.fullmatch(body["signature"]):
            raise bad("signature is not 128 lowercase hex characters (truncated?)")
        if not isinstance(body["files"], list):
            raise bad("files is not a list")
        files: list[FileDigest] = []
        for entry in body["files"]:
            if (
                not isinstance(entry, dict)
                or set(entry) != {"path", "sha256", "size"}
                or not isinstance(entry["path"], str)
                or not isinstance(entry["size"], int)
                or isinstance(entry["size"], bool)
                or not isinstance(entry["sha256"], str)
                or not _HEX64.fullmatch(entry["sha256"])
            ):
                raise bad(f"bad file entry {entry!r:.80}")
            files.append(FileDigest(entry["path"], entry["size"], entry["sha256"]))
        return cls(
            signer=body["signer"],
            manifest_sha256=body["manifest_sha256"],
            files=tuple(files),
            digest=body["digest"],
            signature=body["signature"],
        )


@dataclass(frozen=True, slots=True)
class SignResult:
    """What :func:`sign_package` did."""

    path: Path
    signer: str
    digest: str
    author: str
    author_matches: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "signer": self.signer,
            "digest": self.digest,
            "author": self.author,
            "author_matches": self.author_matches,
        }


@dataclass(frozen=True, slots=True)
class CheckedPackage:
    """A package whose every byte the signature covers has been checked, without its
    contents kept in memory (what installing and publishing need)."""

    path: Path
    manifest: Manifest
    manifest_bytes: bytes
    signer: str
    digest: str
    author_matches: bool
    files: tuple[FileDigest, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class VerifiedPackage(CheckedPackage):
    """A checked package with its contents (what running it needs)."""

    module: bytes
    assets: Mapping[str, bytes]


def _parse_signed_manifest(data: bytes, name: str) -> Manifest:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(
            f"{name} in the package is not UTF-8 text",
            hint="the package was not produced by `vudo pack`",
        ) from None
    return parse_manifest(text, filename=name)


def sign_package(
    path: Path, keypair: KeyPair, limits: ArchiveLimits = DEFAULT_LIMITS
) -> SignResult:
    """Sign ``path`` in place (atomically), replacing any earlier signature."""
    path = Path(path)
    with PackageReader(path, limits) as reader:
        manifest_member = reader.manifest_member
        manifest_bytes = reader.read(manifest_member.name)
        manifest = _parse_signed_manifest(manifest_bytes, manifest_member.name)
        manifest_sha = sha256(canonical_manifest_bytes(manifest)).hexdigest()
        files: list[FileDigest] = []

        def body(fd: int) -> None:
            writer = ZipWriter(fd)
            for m in reader.content_members:
                # One read per member: this thread CRC-checks and writes each chunk
                # while a helper thread hashes the same private bytes.
                with HashedStream(reader.fd, m.data_offset, m.size) as stream:
                    writer.add_stream(m.name, stream, m.size, expect_crc=m.crc)
                    files.append(FileDigest(m.name, m.size, stream.hexdigest()))
            writer.add_bytes(
                SIGNATURE_NAME, _envelope(keypair, manifest_sha, tuple(files)).to_bytes()
            )
            writer.finish()

        write_atomic_with(path, body, size_hint=reader.content_members[-1].end, what="package file")
    digest = package_digest(keypair.public_hex, manifest_sha, tuple(files))
    return SignResult(
        path,
        keypair.public_hex,
        digest,
        manifest.author,
        manifest.author.lower() == keypair.public_hex,
    )


def _envelope(keypair: KeyPair, manifest_sha: str, files: tuple[FileDigest, ...]) -> Envelope:
    digest = package_digest(keypair.public_hex, manifest_sha, files)
    signature = keypair.sign(_DOMAIN + bytes.fromhex(digest)).hex()
    return Envelope(keypair.public_hex, manifest_sha, files, digest, signature)


def pack_and_sign(
    manifest_path: Path,
    module_path: Path,
    out_path: Path,
    keypair: KeyPair,
    assets: Iterable[Path | tuple[str, Path]] = (),
) -> SignResult:
    """:func:`~vudo.pkg.archive.pack` and :func:`sign_package` in one pass over the data.

    Each member is hashed while it is written, and the envelope appended before the
    archive is closed; the bytes are identical to packing and then signing.
    """
    inputs = prepare_pack(manifest_path, module_path, assets)
    manifest = _parse_signed_manifest(inputs.manifest, inputs.manifest_name)
    manifest_sha = sha256(canonical_manifest_bytes(manifest)).hexdigest()
    envelopes: list[Envelope] = []

    def trailer(digests: Sequence[tuple[str, int, str]]) -> tuple[str, bytes]:
        files = tuple(FileDigest(name, size, sha) for name, size, sha in digests)
        envelopes.append(_envelope(keypair, manifest_sha, files))
        return SIGNATURE_NAME, envelopes[0].to_bytes()

    path = write_package(
        Path(out_path),
        inputs.manifest_name,
        inputs.manifest,
        inputs.module_path,
        inputs.assets,
        trailer=trailer,
    )
    return SignResult(
        path,
        keypair.public_hex,
        envelopes[0].digest,
        manifest.author,
        manifest.author.lower() == keypair.public_hex,
    )


def verify_package(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> VerifiedPackage:
    """Verify a signed package and return its checked contents.

    Raises VerificationError if it is unsigned, if the envelope is malformed, truncated,
    zeroed or forged, or if any member was changed, added or removed after signing.
    """
    contents: dict[str, bytes] = {}
    checked = _check(Path(path), limits, contents=contents)
    module = contents.pop(MODULE_NAME)
    del contents[checked.files[0].path]  # the manifest (always the first member)
    return VerifiedPackage(
        path=checked.path,
        manifest=checked.manifest,
        manifest_bytes=checked.manifest_bytes,
        signer=checked.signer,
        digest=checked.digest,
        author_matches=checked.author_matches,
        files=checked.files,
        module=module,
        assets=contents,
    )


def check_package(
    path: Path, limits: ArchiveLimits = DEFAULT_LIMITS, *, streamed: MemberDigests | None = None
) -> CheckedPackage:
    """Verify a signed package as :func:`verify_package` does, without keeping its
    contents. With ``streamed`` (the member digests of this very file, worked out while
    this process wrote it: a download), member data is not read again, only the headers
    and the small manifest and envelope; every member must be exactly where, and as
    large and with the CRC-32, the archive says, or the package is refused.
    """
    return _check(Path(path), limits, streamed=streamed)


def _check(
    path: Path,
    limits: ArchiveLimits,
    *,
    streamed: MemberDigests | None = None,
    contents: dict[str, bytes] | None = None,
) -> CheckedPackage:
    """The one verification: ``contents`` (when given) receives every member's bytes."""
    with PackageReader(path, limits) as reader:
        sig_member = reader.signature_member
        if sig_member is None:
            raise VerificationError(
                f"{path.name} is not signed",
                hint="sign it with `vudo sign` (or `vudo sign --key FILE`)",
            )
        raw_envelope = reader.read(SIGNATURE_NAME)
        envelope = Envelope.parse(raw_envelope)
        if envelope.to_bytes() != raw_envelope:
            # The envelope is not covered by its own signature: demand its one canonical
            # encoding, so not even a whitespace change in the package goes unnoticed.
            raise VerificationError(
                f"{path.name}: signature envelope is not in canonical form (edited?)",
                hint="do not install this package; get it again from its author",
            )
        seen: dict[str, str] = {}
        if streamed is not None:
            if [(s.name, s.header_offset, s.size, s.crc) for s in streamed.members] != [
                (m.name, m.header_offset, m.size, m.crc) for m in reader.members
            ]:
                raise VerificationError(
                    f"{path.name}: the members read while it arrived differ from its "
                    "directory (or fail their CRC check)",
                    hint="the package is damaged or was tampered with; get it again",
                )
            seen = {s.name: s.sha256 for s in streamed.members}
        actual: list[FileDigest] = []
        for m in reader.content_members:
            if m.name in seen:
                sha = seen[m.name]
            elif contents is not None:
                contents[m.name], sha = reader.read_hashed(m.name)
            else:
                sha = reader.hash_member(m.name)
            actual.append(FileDigest(m.name, m.size, sha))
        manifest_name = reader.manifest_member.name
        manifest_raw = contents[manifest_name] if contents else reader.read(manifest_name)
    signed = {f.path: f for f in envelope.files}
    present = {f.path: f for f in actual}
    for name in present:
        if name not in signed:
            raise VerificationError(
                f"{path.name}: member {name!r} is not covered by the signature "
                "(added after signing)",
                hint="do not install this package; get it again from its author",
            )
    for name, expected in signed.items():
        got = present.get(name)
        if got is None:
            raise VerificationError(
                f"{path.name}: signed member {name!r} is missing (removed after signing)",
                hint="do not install this package; get it again from its author",
            )
        if got != expected:
            raise VerificationError(
                f"{path.name}: member {name!r} was changed after signing "
                "(SHA-256 does not match the signature)",
                hint="do not install this package; get it again from its author",
            )
    if [f.path for f in envelope.files] != [f.path for f in actual]:
        raise VerificationError(
            f"{path.name}: members are not in the signed order",
            hint="the package was changed after signing; get it again",
        )
    digest = package_digest(envelope.signer, envelope.manifest_sha256, tuple(actual))
    if digest != envelope.digest:
        raise VerificationError(
            f"{path.name}: signature envelope digest does not match its contents",
            hint="the envelope was edited; do not install this package",
        )
    verify_signature(
        envelope.signer,
        _DOMAIN + bytes.fromhex(digest),
        bytes.fromhex(envelope.signature),
        context=f"verifying the signature of {path.name}",
    )
    if sha256(manifest_raw).hexdigest() != present[manifest_name].sha256:
        raise VerificationError(
            f"{path.name}: the manifest changed while it was verified",
            hint="do not change the package while vudo reads it",
        )
    manifest = _parse_signed_manifest(manifest_raw, manifest_name)
    if sha256(canonical_manifest_bytes(manifest)).hexdigest() != envelope.manifest_sha256:
        raise VerificationError(
            f"{path.name}: the manifest does not match the signed manifest digest",
            hint="the package was signed by a different vudo version or tampered with",
        )
    return CheckedPackage(
        path=path,
        manifest=manifest,
        manifest_bytes=manifest_raw,
        signer=envelope.signer,
        digest=digest,
        author_matches=manifest.author.lower() == envelope.signer,
        files=tuple(actual),
    )
