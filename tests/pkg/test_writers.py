"""Writers of user-named paths replace only regular files: never a symlink (the link
would be swapped for a file, or written through), a FIFO, a device or a socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from test_store import make_package

from vudo.errors import InvalidInputError
from vudo.files import refuse_non_regular
from vudo.pkg.keys import generate_keypair
from vudo.pkg.lockfile import Lockfile, write_lockfile
from vudo.pkg.signing import sign_package


def _make(path: Path, kind: str, victim: Path) -> None:
    if kind == "symlink":
        path.symlink_to(victim)
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 3))
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
    else:
        path.mkdir()


KINDS = ["symlink", "dangling symlink", "fifo", "device", "socket", "directory"]


@pytest.mark.parametrize("kind", KINDS)
def test_refuse_non_regular_names_what_it_found(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "t"
    _make(target, kind, victim)
    with pytest.raises(InvalidInputError) as info:
        refuse_non_regular(target, what="lock file")
    word = {
        "dangling symlink": "symbolic link",
        "symlink": "symbolic link",
        "fifo": "FIFO",
        "device": "device",
    }.get(kind, kind)
    assert word in info.value.message and info.value.hint
    refuse_non_regular(victim)  # a regular file is fine
    refuse_non_regular(tmp_path / "absent")  # so is nothing


@pytest.mark.parametrize("kind", KINDS)
def test_lock_file_is_not_written_through_anything_but_a_file(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    lock = tmp_path / "spirit.lock"
    _make(lock, kind, victim)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InvalidInputError):
        write_lockfile(lock, Lockfile())
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert victim.read_text() == "keep"


def test_signing_a_symlinked_package_is_refused(tmp_path: Path) -> None:
    real = make_package(tmp_path, "linked")
    link = tmp_path / "link.spirit"
    link.symlink_to(real)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        sign_package(link, generate_keypair(lambda n: bytes([3]) * n))
    assert link.is_symlink()


def test_a_full_disk_under_the_store_index_says_so() -> None:
    import sqlite3

    from vudo.boundaries import translate_sqlite_error
    from vudo.errors import DiskFullError

    err = translate_sqlite_error(
        sqlite3.OperationalError("database or disk is full"), "installing x 1.0.0"
    )
    assert isinstance(err, DiskFullError) and "disk is full" in err.message
    assert err.hint and "free some space" in err.hint
