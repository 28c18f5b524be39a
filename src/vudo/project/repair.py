"""``vudo repair``: check the local store deeply and fix what can be fixed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.home import store_dir
from vudo.pkg.store import LocalStore, StoreDamagedError, open_store
from vudo.project.grants import ForeignGrant, check_grants

if TYPE_CHECKING:
    from vudo.engine.ledger import Reservation


@dataclass(frozen=True, slots=True)
class RepairOutcome:
    """What ``vudo repair`` found and did to the local store."""

    rebuilt: bool  # the index was damaged and was rebuilt from the package files
    packages: int
    removed_orphans: int
    removed_temp_files: int
    dropped_rows: tuple[str, ...]  # name@version whose package file was missing or bad
    dropped_grants: tuple[str, ...] = ()  # names whose stored grants were unreadable
    resigned_grants: tuple[tuple[str, int], ...] = ()  # (name, count) by an earlier key
    foreign_grants: tuple[ForeignGrant, ...] = ()  # by a key that is not the user's
    released: tuple[Reservation, ...] = ()  # credit held by runs that were killed

    def to_json(self) -> dict[str, Any]:
        return {
            "rebuilt": self.rebuilt,
            "packages": self.packages,
            "released_reservations": [r.id for r in self.released],
            "removed_orphans": self.removed_orphans,
            "removed_temp_files": self.removed_temp_files,
            "dropped": list(self.dropped_rows),
            "dropped_grants": list(self.dropped_grants),
            "resigned_grants": dict(self.resigned_grants),
            "foreign_grants": [{**g._asdict(), "regrant": g.regrant} for g in self.foreign_grants],
        }


def repair(home: Path) -> RepairOutcome:
    """``vudo repair``: :func:`repair_store`, then release the credit reservations of
    runs that were killed (:func:`vudo.project.credit.release_dead_runs`)."""
    from vudo.project.credit import release_dead_runs  # lazy: the ledger only here

    outcome = repair_store(home)
    released = tuple(release_dead_runs(home=home))
    return dataclasses.replace(outcome, released=released)


def repair_store(home: Path) -> RepairOutcome:
    """Check the local store deeply and fix it: rebuild a damaged index from the package
    files, remove orphaned objects and stale temp files, drop rows whose file is gone;
    then check that the stored grants were made by the user's current key
    (:func:`vudo.project.grants.check_grants`)."""
    try:
        store = open_store(home)  # moves an older home's store first
    except StoreDamagedError:
        store, count = LocalStore.rebuild_index(store_dir(home))
        with store:
            grants = check_grants(store, home)
            return RepairOutcome(
                True,
                count,
                0,
                0,
                (),
                resigned_grants=tuple(sorted(grants.resigned.items())),
                foreign_grants=grants.foreign,
            )
    with store:
        report = store.check(deep=True)
        if not report.ok:
            store.repair()
        grants = check_grants(store, home)
        return RepairOutcome(
            False,
            report.packages,
            len(report.orphan_objects),
            len(report.stale_temp_files),
            (*report.missing_objects, *report.corrupt_objects),
            report.damaged_grants,
            tuple(sorted(grants.resigned.items())),
            grants.foreign,
        )
