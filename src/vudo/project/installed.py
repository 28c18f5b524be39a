"""What is installed: list, search, inspect and load Spirits from the local store.

``vudo list``, ``vudo search``, ``vudo info`` and ``vudo run NAME`` read the store
through these; installing and removing is :mod:`vudo.project.installing`.

``vudo search`` reads the index through :mod:`vudo.pkg.index` alone (sqlite3, no manifest
or version parser), so this module imports the store only inside the functions that open
it, and its values are :func:`collections.namedtuple` records (see the :mod:`vudo`
package docstring): a search process is over in a few tens of ms, and the store's imports
(``dataclasses`` among them) would more than double that.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Iterator
from pathlib import Path

from vudo.errors import UsageError, VudoError
from vudo.home import migrate_home, store_dir
from vudo.pkg.index import IndexedSpirit, open_current, search_rows, store_errors

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:  # list, search and info need neither nacl nor the grants module
    import sqlite3
    from typing import Any

    from vudo.engine.grants import Grant
    from vudo.pkg.manifest import Manifest
    from vudo.pkg.store import InstalledSpirit, SpiritInfo
    from vudo.project.grants import GrantRow


def split_spec(spec: str) -> tuple[str, str | None]:
    """``name@req`` -> (name, req); a bare name gives (name, None)."""
    name, sep, req = spec.partition("@")
    name = name.strip()
    if not name:
        raise UsageError(f'"{spec}" names no Spirit', hint="e.g. hello-spirit@^0.1")
    return name, (req.strip() or None) if sep else None


def list_installed(home: Path) -> list[InstalledSpirit]:
    """Read-only (these commands work on a store the user cannot write)."""
    from vudo.pkg.store import open_store  # lazy: search reads the index without it

    with open_store(home, read_only=True) as store:
        return store.list()


def search_installed(
    query: str, *, home: Path, capability: str | None = None, author: str | None = None
) -> list[IndexedSpirit]:
    """The installed Spirits matching ``query``, best first, the highest release of each
    (:meth:`LocalStore.search <vudo.pkg.store.LocalStore.search>`'s ranking and filters),
    read from the index as it records them. The index is opened read-only when it is up
    to date; a missing or older one is first made or migrated by the store, as any
    read-only open of the store does."""
    cap = None
    if capability:
        from vudo.capabilities import parse_capability  # lazy: only with --capability

        cap = parse_capability(capability)
    migrate_home(home)
    root = store_dir(home)

    def found(conn: sqlite3.Connection) -> list[IndexedSpirit]:
        with store_errors(f"searching for {query!r}"):
            raw, ranks = search_rows(
                conn, query, capability=None if cap is None else cap.value, author=author
            )
        raw.sort(key=lambda r: (ranks[r[1]], r[1]))
        return [IndexedSpirit.from_row(root, r) for r in raw]

    conn = open_current(root)
    if conn is None:
        from vudo.pkg.store import open_store  # lazy: only to create or migrate the index

        with open_store(home, read_only=True) as store:
            return found(store.conn)
    try:
        return found(conn)
    finally:
        conn.close()


class InstalledInfo(namedtuple("InstalledInfo", "info grants")):
    """``vudo info NAME``: what the store knows of an installed version, with its stored
    grants checked (:func:`vudo.project.grants.grant_rows`)."""

    __slots__ = ()
    if TYPE_CHECKING:
        info: SpiritInfo
        grants: tuple[GrantRow, ...]

    def to_json(self) -> dict[str, Any]:
        m = self.info.manifest
        return {
            **self.info.spirit.to_json(),
            "license": m.license,
            "repository": m.repository,
            "versions": [str(v) for v in self.info.versions],
            "pinned_signer": self.info.pinned_signer,
            "grants": [g.to_json() for g in self.grants],
            "dependencies": {d.name: d.to_value() for d in m.dependencies},
        }


def info_installed(spec: str, *, home: Path) -> InstalledInfo:
    from vudo.pkg.store import open_store  # lazy: search reads the index without it
    from vudo.project.grants import grant_rows  # lazy: nacl only to check the grants shown

    name, version = split_spec(spec)
    with open_store(home, read_only=True) as store:
        info = store.info(name, version)
    return InstalledInfo(info, tuple(grant_rows(info.grants)))


class LoadedSpirit(namedtuple("LoadedSpirit", "manifest module signer grants installed")):
    """An installed Spirit, re-verified, with the grants stored for it."""

    __slots__ = ()
    if TYPE_CHECKING:
        manifest: Manifest
        module: bytes
        signer: str
        grants: tuple[Grant, ...]
        installed: InstalledSpirit


def installed_spirit(spec: str, *, home: Path) -> LoadedSpirit:
    """Load ``name[@requirement]`` from the store; its package is verified again."""
    from vudo.pkg.store import open_store  # lazy: search reads the index without it

    name, req = split_spec(spec)
    with open_store(home) as store:
        spirit = store.get(name, req)
        stored = store.grants_for(name)
    from vudo.pkg.signing import verify_package  # lazy: nacl only when loading a Spirit

    verified = verify_package(spirit.path)
    grants = tuple(readable_grants(stored))
    return LoadedSpirit(verified.manifest, verified.module, verified.signer, grants, spirit)


def stored_grants(name: str, *, home: Path) -> tuple[Grant, ...]:
    """The grants stored for installed Spirit ``name`` right now (none once uninstalled):
    what a running sandbox re-reads so that `vudo revoke` reaches it."""
    from vudo.pkg.store import open_store  # lazy: search reads the index without it

    with open_store(home, read_only=True) as store:
        return tuple(readable_grants(store.grants_for(name)))


def readable_grants(stored: Iterable[dict[str, Any]]) -> Iterator[Grant]:
    """The stored grants that parse. A malformed one is skipped, as the sandbox skips a
    forged one: it grants nothing either way, and `vudo info` shows it as INVALID."""
    from vudo.engine.grants import Grant  # lazy: list/search/info never parse grants

    for data in stored:
        try:
            yield Grant.from_dict(data)
        except VudoError:
            continue
