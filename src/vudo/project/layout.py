"""Where things live in a Spirit project, and how to open one.

A project is a directory with a manifest (``spirit.toml``) and one source file whose
language decides how ``vudo build`` compiles it::

    my-spirit/spirit.toml
    my-spirit/src/main.wat | src/main.c | src/main.zig | src/lib.rs (+ Cargo.toml)
    my-spirit/target/<name>.wasm            (build output)
    my-spirit/dist/<name>-<version>.spirit  (vudo pack)

Every workflow function takes the project directory explicitly; none reads the cwd.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from vudo.errors import NotFoundError

if TYPE_CHECKING:
    from vudo.pkg.manifest import Manifest

#: Called with one short human line while long work goes on (building, testing, ...).
Progress = Callable[[str], None]

#: Source file of each template language, relative to the project root, in detection order.
SOURCES: dict[str, str] = {
    "wat": "src/main.wat",
    "c": "src/main.c",
    "zig": "src/main.zig",
    "rust": "src/lib.rs",
}


def no_progress(_line: str) -> None:
    """The default progress sink: ignore."""


class Project(NamedTuple):
    """An opened project: its root, manifest and source language.

    A NamedTuple, not a frozen dataclass, because ``vudo run`` imports this module for
    :data:`Progress` on every start and a NamedTuple is several times cheaper to define.
    """

    root: Path
    manifest_path: Path
    manifest: Manifest
    language: str
    source: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return str(self.manifest.version)

    @property
    def wasm_path(self) -> Path:
        """Where ``vudo build`` writes the module."""
        return self.root / "target" / f"{self.name}.wasm"

    @property
    def dist_dir(self) -> Path:
        return self.root / "dist"

    @property
    def package_path(self) -> Path:
        """Where ``vudo pack`` writes the package by default."""
        return self.dist_dir / f"{self.name}-{self.version}.spirit"

    def is_stale(self) -> bool:
        """Whether the built module is missing or older than the source or manifest."""
        try:
            built = self.wasm_path.stat().st_mtime_ns
        except FileNotFoundError:
            return True
        inputs = [self.manifest_path, *sorted((self.root / "src").rglob("*"))]
        cargo = self.root / "Cargo.toml"
        if cargo.exists():
            inputs.append(cargo)
        return any(p.is_file() and p.stat().st_mtime_ns > built for p in inputs)


def detect_language(root: Path) -> tuple[str, Path] | None:
    """The project's source language and file, or None when it has no known source."""
    for language, rel in SOURCES.items():
        candidate = root / rel
        if candidate.is_file():
            return language, candidate
    return None


def open_project(path: Path) -> Project:
    """Open the project at ``path``; NotFoundError with a hint when it is not one."""
    root = Path(path).absolute()
    if not root.is_dir():
        raise NotFoundError(
            f"no Spirit project at {root}: not a directory",
            hint="pass --path DIR, or create one with `vudo new NAME`",
        )
    from vudo.pkg.manifest import find_manifest, load_manifest  # lazy: not for .wat runs

    manifest_path = find_manifest(root)
    manifest = load_manifest(manifest_path)
    found = detect_language(root)
    if found is None:
        raise NotFoundError(
            f"no source file in {root / 'src'}",
            hint="add one of " + ", ".join(SOURCES.values()),
        )
    language, source = found
    return Project(root, manifest_path, manifest, language, source)
