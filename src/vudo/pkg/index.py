"""Reading the local store's index with nothing but sqlite3 (``vudo search``).

:mod:`vudo.pkg.store` owns the index: its schema, its migrations and every write. What a
read needs (the file's name and schema version, how a connection is opened, the row
columns and the search query) lives here, and the store uses it too, so there is one copy
of each. This module imports sqlite3 and vudo's error tree only: a ``vudo search``
process would otherwise spend several times longer importing the store's manifest and
version parsers (and ``dataclasses``) than querying the index. Its values are
:func:`collections.namedtuple` records, like those of the other modules a short command
imports (see the :mod:`vudo` package docstring).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path

from vudo.boundaries import DatabaseBusyError, DatabaseDamagedError, sqlite_errors
from vudo.errors import InvalidInputError

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import Any

INDEX_NAME = "index.sqlite3"
SCHEMA_VERSION = 4
REPAIR_HINT = "run `vudo repair` to rebuild it from the package files"

#: The columns of a package row, in the order :class:`IndexedSpirit` and the store read them.
COLUMNS = "id, name, version, digest, signer, author, description, capabilities, size, installed_at"


class StoreDamagedError(DatabaseDamagedError):
    """The store's index is missing, unreadable or inconsistent with its files."""

    title = "store damaged"


class StoreBusyError(DatabaseBusyError):
    """Another process held the store's write lock for longer than the busy timeout."""

    title = "store busy"


def store_errors(context: str) -> contextlib.AbstractContextManager[None]:
    """sqlite3 exceptions as the store's errors (:func:`vudo.boundaries.sqlite_errors`)."""
    return sqlite_errors(
        context,
        what="the store index",
        damaged=StoreDamagedError,
        busy=StoreBusyError,
        damaged_hint=REPAIR_HINT,
    )


def object_path(root: Path, digest: str) -> Path:
    """Where the store keeps the package file with SHA-256 ``digest``."""
    return root / "objects" / "sha256" / f"{digest}.spirit"


