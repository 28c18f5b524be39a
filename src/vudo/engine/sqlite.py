"""The SQLite plumbing the engine's key-value store and credit ledger share.

Both keep their state in one SQLite file (WAL) behind one connection and a lock: host
calls come from a sandbox's run thread while the CLI or TUI may read from another, and
every operation is one short statement or one ``BEGIN IMMEDIATE`` transaction, so other
processes using the same file never see half a change.

This is the engine's one boundary for ``sqlite3`` exceptions (:func:`_sqlite_errors`):
failing to open the file is a :class:`vudo.errors.VudoError` with a hint; any failure
afterwards (a lock held too long, a closed database, a full disk) is
``HostCallError(STORAGE_ERROR)``, which the host functions hand to the guest as a code.
Catching ``sqlite3.Error``, the root of every exception the module raises, makes the
mapping complete by construction. (The package store, :mod:`vudo.pkg.store`, has its own
boundary: it maps into the package errors, not into host-call codes.)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.errors import VudoError
from vudo.resources import Resource

__all__ = ["Database"]

_DAMAGED = ("not a database", "malformed", "corrupt")  # sqlite3's words for a bad file


@contextmanager
def _sqlite_errors(opening: str | None, failing: str, path: Path | None = None) -> Iterator[None]:
    """Translate sqlite3 exceptions: ``opening`` names what was being opened (at
    ``path``), if that."""
    try:
        yield
    except sqlite3.Error as exc:
        if opening is not None:
            where = f" {path}" if path is not None else ""
            if any(word in str(exc).lower() for word in _DAMAGED):
                # Never recreated silently: it holds every Spirit's data (or credits).
                raise VudoError(
                    f"{opening}{where} is damaged: {exc}",
                    hint="restore it from a backup, or move it aside to start empty "
                    "(what it held is lost)",
                ) from exc
            raise VudoError(
                f"cannot open {opening}{where}: {exc}",
                hint="check that the data directory exists and is writable",
            ) from exc
        raise HostCallError(ErrorCode.STORAGE_ERROR, f"{failing} failed: {exc}") from exc


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
        with _sqlite_errors(title, "open", path):
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
        with self._lock, _sqlite_errors(None, failing):
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
