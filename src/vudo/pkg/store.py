"""The local store of installed Spirits (``~/.vudo/store/``).

Layout::

    store/
      index.sqlite3             the index: packages (one row per version), capabilities,
                                spirits (one row per name, FTS5 trigram search), signer
                                pins, trusted keys, grants; WAL mode, versioned schema
      objects/sha256/<digest>.spirit   package files, named by the SHA-256 of their bytes
      tmp/                      installs in progress and files being removed

Why this shape: package files are immutable and content-addressed, so writing one is
"write to tmp, fsync, rename" and can never half-replace another; all the mutable state
is in SQLite, so one transaction makes an install visible or not at all. The order is:
copy to ``tmp/`` (hashing in the same pass), verify the copy (what is verified is what is
kept), then under the index's write lock rename the object into place and insert the
rows. A process killed at any point leaves either nothing visible, or an orphaned file
that :meth:`LocalStore.check` reports and :meth:`LocalStore.repair` removes. Several
processes installing at once serialise only on the short write transaction (``BEGIN
IMMEDIATE`` with a busy timeout), so nothing is lost.

An index that was deleted or damaged while package files remain is detected on open
(:class:`StoreDamagedError`, with the repair hint); :meth:`LocalStore.rebuild_index`
rebuilds it by verifying every object file, salvaging pins, trusted keys and grants from
the old index when it can still be read.

sqlite3 exceptions become the store's errors at :func:`vudo.boundaries.sqlite_errors`.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import errno
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from vudo.capabilities import AnyCapability, Capability, parse_any_capability, parse_capability
from vudo.errors import (
    InvalidInputError,
    NotFoundError,
    VerificationError,
    VudoError,
)
from vudo.home import migrate_home, store_dir
from vudo.pkg.index import (
    COLUMNS,
    INDEX_NAME,
    MAX_QUERY_CHARS,
    REPAIR_HINT,
    SCHEMA_VERSION,
    IndexedSpirit,
    StoreBusyError,
    StoreDamagedError,
    check_query,
    connect,
    fts_phrase,
    object_path,
    schema_version,
    search_rows,
)
from vudo.pkg.index import store_errors as _sqlite_errors
from vudo.pkg.manifest import (
    Manifest,
    canonical_manifest_bytes,
    canonical_name,
    manifest_from_dict,
    validate_name,
)
from vudo.pkg.sources import Candidate, CandidateSource, candidate_from_manifest
from vudo.pkg.versions import ANY, Requirement, parse_requirement, parse_version
from vudo.resources import Resource

if TYPE_CHECKING:  # list and search open no package: no nacl, no zip reader
    from vudo.pkg.signing import CheckedPackage
    from vudo.pkg.trust import TrustDecision, TrustPolicy
    from vudo.pkg.versions import Version

# ------------------------------------------------------------------ schema
# (the file name, schema version, connection and read queries: vudo.pkg.index)

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE packages (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        major INTEGER NOT NULL, minor INTEGER NOT NULL, patch INTEGER NOT NULL,
        prerelease TEXT NOT NULL,
        digest TEXT NOT NULL,
        signer TEXT NOT NULL,
        author TEXT NOT NULL,
        description TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        manifest TEXT NOT NULL,
        size INTEGER NOT NULL,
        installed_at REAL NOT NULL,
        UNIQUE (name, version)
    );
    CREATE INDEX packages_digest ON packages (digest);
    CREATE INDEX packages_author ON packages (author);
    CREATE INDEX packages_signer ON packages (signer);
    CREATE TABLE package_caps (
        capability TEXT NOT NULL,
        package_id INTEGER NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
        PRIMARY KEY (capability, package_id)
    ) WITHOUT ROWID;
    CREATE INDEX package_caps_package ON package_caps (package_id);
    CREATE VIRTUAL TABLE packages_fts USING fts5 (
        name, description, content = 'packages', content_rowid = 'id', tokenize = 'trigram'
    );
    CREATE TRIGGER packages_ai AFTER INSERT ON packages BEGIN
        INSERT INTO packages_fts (rowid, name, description)
        VALUES (new.id, new.name, new.description);
    END;
    CREATE TRIGGER packages_ad AFTER DELETE ON packages BEGIN
        INSERT INTO packages_fts (packages_fts, rowid, name, description)
        VALUES ('delete', old.id, old.name, old.description);
    END;
    CREATE TABLE pins (name TEXT PRIMARY KEY, signer TEXT NOT NULL, pinned_at REAL NOT NULL);
    CREATE TABLE trusted_keys (key TEXT PRIMARY KEY, note TEXT NOT NULL, added_at REAL NOT NULL);
    CREATE TABLE grants (name TEXT PRIMARY KEY, grants TEXT NOT NULL, updated_at REAL NOT NULL);
    """,
    # v2: search one row per name (description of its highest version) instead of one
    # per version, so search cost follows the number of names, not of versions.
    """
    DROP TRIGGER packages_ai;
    DROP TRIGGER packages_ad;
    DROP TABLE packages_fts;
    CREATE TABLE spirits (name TEXT PRIMARY KEY, description TEXT NOT NULL);
    CREATE VIRTUAL TABLE spirits_fts USING fts5 (
        name, description, content = 'spirits', content_rowid = 'rowid', tokenize = 'trigram'
    );
    CREATE TRIGGER spirits_ai AFTER INSERT ON spirits BEGIN
        INSERT INTO spirits_fts (rowid, name, description)
        VALUES (new.rowid, new.name, new.description);
    END;
    CREATE TRIGGER spirits_ad AFTER DELETE ON spirits BEGIN
        INSERT INTO spirits_fts (spirits_fts, rowid, name, description)
        VALUES ('delete', old.rowid, old.name, old.description);
    END;
    CREATE TRIGGER spirits_au AFTER UPDATE ON spirits BEGIN
        INSERT INTO spirits_fts (spirits_fts, rowid, name, description)
        VALUES ('delete', old.rowid, old.name, old.description);
        INSERT INTO spirits_fts (rowid, name, description)
        VALUES (new.rowid, new.name, new.description);
    END;
    """
    + "\n"
    + "REFRESH_ALL_SPIRITS",
    # v3: names are unique without regard to case and to "-" vs "_" (my_x and My-X are
    # one name): each row carries its canonical name (pkg.manifest.canonical_name, called
    # from SQL as vudo_canonical_name), indexed for the check install makes. Not a UNIQUE
    # index: an older store may already hold two such spellings, and must still open.
    """
    ALTER TABLE packages ADD COLUMN canonical TEXT NOT NULL DEFAULT '';
    UPDATE packages SET canonical = vudo_canonical_name(name);
    CREATE INDEX packages_canonical ON packages (canonical);
    """,
    # v4: the registry each version was installed from ('' when installed from a file or
    # project), so `vudo upgrade` asks the registry a Spirit came from.
    """
    ALTER TABLE packages ADD COLUMN registry TEXT NOT NULL DEFAULT '';
    """,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_TABLES = (
    "schema_version",
    "packages",
    "package_caps",
    "spirits",
    "spirits_fts",
    "pins",
    "trusted_keys",
    "grants",
)