def connect(root: Path, *, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    """A connection to the index under the store ``root``, set up as every store
    connection is (busy timeout, foreign keys; WAL when writable). ``read_only`` opens
    it with ``mode=ro``, so a command that only reads works on a store the user cannot
    write. sqlite3 errors are the caller's to translate (:func:`store_errors`)."""
    index = root / INDEX_NAME
    if not read_only:
        conn = sqlite3.connect(
            index, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    else:
        uri = f"file:{urllib.parse.quote(str(index.absolute()))}?mode=ro"
        if not (os.access(root, os.W_OK) and os.access(index, os.W_OK)):
            # A WAL index needs its -shm file, which nobody can create in a directory that
            # cannot be written (a read-only mount): nothing can change the index there
            # either, so SQLite may read it as immutable.
            uri += "&immutable=1"
        conn = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not read_only:  # (not query_only: search writes a TEMP table)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The index's schema version; None for an index not made yet."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone():
        return None
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return None if row is None else int(row[0])


def open_current(root: Path) -> sqlite3.Connection | None:
    """The index under ``root`` opened read-only, when it exists at this vudo's schema
    version; None when the store must create or migrate it first (:func:`open_store
    <vudo.pkg.store.open_store>` does)."""
    if not (root / INDEX_NAME).is_file():
        return None
    with store_errors(f"opening the store index {root / INDEX_NAME}"):
        conn = connect(root, read_only=True, busy_timeout=30.0)
        try:
            if schema_version(conn) == SCHEMA_VERSION:
                return conn
        except BaseException:
            conn.close()
            raise
        conn.close()
    return None


class IndexedSpirit(
    namedtuple(
        "IndexedSpirit",
        "name version digest signer author description capabilities path size installed_at",
    )
):
    """One installed version as the index records it, read without parsing it: the
    version and capabilities as the index spells them (:class:`~vudo.pkg.store.
    InstalledSpirit` is the parsed form; both print the same JSON)."""

    __slots__ = ()
    if TYPE_CHECKING:
        name: str
        version: str
        digest: str
        signer: str
        author: str
        description: str
        capabilities: tuple[str, ...]
        path: Path
        size: int
        installed_at: float

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        from vudo.display import iso_time  # lazy: datetime only to print JSON

        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "signer": self.signer,
            "author": self.author,
            "description": self.description,
            "capabilities": list(self.capabilities),
            "path": str(self.path),
            "size": self.size,
            "installed_at": iso_time(self.installed_at),  # JSON times are ISO 8601
        }

    @classmethod
    def from_row(cls, root: Path, r: Sequence[Any]) -> IndexedSpirit:
        """A row of :data:`COLUMNS` from the store under ``root``."""
        return cls(
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            tuple(r[7].split()),
            object_path(root, r[3]),
            r[8],
            r[9],
        )


#: Longest search query: far beyond any name (64) or useful phrase, short of a paste of a file.
MAX_QUERY_CHARS = 256


def check_query(query: str) -> str:
    """``query`` if it can be searched for, else InvalidInputError (exit 3)."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError(
            f"the search query is {len(query)} characters long; at most {MAX_QUERY_CHARS} "
            "are allowed",
            hint="search for a word of the name or description",
        )
    return query


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase (quotes doubled), matched as written."""
    return '"' + text.replace('"', '""') + '"'


def search_rows(
    conn: sqlite3.Connection,
    query: str = "",
    *,
    capability: str | None = None,
    author: str | None = None,
    every_version: bool = False,
    limit: int | None = 100,
) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """The index rows (:data:`COLUMNS`) of installed Spirits matching ``query``, and each
    matching name's rank (lower is better).

    Ranking: exact name, then name prefix, then substring of the name, then a match in
    the description only. Filters: a capability (its value) the version asks for, an
    author or signer key (or key prefix). One row per name, its highest release, unless
    ``every_version`` (then every version that passes the filters, for the caller's
    version requirement to choose from; ``limit`` then does not cut the names). Substring
    matching uses the FTS5 trigram index, so cost follows the number of hits, not the
    size of the store. sqlite3 errors are the caller's to translate.
    """
    q = check_query(query).strip().lower()
    text: list[str] = []
    filters: list[str] = []
    params: dict[str, Any] = {"q": q, "n": len(q)}
    if q and len(q) >= 3:
        text.append("s.rowid IN (SELECT rowid FROM spirits_fts WHERE spirits_fts MATCH :fts)")
        params["fts"] = fts_phrase(q)
    elif q:
        text.append("(s.name LIKE :like ESCAPE '\\' OR s.description LIKE :like ESCAPE '\\')")
        params["like"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if capability is not None:
        filters.append(
            "EXISTS (SELECT 1 FROM package_caps c WHERE c.capability = :cap "
            "AND c.package_id = p.id)"
        )
        params["cap"] = capability
    if author:
        key = author.strip().lower()
        filters.append(
            "(substr(p.author, 1, :alen) = :author OR substr(p.signer, 1, :alen) = :author)"
        )
        params["author"] = key
        params["alen"] = len(key)
    version_filter = " AND ".join(filters) or "1"
    exists = f"EXISTS (SELECT 1 FROM packages p WHERE p.name = s.name AND {version_filter})"
    where = " AND ".join([*text, *([exists] if filters else [])]) or "1"
    rank = (
        (
            "CASE WHEN s.name = :q THEN 0 WHEN substr(s.name, 1, :n) = :q THEN 1 "
            "WHEN instr(s.name, :q) > 0 THEN 2 ELSE 3 END"
        )
        if q
        else "0"
    )
    name_limit = "" if (limit is None or every_version) else f"LIMIT {int(limit)}"
    ranked = conn.execute(
        f"SELECT s.name, {rank} AS r FROM spirits s WHERE {where} ORDER BY r, s.name {name_limit}",
        params,
    ).fetchall()
    if not ranked:
        return [], {}
    ranks = {name: r for name, r in ranked}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS search_names (name TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM search_names")
    conn.executemany("INSERT INTO search_names VALUES (?)", [(n,) for n in ranks])
    columns = COLUMNS.replace("id,", "p.id,", 1)
    if not every_version:
        # The highest release per name, chosen in SQL (a bare requirement never matches
        # prereleases, so major/minor/patch order is the SemVer order).
        raw = conn.execute(
            f"SELECT {COLUMNS} FROM (SELECT {columns}, row_number() OVER ("
            "PARTITION BY p.name ORDER BY p.major DESC, p.minor DESC, p.patch DESC"
            ") AS k FROM packages p WHERE p.name IN (SELECT name FROM search_names) "
            f"AND p.prerelease = '' AND {version_filter}) WHERE k = 1",
            params,
        ).fetchall()
    else:
        raw = conn.execute(
            f"SELECT {columns} FROM packages p WHERE "
            f"p.name IN (SELECT name FROM search_names) AND {version_filter}",
            params,
        ).fetchall()
    conn.execute("DELETE FROM search_names")
    return raw, ranks


__all__ = [
    "COLUMNS",
    "INDEX_NAME",
    "MAX_QUERY_CHARS",
    "REPAIR_HINT",
    "SCHEMA_VERSION",
    "IndexedSpirit",
    "StoreBusyError",
    "StoreDamagedError",
    "check_query",
    "connect",
    "fts_phrase",
    "object_path",
    "open_current",
    "schema_version",
    "search_rows",
    "store_errors",
]
