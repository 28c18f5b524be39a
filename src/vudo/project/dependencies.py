"""A project's dependencies: resolve them (``vudo check``) and lock them (``spirit.lock``,
written by ``vudo build``), against the installed Spirits and the registries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vudo.home import git_cache_dir
from vudo.pkg.lockfile import LOCK_FILENAME, Lockfile, read_lockfile, write_lockfile
from vudo.pkg.manifest import load_manifest
from vudo.pkg.resolve import Resolution, resolve
from vudo.pkg.sources import GitSource
from vudo.pkg.store import open_store
from vudo.project.registries import open_registries


def resolve_project_dependencies(
    root: Path, *, home: Path, registries: Sequence[str] = (), locked: bool = False
) -> Resolution:
    """Resolve the project's dependencies against the installed Spirits and the
    registries (``vudo check``); DependencyConflictError or NotFoundError if impossible.
    An existing ``spirit.lock`` is preferred, so a check does not drift from the lock;
    with ``locked`` the resolution must reproduce it exactly (and it must exist)."""
    root = Path(root)
    manifest = load_manifest(root)
    lock_path = root / LOCK_FILENAME
    lock = read_lockfile(lock_path) if locked or lock_path.is_file() else None
    opened = open_registries(registries, home=home)
    try:
        with open_store(home) as store:
            return resolve(
                manifest,
                [store, *opened],
                root_dir=root,
                git=GitSource(git_cache_dir(home)),
                locked=lock if locked else None,
                prefer=None if locked else lock,
            )
    finally:
        for registry in opened:
            registry.close()


def lock_project(
    root: Path, *, home: Path, registries: Sequence[str] = (), locked: bool = False
) -> Path | None:
    """Resolve the project's dependencies and write ``spirit.lock`` (versions, digests,
    signer keys); None when the project has no dependencies (no lock is written). With
    ``locked``, the existing lock must already be exactly right (DependencyConflictError
    otherwise) and is left as it is."""
    root = Path(root)
    if not load_manifest(root).dependencies:
        return None
    resolution = resolve_project_dependencies(root, home=home, registries=registries, locked=locked)
    path = root / LOCK_FILENAME
    if not locked:
        write_lockfile(path, Lockfile.from_resolution(resolution))
    return path
