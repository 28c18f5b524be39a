"""The one atomic file write: a temp file beside the target, then ``os.replace``.

A reader (another process, or the next command after a crash) sees the old file or the
new one, never half of either; a failure or an interrupt removes the temp file. Packages,
signatures, registry indexes, keys, lock files, the compiled-module cache and ``vudo fmt``
all write through here.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from vudo.errors import InvalidInputError

__all__ = ["refuse_non_regular", "write_all", "write_atomic", "write_atomic_with"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_non_regular(path: Path, *, what: str = "file", hint: str | None = None) -> None:
    """Raise InvalidInputError unless ``path`` is absent or a regular file.

    Every writer of a user-named path calls this first (``vudo pack -o``, sign, fmt, doc,
    the lock file, key files): renaming over a symlink or device, or writing through a
    FIFO, is never what the user asked for. The link itself is examined, not its target.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InvalidInputError(
        f"{path} is {kind}, not a {what}; vudo does not replace it",
        hint=hint or f"remove it, or write the {what} somewhere else",
    )


def write_atomic_with(
    path: Path,
    body: Callable[[int], None],
    *,
    mode: int = 0o644,
    size_hint: int = 0,
    fsync: bool = False,
    what: str = "file",
    hint: str | None = None,
) -> Path:
    """Create ``path`` by calling ``body(fd)`` on a temp file beside it, then rename.

    The file gets exactly ``mode`` (not masked by the umask: a private key stays 0600, a
    package 0644). ``fsync`` forces the data to disk before the rename (keys and indexes
    that must survive a power cut). ``size_hint`` bytes are allocated up front where the
    filesystem supports it: on ext4, renaming a file full of delayed allocations over
    another forces a flush, which cost more than the hashing when signing a 100 MB
    package in place. Anything but a regular file at ``path`` (a directory, a symlink, a
    FIFO) is refused first (:func:`refuse_non_regular`, naming ``what``).
    """
    path = Path(path)
    refuse_non_regular(path, what=what, hint=hint)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        if size_hint > 0:
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, size_hint)
        body(fd)
        os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR))
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)  # never leave a half-written .partial behind
        raise
    return path


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    fsync: bool = False,
    what: str = "file",
    hint: str | None = None,
) -> Path:
    """Replace ``path`` with ``data`` atomically (see :func:`write_atomic_with`)."""
    return write_atomic_with(
        path, lambda fd: write_all(fd, data), mode=mode, fsync=fsync, what=what, hint=hint
    )
