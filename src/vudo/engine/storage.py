"""The Spirits' persistent key-value store (host_storage_read / write / delete).

One SQLite file (WAL mode) holds every Spirit's keys in one table keyed by
``(namespace, key)``. The engine passes the running Spirit's namespace on every call and
never lets a guest choose it, so one Spirit never sees another's keys.

Quotas (:class:`StorageQuota`) bound the key size, the value size and the total bytes
(keys plus values) per namespace; going over raises ``HostCallError(QUOTA_EXCEEDED)`` and
changes nothing. The per-namespace total is kept in a second table, updated in the same
transaction as the write, so checking it costs one lookup.

Thread safety, transactions and the translation of every ``sqlite3`` exception (into
``HostCallError(STORAGE_ERROR)``, or a :class:`vudo.errors.VudoError` when the file cannot
be opened) are :class:`vudo.engine.sqlite.Database`'s, shared with the credit ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.sqlite import Database
from vudo.resources import Resource

__all__ = ["KeyValueStore", "StorageQuota"]

_MAX_NAMESPACE_CHARS: Final = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    namespace TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL CHECK (bytes >= 0)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class StorageQuota:
    """Size limits; a write that would pass one fails with QUOTA_EXCEEDED."""

    max_key_bytes: int = 1024
    max_value_bytes: int = 1024 * 1024
    max_namespace_bytes: int = 16 * 1024 * 1024


def _check_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not namespace or len(namespace) > _MAX_NAMESPACE_CHARS:
        raise HostCallError(
            ErrorCode.INVALID_PARAMETER,
            f"namespace must be 1..{_MAX_NAMESPACE_CHARS} characters, got {namespace!r}",
        )


class KeyValueStore(Resource):
    """Persistent, namespaced key-value storage on SQLite. Close it (or use ``with``)."""

    def __init__(
        self, path: Path | str, *, quota: StorageQuota | None = None, busy_timeout: float = 5.0
    ) -> None:
        """Open or create the store; ``busy_timeout`` is how long (s) to wait for a lock."""
        self.path = Path(path)
        self.quota = quota if quota is not None else StorageQuota()
        self._db = Database(
            self.path, schema=_SCHEMA, title="the storage database", busy_timeout=busy_timeout
        )

    # -- resource ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; later calls raise STORAGE_ERROR. Safe to call twice."""
        self._db.close()

    def _check_key(self, key: bytes) -> None:
        if not isinstance(key, bytes) or not key:
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "key must be non-empty bytes")
        if len(key) > self.quota.max_key_bytes:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"key is {len(key)} bytes, the limit is {self.quota.max_key_bytes}",
            )

    # -- host calls ----------------------------------------------------------------------

    def read(self, namespace: str, key: bytes) -> bytes | None:
        """The value stored under ``key`` in ``namespace``, or None if absent."""
        _check_namespace(namespace)
        self._check_key(key)
        with self._db.locked("read") as db:
            row = db.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def write(self, namespace: str, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing any old value, within the quotas."""
        _check_namespace(namespace)
        self._check_key(key)
        if not isinstance(value, bytes):
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "value must be bytes")
        quota = self.quota
        if len(value) > quota.max_value_bytes:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"value is {len(value)} bytes, the limit is {quota.max_value_bytes}",
            )
        with self._db.transaction("write") as db:
            old = db.execute(
                "SELECT length(value) FROM kv WHERE namespace = ? AND key = ?",
                (namespace, key),
            ).fetchone()
            used_row = db.execute(
                "SELECT bytes FROM usage WHERE namespace = ?", (namespace,)
            ).fetchone()
            used = 0 if used_row is None else int(used_row[0])
            delta = len(value) - int(old[0]) if old is not None else len(key) + len(value)
            if used + delta > quota.max_namespace_bytes:
                raise HostCallError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"namespace {namespace!r} would hold {used + delta} bytes, "
                    f"the limit is {quota.max_namespace_bytes}",
                )
            db.execute(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )
            db.execute(
                "INSERT INTO usage (namespace, bytes) VALUES (?, ?) "
                "ON CONFLICT (namespace) DO UPDATE SET bytes = bytes + ?",
                (namespace, used + delta, delta),
            )

    def delete(self, namespace: str, key: bytes) -> bool:
        """Remove ``key``; True if it was there."""
        _check_namespace(namespace)
        self._check_key(key)
        with self._db.transaction("delete") as db:
            rows = db.execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ? RETURNING length(value)",
                (namespace, key),
            ).fetchall()
            if rows:
                db.execute(
                    "UPDATE usage SET bytes = bytes - ? WHERE namespace = ?",
                    (len(key) + int(rows[0][0]), namespace),
                )
        return bool(rows)

    def move_namespace(self, old: str, new: str) -> int:
        """Move every key of ``old`` into ``new`` (one transaction); returns how many moved.

        A key ``new`` already holds keeps its value there (it is newer); the old copy is
        dropped. For migrating storage an older vudo kept under a Spirit's name.
        """
        _check_namespace(old)
        _check_namespace(new)
        if old == new:
            return 0
        with self._db.transaction("move namespace") as db:
            moved = db.execute(
                "INSERT OR IGNORE INTO kv (namespace, key, value) "
                "SELECT ?, key, value FROM kv WHERE namespace = ?",
                (new, old),
            ).rowcount
            db.execute("DELETE FROM kv WHERE namespace = ?", (old,))
            db.execute("DELETE FROM usage WHERE namespace IN (?, ?)", (old, new))
            db.execute(
                "INSERT INTO usage (namespace, bytes) SELECT namespace, "
                "SUM(length(key) + length(value)) FROM kv WHERE namespace = ? "
                "GROUP BY namespace",
                (new,),
            )
        return int(moved)

    # -- inspection (CLI, TUI) -------------------------------------------------------------

    def keys(self, namespace: str) -> list[bytes]:
        """Every key in ``namespace``, sorted bytewise."""
        _check_namespace(namespace)
        with self._db.locked("list keys") as db:
            rows = db.execute(
                "SELECT key FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def namespaces(self) -> list[str]:
        """Every namespace holding at least one key, sorted."""
        with self._db.locked("list namespaces") as db:
            rows = db.execute("SELECT DISTINCT namespace FROM kv ORDER BY namespace").fetchall()
        return [str(r[0]) for r in rows]

    def used_bytes(self, namespace: str) -> int:
        """Bytes (keys plus values) ``namespace`` holds, as counted for its quota."""
        _check_namespace(namespace)
        with self._db.locked("usage") as db:
            row = db.execute("SELECT bytes FROM usage WHERE namespace = ?", (namespace,)).fetchone()
        return 0 if row is None else int(row[0])