# The description a name is searched by: that of its highest version (releases before
# prereleases of the same major.minor.patch).
_LATEST = (
    "SELECT name, description FROM (SELECT name, description, row_number() OVER ("
    "PARTITION BY name ORDER BY major DESC, minor DESC, patch DESC, "
    "(prerelease = '') DESC, installed_at DESC) AS k FROM packages {where}) "
    "WHERE k = 1"
)
_UPSERT_SPIRITS = (
    "INSERT INTO spirits (name, description) " + _LATEST + " "
    "ON CONFLICT (name) DO UPDATE SET description = excluded.description "
    "WHERE description != excluded.description"
)


# ------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class InstalledSpirit:
    """One installed version of a Spirit, as the index records it."""

    name: str
    version: Version
    digest: str
    """SHA-256 hex of the .spirit file (also its object file name)."""
    signer: str
    author: str
    description: str
    capabilities: tuple[AnyCapability, ...]
    path: Path
    size: int
    installed_at: float

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """The JSON of :meth:`IndexedSpirit.to_json` (what ``vudo search`` prints)."""
        return IndexedSpirit(
            self.name,
            str(self.version),
            self.digest,
            self.signer,
            self.author,
            self.description,
            tuple(c.value for c in self.capabilities),
            self.path,
            self.size,
            self.installed_at,
        ).to_json()


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What :meth:`LocalStore.install` did."""

    spirit: InstalledSpirit
    already_installed: bool
    author_matches: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpiritInfo:
    """Everything the store knows about one installed version."""

    spirit: InstalledSpirit
    manifest: Manifest
    versions: tuple[Version, ...]
    grants: tuple[dict[str, Any], ...]
    pinned_signer: str | None


@dataclass(frozen=True, slots=True)
class UpgradePlan:
    """A verified newer package ready to install, and how its capabilities differ."""

    name: str
    current: InstalledSpirit
    package: Path
    verified: CheckedPackage
    added_capabilities: tuple[AnyCapability, ...]
    removed_capabilities: tuple[AnyCapability, ...]

    @property
    def version(self) -> Version:
        return self.verified.manifest.version

    @property
    def widens(self) -> bool:
        """Whether the new version asks for capabilities the current one did not."""
        return bool(self.added_capabilities)


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    name: str
    old: InstalledSpirit
    new: InstalledSpirit
    upgraded: bool
    added_capabilities: tuple[AnyCapability, ...] = ()
    removed_capabilities: tuple[AnyCapability, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreCheckReport:
    """What :meth:`LocalStore.check` found (or :meth:`LocalStore.repair` fixed)."""

    integrity: str
    orphan_objects: tuple[Path, ...] = ()
    stale_temp_files: tuple[Path, ...] = ()
    missing_objects: tuple[str, ...] = ()
    corrupt_objects: tuple[str, ...] = ()
    packages: int = 0
    damaged_grants: tuple[str, ...] = ()  # names whose stored grants cannot be read

    @property
    def ok(self) -> bool:
        return (
            self.integrity == "ok"
            and not self.orphan_objects
            and not self.stale_temp_files
            and not self.missing_objects
            and not self.corrupt_objects
            and not self.damaged_grants
        )


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A row to index: what install records after verifying a package (also used by
    :meth:`LocalStore.rebuild_index` and by benchmarks that bulk-fill an index)."""

    manifest: Manifest
    digest: str
    signer: str
    size: int
    installed_at: float = 0.0


class PackageSource(CandidateSource, Protocol):
    """A CandidateSource that can also hand over a package file (registries do)."""

    def fetch(self, name: str, version: Version | str) -> Path: ...


@dataclass(slots=True)
class _Row:
    id: int
    name: str
    version: Version
    digest: str
    signer: str
    author: str
    description: str
    capabilities: str
    size: int
    installed_at: float
    rank: int = field(default=0)


def _as_requirement(requirement: Requirement | str | None) -> Requirement:
    if requirement is None:
        return ANY
    if isinstance(requirement, Requirement):
        return requirement
    return parse_requirement(requirement)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the store


