"""Workspace trust: consent before building or running a project folder you did not write.

Building a project runs a compiler on its sources (C ``#embed`` can read any file the user
can, cargo runs ``build.rs``), and running it grants the capabilities its manifest declares.
So, as an editor's workspace trust does, ``vudo run DIR``, ``vudo test``, ``vudo build`` and
``vudo tui`` ask once per folder before doing either, and remember the answer per real path
and capability set in ``<home>/trusted.json``; a manifest that later asks for more
(a wider set) is asked about again.

Trusted without asking:

* folders ``vudo new`` made on this machine (recorded when it made them; the user writes
  their code, so editing their capabilities asks nothing);
* projects whose manifest ``author`` is the user's own key. Caveat: a public key is public,
  so anyone can write it into a manifest; this trusts the claim;
* the examples shipped with vudo (by real path inside the installed package, or the source
  checkout vudo runs from), so the README's ``vudo run examples/hello`` works on a fresh home.

:func:`check_trust` is the one question (trusted, or what to ask); :func:`trust` and
:func:`untrust` remember and forget (``vudo trust DIR`` / ``vudo untrust DIR``).

The check runs before every ``vudo run DIR``: its values are NamedTuples, not frozen
dataclasses (see the :mod:`vudo` package docstring).
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each), and this module is on every ``vudo run``
# path (see vudo.engine.config).

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import vudo
from vudo.capabilities import AnyCapability, parse_capability
from vudo.errors import InvalidInputError, NotFoundError, VudoError
from vudo.files import write_atomic
from vudo.home import old_trusted_file, trusted_file
from vudo.project.layout import current_build, open_project

__all__ = [
    "TrustRequest",
    "TrustedFolder",
    "bundled_roots",
    "check_trust",
    "remember_created",
    "trust",
    "trusted_folders",
    "untrust",
]

#: Why a folder needs no question, or was trusted.
CREATED, CONSENT = "created", "consent"


class TrustedFolder(NamedTuple):
    """One remembered folder: its real path, the capabilities trusted, and why."""

    path: Path
    capabilities: tuple[AnyCapability, ...]
    reason: str
    trusted_at: int

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "capabilities": [c.value for c in self.capabilities],
            "reason": self.reason,
            "trusted_at": self.trusted_at,
        }


class TrustRequest(NamedTuple):
    """What a folder asks before it may be built or run. ``previous`` is the set trusted
    before, when the manifest now asks for more (a widened set)."""

    root: Path
    name: str
    language: str
    capabilities: tuple[AnyCapability, ...]
    previous: tuple[AnyCapability, ...] | None = None

    @property
    def added(self) -> tuple[AnyCapability, ...]:
        before = set(self.previous or ())
        return tuple(c for c in self.capabilities if c not in before)

    def build_warning(self) -> str:
        """What building it does, in words (the compiler reads and runs what it is told)."""
        if self.language == "rust":
            return "building runs cargo on its sources: its build.rs and macros run as you"
        if self.language == "c":
            return "building runs the C compiler on its sources: #embed can read any file you can"
        if self.language == "zig":
            return (
                "building runs the Zig compiler on its sources: @embedFile can read files you can"
            )
        return "building compiles its WAT source (none of its code runs while building)"


def bundled_roots() -> tuple[Path, ...]:
    """Where the examples shipped with vudo live: inside the installed package, and in the
    source checkout vudo runs from (``src/vudo`` beside ``examples``)."""
    package = Path(vudo.__file__).resolve().parent
    roots = [package / "examples"]
    checkout = package.parent.parent
    if (checkout / "pyproject.toml").is_file() and package.parent.name == "src":
        roots.append(checkout / "examples")
    return tuple(r for r in roots if r.is_dir())


def _real(root: Path) -> Path:
    return Path(root).resolve()


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[Path]:
    """The trust file, locked against other vudo processes for a read-modify-write."""
    path = trusted_file(home)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield path
    except OSError as exc:
        raise VudoError(
            f"cannot update {path}: {exc.strerror or exc}",
            hint="check that the vudo home is writable",
        ) from exc


def _read(path: Path) -> list[TrustedFolder]:
    """The folders listed in ``path`` (``trusted.json``), or in an older home's
    ``trusted.toml`` while there is no ``trusted.json`` yet."""
    try:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            data = _read_old(old_trusted_file(path.parent))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:  # JSON and TOML decode errors are ValueErrors
        raise InvalidInputError(
            f"{path} is damaged: {exc}",
            hint="fix it by hand, or delete it to trust folders again from scratch",
        ) from None
    folders = []
    for entry in data.get("folder", []):
        try:
            caps = tuple(parse_capability(c) for c in entry.get("capabilities", []))
            folders.append(
                TrustedFolder(
                    Path(entry["path"]), caps, str(entry["reason"]), int(entry.get("trusted_at", 0))
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError, VudoError):
            continue  # an entry that does not parse trusts nothing
    return folders


def _read_old(path: Path) -> dict[str, object]:
    """An older home's ``trusted.toml`` (the same entries, as ``[[folder]]`` tables)."""
    import tomllib  # lazy: tomllib (~5 ms) only for a home not yet moved to JSON

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def _write(path: Path, folders: list[TrustedFolder]) -> None:
    document = {
        "about": "Folders you trust vudo to build and run (`vudo trust` / `vudo untrust`).",
        "folder": [f.to_json() for f in sorted(folders, key=lambda f: str(f.path))],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8"), what="trust file")
    old = old_trusted_file(path.parent)
    old.unlink(missing_ok=True)
    old.with_name(old.name + ".lock").unlink(missing_ok=True)


def _record(home: Path, root: Path, caps: tuple[AnyCapability, ...], reason: str) -> TrustedFolder:
    real = _real(root)
    try:
        str(real).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{root} is not a UTF-8 path", hint="rename the folder") from None
    entry = TrustedFolder(real, caps, reason, int(time.time()))
    with _locked(home) as path:
        folders = [f for f in _read(path) if f.path != real]
        _write(path, [*folders, entry])
    return entry


def trusted_folders(home: Path) -> list[TrustedFolder]:
    """Every folder remembered as trusted."""
    return _read(trusted_file(home))


def remember_created(root: Path, *, home: Path) -> None:
    """``vudo new`` made ``root`` on this machine: trust it for good."""
    _record(home, root, (), CREATED)


def trust(root: Path, *, home: Path) -> TrustedFolder:
    """Trust the project at ``root`` with the capabilities its manifest asks for now."""
    project = open_project(root)
    return _record(home, project.root, tuple(project.manifest.capabilities), CONSENT)


def untrust(root: Path, *, home: Path) -> TrustedFolder:
    """Forget ``root``; NotFoundError if it was not trusted."""
    real = _real(root)
    with _locked(home) as path:
        folders = _read(path)
        gone = [f for f in folders if f.path == real]
        if not gone:
            raise NotFoundError(f"{root} is not a trusted folder", hint="see `vudo trust --list`")
        _write(path, [f for f in folders if f.path != real])
    return gone[0]


def check_trust(root: Path, *, home: Path) -> TrustRequest | None:
    """None when the project at ``root`` may be built and run; else what to ask the user.

    A folder already trusted is answered without parsing its manifest when its last build
    stands (the build stamp records the capabilities the manifest declared): this check
    runs before every ``vudo run DIR``, so it must cost next to nothing.
    """
    real = _real(root)
    if real.is_file():  # a manifest path names its project
        real = real.parent
    if any(real.is_relative_to(b) for b in bundled_roots()):
        return None
    remembered = [f for f in trusted_folders(home) if f.path == real]
    if any(f.reason == CREATED for f in remembered):
        return None
    stamp = current_build(real) if remembered else None
    if stamp is not None and any(
        set(stamp.capabilities) <= {c.value for c in f.capabilities} for f in remembered
    ):
        return None
    project = open_project(root)
    caps = tuple(project.manifest.capabilities)
    previous: tuple[AnyCapability, ...] | None = None
    for folder in remembered:
        if set(caps) <= set(folder.capabilities):
            return None
        previous = folder.capabilities
    if previous is None:
        from vudo.pkg.keys import ensure_keypair  # lazy: nacl only for an unknown folder

        if project.manifest.author == ensure_keypair(home).public_hex:
            return None
    return TrustRequest(real, project.name, project.language, caps, previous)
