"""The ``.spirit`` archive: a deterministic, strictly canonical ZIP file.

Why our own ZIP writer and reader instead of :mod:`zipfile`: the archive must be
byte-for-byte reproducible (same inputs, same bytes) and reading it must refuse anything
that is not exactly what :func:`pack` writes. The format is a plain ZIP (``unzip -l``
reads it) restricted to:

* members stored uncompressed (no zip bombs: a member's bytes on disk *are* its size),
  every timestamp 1980-01-01 00:00, mode ``0644`` regular file, no extra fields,
  no comments, no data descriptors, no ZIP64;
* members in a fixed order: the manifest (``spirit.toml``, ``manifest.toml`` or
  ``manifest.json``), ``module.wasm``, ``assets/...`` sorted by name, then
  ``signature.json`` when signed (signing appends it, see :mod:`vudo.pkg.signing`);
* nothing before the first member, between members, or after the end record.

:class:`PackageReader` parses the central directory, gives a specific error for each
kind of attack (absolute paths, ``..``, links, duplicates, compressed or oversized
members), then checks every header byte against the canonical encoding, so a flipped
byte anywhere outside member data is refused; member data is covered by CRC-32 here and
by the SHA-256 list in the signature envelope.

Member data is streamed in 1 MiB chunks (CRC and write in one pass), so packing a 100 MB
module never holds it twice in memory; where a member is also SHA-256 hashed (signing,
verifying), :class:`HashedStream` runs the hash on a second thread over the same chunks.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import stat
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vudo.errors import InvalidInputError, NotFoundError, VerificationError
from vudo.files import write_atomic_with
from vudo.hashing import sha256
from vudo.pkg.manifest import parse_manifest
from vudo.resources import Resource

MANIFEST_NAMES = ("spirit.toml", "manifest.toml", "manifest.json")
MODULE_NAME = "module.wasm"
SIGNATURE_NAME = "signature.json"
ASSETS_PREFIX = "assets/"

CHUNK = 1 << 20
SPAN = 4 * CHUNK
PIPELINE_MIN = 4 * CHUNK

_LOCAL_SIG = 0x04034B50
_CENTRAL_SIG = 0x02014B50
_END_SIG = 0x06054B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 20  # 2.0: stored files, directories
_MADE_BY = (3 << 8) | _VERSION  # Unix
_FLAGS = 0x0800  # names are UTF-8
_DOS_TIME = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_MODE = stat.S_IFREG | 0o644
_MAX_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds a package must stay within (checked on declared sizes, then on real bytes)."""

    max_member_size: int = 512 * 1024 * 1024
    max_total_size: int = 1024 * 1024 * 1024
    max_members: int = 4096
    max_manifest_size: int = 1024 * 1024
    max_signature_size: int = 8 * 1024 * 1024


DEFAULT_LIMITS = ArchiveLimits()


def _corrupt(path: Path, what: str) -> VerificationError:
    return VerificationError(
        f"{path.name}: not a valid .spirit package ({what})",
        hint="the file is damaged or was tampered with; get it again or rebuild it "
        "with `vudo pack` and `vudo sign`",
    )


def check_member_name(name: str) -> None:
    """Refuse a member name that could escape an extraction directory or collide.

    Raised as VerificationError: a package carrying such a name was crafted, not built.
    """
    bad: str | None = None
    if not name:
        bad = "empty name"
    elif name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        bad = "absolute path"
    elif "\\" in name:
        bad = "backslash in path"
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        bad = "control character in path"
    elif name.endswith("/"):
        bad = "directory entry"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        bad = "'..', '.' or empty path component"
    elif len(name.encode("utf-8")) > 1024:
        bad = "path too long"
    elif not (
        name in MANIFEST_NAMES
        or name in (MODULE_NAME, SIGNATURE_NAME)
        or name.startswith(ASSETS_PREFIX)
    ):
        bad = "not a manifest, module.wasm, signature.json or assets/ file"
    if bad is not None:
        raise VerificationError(
            f"unsafe package member {name!r}: {bad}",
            hint="refusing to read this package; it was not produced by `vudo pack`",
        )


def _order_key(name: str) -> tuple[int, str]:
    if name in MANIFEST_NAMES:
        return (0, name)
    if name == MODULE_NAME:
        return (1, name)
    if name == SIGNATURE_NAME:
        return (3, name)
    return (2, name)