class LocalStore(Resource):
    """The SQLite-indexed, content-addressed store of installed Spirits.

    A resource: ``close()`` it or use it as a context manager. Safe to share between
    threads (calls are serialised) and between processes (SQLite locking).
    """

    source_label: ClassVar[str] = "installed"

    def __init__(
        self,
        root: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
        read_only: bool = False,
        _rebuilding: bool = False,
    ) -> None:
        """Open (creating or migrating) the store at ``root``.

        ``read_only`` opens the index with SQLite's ``mode=ro`` (for commands that only
        read: list, info, search), so they work on a store the user cannot write, e.g.
        a read-only mount; writes then fail. An index that is missing or needs a schema
        migration is opened for writing instead (see :func:`open_store`).
        """
        self.root = Path(root)
        self.clock = clock
        self.objects_dir = self.root / "objects" / "sha256"
        self.tmp_dir = self.root / "tmp"
        self.index_path = self.root / INDEX_NAME
        self._lock = threading.RLock()
        self.read_only = read_only
        if not read_only:
            for d in (self.root, self.objects_dir, self.tmp_dir):
                d.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        with _sqlite_errors(f"opening the store index {self.index_path}"):
            conn = connect(self.root, read_only=read_only, busy_timeout=busy_timeout)
            self._conn = conn
            try:
                conn.create_function("vudo_canonical_name", 1, canonical_name, deterministic=True)
                if read_only:
                    if schema_version(conn) != SCHEMA_VERSION:
                        raise _NeedsWrite
                else:
                    self._migrate(allow_uninitialised_with_objects=_rebuilding)
            except BaseException:
                self.close()
                raise

    # -- plumbing -----------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise VudoError("the store is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self, context: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE .. COMMIT), translated errors."""
        with self._lock, _sqlite_errors(context):
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self, context: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _sqlite_errors(context):
            yield self.conn

    def _object_files(self) -> list[Path]:
        return sorted(self.objects_dir.glob("*.spirit"))

    def _migrate(self, *, allow_uninitialised_with_objects: bool) -> None:
        # Fast path without the write lock: an up-to-date index needs nothing, so a
        # `vudo list` never waits behind another process's install.
        if schema_version(self.conn) == SCHEMA_VERSION:
            return
        with self._write(f"opening the store index {self.index_path}") as conn:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            current = 0
            if has_table:
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    raise StoreDamagedError(
                        f"store index {self.index_path} has no schema version", hint=REPAIR_HINT
                    )
                current = int(row[0])
            elif not allow_uninitialised_with_objects:
                objects = self._object_files()
                if objects:
                    raise StoreDamagedError(
                        f"the store index {self.index_path} is missing or empty, but "
                        f"{len(objects)} package file(s) are in the store",
                        hint=REPAIR_HINT,
                    )
            if current > SCHEMA_VERSION:
                raise VudoError(
                    f"the store index was written by a newer vudo (schema {current}, "
                    f"this vudo knows {SCHEMA_VERSION})",
                    hint="upgrade vudo",
                )
            if not has_table:
                conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO schema_version VALUES (0)")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(_MIGRATIONS[version - 1]):
                    if statement == "REFRESH_ALL_SPIRITS":
                        _refresh_spirits(conn, None)
                    else:
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (version,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def object_path(self, digest: str) -> Path:
        return object_path(self.root, digest)

    # -- rows -----------------------------------------------------------------------------

    def _row(self, r: Sequence[Any]) -> _Row:
        return _Row(
            id=r[0],
            name=r[1],
            version=_cached_version(r[2]),
            digest=r[3],
            signer=r[4],
            author=r[5],
            description=r[6],
            capabilities=r[7],
            size=r[8],
            installed_at=r[9],
        )

    def _spirit(self, row: _Row) -> InstalledSpirit:
        caps = (
            tuple(parse_any_capability(c) for c in row.capabilities.split())
            if row.capabilities
            else ()
        )
        return InstalledSpirit(
            name=row.name,
            version=row.version,
            digest=row.digest,
            signer=row.signer,
            author=row.author,
            description=row.description,
            capabilities=caps,
            path=self.object_path(row.digest),
            size=row.size,
            installed_at=row.installed_at,
        )

    def _rows_for(self, conn: sqlite3.Connection, name: str) -> list[_Row]:
        cur = conn.execute(f"SELECT {COLUMNS} FROM packages WHERE name = ?", (name,))
        return [self._row(r) for r in cur.fetchall()]

    @staticmethod
    def _insert(conn: sqlite3.Connection, entry: IndexEntry) -> int:
        m = entry.manifest
        caps = sorted({c.value for c in m.capabilities})
        cur = conn.execute(
            "INSERT INTO packages (name, version, major, minor, patch, prerelease, digest, "
            "signer, author, description, capabilities, manifest, size, installed_at, "
            "canonical) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.name,
                str(m.version),
                m.version.major,
                m.version.minor,
                m.version.patch,
                ".".join(m.version.prerelease),
                entry.digest,
                entry.signer,
                m.author.lower(),
                m.description,
                " ".join(caps),
                canonical_manifest_bytes(m).decode("utf-8"),
                entry.size,
                entry.installed_at,
                canonical_name(m.name),
            ),
        )
        package_id = cur.lastrowid
        assert package_id is not None
        conn.executemany(
            "INSERT INTO package_caps (capability, package_id) VALUES (?, ?)",
            [(c, package_id) for c in caps],
        )
        return package_id

    def bulk_index(self, entries: Iterable[IndexEntry]) -> int:
        """Index many entries in one transaction without package files.

        For :meth:`rebuild_index` and for benchmarks that fill a large index quickly;
        entries whose object file is absent show up in :meth:`check`.
        """
        count = 0
        with self._write("indexing packages") as conn:
            names: set[str] = set()
            for entry in entries:
                self._insert(conn, entry)
                names.add(entry.manifest.name)
                count += 1
            _refresh_spirits(conn, names if len(names) < 1000 else None)
        return count

    def _not_found(self, conn: sqlite3.Connection, name: str) -> VudoError:
        """Why ``name`` was not found: a name no Spirit can have is invalid input (exit 3,
        and a 100,000-character argument never reaches the fuzzy match below)."""
        try:
            validate_name(name, what="Spirit name")
        except InvalidInputError as exc:
            return exc
        same = conn.execute(
            "SELECT name FROM packages WHERE canonical = ? LIMIT 1", (canonical_name(name),)
        ).fetchone()
        if same is not None:
            return NotFoundError(
                f'no installed Spirit named "{name}"', hint=f'did you mean "{same[0]}"?'
            )
        names = (
            [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM spirits_fts WHERE spirits_fts MATCH ? LIMIT 500",
                    (fts_phrase(name[:3]),),
                ).fetchall()
            ]
            if len(name) >= 3
            else []
        )
        if not names:
            names = [r[0] for r in conn.execute("SELECT name FROM spirits LIMIT 5000").fetchall()]
        import difflib  # lazy: only a name that is not installed needs suggestions

        close = difflib.get_close_matches(name, names, n=1)
        hint = f'did you mean "{close[0]}"?' if close else "see `vudo list` or `vudo search`"
        return NotFoundError(f'no installed Spirit named "{name}"', hint=hint)

    # -- install ------------------------------------------------------------------------

    def install(
        self, package: Path, *, policy: TrustPolicy | None = None, registry: str = ""
    ) -> InstallResult:
        """Verify ``package`` and add it to the store (atomic; idempotent if identical).
        ``registry`` (a registry URL) is remembered as where this version came from.

        Raises VerificationError on a bad signature or a trust refusal, and
        InvalidInputError when the same name and version is installed with other bytes.
        """
        from vudo.pkg.archive import digest_package  # lazy: the zip reader, installs only
        from vudo.pkg.signing import check_package  # lazy: nacl only when installing

        # lazy: pkg.trust and nacl (~20 ms) only when installing
        from vudo.pkg.trust import TrustPolicy

        policy = policy or TrustPolicy()
        tmp = self.tmp_dir / f"install-{os.getpid()}-{os.urandom(16).hex()}.partial"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                # One read: the copy, its digest and its members' digests, so checking
                # the copy's signature reads only its headers.
                digest, size, members = digest_package(
                    Path(package), into=fd, hint="pass a .spirit file (build one with `vudo pack`)"
                )
                os.fsync(fd)
            finally:
                os.close(fd)
            verified = check_package(tmp, streamed=members)
            return self._commit_install(tmp, verified, digest, size, policy, registry)
        finally:
            tmp.unlink(missing_ok=True)

    def adopt(
        self,
        download: Path,
        checked: CheckedPackage,
        digest: str,
        *,
        policy: TrustPolicy | None = None,
        registry: str = "",
    ) -> InstallResult:
        """Install a package this process downloaded and checked as it arrived
        (``checked``; ``digest`` is the file's SHA-256, which the download verified) by
        moving the file into the store, not copying and checking it again: the download
        was already a private file written once. On another filesystem it is copied and
        checked as :meth:`install` does."""
        # lazy: pkg.trust and nacl (~20 ms) only when adopting a download
        from vudo.pkg.trust import TrustPolicy

        policy = policy or TrustPolicy()
        tmp = self.tmp_dir / f"install-{os.getpid()}-{os.urandom(16).hex()}.partial"
        try:
            os.replace(download, tmp)
        except FileNotFoundError:
            raise NotFoundError(
                f"the download {download.name} is gone (another vudo installed it meanwhile)",
                hint="run the command again",
            ) from None
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return self.install(download, policy=policy, registry=registry)
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                os.fchmod(fd, 0o644)  # as install's copies (the download was 0600)
                os.fsync(fd)  # downloads are not synced; store objects are
            finally:
                os.close(fd)
            return self._commit_install(tmp, checked, digest, size, policy, registry)
        finally:
            tmp.unlink(missing_ok=True)

    def _commit_install(
        self,
        tmp: Path,
        verified: CheckedPackage,
        digest: str,
        size: int,
        policy: TrustPolicy,
        registry: str = "",
    ) -> InstallResult:
        m = verified.manifest
        with self._write(f"installing {m.name} {m.version}") as conn:
            if registry:
                conn.execute(
                    "UPDATE packages SET registry = ? WHERE name = ? AND version = ? "
                    "AND digest = ?",
                    (registry, m.name, str(m.version), digest),
                )
            existing = conn.execute(
                f"SELECT {COLUMNS} FROM packages WHERE name = ? AND version = ?",
                (m.name, str(m.version)),
            ).fetchone()
            obj = self.object_path(digest)
            if existing is not None:
                row = self._row(existing)
                if row.digest != digest:
                    raise InvalidInputError(
                        f"{m.name} {m.version} is already installed with different contents",
                        hint=f"uninstall it first (`vudo uninstall {m.name}@{m.version}`), "
                        "or publish the change as a new version",
                    )
                if not obj.exists():
                    os.replace(tmp, obj)
                return InstallResult(
                    self._spirit(row),
                    already_installed=True,
                    author_matches=verified.author_matches,
                )
            clash = conn.execute(
                "SELECT name, signer FROM packages WHERE canonical = ? AND name != ? LIMIT 1",
                (canonical_name(m.name), m.name),
            ).fetchone()
            if clash is not None:
                raise InvalidInputError(
                    f'cannot install "{m.name}": "{clash[0]}" (signed by {clash[1][:16]}...) '
                    "is installed, and names are compared without regard to case and to - "
                    "versus _",
                    hint=f'uninstall "{clash[0]}" first if you mean to replace it',
                )
            pinned_row = conn.execute(
                "SELECT signer FROM pins WHERE name = ?", (m.name,)
            ).fetchone()
            trusted = {r[0] for r in conn.execute("SELECT key FROM trusted_keys")}
            from vudo.pkg.trust import decide  # lazy: installs only

            decision: TrustDecision = decide(
                m.name,
                signer=verified.signer,
                author=m.author,
                pinned=pinned_row[0] if pinned_row else None,
                trusted=trusted,
                policy=policy,
            )
            if not obj.exists():
                os.replace(tmp, obj)
                _fsync_dir(self.objects_dir)
            now = self.clock()
            package_id = self._insert(conn, IndexEntry(m, digest, verified.signer, size, now))
            if registry:
                conn.execute(
                    "UPDATE packages SET registry = ? WHERE id = ?", (registry, package_id)
                )
            _refresh_spirits(conn, {m.name})
            if decision.pin is not None:
                conn.execute(
                    "INSERT INTO pins (name, signer, pinned_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET signer = excluded.signer, "
                    "pinned_at = excluded.pinned_at",
                    (m.name, decision.pin, now),
                )
            row = self._row(
                conn.execute(
                    f"SELECT {COLUMNS} FROM packages WHERE id = ?", (package_id,)
                ).fetchone()
            )
        return InstallResult(
            self._spirit(row),
            already_installed=False,
            author_matches=verified.author_matches,
            notes=decision.notes,
        )

    # -- uninstall ----------------------------------------------------------------------

    def uninstall(self, name: str, version: Version | str | None = None) -> list[InstalledSpirit]:
        """Remove one version, or every version (and the grants) when ``version`` is None.

        The signer pin stays: reinstalling later still has to match it.
        """
        trash: list[Path] = []
        with self._write(f"uninstalling {name}") as conn:
            rows = self._rows_for(conn, name)
            if not rows:
                raise self._not_found(conn, name)
            if version is not None:
                wanted = parse_version(str(version))
                rows = [r for r in rows if r.version == wanted]
                if not rows:
                    raise NotFoundError(
                        f"{name} {wanted} is not installed",
                        hint="installed: "
                        + ", ".join(str(r.version) for r in self._rows_for(conn, name)),
                    )
            removed = [self._spirit(r) for r in rows]
            conn.executemany("DELETE FROM packages WHERE id = ?", [(r.id,) for r in rows])
            _refresh_spirits(conn, {name})
            if not conn.execute("SELECT 1 FROM packages WHERE name = ?", (name,)).fetchone():
                conn.execute("DELETE FROM grants WHERE name = ?", (name,))
            for r in rows:
                still = conn.execute(
                    "SELECT 1 FROM packages WHERE digest = ?", (r.digest,)
                ).fetchone()
                obj = self.object_path(r.digest)
                if still is None and obj.exists():
                    target = self.tmp_dir / f"remove-{os.getpid()}-{os.urandom(16).hex()}.spirit"
                    os.replace(obj, target)
                    trash.append(target)
        for path in trash:
            path.unlink(missing_ok=True)
        return removed

    # -- queries ------------------------------------------------------------------------

    def get(self, name: str, requirement: Requirement | str | None = None) -> InstalledSpirit:
        """The highest installed version of ``name`` that ``requirement`` allows."""
        req = _as_requirement(requirement)
        with self._read(f"looking up {name}") as conn:
            rows = self._rows_for(conn, name)
            if not rows:
                raise self._not_found(conn, name)
        best = req.select(r.version for r in rows)
        if best is None:
            versions = ", ".join(str(v) for v in sorted(r.version for r in rows))
            raise NotFoundError(
                f"no installed version of {name} matches {req}", hint=f"installed: {versions}"
            )
        return self._spirit(next(r for r in rows if r.version == best))

    def origin(self, name: str) -> str | None:
        """The registry the highest installed version of ``name`` came from (None when it
        was installed from a file or project, or is not installed)."""
        with self._read(f"looking up {name}") as conn:
            rows = conn.execute(
                "SELECT version, registry FROM packages WHERE name = ?", (name,)
            ).fetchall()
        if not rows:
            return None
        best = max(rows, key=lambda r: _cached_version(r[0]))
        return str(best[1]) or None

    def versions(self, name: str) -> list[InstalledSpirit]:
        """Every installed version of ``name``, lowest first (empty if none)."""
        with self._read(f"looking up {name}") as conn:
            rows = self._rows_for(conn, name)
        return [self._spirit(r) for r in sorted(rows, key=lambda r: r.version)]

    def list(self) -> list[InstalledSpirit]:
        """Every installed version, by name then version."""
        with self._read("listing installed Spirits") as conn:
            rows = [
                self._row(r)
                for r in conn.execute(f"SELECT {COLUMNS} FROM packages ORDER BY name").fetchall()
            ]
        rows.sort(key=lambda r: (r.name, r.version))
        return [self._spirit(r) for r in rows]

    def count(self) -> int:
        with self._read("counting packages") as conn:
            return int(conn.execute("SELECT count(*) FROM packages").fetchone()[0])

    def manifest(self, name: str, version: Version | str) -> Manifest:
        with self._read(f"reading the manifest of {name}") as conn:
            row = conn.execute(
                "SELECT manifest FROM packages WHERE name = ? AND version = ?", (name, str(version))
            ).fetchone()
        if row is None:
            raise NotFoundError(f"{name} {version} is not installed", hint="see `vudo list`")
        return manifest_from_dict(json.loads(row[0]), filename=f"{name}@{version}")

    def info(self, name: str, version: Version | str | None = None) -> SpiritInfo:
        """Details of one installed version: the highest, an exact version, or the
        highest a requirement (``"^1"``) allows."""
        if isinstance(version, str) and not _looks_like_version(version):
            version = self.get(name, version).version
        if version is None:
            spirit = self.get(name)
        else:
            wanted = parse_version(str(version))
            matches = [s for s in self.versions(name) if s.version == wanted]
            if not matches:
                self.get(name)  # raises did-you-mean for an unknown name
                raise NotFoundError(
                    f"{name} {wanted} is not installed",
                    hint="installed: " + ", ".join(str(s.version) for s in self.versions(name)),
                )
            spirit = matches[0]
        return SpiritInfo(
            spirit=spirit,
            manifest=self.manifest(name, spirit.version),
            versions=tuple(s.version for s in self.versions(name)),
            grants=tuple(self.grants_for(name)),
            pinned_signer=self.pinned_signer(name),
        )

    def search(
        self,
        query: str = "",
        *,
        capability: Capability | str | None = None,
        author: str | None = None,
        requirement: Requirement | str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[InstalledSpirit]:
        """Installed Spirits matching ``query``, best first, one (the highest matching
        version) per name.

        Ranking: exact name, then name prefix, then substring of the name, then a match
        in the description only; ties by name. Filters: a capability the version asks
        for, an author or signer key (or key prefix), and a version requirement.
        Substring matching uses the FTS5 trigram index, so cost follows the number of
        hits, not the size of the store.
        """
        check_query(query)
        req = _as_requirement(requirement)
        cap = (
            capability
            if isinstance(capability, Capability) or capability is None
            else parse_capability(capability)
        )
        with self._read(f"searching for {query!r}") as conn:
            raw, ranks = search_rows(
                conn,
                query,
                capability=None if cap is None else cap.value,
                author=author,
                every_version=not req.is_any,
                limit=limit,
            )
        best: dict[str, _Row] = {}
        for row in (self._row(r) for r in raw):
            if not req.matches(row.version):
                continue
            current = best.get(row.name)
            if current is None or row.version > current.version:
                best[row.name] = row
        ordered = sorted(best.values(), key=lambda r: (ranks[r.name], r.name))
        if limit is not None:
            ordered = ordered[:limit]
        return [self._spirit(r) for r in ordered]

    # -- CandidateSource ----------------------------------------------------------------

    def candidates(self, name: str) -> Iterable[Candidate]:
        """Installed versions of ``name`` as resolver candidates (CandidateSource)."""
        with self._read(f"listing versions of {name}") as conn:
            rows = conn.execute(
                "SELECT manifest, digest, signer FROM packages WHERE name = ?", (name,)
            ).fetchall()
        out: list[Candidate] = []
        for manifest_json, digest, signer in rows:
            manifest = manifest_from_dict(json.loads(manifest_json), filename=name)
            out.append(
                candidate_from_manifest(
                    manifest,
                    source=f"registry+{self.source_label}",
                    digest=digest,
                    signer=signer,
                    location=None,
                )
            )
        return out

    def fetch(self, name: str, version: Version | str) -> Path:
        """The object file of an installed version (so the store is a PackageSource)."""
        wanted = parse_version(str(version))
        for spirit in self.versions(name):
            if spirit.version == wanted:
                if not spirit.path.exists():
                    raise StoreDamagedError(
                        f"package file of {spirit.spec} is missing", hint=REPAIR_HINT
                    )
                return spirit.path
        raise NotFoundError(f"{name} {wanted} is not installed", hint="see `vudo list`")

    # -- upgrade ------------------------------------------------------------------------

    def plan_upgrade(
        self, name: str, source: PackageSource, requirement: Requirement | str | None = None
    ) -> UpgradePlan | None:
        """The newest version of ``name`` in ``source`` that ``requirement`` allows and
        that is newer than the installed one, fetched and verified; None if up to date.

        The CLI shows the capability difference of the plan and asks for consent before
        calling :meth:`install` on ``plan.package``.
        """
        current = self.get(name)
        req = _as_requirement(requirement)
        versions = [c.version for c in source.candidates(name)]
        best = req.select(v for v in versions if v > current.version)
        if best is None:
            return None
        package = source.fetch(name, best)
        from vudo.pkg.signing import check_package  # lazy: nacl only when upgrading

        verified = check_package(package)
        if verified.manifest.name != name or verified.manifest.version != best:
            raise VerificationError(
                f"the registry served {verified.manifest.name} {verified.manifest.version} "
                f"for {name} {best}",
                hint="the registry index is wrong or tampered with",
            )
        old_caps = set(current.capabilities)
        new_caps = set(verified.manifest.capabilities)
        return UpgradePlan(
            name=name,
            current=current,
            package=package,
            verified=verified,
            added_capabilities=tuple(sorted(new_caps - old_caps, key=str)),
            removed_capabilities=tuple(sorted(old_caps - new_caps, key=str)),
        )

    def upgrade(
        self,
        name: str,
        source: PackageSource,
        requirement: Requirement | str | None = None,
        *,
        policy: TrustPolicy | None = None,
    ) -> UpgradeResult:
        """Install the highest version ``requirement`` allows from ``source``."""
        plan = self.plan_upgrade(name, source, requirement)
        current = self.get(name)
        if plan is None:
            return UpgradeResult(name=name, old=current, new=current, upgraded=False)
        result = self.install(plan.package, policy=policy)
        return UpgradeResult(
            name=name,
            old=plan.current,
            new=result.spirit,
            upgraded=True,
            added_capabilities=plan.added_capabilities,
            removed_capabilities=plan.removed_capabilities,
            notes=result.notes,
        )

    # -- grants -------------------------------------------------------------------------

    def save_grants(self, name: str, grants: Sequence[Mapping[str, Any]]) -> None:
        """Store the grants made for an installed Spirit (opaque JSON objects)."""
        try:
            text = json.dumps([dict(g) for g in grants], sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"grants for {name} are not JSON: {exc}") from None
        with self._write(f"saving grants for {name}") as conn:
            if not conn.execute("SELECT 1 FROM packages WHERE name = ?", (name,)).fetchone():
                raise self._not_found(conn, name)
            conn.execute(
                "INSERT INTO grants (name, grants, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET grants = excluded.grants, "
                "updated_at = excluded.updated_at",
                (name, text, self.clock()),
            )

    def update_grants(
        self,
        name: str,
        change: Callable[[builtins.list[dict[str, Any]]], Sequence[Mapping[str, Any]]],
    ) -> builtins.list[dict[str, Any]]:
        """Replace ``name``'s grants with ``change(current)`` in one write transaction,
        so two processes granting at once cannot lose each other's grant; returns the
        stored list. ``change`` may raise to leave the grants as they were."""
        with self._write(f"saving grants for {name}") as conn:
            if not conn.execute("SELECT 1 FROM packages WHERE name = ?", (name,)).fetchone():
                raise self._not_found(conn, name)
            row = conn.execute("SELECT grants FROM grants WHERE name = ?", (name,)).fetchone()
            current = [] if row is None else _parse_grants(row[0])
            if current is None:
                raise StoreDamagedError(
                    f"the stored grants of {name} are unreadable",
                    hint="run `vudo repair` to drop them, then grant again",
                )
            try:
                new = [dict(g) for g in change(current)]
                text = json.dumps(new, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"grants for {name} are not JSON: {exc}") from None
            conn.execute(
                "INSERT INTO grants (name, grants, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET grants = excluded.grants, "
                "updated_at = excluded.updated_at",
                (name, text, self.clock()),
            )
        return new

    def grants_for(self, name: str) -> builtins.list[dict[str, Any]]:
        """The grants stored for ``name`` (empty if none)."""
        with self._read(f"reading grants for {name}") as conn:
            row = conn.execute("SELECT grants FROM grants WHERE name = ?", (name,)).fetchone()
        if row is None:
            return []
        value = _parse_grants(row[0])
        if value is None:
            raise StoreDamagedError(
                f"the stored grants of {name} are unreadable",
                hint="run `vudo repair` to drop them, then grant again",
            )
        return value

    # -- trust --------------------------------------------------------------------------

    def trust_key(self, key: str, note: str = "") -> str:
        """Trust ``key`` as a signer for any name (``vudo keys trust``)."""
        from vudo.pkg.keys import parse_public_key  # lazy: nacl

        key = parse_public_key(key)
        with self._write("trusting a key") as conn:
            conn.execute(
                "INSERT INTO trusted_keys (key, note, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET note = excluded.note",
                (key, note, self.clock()),
            )
        return key

    def untrust_key(self, key: str) -> bool:
        from vudo.pkg.keys import parse_public_key  # lazy: nacl

        key = parse_public_key(key)
        with self._write("untrusting a key") as conn:
            return conn.execute("DELETE FROM trusted_keys WHERE key = ?", (key,)).rowcount > 0

    def trusted_keys(self) -> builtins.list[str]:
        with self._read("listing trusted keys") as conn:
            return [r[0] for r in conn.execute("SELECT key FROM trusted_keys ORDER BY key")]

    def pinned_signer(self, name: str) -> str | None:
        with self._read(f"reading the pin of {name}") as conn:
            row = conn.execute("SELECT signer FROM pins WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def pins(self) -> dict[str, str]:
        with self._read("listing pins") as conn:
            return dict(conn.execute("SELECT name, signer FROM pins ORDER BY name").fetchall())

    def unpin(self, name: str) -> bool:
        with self._write(f"unpinning {name}") as conn:
            return conn.execute("DELETE FROM pins WHERE name = ?", (name,)).rowcount > 0

    # -- health -------------------------------------------------------------------------

    def check(self, *, deep: bool = False) -> StoreCheckReport:
        """Compare the index with the files. ``deep`` re-hashes every object file."""
        from vudo.pkg.archive import sha256_file  # lazy: only a check re-hashes

        with self._read("checking the store") as conn:
            integrity = str(conn.execute("PRAGMA quick_check").fetchone()[0])
            present = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            absent = sorted(set(_TABLES) - present)
            if absent:
                integrity = f"missing tables: {', '.join(absent)}"
            rows = conn.execute("SELECT name, version, digest FROM packages").fetchall()
            damaged_grants = (
                tuple(
                    sorted(
                        name
                        for name, raw in conn.execute("SELECT name, grants FROM grants")
                        if _parse_grants(raw) is None
                    )
                )
                if "grants" in present
                else ()
            )
        if integrity == "ok":
            try:
                # the FTS index must agree with its content table
                with self._read("checking the search index") as conn:
                    conn.execute(
                        "INSERT INTO spirits_fts (spirits_fts, rank) VALUES ('integrity-check', 1)"
                    )
            except StoreDamagedError as exc:
                integrity = f"search index: {exc.message}"
        digests = {d for _, _, d in rows}
        files = {p.stem: p for p in self._object_files()}
        orphans = tuple(p for stem, p in sorted(files.items()) if stem not in digests)
        missing = tuple(f"{n}@{v}" for n, v, d in rows if d not in files)
        corrupt: list[str] = []
        if deep:
            for n, v, d in rows:
                path = files.get(d)
                if path is not None and sha256_file(path) != d:
                    corrupt.append(f"{n}@{v}")
        stale = tuple(p for p in sorted(self.tmp_dir.iterdir()) if self._is_stale(p))
        return StoreCheckReport(
            integrity=integrity,
            orphan_objects=orphans,
            stale_temp_files=stale,
            missing_objects=missing,
            corrupt_objects=tuple(corrupt),
            packages=len(rows),
            damaged_grants=damaged_grants,
        )

    @staticmethod
    def _is_stale(path: Path) -> bool:
        parts = path.name.split("-")
        if len(parts) >= 3 and parts[1].isdigit():
            return not _pid_alive(int(parts[1]))
        return True

    def repair(self) -> StoreCheckReport:
        """Fix what :meth:`check` finds: rebuild a damaged index (in place, this store
        then uses the new one), remove orphaned objects and stale temp files, and drop
        index rows whose package file is gone or damaged. Returns what was found."""
        try:
            report = self.check(deep=True)
        except StoreDamagedError as exc:
            report = StoreCheckReport(integrity=f"damaged: {exc.message}")
        if report.integrity != "ok":
            with self._lock:
                self.close()
                rebuilt, count = LocalStore.rebuild_index(self.root, clock=self.clock)
                self._conn, rebuilt._conn = rebuilt._conn, None
            return dataclasses.replace(report, packages=count)
        for path in (*report.orphan_objects, *report.stale_temp_files):
            path.unlink(missing_ok=True)
        if report.damaged_grants:
            # Unreadable consent cannot be trusted or recovered: drop it, ask again.
            with self._write("dropping unreadable grants") as conn:
                for name in report.damaged_grants:
                    conn.execute("DELETE FROM grants WHERE name = ?", (name,))
        broken = {*report.missing_objects, *report.corrupt_objects}
        if broken:
            with self._write("dropping broken index rows") as conn:
                for spec in broken:
                    n, _, v = spec.partition("@")
                    conn.execute("DELETE FROM packages WHERE name = ? AND version = ?", (n, v))
                _refresh_spirits(conn, None)
        return report

    @classmethod
    def rebuild_index(
        cls, root: Path, *, clock: Callable[[], float] = time.time
    ) -> tuple[LocalStore, int]:
        """Rebuild a missing or damaged index from the object files.

        The old index is moved aside (``index.sqlite3.damaged-<time>``); pins, trusted
        keys and grants are copied from it when it can still be read. Every object is
        verified before it is indexed; files that fail are moved aside too. Returns the
        open store and how many packages were indexed.
        """
        from vudo.pkg.archive import digest_package  # lazy: nacl and the zip reader

        # lazy: pkg.signing and nacl (~20 ms) only to rebuild the index
        from vudo.pkg.signing import check_package

        root = Path(root)
        index = root / INDEX_NAME
        salvage = _salvage(index)
        stamp = int(clock())
        for suffix in ("", "-wal", "-shm"):
            old = root / (INDEX_NAME + suffix)
            if old.exists():
                os.replace(old, root / f"{INDEX_NAME}{suffix}.damaged-{stamp}")
        store = cls(root, clock=clock, _rebuilding=True)
        try:
            entries: list[IndexEntry] = []
            for obj in store._object_files():
                try:
                    digest, _, members = digest_package(obj)
                    verified = check_package(obj, streamed=members)
                except VudoError:
                    os.replace(obj, root / f"{obj.name}.damaged")
                    continue
                if digest != obj.stem:
                    os.replace(obj, root / f"{obj.name}.damaged")
                    continue
                entries.append(
                    IndexEntry(
                        verified.manifest,
                        digest,
                        verified.signer,
                        obj.stat().st_size,
                        obj.stat().st_mtime,
                    )
                )
            entries.sort(key=lambda e: (e.manifest.name, e.manifest.version))
            seen: set[tuple[str, str]] = set()
            unique = []
            for e in entries:
                key = (e.manifest.name, str(e.manifest.version))
                if key not in seen:
                    seen.add(key)
                    unique.append(e)
            count = store.bulk_index(unique)
            with store._write("restoring pins, trusted keys and grants") as conn:
                pins = dict(salvage.get("pins", []))
                for e in unique:
                    pins.setdefault(e.manifest.name, e.signer)
                conn.executemany(
                    "INSERT OR REPLACE INTO pins VALUES (?, ?, ?)",
                    [(n, s, clock()) for n, s in pins.items()],
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO trusted_keys VALUES (?, ?, ?)",
                    salvage.get("trusted_keys", []),
                )
                names = {e.manifest.name for e in unique}
                conn.executemany(
                    "INSERT OR REPLACE INTO grants VALUES (?, ?, ?)",
                    [g for g in salvage.get("grants", []) if g[0] in names],
                )
        except BaseException:
            store.close()
            raise
        return store, count


def _looks_like_version(text: str) -> bool:
    try:
        parse_version(text)
    except InvalidInputError:
        return False
    return True


def _refresh_spirits(conn: sqlite3.Connection, names: set[str] | None) -> None:
    """Bring the per-name search rows in line with ``packages`` (all names if None)."""
    if names is None:
        conn.execute(_UPSERT_SPIRITS.format(where="WHERE true"))
        conn.execute("DELETE FROM spirits WHERE name NOT IN (SELECT name FROM packages)")
        return
    for name in names:
        conn.execute(_UPSERT_SPIRITS.format(where="WHERE name = ?"), (name,))
        if not conn.execute("SELECT 1 FROM packages WHERE name = ?", (name,)).fetchone():
            conn.execute("DELETE FROM spirits WHERE name = ?", (name,))


@functools.lru_cache(maxsize=65536)
def _cached_version(text: str) -> Version:
    """Index rows repeat a few version strings many times; parse each once."""
    return parse_version(text)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies contain ``;``)."""
    statements: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def _parse_grants(text: Any) -> list[dict[str, Any]] | None:
    """A stored grants value as a list of dicts, or None when it is not one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    if not isinstance(value, list) or not all(isinstance(g, dict) for g in value):
        return None
    return [dict(g) for g in value]


def _salvage(index: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Read what can still be read from a damaged index (best effort, read-only)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    if not index.exists():
        return out
    try:
        with _sqlite_errors("salvaging the old index"):
            conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    except VudoError:
        return out
    try:
        for table, sql in (
            ("pins", "SELECT name, signer FROM pins"),
            ("trusted_keys", "SELECT key, note, added_at FROM trusted_keys"),
            ("grants", "SELECT name, grants, updated_at FROM grants"),
        ):
            with contextlib.suppress(VudoError), _sqlite_errors("salvaging the old index"):
                out[table] = [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()
    return out


class _NeedsWrite(Exception):
    """A read-only open found an index it must create or migrate first."""


def open_store(home: Path, *, read_only: bool = False, **kwargs: Any) -> LocalStore:
    """The store under a vudo home (``<home>/store``; an older home's is moved there).

    ``read_only`` (list, info, search) opens the index read-only when it exists and is
    up to date, and as usual (creating or migrating it) otherwise.
    """
    migrate_home(home)
    root = store_dir(home)
    if read_only and (root / INDEX_NAME).is_file():
        with contextlib.suppress(_NeedsWrite):
            return LocalStore(root, read_only=True, **kwargs)
    return LocalStore(root, **kwargs)


__all__ = [
    "INDEX_NAME",
    "MAX_QUERY_CHARS",
    "IndexEntry",
    "InstallResult",
    "InstalledSpirit",
    "LocalStore",
    "PackageSource",
    "SpiritInfo",
    "StoreBusyError",
    "StoreCheckReport",
    "StoreDamagedError",
    "UpgradePlan",
    "UpgradeResult",
    "check_query",
    "open_store",
]
