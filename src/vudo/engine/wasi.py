"""WASI preview1 (``wasi_snapshot_preview1``) behind vudo's capability checks.

Every preview1 function is written here in Python over the same bridge as the ``vudo``
imports (:class:`vudo.engine.host.HostBridge`): each call is charged ``host_call_fuel``
(plus ``host_byte_fuel`` per byte it moves), checked against the sandbox's grants,
counted in the receipt and logged in the host-call log. A denied call returns ``EACCES``
and is a denied row; a call the spec refuses for lack of *rights* or for leaving a
preopen returns ``ENOTCAPABLE`` (allowed row: no grant was asked for).

Why Python and not wasmtime's own WASI (``Linker.define_wasi`` with shadowed wrappers):
see ``docs/wasi.md``. In short, wasmtime's WASI functions cannot be called from a Python
wrapper (they need the calling instance's memory), so shadowing can only *replace* a
function, not check-then-delegate; the functions left to wasmtime are neither logged,
charged nor checked per call, output cannot be bounded, a blocked read ignores the
timeout, and there is no storage_read/write/delete split. Measured on this machine
(``benches/wasi.py``), a Python ``fd_write`` costs about 2x wasmtime's own (CPU time).

Filesystem: nothing exists for the guest but its preopens (:class:`Preopen`). A path is
resolved here, component by component, inside its preopen: an absolute path, a ``..``
above the preopen's root, or a symbolic link whose target is absolute or climbs out, is
refused with ``ENOTCAPABLE``; links are followed by this resolver (at most 32), never by
the OS (the final open uses ``O_NOFOLLOW``). ``path_link``/``path_rename`` between two
preopens are refused with ``EXDEV``. Capability: storage_read / storage_write /
storage_delete with scope ``path:<host dir>`` of the preopen (a global grant covers every
preopen).
"""

from __future__ import annotations

import ctypes
import errno as _os_errno
import os
import select
import socket
import stat
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vudo.capabilities import Capability
from vudo.engine.abi import StopGuest
from vudo.engine.events import OutputWritten
from vudo.engine.host import (
    WASI_CALLS,
    _fuel_read,
    _fuel_write,
    define_functions,
    make_trampoline,
)
from vudo.engine.wasi_abi import WASI_MODULE, WASI_SIGNATURES

if TYPE_CHECKING:
    from vudo.engine.config import Preopen
    from vudo.engine.host import HostBridge

# -- the spec's numbers (witx/typenames.witx) -------------------------------------------

SUCCESS = 0
E2BIG = 1
EACCES = 2
EAGAIN = 6
EBADF = 8
EEXIST = 20
EFAULT = 21
EINVAL = 28
EIO = 29
EISDIR = 31
ELOOP = 32
ENAMETOOLONG = 37
ENOENT = 44
ENOSYS = 52
ENOTCONN = 53
ENOTDIR = 54
ENOTEMPTY = 55
ENOTSOCK = 57
ENOTSUP = 58
EOVERFLOW = 61
EPERM = 63
EROFS = 69
ESPIPE = 70
EXDEV = 75
ENOTCAPABLE = 76

#: OS errno -> WASI errno (the names are the same; the numbers are not).
_WASI_NAMES = [
    "2BIG",
    "ACCES",
    "ADDRINUSE",
    "ADDRNOTAVAIL",
    "AFNOSUPPORT",
    "AGAIN",
    "ALREADY",
    "BADF",
    "BADMSG",
    "BUSY",
    "CANCELED",
    "CHILD",
    "CONNABORTED",
    "CONNREFUSED",
    "CONNRESET",
    "DEADLK",
    "DESTADDRREQ",
    "DOM",
    "DQUOT",
    "EXIST",
    "FAULT",
    "FBIG",
    "HOSTUNREACH",
    "IDRM",
    "ILSEQ",
    "INPROGRESS",
    "INTR",
    "INVAL",
    "IO",
    "ISCONN",
    "ISDIR",
    "LOOP",
    "MFILE",
    "MLINK",
    "MSGSIZE",
    "MULTIHOP",
    "NAMETOOLONG",
    "NETDOWN",
    "NETRESET",
    "NETUNREACH",
    "NFILE",
    "NOBUFS",
    "NODEV",
    "NOENT",
    "NOEXEC",
    "NOLCK",
    "NOLINK",
    "NOMEM",
    "NOMSG",
    "NOPROTOOPT",
    "NOSPC",
    "NOSYS",
    "NOTCONN",
    "NOTDIR",
    "NOTEMPTY",
    "NOTRECOVERABLE",
    "NOTSOCK",
    "NOTSUP",
    "NOTTY",
    "NXIO",
    "OVERFLOW",
    "OWNERDEAD",
    "PERM",
    "PIPE",
    "PROTO",
    "PROTONOSUPPORT",
    "PROTOTYPE",
    "RANGE",
    "ROFS",
    "SPIPE",
    "SRCH",
    "STALE",
    "TIMEDOUT",
    "TXTBSY",
    "XDEV",
]
OS_TO_WASI: dict[int, int] = {
    getattr(_os_errno, "E" + name): number
    for number, name in enumerate(_WASI_NAMES, start=1)
    if hasattr(_os_errno, "E" + name)
}

# filetype
FT_UNKNOWN, FT_BLOCK, FT_CHAR, FT_DIR, FT_FILE, FT_DGRAM, FT_STREAM, FT_SYMLINK = range(8)
# oflags, fdflags, lookupflags, fstflags, whence
O_CREAT, O_DIRECTORY, O_EXCL, O_TRUNC = 1, 2, 4, 8
FDFLAG_APPEND, FDFLAG_NONBLOCK = 1, 4
LOOKUP_SYMLINK_FOLLOW = 1
FST_ATIM, FST_ATIM_NOW, FST_MTIM, FST_MTIM_NOW = 1, 2, 4, 8

# rights
R_FD_DATASYNC = 1 << 0
R_FD_READ = 1 << 1
R_FD_SEEK = 1 << 2
R_FD_FDSTAT_SET_FLAGS = 1 << 3
R_FD_SYNC = 1 << 4
R_FD_TELL = 1 << 5
R_FD_WRITE = 1 << 6
R_FD_ADVISE = 1 << 7
R_FD_ALLOCATE = 1 << 8
R_FD_READDIR = 1 << 14
R_FD_FILESTAT_SET_SIZE = 1 << 22
R_POLL_FD_READWRITE = 1 << 27
R_SOCK_SHUTDOWN = 1 << 28
R_SOCK_ACCEPT = 1 << 29
RIGHTS_ALL = (1 << 30) - 1
#: The rights that make an open a write: wasi-libc's O_RDONLY asks for every right but
#: these (it keeps FD_SYNC), so they, not FD_SYNC, decide storage_write.
_WRITE_RIGHTS = R_FD_WRITE | R_FD_ALLOCATE | R_FD_FILESTAT_SET_SIZE | R_FD_DATASYNC
_FILE_RIGHTS = RIGHTS_ALL & ~(R_SOCK_SHUTDOWN | R_SOCK_ACCEPT | R_FD_READDIR)
_STDIO_RIGHTS = R_FD_READ | R_FD_WRITE | R_POLL_FD_READWRITE | R_FD_FDSTAT_SET_FLAGS
_SOCK_RIGHTS = R_FD_READ | R_FD_WRITE | R_POLL_FD_READWRITE | R_SOCK_SHUTDOWN

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS, CLOCK_THREAD = range(4)
EVENT_CLOCK, EVENT_FD_READ, EVENT_FD_WRITE = range(3)
SUBCLOCK_ABSTIME = 1