def _local_header(name: bytes, crc: int, size: int) -> bytes:
    return (
        _LOCAL.pack(
            _LOCAL_SIG, _VERSION, _FLAGS, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(name), 0
        )
        + name
    )


def _central_header(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return (
        _CENTRAL.pack(
            _CENTRAL_SIG,
            _MADE_BY,
            _VERSION,
            _FLAGS,
            0,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            _MODE << 16,
            offset,
        )
        + name
    )


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a package as recorded in the archive."""

    name: str
    size: int
    crc: int
    header_offset: int

    @property
    def data_offset(self) -> int:
        return self.header_offset + _LOCAL.size + len(self.name.encode("utf-8"))

    @property
    def end(self) -> int:
        return self.data_offset + self.size


@dataclass(slots=True)
class _Entry:
    name: bytes
    crc: int
    size: int
    offset: int


@dataclass(slots=True)
class ZipWriter:
    """Writes a canonical archive to an open, seekable, unbuffered file descriptor."""

    fd: int
    entries: list[_Entry] = field(default_factory=list)
    position: int = 0

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.position += len(data)

    def add_bytes(self, name: str, data: bytes) -> None:
        raw = name.encode("utf-8")
        crc = zlib.crc32(data)
        self.entries.append(_Entry(raw, crc, len(data), self.position))
        self._write(_local_header(raw, crc, len(data)))
        self._write(data)

    def add_stream(
        self,
        name: str,
        chunks: Iterable[memoryview | bytes],
        size: int,
        *,
        expect_crc: int | None = None,
    ) -> int:
        """Stream ``size`` bytes into a member; return its CRC-32.

        The local header is written with a placeholder CRC and patched afterwards, so
        the data passes through memory once.
        """
        if size > _MAX_U32:
            raise InvalidInputError(f"{name} is larger than 4 GiB")
        raw = name.encode("utf-8")
        start = self.position
        self._write(_local_header(raw, 0, size))
        crc = 0
        total = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            total += len(chunk)
            self._write(chunk)
        if total != size:
            raise InvalidInputError(f"{name} changed size while being read ({size} -> {total})")
        if expect_crc is not None and crc != expect_crc:
            raise VerificationError(f"{name}: CRC mismatch while copying", hint="get it again")
        os.pwrite(self.fd, _local_header(raw, crc, size), start)
        self.entries.append(_Entry(raw, crc, size, start))
        return crc

    def finish(self) -> None:
        if len(self.entries) > 0xFFFF:
            raise InvalidInputError("too many members for a package")
        central_start = self.position
        for e in self.entries:
            self._write(_central_header(e.name, e.crc, e.size, e.offset))
        central_size = self.position - central_start
        self._write(
            _END.pack(
                _END_SIG,
                0,
                0,
                len(self.entries),
                len(self.entries),
                central_size,
                central_start,
                0,
            )
        )


def stream_file(
    fd: int, offset: int, size: int, sink: Callable[[memoryview], None] | None = None
) -> Iterator[memoryview]:
    """Yield ``size`` bytes of ``fd`` from ``offset`` in chunks, via one reused buffer.

    Each chunk is only valid until the next is requested. ``sink`` sees every chunk
    (hashing while copying). A short read means the file was truncated underneath us.
    """
    buf = bytearray(min(CHUNK, max(size, 1)))
    view = memoryview(buf)
    remaining = size
    pos = offset
    while remaining:
        want = min(remaining, len(buf))
        got = os.preadv(fd, [view[:want]], pos)
        if got <= 0:
            raise VerificationError("package file is truncated", hint="get it again")
        chunk = view[:got]
        if sink is not None:
            sink(chunk)
        yield chunk
        remaining -= got
        pos += got


def sha256_file(path: Path) -> str:
    """SHA-256 hex of a whole file, read in one streaming pass (store and registry checks)."""
    h = sha256(stream=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        for chunk in stream_file(fd, 0, os.fstat(fd).st_size):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


class HashedStream(Resource):
    """Read ``size`` bytes of ``fd`` from ``offset`` once, in order, into private buffers,
    and SHA-256 them on a helper thread while the caller consumes the same chunks.

    Why: SHA-256 is the slowest step of signing and verifying (about 1.5 GB/s, slower
    than reading, CRC-32 or writing), and :mod:`hashlib` releases the GIL on large
    buffers, so on a second core the hash runs beside whatever the caller does with each
    chunk (CRC-32 and write it when signing, collect it when verifying). The hash and
    the caller read the very same private bytes, so what is hashed is exactly what is
    written or returned, even if the file changes underneath.

    Chunks are read into one of two ``SPAN``-byte buffers; a full span goes to the
    hasher (one GIL hand-over per span, not per chunk) while the other fills. Spans
    are small enough to still be in the CPU cache when the hasher reads them: 4 MiB
    measured clearly faster than 8. Below ``PIPELINE_MIN`` bytes everything runs in
    this thread: a thread costs more than it saves there.

    Iterate once; each chunk is valid until the next is requested; then call
    :meth:`hexdigest`. A resource: ``close()`` (or ``with``) stops the helper thread
    when the caller gives up early.
    """

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._offset = offset
        self._size = size
        self._sha = sha256(stream=True)
        self._finished = False
        self._thread: threading.Thread | None = None
        self._spans: list[memoryview] = []
        self._free: list[threading.Semaphore] = []
        self._work: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._failure: list[BaseException] = []

    def __iter__(self) -> Iterator[memoryview]:
        if self._size < PIPELINE_MIN:
            yield from stream_file(self._fd, self._offset, self._size, self._sha.update)
            self._finished = True
            return
        span_size = min(SPAN, self._size)
        self._spans = [memoryview(bytearray(span_size)) for _ in range(2)]
        self._free = [threading.Semaphore(1) for _ in range(2)]
        self._thread = threading.Thread(target=self._hash, name="vudo-sha256", daemon=True)
        self._thread.start()
        pos, end, index = self._offset, self._offset + self._size, 0
        while pos < end:
            self._free[index].acquire()  # the hasher is done with this span
            span = self._spans[index]
            want = min(span_size, end - pos)
            filled = 0
            while filled < want:
                got = os.preadv(self._fd, [span[filled : min(want, filled + CHUNK)]], pos + filled)
                if got <= 0:
                    raise VerificationError("package file is truncated", hint="get it again")
                yield span[filled : filled + got]
                filled += got
            self._work.put((index, filled))
            pos += filled
            index ^= 1
        self._finished = True

    def _hash(self) -> None:
        while (item := self._work.get()) is not None:
            index, length = item
            try:
                if not self._failure:
                    self._sha.update(self._spans[index][:length])
            except BaseException as exc:  # MemoryError: reported by hexdigest()
                self._failure.append(exc)
            finally:
                self._free[index].release()

    def hexdigest(self) -> str:
        """SHA-256 hex of every byte iterated over (after a complete iteration)."""
        if not self._finished:
            raise RuntimeError("HashedStream.hexdigest() before the stream was read")
        self._stop()
        if self._failure:
            raise self._failure[0]
        return self._sha.hexdigest()

    def _stop(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self._stop()


@dataclass(frozen=True, slots=True)
class StreamedMember:
    """A member as :class:`MemberDigests` saw it go past: where its local header was,
    its size, and the CRC-32 and SHA-256 of its data."""

    name: str
    header_offset: int
    size: int
    crc: int
    sha256: str


class MemberDigests:
    """CRC-32 and SHA-256 of every member of a package, worked out from the package's
    bytes as they arrive in order (a download), so verifying it afterwards needs only its
    headers read again, not its data (:func:`vudo.pkg.signing.check_package`).

    It follows the canonical layout (local headers with sizes, then data, member after
    member, then the central directory) and stops at the first thing that is not a local
    header. It validates nothing itself: what it saw is compared, member by member, with
    what :class:`PackageReader` parses from the finished file, and any difference refuses
    the package. Feed it every byte exactly once, in order, with :meth:`update`.
    """

    def __init__(self, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
        self._max_members = limits.max_members
        self._head = bytearray()
        self._need = _LOCAL.size  # header bytes wanted before the next step
        self._offset = 0  # where the current (or next) member's local header starts
        self._name = ""
        self._name_len = 0
        self._size = 0
        self._left = 0  # data bytes of the current member still to come
        self._crc = 0
        self._sha = sha256(stream=True)
        self._stopped = False
        self.members: list[StreamedMember] = []

    def update(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        i, n = 0, len(view)
        while i < n and not self._stopped:
            if self._left:
                take = min(self._left, n - i)
                part = view[i : i + take]
                self._crc = zlib.crc32(part, self._crc)
                self._sha.update(part)
                self._left -= take
                i += take
                if not self._left:
                    self._end_member()
                continue
            take = min(self._need - len(self._head), n - i)
            self._head += view[i : i + take]
            i += take
            if len(self._head) == self._need:
                self._header()

    def _header(self) -> None:
        if len(self._head) == _LOCAL.size:
            fields = _LOCAL.unpack(self._head)
            sig, size, name_len, extra_len = fields[0], fields[7], fields[9], fields[10]
            if (
                sig != _LOCAL_SIG
                or extra_len
                or not name_len
                or len(self.members) >= self._max_members
            ):
                self._stopped = True  # the central directory (or not canonical)
                return
            self._size, self._name_len = size, name_len
            self._need = _LOCAL.size + name_len
            return
        try:
            self._name = bytes(self._head[_LOCAL.size :]).decode("utf-8")
        except UnicodeDecodeError:
            self._stopped = True
            return
        self._head.clear()
        self._need = _LOCAL.size
        self._left = self._size
        self._crc = 0
        self._sha = sha256(stream=True)
        if not self._left:
            self._end_member()

    def _end_member(self) -> None:
        self.members.append(
            StreamedMember(self._name, self._offset, self._size, self._crc, self._sha.hexdigest())
        )
        self._offset += _LOCAL.size + self._name_len + self._size


def digest_package(
    path: Path, *, into: int | None = None, hint: str = "run `vudo pack` and `vudo sign`"
) -> tuple[str, int, MemberDigests]:
    """The SHA-256 hex and size of a whole package file and its members' digests, from
    one read (the whole-file hash on a helper thread), every byte also written to the
    file descriptor ``into`` when given (a private copy).

    Publishing works this out before it uploads, and installing while it copies a
    package into the store, so checking the signature afterwards
    (:func:`vudo.pkg.signing.check_package` with ``streamed``) reads no data again."""
    fd = open_regular(path, what=".spirit package", hint=hint)
    try:
        size = os.fstat(fd).st_size
        members = MemberDigests()
        with HashedStream(fd, 0, size) as stream:
            for chunk in stream:
                members.update(chunk)
                view = chunk
                while into is not None and view:
                    view = view[os.write(into, view) :]
            sha = stream.hexdigest()
    finally:
        os.close(fd)
    return sha, size, members


def open_regular(path: Path, *, what: str = "package", hint: str | None = None) -> int:
    """Open an existing regular file read-only; refuse directories, FIFOs and devices
    (a FIFO would block a read forever, a device could stream without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotFoundError(f"no {what} at {path}", hint=hint) from None
    except IsADirectoryError:
        raise InvalidInputError(
            f"{path} is a directory, not a {what} file", hint=hint or "pass the file itself"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInputError(f"{path} is not a regular file", hint=f"pass a {what} file")
    os.set_blocking(fd, True)
    return fd


class PackageReader(Resource):
    """Strict reader of a ``.spirit`` archive (a resource: close it, or use ``with``).

    Opening parses and validates the whole structure; member data is read on demand.
    """

    def __init__(self, path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
        self.path = path
        self.limits = limits
        self._fd = open_regular(path, what=".spirit package", hint="build one with `vudo pack`")
        try:
            self.size = os.fstat(self._fd).st_size
            self.members: tuple[Member, ...] = self._parse()
        except BaseException:
            os.close(self._fd)
            raise
        self._by_name = {m.name: m for m in self.members}

    # -- structure ---------------------------------------------------------------------

    def _pread(self, size: int, offset: int) -> bytes:
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise _corrupt(self.path, "truncated")
        return data

    def _parse(self) -> tuple[Member, ...]:
        path = self.path
        if self.size < _END.size:
            raise _corrupt(path, "too short to be an archive")
        end = self._pread(_END.size, self.size - _END.size)
        sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _END.unpack(end)
        if sig != _END_SIG:
            raise _corrupt(path, "no end-of-archive record at the end of the file")
        if disk or cd_disk or n_disk != n_total or comment_len:
            raise _corrupt(path, "multi-disk archive or archive comment")
        if n_total > self.limits.max_members:
            raise _corrupt(path, f"{n_total} members, more than {self.limits.max_members}")
        if cd_offset + cd_size != self.size - _END.size:
            raise _corrupt(path, "central directory is not where the end record says")
        central = self._pread(cd_size, cd_offset)
        members: list[Member] = []
        headers: list[tuple[bytes, bytes]] = []
        seen: set[str] = set()
        folded: set[str] = set()
        pos = 0
        total = 0
        for _ in range(n_total):
            if pos + _CENTRAL.size > len(central):
                raise _corrupt(path, "central directory truncated")
            fields = _CENTRAL.unpack_from(central, pos)
            (
                csig,
                _made,
                _need,
                flags,
                method,
                _t,
                _d,
                crc,
                csize,
                usize,
                nlen,
                elen,
                clen,
                _dstart,
                _iattr,
                eattr,
                offset,
            ) = fields
            if csig != _CENTRAL_SIG:
                raise _corrupt(path, "bad central directory entry")
            raw_name = central[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen]
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError:
                raise _corrupt(path, "member name is not UTF-8") from None
            mode = eattr >> 16
            if stat.S_ISLNK(mode):
                raise VerificationError(
                    f"unsafe package member {name!r}: symbolic link",
                    hint="packages may contain only regular files",
                )
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                raise VerificationError(
                    f"unsafe package member {name!r}: not a regular file (mode {mode:o})",
                    hint="packages may contain only regular files",
                )
            check_member_name(name)
            if name in seen or name.casefold() in folded:
                raise VerificationError(
                    f"duplicate package member {name!r}",
                    hint="a package names each file once; this one was crafted",
                )
            seen.add(name)
            folded.add(name.casefold())
            if flags & 0x1:
                raise _corrupt(path, f"{name} is encrypted")
            if method != 0:
                raise VerificationError(
                    f"package member {name!r} is compressed (method {method})",
                    hint="vudo packages store members uncompressed; "
                    "this refuses decompression bombs",
                )
            limit = self.limits.max_member_size
            if name in MANIFEST_NAMES:
                limit = self.limits.max_manifest_size
            elif name == SIGNATURE_NAME:
                limit = self.limits.max_signature_size
            if usize > limit or csize > limit:
                raise VerificationError(
                    f"package member {name!r} declares {max(usize, csize)} bytes, "
                    f"over the {limit}-byte limit",
                    hint="refusing oversized members",
                )
            if csize != usize:
                raise _corrupt(path, f"{name} sizes disagree")
            total += usize
            if total > self.limits.max_total_size:
                raise VerificationError(
                    f"package contents exceed {self.limits.max_total_size} bytes",
                    hint="refusing oversized packages",
                )
            actual = central[pos : pos + _CENTRAL.size + nlen + elen + clen]
            headers.append((actual, _central_header(raw_name, crc, usize, offset)))
            members.append(Member(name, usize, crc, offset))
            pos += _CENTRAL.size + nlen + elen + clen
        if pos != len(central):
            raise _corrupt(path, "trailing bytes in the central directory")
        # Every entry is safe; now require the exact canonical encoding.
        for member, (actual, expected) in zip(members, headers, strict=True):
            if actual != expected:
                raise _corrupt(path, f"non-canonical central header for {member.name}")
        if [m.name for m in members] != sorted((m.name for m in members), key=_order_key):
            raise _corrupt(path, "members out of canonical order")
        manifests = [m for m in members if m.name in MANIFEST_NAMES]
        if len(manifests) != 1:
            raise _corrupt(path, "needs exactly one manifest member")
        if MODULE_NAME not in seen:
            raise _corrupt(path, f"no {MODULE_NAME}")
        expected_offset = 0
        for m in members:
            if m.header_offset != expected_offset:
                raise _corrupt(path, f"unexpected bytes before {m.name}")
            raw = m.name.encode("utf-8")
            header = self._pread(_LOCAL.size + len(raw), m.header_offset)
            if header != _local_header(raw, m.crc, m.size):
                raise _corrupt(path, f"local header of {m.name} does not match the directory")
            expected_offset = m.end
        if expected_offset != cd_offset:
            raise _corrupt(path, "unexpected bytes before the central directory")
        return tuple(members)

    # -- members -------------------------------------------------------------------------

    @property
    def manifest_member(self) -> Member:
        return next(m for m in self.members if m.name in MANIFEST_NAMES)

    @property
    def signature_member(self) -> Member | None:
        return self._by_name.get(SIGNATURE_NAME)

    @property
    def content_members(self) -> tuple[Member, ...]:
        """Every member except the signature envelope, in archive order."""
        return tuple(m for m in self.members if m.name != SIGNATURE_NAME)

    def member(self, name: str) -> Member:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"{self.path.name} has no member {name!r}") from None

    def read(self, name: str) -> bytes:
        """A member's bytes, checked against its recorded size and CRC-32."""
        m = self.member(name)
        data = self._pread(m.size, m.data_offset)
        if zlib.crc32(data) != m.crc:
            raise _corrupt(self.path, f"{name} fails its CRC check")
        return data

    def read_hashed(self, name: str) -> tuple[bytes, str]:
        """A member's bytes and their SHA-256 hex, for checking against a signed hash;
        the CRC-32 is checked too.

        The signature covers member data, not the CRC fields in the headers; the header
        comparison catches a CRC edited in one header but not in both, so only checking
        the data against it keeps every byte of a signed package covered.
        """
        # The chunks are collected (and CRC-checked) while a helper thread hashes them
        # (HashedStream), so the copy out of the page cache overlaps the hash;
        # BytesIO.getvalue() hands its buffer over without another copy.
        collected = io.BytesIO()
        sha = self._hash(name, collected.write)
        return collected.getvalue(), sha

    def hash_member(self, name: str) -> str:
        """A member's SHA-256 hex (CRC-32 checked too), without keeping its bytes."""
        return self._hash(name, None)

    def _hash(self, name: str, keep: Callable[[memoryview], object] | None) -> str:
        m = self.member(name)
        crc = 0
        with HashedStream(self._fd, m.data_offset, m.size) as stream:
            for chunk in stream:
                crc = zlib.crc32(chunk, crc)
                if keep is not None:
                    keep(chunk)
            sha = stream.hexdigest()
        if crc != m.crc:
            raise _corrupt(self.path, f"{name} fails its CRC check")
        return sha

    @property
    def fd(self) -> int:
        """The open file descriptor (signing streams member data from it)."""
        return self._fd

    def stream(
        self, name: str, sink: Callable[[memoryview], None] | None = None
    ) -> Iterator[memoryview]:
        m = self.member(name)
        return stream_file(self._fd, m.data_offset, m.size, sink)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _asset_entries(assets: Iterable[Path | tuple[str, Path]]) -> list[tuple[str, Path]]:
    entries: list[tuple[str, Path]] = []
    for item in assets:
        if isinstance(item, tuple):
            rel, src = item
            entries.append((ASSETS_PREFIX + rel.strip("/"), src))
            continue
        if item.is_dir():
            for file in sorted(item.rglob("*")):
                if file.is_symlink():
                    raise InvalidInputError(
                        f"asset {file} is a symbolic link", hint="copy the file in instead"
                    )
                if file.is_file():
                    rel = file.relative_to(item.parent).as_posix()
                    entries.append((ASSETS_PREFIX + rel, file))
        else:
            entries.append((ASSETS_PREFIX + item.name, item))
    for name, src in entries:
        check_member_name(name)
        if src.is_symlink():
            raise InvalidInputError(
                f"asset {src} is a symbolic link", hint="copy the file in instead"
            )
        if not src.is_file():
            raise InvalidInputError(
                f"asset {src} is not a regular file",
                hint="assets are plain files (and folders of them)",
            )
    names = [n for n, _ in entries]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            "two assets have the same name in the package", hint="rename one of them"
        )
    return sorted(entries)


def package_path_hint(path: Path) -> str | None:
    """For a directory named where a package goes (``vudo pack -o dist``): name a file."""
    if path.is_dir() and not path.is_symlink():
        return f"name the file, e.g. {path / 'name-0.1.0.spirit'}"
    return None


def write_package(
    out_path: Path,
    manifest_name: str,
    manifest: bytes,
    module_path: Path,
    assets: Sequence[tuple[str, Path]],
    trailer: Callable[[Sequence[tuple[str, int, str]]], tuple[str, bytes]] | None = None,
) -> Path:
    """Write an archive. With ``trailer``, every member is also SHA-256 hashed as it is
    written (on a helper thread, see :class:`HashedStream`) and ``trailer(digests)``,
    given ``(name, size, sha256 hex)`` of each member in order, returns one last member
    (the signature envelope): a package is packed and signed in a single pass."""
    if manifest_name not in MANIFEST_NAMES:
        raise InvalidInputError(f"manifest must be one of {', '.join(MANIFEST_NAMES)}")

    def body(fd: int) -> None:
        writer = ZipWriter(fd)
        writer.add_bytes(manifest_name, manifest)
        digests = [(manifest_name, len(manifest), sha256(manifest).hexdigest())]
        for name, src in ((MODULE_NAME, module_path), *assets):
            src_fd = open_regular(src, what="file", hint="run `vudo build` first")
            try:
                size = os.fstat(src_fd).st_size
                if trailer is None:
                    writer.add_stream(name, stream_file(src_fd, 0, size), size)
                    continue
                with HashedStream(src_fd, 0, size) as stream:
                    writer.add_stream(name, stream, size)
                    digests.append((name, size, stream.hexdigest()))
            finally:
                os.close(src_fd)
        if trailer is not None:
            writer.add_bytes(*trailer(digests))
        writer.finish()

    out_path.parent.mkdir(parents=True, exist_ok=True)
    hint = _LOCAL.size * (1 + len(assets)) + len(manifest) + len(manifest_name)
    for name, src in ((MODULE_NAME, module_path), *assets):
        with contextlib.suppress(OSError):
            hint += _LOCAL.size + len(name.encode("utf-8")) + src.stat().st_size
    return write_atomic_with(
        out_path, body, size_hint=hint, what="package file", hint=package_path_hint(out_path)
    )


@dataclass(frozen=True, slots=True)
class PackInputs:
    """Checked inputs of a pack: the manifest's file name and bytes, and the assets."""

    manifest_name: str
    manifest: bytes
    module_path: Path
    assets: tuple[tuple[str, Path], ...]


def prepare_pack(
    manifest_path: Path, module_path: Path, assets: Iterable[Path | tuple[str, Path]] = ()
) -> PackInputs:
    """Read and validate what :func:`pack` will write (the manifest must parse)."""
    manifest_path = Path(manifest_path)
    if manifest_path.name not in MANIFEST_NAMES:
        raise InvalidInputError(
            f"{manifest_path.name} is not a manifest file name",
            hint=f"name it one of {', '.join(MANIFEST_NAMES)}",
        )
    try:
        manifest = manifest_path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no manifest at {manifest_path}", hint="run `vudo new`") from None
    if len(manifest) > DEFAULT_LIMITS.max_manifest_size:
        raise InvalidInputError(
            f"{manifest_path} is larger than 1 MiB",
            hint="a manifest holds metadata only; move long text to README.md",
        )
    try:
        text = manifest.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{manifest_path} is not UTF-8 text", hint="save the manifest as UTF-8"
        ) from None
    parse_manifest(text, filename=str(manifest_path))
    return PackInputs(
        manifest_path.name, manifest, Path(module_path), tuple(_asset_entries(assets))
    )


def pack(
    manifest_path: Path,
    module_path: Path,
    out_path: Path,
    assets: Iterable[Path | tuple[str, Path]] = (),
) -> Path:
    """Pack an unsigned ``.spirit`` package (deterministic: same inputs, same bytes).

    The manifest is validated first, so a broken manifest never becomes a package.
    ``assets`` are files (stored as ``assets/<name>``), directories (stored recursively
    under ``assets/<dirname>/``) or ``(name, path)`` pairs.
    """
    inputs = prepare_pack(manifest_path, module_path, assets)
    return write_package(
        Path(out_path), inputs.manifest_name, inputs.manifest, inputs.module_path, inputs.assets
    )


def extract(path: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[Path]:
    """Safely extract a package's members under ``dest`` (which must not exist yet).

    Member names were already checked by the reader; each target is checked again to
    resolve inside ``dest`` and is created exclusively, so nothing outside is touched.
    """
    dest.mkdir(parents=True, exist_ok=False)
    root = dest.resolve()
    written: list[Path] = []
    with PackageReader(path, limits) as reader:
        for m in reader.members:
            target = (root / m.name).resolve()
            if root not in target.parents:
                raise VerificationError(
                    f"unsafe package member {m.name!r}: escapes {dest}",
                    hint="refusing to extract this package; it was not produced by `vudo pack`",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                crc = 0
                for chunk in reader.stream(m.name):
                    crc = zlib.crc32(chunk, crc)
                    view = chunk
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if crc != m.crc:
                raise _corrupt(path, f"{m.name} fails its CRC check")
            written.append(target)
    return written
