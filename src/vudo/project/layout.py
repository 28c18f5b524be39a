"""Where things live in a Spirit project, and how to open one.

A project is a directory with a manifest (``spirit.toml``) and one source file whose
language decides how ``vudo build`` compiles it::

    my-spirit/spirit.toml
    my-spirit/src/main.wat | src/main.c | src/main.zig | src/lib.rs (+ Cargo.toml)
    my-spirit/target/<name>.wasm            (build output; --release: target/release/)
    my-spirit/target/.vudo-build-debug.json (what that build read and found: BuildStamp)
    my-spirit/dist/<name>-<version>.spirit  (vudo pack)

Every workflow function takes the project directory explicitly; none reads the cwd.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each), and this module is on every ``vudo run``
# path (see vudo.engine.config). Annotations naming a later or TYPE_CHECKING-only class
# are quoted.

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from vudo.errors import NotFoundError
from vudo.hashing import sha256

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
    manifest: "Manifest"
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
        """Whether the debug module is missing or was built from other inputs than the
        sources, manifest and toolchain there now (see :func:`current_build`)."""
        return current_build(self.root) is None


class BuildStamp(NamedTuple):
    """What the last build of one profile recorded: the digest of its inputs and the
    facts it checked (the manifest's name, capabilities and pricing; the module's
    imports, exports and warnings). While the inputs are unchanged these facts stand, so
    ``vudo build`` has nothing to do and ``vudo run DIR`` reads no manifest at all."""

    inputs: str
    name: str
    wasm: Path
    data: bytes
    capabilities: tuple[str, ...]
    pricing: dict[str, int] | None
    imports: tuple[tuple[str, str], ...]
    exports: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    warnings: tuple[tuple[str, str], ...]
    directories: tuple[str, ...] = ()  # the manifest's WASI data directories


def stamp_path(root: Path, *, release: bool = False) -> Path:
    return root / "target" / f".vudo-build-{'release' if release else 'debug'}.json"


def wasm_path(root: Path, name: str, *, release: bool = False) -> Path:
    """Where a build of the profile writes the module (debug and release apart)."""
    return root / "target" / ("release" if release else "") / f"{name}.wasm"


def _toolchain(language: str) -> str:
    """Which compiler builds ``language``: its location and install time (a new version
    is a new install), found without importing or running it."""
    import importlib.util  # lazy: importlib.util (~1 ms) only when a build stamp is checked

    if language == "rust":
        import shutil  # lazy: shutil (~3 ms) only for Rust projects (to find rustc)

        exe = shutil.which("rustc")
        where = Path(exe) if exe else None
    else:
        spec = importlib.util.find_spec("wasmtime" if language == "wat" else "ziglang")
        where = Path(spec.origin).parent if spec is not None and spec.origin else None
    if where is None:
        return f"{language}:none"
    try:
        return f"{language}:{where}:{where.stat().st_mtime_ns}"
    except OSError:
        return f"{language}:{where}:gone"


def input_digest(root: Path, *, release: bool = False) -> str | None:
    """One digest of everything a build's output depends on: the sources, manifest,
    lock, toolchain, profile and vudo version; None when ``root`` is no project."""

    from vudo import __version__  # lazy: as above
    from vudo.pkg import MANIFEST_FILENAMES  # lazy: not for .wat runs

    manifest = next((root / n for n in MANIFEST_FILENAMES if (root / n).is_file()), None)
    found = detect_language(root)
    if manifest is None or found is None:
        return None
    h = sha256()  # small parts only: names and the digests of files
    for part in (
        f"vudo {__version__}",
        f"profile {'release' if release else 'debug'}",
        _toolchain(found[0]),
    ):
        h.update(part.encode() + b"\0")
    for file in [
        manifest,
        root / "Cargo.toml",
        root / "spirit.lock",
        *sorted((root / "src").rglob("*")),
    ]:
        if file.is_file():
            h.update(str(file.relative_to(root)).encode() + b"\0")
            h.update(sha256(file.read_bytes()).digest())
    return h.hexdigest()


def current_build(root: Path, *, release: bool = False) -> BuildStamp | None:
    """The last build of this profile, if its inputs are unchanged and its module is
    still the one it wrote; None otherwise (then build)."""
    import json  # lazy: json (~2 ms) only when a build stamp is read

    root = Path(root).absolute()
    try:
        stamp = json.loads(stamp_path(root, release=release).read_text(encoding="utf-8"))
        if stamp["inputs"] != input_digest(root, release=release):
            return None
        wasm = wasm_path(root, stamp["name"], release=release)
        data = wasm.read_bytes()
        if stamp["wasm_sha256"] != sha256(data).hexdigest():
            return None
        return BuildStamp(
            stamp["inputs"],
            str(stamp["name"]),
            wasm,
            data,
            tuple(str(c) for c in stamp["capabilities"]),
            {str(k): int(v) for k, v in stamp["pricing"].items()} if stamp["pricing"] else None,
            tuple((str(m), str(n)) for m, n in stamp["imports"]),
            tuple((str(n), tuple(p), tuple(r)) for n, p, r in stamp["exports"]),
            tuple((str(m), str(h)) for m, h in stamp["warnings"]),
            tuple(str(d) for d in stamp.get("directories", ())),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no stamp, a damaged one, or no module: build


def write_stamp(root: Path, stamp: BuildStamp, *, release: bool = False) -> None:
    """Record a finished build (atomically: a torn stamp would only mean a rebuild)."""
    import json  # lazy: json (~2 ms): only a build writes the stamp

    from vudo.files import write_atomic_with  # lazy: only a build writes the stamp

    text = json.dumps(
        {
            "inputs": stamp.inputs,
            "name": stamp.name,
            "wasm_sha256": sha256(stamp.data).hexdigest(),
            "capabilities": list(stamp.capabilities),
            "pricing": stamp.pricing,
            "imports": [list(i) for i in stamp.imports],
            "exports": [[n, list(p), list(r)] for n, p, r in stamp.exports],
            "warnings": [list(w) for w in stamp.warnings],
            "directories": list(stamp.directories),
        }
    ).encode()

    def body(fd: int) -> None:
        view = memoryview(text)
        while view:
            view = view[os.write(fd, view) :]

    write_atomic_with(stamp_path(root, release=release), body)


#: A Rust WASI command's source (``vudo new --template rust``): a binary crate.
RUST_BIN_SOURCE = "src/main.rs"


def detect_language(root: Path) -> tuple[str, Path] | None:
    """The project's source language and file, or None when it has no known source."""
    for language, rel in SOURCES.items():
        candidate = root / rel
        if candidate.is_file():
            return language, candidate
    if (root / RUST_BIN_SOURCE).is_file():
        return "rust", root / RUST_BIN_SOURCE
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