_STDIN, _STDOUT, _STDERR, _DIR, _FILE, _LISTENER, _SOCKET = range(7)
_STREAMS = {_STDOUT: "stdout", _STDERR: "stderr"}

#: Longest path a guest may pass (PATH_MAX), and symlinks followed in one resolution.
MAX_PATH = 4096
MAX_SYMLINKS = 32
#: Most iovecs, subscriptions and open fds one guest may use (bounds host work per call).
MAX_IOVS = 1024
MAX_SUBSCRIPTIONS = 1024
MAX_FDS = 1024
#: Longest wait inside one host call before the deadline and stop request are checked.
_SLICE = 0.02

_U32 = 0xFFFFFFFF
_iov = struct.Struct("<II")
_u32 = struct.Struct("<I")
_u64 = struct.Struct("<Q")
_FILESTAT = struct.Struct("<QQB7xQQQQQ")
_fdstat = struct.Struct("<BxH4xQQ")
_dirent = struct.Struct("<QQIB3x")
_subscription = struct.Struct("<QB7xIxxxxQQH6x")
_event = struct.Struct("<QHB5xQH6x")


class Errno(Exception):
    """Raised inside a WASI function: ``code`` is what the guest gets back. ``denied``
    marks a refusal by the grant checker (a denied row in the host-call log)."""

    def __init__(self, code: int, denied: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.denied = denied


class _Fd:
    __slots__ = (
        "append",
        "base",
        "entries",
        "host",
        "inheriting",
        "kind",
        "osfd",
        "position",
        "preopen",
        "rel",
        "sock",
        "stream",
    )

    def __init__(
        self,
        kind: int,
        *,
        preopen: Preopen | None = None,
        rel: tuple[str, ...] = (),
        base: int = RIGHTS_ALL,
        inheriting: int = 0,
        osfd: int = -1,
        sock: socket.socket | None = None,
    ) -> None:
        self.kind = kind
        #: the RunIO stream an fd_write goes to (stdout and stderr), else ""
        self.stream = _STREAMS.get(kind, "")
        self.preopen = preopen
        self.rel = rel
        self.host = preopen.host + "".join("/" + p for p in rel) if preopen is not None else ""
        self.base = base
        self.inheriting = inheriting
        self.osfd = osfd
        self.sock = sock
        self.append = False
        self.entries: list[tuple[bytes, int, int]] | None = None
        self.position = 0


class WasiState:
    """One sandbox's WASI world: argv, environment, stdio, preopens, fd table.

    stdout and stderr are the ``"stdout"``/``"stderr"`` streams of the sandbox's
    :class:`~vudo.engine.runio.RunIO` (bounded by the output limit: passing it stops the
    run with ResourceLimitExceeded, since a program that ignores a failed write would
    spin); stdin reads the call's input bytes, or, when ``stdin`` is a host file
    descriptor (``vudo run --stdin``), streams from it (waits bounded by the deadline).
    """

    __slots__ = (
        "_view",
        "argv",
        "bridge",
        "budget",
        "byte_fuel",
        "cap",
        "denied",
        "env",
        "exit_code",
        "fds",
        "interactive",
        "stdin",
        "stop_requested",
        "summary",
    )

    def __init__(
        self,
        bridge: HostBridge,
        *,
        argv: tuple[str, ...] = (),
        env: tuple[tuple[str, str], ...] = (),
        preopens: tuple[Preopen, ...] = (),
        sockets: tuple[socket.socket, ...] = (),
        stdin: int | None = None,
        interactive: bool = False,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.bridge = bridge
        self.argv = [a.encode() for a in argv]
        self.env = [f"{k}={v}".encode() for k, v in env]
        self.stdin = stdin
        self.interactive = interactive
        self.stop_requested = stop_requested
        self.exit_code: int | None = None
        # per-call bookkeeping the wrapper reads (capability, fuel beyond the call price)
        self.cap: Capability | None = None
        self.denied = False  # a part of the call was refused (poll_oneoff's clock)
        #: fuel left in the store during a call, written back at its end (what the call
        #: charged beyond its price is what it took from this)
        self.budget = 0
        self.byte_fuel = bridge.byte_fuel
        self._view = memoryview(b"")
        self.summary = ""
        self.fds: dict[int, _Fd] = {
            0: _Fd(_STDIN, base=_STDIO_RIGHTS & ~R_FD_WRITE),
            1: _Fd(_STDOUT, base=_STDIO_RIGHTS & ~R_FD_READ),
            2: _Fd(_STDERR, base=_STDIO_RIGHTS & ~R_FD_READ),
        }
        for opened in preopens:
            self.fds[len(self.fds)] = _Fd(_DIR, preopen=opened, inheriting=RIGHTS_ALL)
        for sock in sockets:
            self.fds[len(self.fds)] = _Fd(_LISTENER, sock=sock, base=_SOCK_RIGHTS | R_SOCK_ACCEPT)

    def close(self) -> None:
        """Close every host file the guest left open."""
        for entry in self.fds.values():
            if entry.osfd >= 0:
                os.close(entry.osfd)
                entry.osfd = -1
            if entry.kind == _SOCKET and entry.sock is not None:
                entry.sock.close()

    # -- memory -------------------------------------------------------------------------

    def view(self, end: int = 0) -> memoryview:
        """The guest's linear memory as a memoryview that covers [0, end), or EFAULT.

        The engine's memory does not move (``memory_may_move`` off, see
        :mod:`vudo.engine.compiler`) and never shrinks, so one view stays valid for the
        life of the instance: it is rebuilt only when a range passes its end (the memory
        may have grown since). Most calls touch no FFI here, and reading through the view
        costs a fraction of ``ctypes.string_at``/``memmove``."""
        view = self._view
        if end > len(view):
            view = self._remap()
            if end > len(view):
                raise Errno(EFAULT)
        return view

    def _remap(self) -> memoryview:
        """A fresh view of the whole memory as it is now (it may have grown)."""
        base, size = self.bridge.memory_bounds()
        if not base:
            raise Errno(EFAULT)
        if size != len(self._view):
            self._view = memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")
        return self._view

    def writable(self, ptr: int, length: int) -> bool:
        end = (ptr & _U32) + (length & _U32)
        return end <= len(self._view) or end <= len(self._remap())

    def get(self, ptr: int, length: int) -> bytes:
        ptr &= _U32
        end = ptr + (length & _U32)
        return bytes(self.view(end)[ptr:end])

    def put(self, ptr: int, data: bytes) -> None:
        ptr &= _U32
        end = ptr + len(data)
        self.view(end)[ptr:end] = data

    def put_u32(self, ptr: int, value: int) -> None:
        self.put(ptr, _u32.pack(value & _U32))

    def put_u64(self, ptr: int, value: int) -> None:
        self.put(ptr, _u64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def string(self, ptr: int, length: int) -> str:
        length &= _U32
        if length > MAX_PATH:
            raise Errno(ENAMETOOLONG)
        raw = self.get(ptr, length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Errno(EINVAL) from None

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        count &= _U32
        if count > MAX_IOVS:
            raise Errno(EINVAL)
        raw = self.get(ptr, 8 * count)
        return list(_iov.iter_unpack(raw))

    def charge_bytes(self, count: int) -> None:
        """Charge ``count`` payload bytes against the fuel read when the call began (the
        store's counter is written once, when the call ends: two FFI calls per call)."""
        extra = count * self.byte_fuel
        if extra:
            if extra > self.budget:
                self.budget = 0
                raise StopGuest("fuel", "fuel ran out in a host call")
            self.budget -= extra

    # -- checks -------------------------------------------------------------------------

    def need(self, cap: Capability, target: str | None = None) -> None:
        self.cap = cap
        if not self.bridge.check(cap, target):
            raise Errno(EACCES, denied=True)

    def fd(self, number: int) -> _Fd:
        entry = self.fds.get(number)
        if entry is None:
            raise Errno(EBADF)
        return entry

    def rights(self, entry: _Fd, wanted: int) -> None:
        if entry.base & wanted != wanted:
            raise Errno(ENOTCAPABLE)

    def fs_need(self, cap: Capability, entry: _Fd) -> None:
        """The capability for a path call under ``entry``'s preopen (scoped to it)."""
        opened = entry.preopen
        if opened is None:
            raise Errno(EBADF)
        if opened.read_only and cap is not Capability.STORAGE_READ:
            self.cap = cap
            raise Errno(EROFS)
        self.need(cap, opened.host)

    def dir_fd(self, number: int) -> _Fd:
        entry = self.fd(number)
        if entry.kind != _DIR:
            raise Errno(ENOTDIR)
        return entry

    def resolve(self, entry: _Fd, path: str, follow: bool) -> tuple[str, tuple[str, ...]]:
        """(host path, components under the preopen) of ``path`` relative to ``entry``.

        Raises ENOTCAPABLE for anything that would leave the preopen. The walk starts at
        the preopen's root and re-checks the directory fd's own components too: the guest
        may have renamed that directory since and put a symbolic link in its place.
        """
        if not path:
            raise Errno(ENOENT)
        if "\0" in path:
            raise Errno(EINVAL)
        if path.startswith("/"):
            raise Errno(ENOTCAPABLE)
        assert entry.preopen is not None
        root = entry.preopen.host
        stack: list[str] = []
        trailing = path.endswith("/")
        pending = [p for p in reversed([*entry.rel, *path.split("/")]) if p not in ("", ".")]
        links = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if not stack:
                    raise Errno(ENOTCAPABLE)
                stack.pop()
                continue
            if part == ".":
                continue
            last = not pending
            candidate = root + "".join("/" + p for p in stack) + "/" + part
            if not last or follow or trailing:
                try:
                    info = os.lstat(candidate)
                except OSError:
                    info = None
                if info is not None and stat.S_ISLNK(info.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise Errno(ELOOP)
                    target = os.readlink(candidate)
                    if target.startswith("/"):
                        raise Errno(ENOTCAPABLE)
                    pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                    continue
            stack.append(part)
        host = root + "".join("/" + p for p in stack)
        return (host + "/" if trailing and stack else host), tuple(stack)

    def new_fd(self, entry: _Fd) -> int:
        if len(self.fds) >= MAX_FDS:
            if entry.osfd >= 0:
                os.close(entry.osfd)
            raise Errno(_os_nfile())
        number = 3
        while number in self.fds:
            number += 1
        self.fds[number] = entry
        return number

    # -- waiting (stdin streams, sockets, sleeps) -----------------------------------------

    def wait_slice(self, until: float | None) -> float:
        """How long the next wait may block: up to ``until`` (monotonic, None: forever),
        never past the run's deadline (then the guest stops with a timeout)."""
        if self.bridge.interrupt is not None or (
            self.stop_requested is not None and self.stop_requested()
        ):
            raise StopGuest("terminated", "the sandbox was terminated while the guest waited")
        now = time.monotonic()
        deadline = self.bridge.deadline()
        if deadline is not None and now >= deadline:
            raise StopGuest("timeout", "the WASI program was still waiting at its deadline")
        limit = _SLICE
        if until is not None:
            limit = min(limit, max(0.0, until - now))
        return limit


def _os_nfile() -> int:
    return OS_TO_WASI.get(_os_errno.EMFILE, EIO)


def _filetype(mode: int) -> int:
    if stat.S_ISREG(mode):
        return FT_FILE
    if stat.S_ISDIR(mode):
        return FT_DIR
    if stat.S_ISLNK(mode):
        return FT_SYMLINK
    if stat.S_ISCHR(mode):
        return FT_CHAR
    if stat.S_ISBLK(mode):
        return FT_BLOCK
    if stat.S_ISSOCK(mode):
        return FT_STREAM
    return FT_UNKNOWN


def _filestat(info: os.stat_result) -> bytes:
    return _FILESTAT.pack(
        info.st_dev,
        info.st_ino,
        _filetype(info.st_mode),
        info.st_nlink,
        info.st_size,
        info.st_atime_ns,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


# -- the functions ----------------------------------------------------------------------
#
# Each takes (state, raw args) and returns the errno; results go to guest memory. The
# wrapper (``_wrap``) charges the call, records it and maps exceptions to errnos.

W = WasiState
S = Capability


def args_sizes_get(w: W, a: Any) -> int:
    w.put_u32(a[0], len(w.argv))
    w.put_u32(a[1], sum(len(x) + 1 for x in w.argv))
    return SUCCESS


def _vector(w: W, items: list[bytes], ptrs: int, buf: int) -> int:
    ptrs &= _U32
    buf &= _U32
    offset = 0
    table = bytearray()
    blob = bytearray()
    for item in items:
        table += _u32.pack((buf + offset) & _U32)
        blob += item + b"\0"
        offset += len(item) + 1
    w.put(ptrs, bytes(table))
    w.put(buf, bytes(blob))
    w.charge_bytes(len(blob))
    return SUCCESS


def args_get(w: W, a: Any) -> int:
    return _vector(w, w.argv, a[0], a[1])


def environ_sizes_get(w: W, a: Any) -> int:
    # With no variables given there is nothing to read: report none without asking for
    # the grant (wasi-libc reads the environment at start-up of any program that links
    # getenv, and exits 71 if that is refused).
    if w.env:
        w.need(S.SENSOR_ENVIRONMENT)
    w.put_u32(a[0], len(w.env))
    w.put_u32(a[1], sum(len(x) + 1 for x in w.env))
    return SUCCESS


def environ_get(w: W, a: Any) -> int:
    if w.env:
        w.need(S.SENSOR_ENVIRONMENT)
    w.bridge.bytes_in += sum(len(x) + 1 for x in w.env)
    return _vector(w, w.env, a[0], a[1])


def _clock_id(clock: int) -> None:
    if not 0 <= clock <= 3:
        raise Errno(EINVAL)


def clock_res_get(w: W, a: Any) -> int:
    clock = a[0]
    _clock_id(clock)
    w.need(S.SENSOR_TIME)
    w.put_u64(a[1], 1_000 if clock == CLOCK_REALTIME else 1)
    return SUCCESS


def clock_time_get(w: W, a: Any) -> int:
    clock = a[0]
    _clock_id(clock)
    w.need(S.SENSOR_TIME)
    if clock == CLOCK_REALTIME:
        now = int(w.bridge.clock())
    elif clock == CLOCK_MONOTONIC:
        now = time.monotonic_ns()
    elif clock == CLOCK_PROCESS:
        now = time.process_time_ns()
    else:
        now = time.thread_time_ns()
    w.put_u64(a[2], now)
    return SUCCESS


def random_get(w: W, a: Any) -> int:
    w.need(S.SENSOR_RANDOM)
    ptr, length = a[0] & _U32, a[1] & _U32
    bridge = w.bridge
    bridge.payload_limit(ptr, length, bridge.limits.max_random_bytes, "random request")
    if not w.writable(ptr, length):
        raise Errno(EFAULT)
    w.charge_bytes(length)
    w.put(ptr, bridge.random(length))
    bridge.bytes_in += length
    return SUCCESS


#: proc_exit statuses a program may end with; a larger one traps, as in wasmtime (126 and
#: up mean "killed by a signal" and such to a POSIX shell).
MAX_EXIT_STATUS = 125


def proc_exit(w: W, a: Any) -> int:
    code = a[0] & _U32
    w.summary = f"code={code}"
    w.bridge.record("proc_exit", None, True, w.summary, code, w.bridge.call_fuel)
    if code > MAX_EXIT_STATUS:
        raise StopGuest("trap", f"proc_exit with invalid exit status {code} outside [0..126)")
    w.exit_code = code
    raise StopGuest("exit", str(code))


def proc_raise(w: W, a: Any) -> int:
    return ENOSYS


def sched_yield(w: W, a: Any) -> int:
    time.sleep(0)
    return SUCCESS


# -- fds -------------------------------------------------------------------------------


def fd_write(w: W, a: Any) -> int:
    number = a[0]
    entry = w.fds.get(number)
    if entry is None:
        return EBADF
    stream = entry.stream
    if stream:
        # the hot path (printf, write(1, ...)): one look at memory, no per-field helpers,
        # and the bytes go from guest memory to the stream's buffer in one copy
        iovs, count, where = a[1] & _U32, a[2] & _U32, a[3] & _U32
        if count > MAX_IOVS:
            return EINVAL
        view = w.view(max(iovs + 8 * count, where + 4))
        data: bytes | memoryview
        if count == 1:
            ptr, total = _iov.unpack_from(view, iovs)
            end = ptr + total
            if end > len(view):
                view = w.view(end)
            data = view[ptr:end]
        else:
            parts = []
            total = 0
            for ptr, length in _iov.iter_unpack(view[iovs : iovs + 8 * count]):
                end = ptr + length
                if end > len(view):
                    view = w.view(end)
                total += length
                parts.append(view[ptr:end])
            data = b"".join(parts)
        w.charge_bytes(total)
        bridge = w.bridge
        if not bridge.io.write(stream, data):
            raise StopGuest(
                "limit",
                f"the program's output passed the {bridge.io.max_output}-byte output limit",
            )
        bridge.bytes_out += total
        if bridge.events.active:
            at = time.monotonic() - bridge.origin
            bridge.events.emit(OutputWritten(bridge.sandbox_id, stream, bytes(data), at))
        _u32.pack_into(view, where, total)
        return SUCCESS
    kind = entry.kind
    if kind == _STDIN:
        return EBADF
    iovs = w.iovecs(a[1], a[2])
    w.rights(entry, R_FD_WRITE)
    data = b"".join(w.get(ptr, length) for ptr, length in iovs)
    w.charge_bytes(len(data))
    if kind == _SOCKET:
        written = _sock_send(w, entry, data)
    elif kind == _FILE:
        w.fs_need(S.STORAGE_WRITE, entry)
        written = os.write(entry.osfd, data)
    else:
        return EBADF
    w.bridge.bytes_out += written
    w.put_u32(a[3], written)
    return SUCCESS


def _scatter(w: W, iovs: list[tuple[int, int]], data: bytes) -> None:
    offset = 0
    for ptr, length in iovs:
        if offset >= len(data):
            break
        chunk = data[offset : offset + length]
        w.put(ptr, chunk)
        offset += len(chunk)


def _read_stdin(w: W, want: int) -> bytes:
    source = w.stdin
    if source is None:
        return w.bridge.io.take(want)
    while True:
        ready, _, _ = select.select([source], [], [], w.wait_slice(None))
        if ready:
            data = os.read(source, want)
            counts = w.bridge.io.counts
            counts["input"] = counts.get("input", 0) + len(data)
            return data


def fd_read(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    iovs = w.iovecs(a[1], a[2])
    want = sum(length for _, length in iovs)
    for ptr, length in iovs:
        if not w.writable(ptr, length):
            return EFAULT
    kind = entry.kind
    if kind == _STDIN:
        data = _read_stdin(w, min(want, 1 << 20))
    elif kind == _FILE:
        w.rights(entry, R_FD_READ)
        w.fs_need(S.STORAGE_READ, entry)
        data = os.read(entry.osfd, min(want, 16 << 20))
    elif kind == _SOCKET:
        data = _sock_recv(w, entry, min(want, w.bridge.limits.max_network_payload), 0)
    elif kind == _DIR:
        return EISDIR
    else:
        return EBADF
    w.charge_bytes(len(data))
    _scatter(w, iovs, data)
    w.bridge.bytes_in += len(data)
    w.put_u32(a[3], len(data))
    return SUCCESS


def fd_pread(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    iovs = w.iovecs(a[1], a[2])
    offset = a[3]
    if entry.kind != _FILE:
        return ESPIPE if entry.kind != _DIR else EISDIR
    w.rights(entry, R_FD_READ | R_FD_SEEK)
    w.fs_need(S.STORAGE_READ, entry)
    if offset < 0:
        return EINVAL
    for ptr, length in iovs:
        if not w.writable(ptr, length):
            return EFAULT
    want = sum(length for _, length in iovs)
    data = os.pread(entry.osfd, min(want, 16 << 20), offset)
    w.charge_bytes(len(data))
    _scatter(w, iovs, data)
    w.bridge.bytes_in += len(data)
    w.put_u32(a[4], len(data))
    return SUCCESS


def fd_pwrite(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    iovs = w.iovecs(a[1], a[2])
    offset = a[3]
    if entry.kind != _FILE:
        return ESPIPE if entry.kind != _DIR else EISDIR
    w.rights(entry, R_FD_WRITE | R_FD_SEEK)
    w.fs_need(S.STORAGE_WRITE, entry)
    if offset < 0:
        return EINVAL
    data = b"".join(w.get(ptr, length) for ptr, length in iovs)
    w.charge_bytes(len(data))
    written = os.pwrite(entry.osfd, data, offset)
    w.bridge.bytes_out += written
    w.put_u32(a[4], written)
    return SUCCESS


def fd_seek(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    offset, whence = a[1], a[2]
    if entry.kind != _FILE:
        return ESPIPE if entry.kind != _DIR else EBADF
    if whence not in (0, 1, 2):
        return EINVAL
    w.rights(entry, R_FD_TELL if (whence == 1 and offset == 0) else R_FD_SEEK)
    position = os.lseek(entry.osfd, offset, whence)
    w.put_u64(a[3], position)
    return SUCCESS


def fd_tell(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    if entry.kind != _FILE:
        return ESPIPE if entry.kind != _DIR else EBADF
    w.rights(entry, R_FD_TELL)
    w.put_u64(a[1], os.lseek(entry.osfd, 0, os.SEEK_CUR))
    return SUCCESS


def fd_close(w: W, a: Any) -> int:
    number = a[0]
    entry = w.fd(number)
    if entry.osfd >= 0:
        os.close(entry.osfd)
        entry.osfd = -1
    if entry.kind == _SOCKET and entry.sock is not None:
        entry.sock.close()
    del w.fds[number]
    return SUCCESS


def fd_renumber(w: W, a: Any) -> int:
    source, target = a[0], a[1]
    entry = w.fd(source)
    old = w.fd(target)
    if source == target:
        return SUCCESS
    if old.osfd >= 0:
        os.close(old.osfd)
    w.fds[target] = entry
    del w.fds[source]
    return SUCCESS


def fd_fdstat_get(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    kind = entry.kind
    flags = 0
    if kind in (_STDIN, _STDOUT, _STDERR):
        filetype = FT_CHAR if w.interactive else FT_UNKNOWN
    elif kind == _DIR:
        filetype = FT_DIR
    elif kind == _FILE:
        filetype = FT_FILE
        flags = FDFLAG_APPEND if entry.append else 0
    else:
        filetype = FT_STREAM
    w.put(a[1], _fdstat.pack(filetype, flags, entry.base, entry.inheriting))
    return SUCCESS


def fd_fdstat_set_flags(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    flags = a[1]
    if entry.kind != _FILE:
        return SUCCESS if flags & ~FDFLAG_NONBLOCK == 0 else ENOTSUP
    if flags & ~(FDFLAG_APPEND | FDFLAG_NONBLOCK):
        return ENOTSUP
    append = bool(flags & FDFLAG_APPEND)
    if append != entry.append:
        w.fs_need(S.STORAGE_WRITE, entry)
        current = os.get_blocking(entry.osfd)  # keeps the fd's other state
        import fcntl  # lazy: only for this rare call

        mode = fcntl.fcntl(entry.osfd, fcntl.F_GETFL)
        mode = mode | os.O_APPEND if append else mode & ~os.O_APPEND
        fcntl.fcntl(entry.osfd, fcntl.F_SETFL, mode)
        os.set_blocking(entry.osfd, current)
        entry.append = append
    return SUCCESS


def fd_fdstat_set_rights(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    base, inheriting = a[1] & RIGHTS_ALL, a[2] & RIGHTS_ALL
    if base & ~entry.base or inheriting & ~entry.inheriting:
        return ENOTCAPABLE
    entry.base, entry.inheriting = base, inheriting
    return SUCCESS


def fd_filestat_get(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    kind = entry.kind
    if kind == _FILE:
        w.fs_need(S.STORAGE_READ, entry)
        info = os.fstat(entry.osfd)
    elif kind == _DIR:
        w.fs_need(S.STORAGE_READ, entry)
        info = os.stat(entry.osfd if entry.osfd >= 0 else entry.host)
    else:
        filetype = FT_STREAM if kind in (_SOCKET, _LISTENER) else FT_CHAR
        w.put(a[1], _FILESTAT.pack(0, 0, filetype, 1, 0, 0, 0, 0))
        return SUCCESS
    w.put(a[1], _filestat(info))
    return SUCCESS


def _file(w: W, number: int) -> _Fd:
    entry = w.fd(number)
    if entry.kind != _FILE:
        raise Errno(EISDIR if entry.kind == _DIR else EBADF)
    return entry


def fd_filestat_set_size(w: W, a: Any) -> int:
    entry = _file(w, a[0])
    size = a[1]
    w.rights(entry, R_FD_FILESTAT_SET_SIZE)
    w.fs_need(S.STORAGE_WRITE, entry)
    if size < 0:
        return EINVAL
    os.ftruncate(entry.osfd, size)
    return SUCCESS


def _times(atim: int, mtim: int, flags: int, current: os.stat_result) -> tuple[int, int]:
    if flags & ~15 or (flags & FST_ATIM and flags & FST_ATIM_NOW):
        raise Errno(EINVAL)
    if flags & FST_MTIM and flags & FST_MTIM_NOW:
        raise Errno(EINVAL)
    now = time.time_ns()
    access = atim if flags & FST_ATIM else now if flags & FST_ATIM_NOW else current.st_atime_ns
    modify = mtim if flags & FST_MTIM else now if flags & FST_MTIM_NOW else current.st_mtime_ns
    return access, modify


def fd_filestat_set_times(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    if entry.kind not in (_FILE, _DIR):
        return EBADF
    w.fs_need(S.STORAGE_WRITE, entry)
    target: int | str = entry.osfd if entry.osfd >= 0 else entry.host
    times = _times(a[1], a[2], a[3], os.stat(target))
    os.utime(target, ns=times)
    return SUCCESS


def fd_advise(w: W, a: Any) -> int:
    entry = _file(w, a[0])
    if not 0 <= a[3] <= 5:
        return EINVAL
    if a[1] < 0 or a[2] < 0:
        return EINVAL
    del entry
    return SUCCESS


def fd_allocate(w: W, a: Any) -> int:
    entry = _file(w, a[0])
    offset, length = a[1], a[2]
    w.rights(entry, R_FD_ALLOCATE)
    w.fs_need(S.STORAGE_WRITE, entry)
    if offset < 0 or length <= 0:
        return EINVAL
    if os.fstat(entry.osfd).st_size < offset + length:
        os.ftruncate(entry.osfd, offset + length)
    return SUCCESS


def fd_sync(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    if entry.kind == _FILE:  # flushes what was written (and checked) already
        os.fsync(entry.osfd)
    elif entry.kind != _DIR:
        return EINVAL
    return SUCCESS


def fd_datasync(w: W, a: Any) -> int:
    return fd_sync(w, a)


def fd_prestat_get(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    if entry.kind != _DIR or entry.rel or entry.preopen is None:
        return EBADF
    name = entry.preopen.guest.encode()
    w.put(a[1], struct.pack("<B3xI", 0, len(name)))
    return SUCCESS


def fd_prestat_dir_name(w: W, a: Any) -> int:
    entry = w.fd(a[0])
    if entry.kind != _DIR or entry.rel or entry.preopen is None:
        return EBADF
    name = entry.preopen.guest.encode()
    length = a[2] & _U32
    if length < len(name):
        return ENAMETOOLONG
    w.put(a[1], name)
    return SUCCESS


def fd_readdir(w: W, a: Any) -> int:
    entry = w.dir_fd(a[0])
    buf, size, cookie = a[1] & _U32, a[2] & _U32, a[3]
    w.rights(entry, R_FD_READDIR)
    w.fs_need(S.STORAGE_READ, entry)
    if cookie < 0:
        return EINVAL
    if cookie == 0 or entry.entries is None:
        where: int | str = entry.osfd if entry.osfd >= 0 else entry.host
        listing = [(b".", os.stat(where).st_ino, FT_DIR), (b"..", 0, FT_DIR)]
        with os.scandir(where) as it:
            for item in it:
                try:
                    kind = _filetype(item.stat(follow_symlinks=False).st_mode)
                    inode = item.inode()
                except OSError:
                    continue
                listing.append((os.fsencode(item.name), inode, kind))
        listing[2:] = sorted(listing[2:])
        entry.entries = listing
    out = bytearray()
    for index in range(cookie, len(entry.entries)):
        name, inode, kind = entry.entries[index]
        out += _dirent.pack(index + 1, inode, len(name), kind) + name
        if len(out) >= size:
            break
    data = bytes(out[:size])
    w.charge_bytes(len(data))
    w.put(buf, data)
    w.bridge.bytes_in += len(data)
    w.put_u32(a[4], len(data))
    return SUCCESS


# -- paths -----------------------------------------------------------------------------


def _path(
    w: W, dirfd: int, ptr: int, length: int, follow: bool
) -> tuple[_Fd, str, tuple[str, ...]]:
    entry = w.dir_fd(dirfd)
    text = w.string(ptr, length)
    w.summary = repr(text[:64])
    host, rel = w.resolve(entry, text, follow)
    return entry, host, rel


def path_open(w: W, a: Any) -> int:
    dirfd, lookup = a[0], a[1]
    oflags, base, inheriting, fdflags = a[4], a[5], a[6], a[7]
    follow = bool(lookup & LOOKUP_SYMLINK_FOLLOW)
    entry, host, rel = _path(w, dirfd, a[2], a[3], follow)
    if oflags & ~15 or fdflags & ~31:
        return EINVAL
    base &= RIGHTS_ALL
    reads = bool(base & (R_FD_READ | R_FD_READDIR))
    writes = (
        bool(base & _WRITE_RIGHTS)
        or bool(oflags & (O_CREAT | O_TRUNC))
        or bool(fdflags & FDFLAG_APPEND)
    )
    w.rights(entry, 1 << 13)  # PATH_OPEN
    if reads or not writes:
        w.fs_need(S.STORAGE_READ, entry)
    if writes:
        w.fs_need(S.STORAGE_WRITE, entry)
    mode = os.O_RDWR if reads and base & R_FD_WRITE else os.O_WRONLY if base & R_FD_WRITE else 0
    flags = mode | os.O_CLOEXEC | os.O_NOFOLLOW
    if oflags & O_CREAT:
        flags |= os.O_CREAT
    if oflags & O_EXCL:
        flags |= os.O_EXCL
    if oflags & O_TRUNC:
        flags |= os.O_TRUNC
    if oflags & O_DIRECTORY:
        flags |= os.O_DIRECTORY
    if fdflags & FDFLAG_APPEND:
        flags |= os.O_APPEND
    try:
        osfd = os.open(host, flags, 0o666)
    except OSError as exc:
        if exc.errno == _os_errno.ELOOP and not follow:
            return ELOOP
        raise
    assert entry.preopen is not None
    if stat.S_ISDIR(os.fstat(osfd).st_mode):
        # keep the directory itself open: fd_readdir/filestat act on it, not on a name
        # the guest could later point elsewhere
        opened = _Fd(
            _DIR,
            preopen=entry.preopen,
            rel=rel,
            base=base & entry.inheriting,
            inheriting=inheriting & entry.inheriting,
            osfd=osfd,
        )
    else:
        if oflags & O_DIRECTORY:
            os.close(osfd)
            return ENOTDIR
        opened = _Fd(
            _FILE,
            preopen=entry.preopen,
            rel=rel,
            base=base & entry.inheriting & _FILE_RIGHTS,
            inheriting=0,
            osfd=osfd,
        )
        opened.append = bool(fdflags & FDFLAG_APPEND)
    number = w.new_fd(opened)
    w.put_u32(a[8], number)
    return SUCCESS


def path_filestat_get(w: W, a: Any) -> int:
    follow = bool(a[1] & LOOKUP_SYMLINK_FOLLOW)
    entry, host, _ = _path(w, a[0], a[2], a[3], follow)
    w.fs_need(S.STORAGE_READ, entry)
    w.put(a[4], _filestat(os.lstat(host)))
    return SUCCESS


def path_filestat_set_times(w: W, a: Any) -> int:
    follow = bool(a[1] & LOOKUP_SYMLINK_FOLLOW)
    entry, host, _ = _path(w, a[0], a[2], a[3], follow)
    w.fs_need(S.STORAGE_WRITE, entry)
    times = _times(a[4], a[5], a[6], os.lstat(host))
    os.utime(host, ns=times, follow_symlinks=False)
    return SUCCESS


def path_create_directory(w: W, a: Any) -> int:
    entry, host, _ = _path(w, a[0], a[1], a[2], False)
    w.fs_need(S.STORAGE_WRITE, entry)
    os.mkdir(host)
    return SUCCESS


def path_remove_directory(w: W, a: Any) -> int:
    entry, host, rel = _path(w, a[0], a[1], a[2], False)
    w.fs_need(S.STORAGE_DELETE, entry)
    if not rel:
        return EBUSY_OR_INVAL
    os.rmdir(host.rstrip("/"))
    return SUCCESS


EBUSY_OR_INVAL = 10  # EBUSY: the preopen itself cannot be removed


def path_unlink_file(w: W, a: Any) -> int:
    entry, host, _ = _path(w, a[0], a[1], a[2], False)
    w.fs_need(S.STORAGE_DELETE, entry)
    if host.endswith("/"):
        return ENOTDIR if not os.path.isdir(host) else EISDIR
    if stat.S_ISDIR(os.lstat(host).st_mode):
        return EISDIR
    os.unlink(host)
    return SUCCESS


def path_readlink(w: W, a: Any) -> int:
    entry, host, _ = _path(w, a[0], a[1], a[2], False)
    w.fs_need(S.STORAGE_READ, entry)
    target = os.fsencode(os.readlink(host))
    size = a[4] & _U32
    data = target[:size]
    w.put(a[3], data)
    w.put_u32(a[5], len(data))
    return SUCCESS


def path_symlink(w: W, a: Any) -> int:
    target = w.string(a[0], a[1])
    entry, host, _ = _path(w, a[2], a[3], a[4], False)
    w.fs_need(S.STORAGE_WRITE, entry)
    if target.startswith("/") or "\0" in target:
        return ENOTCAPABLE
    os.symlink(target, host)
    return SUCCESS


def path_link(w: W, a: Any) -> int:
    follow = bool(a[1] & LOOKUP_SYMLINK_FOLLOW)
    source, old, _ = _path(w, a[0], a[2], a[3], follow)
    target, new, _ = _path(w, a[4], a[5], a[6], False)
    w.fs_need(S.STORAGE_READ, source)
    w.fs_need(S.STORAGE_WRITE, target)
    if source.preopen != target.preopen:
        return EXDEV
    os.link(old, new, follow_symlinks=False)
    return SUCCESS


def path_rename(w: W, a: Any) -> int:
    source, old, old_rel = _path(w, a[0], a[1], a[2], False)
    target, new, new_rel = _path(w, a[3], a[4], a[5], False)
    w.fs_need(S.STORAGE_DELETE, source)
    w.fs_need(S.STORAGE_WRITE, target)
    if source.preopen != target.preopen:
        return EXDEV
    if not old_rel or not new_rel:
        return EBUSY_OR_INVAL
    os.rename(old.rstrip("/"), new.rstrip("/"))
    return SUCCESS


# -- poll ------------------------------------------------------------------------------


def _fd_ready(w: W, entry: _Fd, reading: bool) -> int | None:
    """Bytes available (reading) or 1 (writing) if ready now, None if it would block."""
    kind = entry.kind
    if kind == _STDIN:
        source = w.stdin
        if source is None:
            io = w.bridge.io
            return len(io.input) - io.cursor
        ready, _, _ = select.select([source], [], [], 0)
        return 1 if ready else None
    if kind in (_SOCKET, _LISTENER) and entry.sock is not None:
        watched = [entry.sock]
        r, wr, _ = select.select(watched if reading else [], [] if reading else watched, [], 0)
        return 1 if (r or wr) else None
    if kind == _FILE and reading:
        info = os.fstat(entry.osfd)
        return max(0, info.st_size - os.lseek(entry.osfd, 0, os.SEEK_CUR))
    return 0 if reading else 1


def poll_oneoff(w: W, a: Any) -> int:
    inp, out, count = a[0] & _U32, a[1] & _U32, a[2] & _U32
    if count == 0:
        return EINVAL
    if count > MAX_SUBSCRIPTIONS:
        return EINVAL
    raw = w.get(inp, 48 * count)
    if not w.writable(out, 32 * count):
        return EFAULT
    subs = list(_subscription.iter_unpack(raw))
    now = time.monotonic()
    events: list[bytes] = []
    wake: float | None = None
    clocks: list[tuple[int, float]] = []
    fd_subs: list[tuple[int, int, _Fd | None]] = []
    for userdata, tag, clock_or_fd, timeout, _precision, flags in subs:
        if tag == EVENT_CLOCK:
            if not 0 <= clock_or_fd <= 3:
                events.append(_event.pack(userdata, EINVAL, tag, 0, 0))
                continue
            if flags & SUBCLOCK_ABSTIME:
                if not w.bridge.check(S.SENSOR_TIME):
                    w.cap = S.SENSOR_TIME
                    w.denied = True
                    events.append(_event.pack(userdata, EACCES, tag, 0, 0))
                    continue
                base = time.time_ns() if clock_or_fd == CLOCK_REALTIME else time.monotonic_ns()
                at = now + max(0, timeout - base) / 1e9
            else:
                at = now + timeout / 1e9
            clocks.append((userdata, at))
            wake = at if wake is None else min(wake, at)
        elif tag in (EVENT_FD_READ, EVENT_FD_WRITE):
            fd_subs.append((userdata, tag, w.fds.get(clock_or_fd)))
        else:
            return EINVAL
    while True:
        for userdata, tag, entry in fd_subs:
            if entry is None:
                events.append(_event.pack(userdata, EBADF, tag, 0, 0))
                continue
            ready = _fd_ready(w, entry, tag == EVENT_FD_READ)
            if ready is not None:
                events.append(_event.pack(userdata, 0, tag, ready, 0))
        moment = time.monotonic()
        for userdata, at in clocks:
            if moment >= at:
                events.append(_event.pack(userdata, 0, EVENT_CLOCK, 0, 0))
        if events:
            break
        pause = w.wait_slice(wake)
        time.sleep(pause)
    events = events[:count]
    w.put(out, b"".join(events))
    w.put_u32(a[3], len(events))
    return SUCCESS


# -- sockets (only the listeners the host gave the guest, and what they accept) ----------


def _sock(w: W, number: int) -> _Fd:
    entry = w.fd(number)
    if entry.kind not in (_SOCKET, _LISTENER):
        raise Errno(ENOTSOCK)
    return entry


def _listener_target(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sock_accept(w: W, a: Any) -> int:
    entry = _sock(w, a[0])
    flags = a[1]
    if entry.kind != _LISTENER or entry.sock is None:
        return EINVAL
    if flags & ~FDFLAG_NONBLOCK:
        return EINVAL
    w.need(S.NETWORK_LISTEN, _listener_target(entry.sock))
    listener = entry.sock
    while True:
        ready, _, _ = select.select([listener], [], [], 0 if flags else w.wait_slice(None))
        if ready:
            break
        if flags:
            return EAGAIN
    conn, _ = listener.accept()
    conn.setblocking(False)
    number = w.new_fd(_Fd(_SOCKET, sock=conn, base=_SOCK_RIGHTS))
    w.put_u32(a[2], number)
    return SUCCESS


def _sock_send(w: W, entry: _Fd, data: bytes) -> int:
    sock = entry.sock
    assert sock is not None
    while True:
        _, ready, _ = select.select([], [sock], [], w.wait_slice(None))
        if ready:
            return sock.send(data)


def _sock_recv(w: W, entry: _Fd, size: int, flags: int) -> bytes:
    sock = entry.sock
    if sock is None or entry.kind != _SOCKET:
        raise Errno(ENOTCONN)
    while True:
        ready, _, _ = select.select([sock], [], [], w.wait_slice(None))
        if ready:
            return sock.recv(size, socket.MSG_PEEK if flags & 1 else 0)


def sock_recv(w: W, a: Any) -> int:
    entry = _sock(w, a[0])
    iovs = w.iovecs(a[1], a[2])
    flags = a[3]
    for ptr, length in iovs:
        if not w.writable(ptr, length):
            return EFAULT
    want = sum(length for _, length in iovs)
    data = _sock_recv(w, entry, min(want, w.bridge.limits.max_network_payload), flags)
    w.charge_bytes(len(data))
    _scatter(w, iovs, data)
    w.bridge.bytes_in += len(data)
    w.put_u32(a[4], len(data))
    w.put(a[5], b"\0\0")
    return SUCCESS


def sock_send(w: W, a: Any) -> int:
    entry = _sock(w, a[0])
    iovs = w.iovecs(a[1], a[2])
    if entry.kind != _SOCKET:
        return ENOTCONN
    data = b"".join(w.get(ptr, length) for ptr, length in iovs)
    w.bridge.payload_limit(0, len(data), w.bridge.limits.max_network_payload, "network send")
    w.charge_bytes(len(data))
    sent = _sock_send(w, entry, data)
    w.bridge.bytes_out += sent
    w.put_u32(a[4], sent)
    return SUCCESS


def sock_shutdown(w: W, a: Any) -> int:
    entry = _sock(w, a[0])
    how = a[1]
    if entry.kind != _SOCKET or entry.sock is None:
        return ENOTCONN
    if how not in (1, 2, 3):
        return EINVAL
    entry.sock.shutdown({1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}[how])
    return SUCCESS


# -- the wrapper -----------------------------------------------------------------------

WasiFunction = Callable[[WasiState, Any], int]

FUNCTIONS: dict[str, WasiFunction] = {
    f.__name__: f
    for f in (
        args_get,
        args_sizes_get,
        environ_get,
        environ_sizes_get,
        clock_res_get,
        clock_time_get,
        fd_advise,
        fd_allocate,
        fd_close,
        fd_datasync,
        fd_fdstat_get,
        fd_fdstat_set_flags,
        fd_fdstat_set_rights,
        fd_filestat_get,
        fd_filestat_set_size,
        fd_filestat_set_times,
        fd_pread,
        fd_prestat_get,
        fd_prestat_dir_name,
        fd_pwrite,
        fd_read,
        fd_readdir,
        fd_renumber,
        fd_seek,
        fd_sync,
        fd_tell,
        fd_write,
        path_create_directory,
        path_filestat_get,
        path_filestat_set_times,
        path_link,
        path_open,
        path_readlink,
        path_remove_directory,
        path_rename,
        path_symlink,
        path_unlink_file,
        poll_oneoff,
        proc_exit,
        proc_raise,
        sched_yield,
        random_get,
        sock_accept,
        sock_recv,
        sock_send,
        sock_shutdown,
    )
}


def host_function(name: str) -> Callable[[HostBridge, Any], int]:
    """The bridge-level implementation of WASI function ``name``: charge, run, record."""
    body = FUNCTIONS[name]

    def call(bridge: HostBridge, args: Any) -> int:
        w = bridge.wasi
        fuel = bridge.call_fuel
        if w is None:  # a sandbox built without WASI state (cannot happen via Sandbox)
            bridge.charge(fuel)
            return bridge.record(name, None, True, "", ENOSYS, fuel)
        context = bridge.context_arg
        box = bridge._fuel
        _fuel_read(context, bridge._fuel_ref)
        left = box.value
        if left < fuel:
            box.value = 0
            _fuel_write(context, box)
            raise StopGuest("fuel", "fuel ran out in a host call")
        budget = w.budget = left - fuel
        w.cap = None
        w.summary = ""
        w.denied = False
        allowed = True
        try:
            result = body(w, args)
            allowed = not w.denied
        except Errno as exc:
            result = exc.code
            allowed = not exc.denied
        except OSError as exc:
            result = OS_TO_WASI.get(exc.errno or 0, EIO)
        except (ValueError, OverflowError) as exc:  # e.g. an offset the OS cannot take
            bridge.note = f"{type(exc).__name__}: {exc}"
            result = EINVAL
        finally:
            box.value = w.budget
            _fuel_write(context, box)
        charged = fuel + budget - w.budget
        return bridge.record(name, w.cap, allowed, w.summary, result, charged)

    return call


def _fd_write_host(general: Callable[[HostBridge, Any], int]) -> Callable[[HostBridge, Any], int]:
    """``fd_write`` at the bridge level: ``general`` (:func:`host_function` of
    :func:`fd_write`), with a short path for the call a program writing unbuffered makes
    over and over (``write(1, buf, n)``): one iovec inside the memory view already mapped,
    to a stdout/stderr kept in :class:`~vudo.engine.runio.RunIO` (no sink), with the fuel
    for it in the store and room under the output limit. Such a call has the same effects
    either way (fuel, stream bytes and counts, events, the log row), in fewer Python
    steps; any other call (more iovecs, a range past the view, a file, a socket, a
    stream with a sink, too little fuel or room) goes to ``general`` before anything has
    changed, and ``general`` decides it."""

    def call(bridge: HostBridge, args: Any) -> int:
        w = bridge.wasi
        entry = w.fds.get(args[0]) if w is not None else None
        if entry is None or not entry.stream or args[2] != 1:
            return general(bridge, args)
        stream = entry.stream
        io = bridge.io
        view = w._view
        size = len(view)
        iovs, where = args[1] & _U32, args[3] & _U32
        if stream in io.sinks or iovs + 8 > size or where + 4 > size:
            return general(bridge, args)
        ptr, total = _iov.unpack_from(view, iovs)
        end = ptr + total
        if end > size:
            return general(bridge, args)
        charge = bridge.call_fuel + total * w.byte_fuel
        box = bridge._fuel
        context = bridge.context_arg
        _fuel_read(context, bridge._fuel_ref)
        left = box.value - charge
        # RunIO.write writes nothing when it returns False (over the output limit)
        if left < 0 or not io.write(stream, view[ptr:end]):
            return general(bridge, args)
        box.value = left
        _fuel_write(context, box)
        bridge.bytes_out += total
        if bridge.events.active:
            at = time.monotonic() - bridge.origin
            bridge.events.emit(OutputWritten(bridge.sandbox_id, stream, bytes(view[ptr:end]), at))
        _u32.pack_into(view, where, total)
        # HostBridge.record's effects for this call (allowed, no capability, no summary),
        # inline: calling it would cost a tenth of this path. A first call of the run (no
        # counter yet), a pending note or a subscriber takes record itself.
        counter = bridge.counters.get(WASI_CALLS)
        if counter is None or bridge.note or bridge.events.active:
            return bridge.record("fd_write", None, True, "", SUCCESS, charge)
        counter[0] += 1
        bridge.log.append((time.monotonic() - bridge.origin, "fd_write", True, SUCCESS, charge, ""))
        return SUCCESS

    return call


#: One C callback per WASI function, alive for the life of the process.
_TRAMPOLINES: dict[str, Any] = {}


def define_wasi(linker: Any) -> None:
    """Define every WASI preview1 function in ``linker`` (beside the ``vudo`` imports)."""
    if not _TRAMPOLINES:
        for name in WASI_SIGNATURES:
            impl = host_function(name)
            if name == "fd_write":
                impl = _fd_write_host(impl)
            _TRAMPOLINES[name] = make_trampoline(name, WASI_SIGNATURES[name][0], impl)
    define_functions(linker, WASI_MODULE, WASI_SIGNATURES, _TRAMPOLINES)
