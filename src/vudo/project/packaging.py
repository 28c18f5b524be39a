"""``vudo pack``, ``vudo sign``, ``vudo sign --verify`` and ``vudo publish`` for a
project's packages.

Packing builds first when the module is stale, so a package never carries an old module.
Signing defaults to the newest package in ``dist/`` and the user's key in
``~/.vudo/keys``; when the manifest's ``author`` is not the signing key the result says so
(the signature records the real signer either way). Publishing verifies the package and
adds it to a directory registry (default: the built-in one under the home).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.errors import NotFoundError, UsageError
from vudo.pkg.archive import pack
from vudo.pkg.keys import ensure_keypair, load_keypair
from vudo.pkg.registry import HttpRegistry
from vudo.pkg.signing import (
    CheckedPackage,
    SignResult,
    VerifiedPackage,
    sign_package,
    verify_package,
)
from vudo.project.build import build_project
from vudo.project.layout import Progress, no_progress, open_project
from vudo.project.registries import open_spec, registry_label


@dataclass(frozen=True, slots=True)
class PackResult:
    """A package written by :func:`pack_project`."""

    path: Path
    name: str
    version: str
    size: int
    built: bool
    assets: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "built": self.built,
            "assets": list(self.assets),
            "signed": False,
        }


def pack_project(
    path: Path, *, output: Path | None = None, progress: Progress = no_progress
) -> PackResult:
    """Write ``dist/<name>-<version>.spirit`` (or ``output``), building first if stale."""
    project = open_project(path)
    built = False
    if project.is_stale():
        build_project(project.root, progress=progress)
        built = True
    assets_dir = project.root / "assets"
    assets = sorted(p for p in assets_dir.iterdir()) if assets_dir.is_dir() else []
    out = Path(output) if output is not None else project.package_path
    if out.is_dir():  # `-o some/dir`: the usual file name, in that directory
        out = out / project.package_path.name
    progress(f"packing {out.name}")
    written = pack(project.manifest_path, project.wasm_path, out, assets=assets)
    return PackResult(
        path=written,
        name=project.name,
        version=project.version,
        size=written.stat().st_size,
        built=built,
        assets=tuple(p.name for p in assets),
    )


def newest_package(project_dir: Path) -> Path:
    """The most recently written ``.spirit`` file in the project's ``dist/``."""
    dist = Path(project_dir).absolute() / "dist"
    candidates = (
        sorted(dist.glob("*.spirit"), key=lambda p: p.stat().st_mtime_ns) if dist.is_dir() else []
    )
    if not candidates:
        raise NotFoundError(
            f"no package in {dist}", hint="run `vudo pack` first, or name the package"
        )
    return candidates[-1]


def sign_project_package(
    package: Path | None, *, project_dir: Path, home: Path, key: Path | None = None
) -> SignResult:
    """Sign ``package`` (default: newest in ``dist/``) with ``key`` or the user's key."""
    target = Path(package) if package is not None else newest_package(project_dir)
    if not target.is_file():
        raise NotFoundError(f"no package at {target}", hint="run `vudo pack` first")
    keypair = load_keypair(Path(key).expanduser()) if key is not None else ensure_keypair(home)
    return sign_package(target, keypair)


def verify(package: Path) -> VerifiedPackage:
    """Verify every byte of a signed package (VerificationError, exit 4, otherwise)."""
    target = Path(package)
    if not target.is_file():
        raise NotFoundError(f"no package at {target}", hint="check the path")
    return verify_package(target)


@dataclass(frozen=True, slots=True)
class PackageFacts:
    """A package file, verified (``vudo verify``, ``sign --verify``); with
    ``installed_versions`` (``vudo info FILE.spirit``) its manifest too, and which
    versions of its name are installed."""

    path: Path
    verified: CheckedPackage
    installed_versions: tuple[str, ...] | None = None  # None: not looked up

    def to_json(self) -> dict[str, Any]:
        v, m = self.verified, self.verified.manifest
        facts: dict[str, Any] = {
            "path": str(self.path),
            "valid": True,
            "name": m.name,
            "version": str(m.version),
            "signer": v.signer,
            "author": m.author,
            "author_matches": v.author_matches,
            "digest": v.digest,
            "files": [f.to_dict() for f in v.files],
        }
        if self.installed_versions is None:
            return facts
        return {
            **facts,
            "description": m.description,
            "license": m.license,
            "repository": m.repository,
            "capabilities": [c.value for c in m.capabilities],
            "dependencies": {d.name: d.to_value() for d in m.dependencies},
            "installed_versions": list(self.installed_versions),
        }


def inspect_package(package: Path, *, home: Path | None = None) -> PackageFacts:
    """:func:`verify` the package; given ``home``, also find the installed versions of
    its name."""
    verified = verify(package)
    if home is None:
        return PackageFacts(Path(package), verified)
    from vudo.project.installed import list_installed  # lazy: the store only for info

    name = verified.manifest.name
    installed = tuple(str(s.version) for s in list_installed(home) if s.name == name)
    return PackageFacts(Path(package), verified, installed)


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    name: str
    version: str
    digest: str
    signer: str
    registry: str
    path: Path
    already_published: bool
    dry_run: bool = False  # checked only: nothing was written

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "signer": self.signer,
            "registry": self.registry,
            "path": str(self.path),
            "already_published": self.already_published,
            "dry_run": self.dry_run,
        }


def publish(
    package: Path | None,
    *,
    project_dir: Path,
    home: Path,
    registry: str | None = None,
    allow_new_signer: bool = False,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> PublishOutcome:
    """Publish a signed package (default: newest in ``dist/``) to a registry: the one
    ``registry`` names (configured name, URL or path), else the configured default, else
    the built-in directory registry under the home. Verified before anything is written;
    with ``dry_run`` nothing is."""
    target = Path(package) if package is not None else newest_package(project_dir)
    if not target.is_file():
        raise NotFoundError(f"no package at {target}", hint="run `vudo pack` and `vudo sign`")
    reg = open_spec(registry, home=home, progress=progress, label="uploading")
    with reg:
        if isinstance(reg, HttpRegistry):
            raise UsageError(
                f"cannot publish to {reg.url}: HTTP registries are read-only",
                hint="publish to the directory your web server serves "
                "(--registry /path/to/dir), or to an oci:// registry",
            )
        result = reg.publish(target, allow_new_signer=allow_new_signer, dry_run=dry_run)
        label = registry_label(reg)
    return PublishOutcome(
        result.name,
        str(result.version),
        result.digest,
        result.signer,
        label,
        Path(result.path),
        result.already_published,
        dry_run,
    )
