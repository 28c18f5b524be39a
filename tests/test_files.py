"""vudo.files: the one atomic write, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError
from vudo.files import write_atomic, write_atomic_with


def test_write_atomic_replaces_whole_with_exact_mode(tmp_path: Path) -> None:
    target = tmp_path / "key"
    target.write_bytes(b"old contents, longer than the new")
    old_umask = os.umask(0o077)
    try:
        write_atomic(target, b"new", mode=0o644, fsync=True)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644  # not masked by the umask
    write_atomic(target, b"secret", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_a_failing_body_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    target.write_text("{}")

    def body(fd: int) -> None:
        os.write(fd, b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic_with(target, body)
    assert target.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_a_directory_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "spirit.lock").mkdir()
    with pytest.raises(InvalidInputError, match=r"spirit\.lock is a directory, not a lock") as e:
        write_atomic(tmp_path / "spirit.lock", b"", what="lock file")
    assert e.value.hint
