"""The SQLite plumbing the engine's key-value store and credit ledger share.

Both keep their state in one SQLite file (WAL) behind one connection and a lock: host
calls come from a sandbox's run thread while the CLI or TUI may read from another, and
every operation is one short statement or one ``BEGIN IMMEDIATE`` transaction, so other
processes using the same file never see half a change.

``sqlite3`` exceptions are translated by :func:`vudo.boundaries.sqlite_errors` (the one
sqlite3 boundary, which the package store uses too): failing to open the file is a
:class:`vudo.errors.VudoError` with a hint; any failure afterwards (a lock held too long,
a closed database, a full disk) is ``HostCallError(STORAGE_ERROR)``, which the host
functions hand to the guest as a code.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Literal

from vudo.boundaries import sqlite_errors
from vudo.engine.abi import ErrorCode, HostCallError
from vudo.errors import VudoError
from vudo.resources import Resource

__all__ = ["Database"]


def _open_errors(title: str, path: Path) -> AbstractContextManager[None]:
    """Failing to open the file: a VudoError with a hint (never recreated silently: it
    holds every Spirit's data, or credits)."""
    return sqlite_errors(
        f"cannot open {title} {path}",
        what=title,
        damaged_hint="restore it from a backup, or move it aside to start empty "
        "(what it held is lost)",
        hint="check that the data directory exists and is writable",
    )


def _as_storage_error(err: VudoError) -> HostCallError:
    return HostCallError(ErrorCode.STORAGE_ERROR, err.message)


class Database(Resource):
    """One thread-shared SQLite connection with translated errors.

    ``title`` names the database in the open error ("the credit ledger"); ``prefix``
    starts every operation's error detail ("ledger " gives "ledger transfer failed:
    ..."). ``synchronous`` is the durability level: FULL where losing the last commit
    to a power cut would lose money, NORMAL elsewhere.
    """

    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        title: str,
        prefix: str = "",
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
    ) -> None:
        """Open or create the file and its tables; ``busy_timeout`` (s) waits for locks."""
        self.title = title
        self.prefix = prefix
        self._lock = threading.Lock()
        self._closed = False
        with _open_errors(title, path):
            self._db = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._db.executescript(schema)
            except BaseException:
                self._db.close()
                raise

    def close(self) -> None:
        """Close the connection; later operations raise STORAGE_ERROR. Safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    @contextmanager
    def locked(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, held alone, for reads (autocommit: one statement at a time)."""
        failing = self.prefix + action
        with (
            self._lock,
            sqlite_errors(f"{failing} failed", what=self.title, into=_as_storage_error),
        ):
            if self._closed:
                raise HostCallError(ErrorCode.STORAGE_ERROR, f"{failing}: {self.title} is closed")
            yield self._db

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        with self.locked(action) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
