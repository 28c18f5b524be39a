"""Where dependency candidates come from: registries, local paths and git repositories.

The resolver (:mod:`vudo.pkg.resolve`) only ever asks one question of a registry-like
source: "which versions of ``name`` do you have, and what does each depend on?". That is
the :class:`CandidateSource` protocol; the in-memory source here, the local store and
the remote registries all implement it.

Path and git dependencies are different: each one names exactly one package at one
place, so :class:`PathSource` and :class:`GitSource` load that package's manifest and
turn it into a single :class:`Candidate`.

``Candidate.source`` is a short string recorded in ``spirit.lock``:

* ``path+<dir>`` for a path dependency (relative to the project root when resolving a
  project, so the lock survives moving the project),
* ``git+<url>#<full commit id>`` for a git dependency (the rev resolved to a commit),
* anything else (e.g. ``registry+local``) for registries; chosen by the source.

The ``git`` executable is the one boundary here for git: its failures become
:class:`NotFoundError` (unknown repository or rev, no git installed).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from vudo.errors import InvalidInputError, NotFoundError
from vudo.hashing import sha256
from vudo.pkg.manifest import Dependency, Manifest, load_manifest
from vudo.pkg.versions import Version

__all__ = [
    "Candidate",
    "CandidateSource",
    "GitSource",
    "MemorySource",
    "PathSource",
    "candidate_from_manifest",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One concrete version of a package that the resolver may pick.

    ``digest`` (SHA-256 hex of the package file) and ``signer`` (the Ed25519 public key
    that signed it) are known for signed packages from a registry and None for path and
    git sources, which are unsigned source trees. ``location`` is the directory holding
    the package's manifest when there is one on disk; relative path dependencies of the
    package are resolved against it. ``yanked`` marks a version its publisher withdrew:
    the resolver skips it unless a lock already names it.
    """

    name: str
    version: Version
    dependencies: tuple[Dependency, ...] = ()
    source: str = "memory"
    digest: str | None = None
    signer: str | None = None
    location: Path | None = field(default=None, compare=False, repr=False)
    yanked: bool = False

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@runtime_checkable
class CandidateSource(Protocol):
    """Anything that lists the available versions of a package by name."""

    def candidates(self, name: str) -> Iterable[Candidate]:
        """Every version of ``name`` this source has (any order; empty if none)."""
        ...


def candidate_from_manifest(
    manifest: Manifest,
    *,
    source: str,
    digest: str | None = None,
    signer: str | None = None,
    location: Path | None = None,
) -> Candidate:
    """The candidate a manifest describes (used by stores and registries too)."""
    return Candidate(
        name=manifest.name,
        version=manifest.version,
        dependencies=manifest.dependencies,
        source=source,
        digest=digest,
        signer=signer,
        location=location,
    )


class MemorySource:
    """Candidates held in memory: tests, benchmarks, and registries that load an index."""

    def __init__(self, candidates: Iterable[Candidate] = ()) -> None:
        self._by_name: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            self.add(candidate)

    def add(self, candidate: Candidate) -> None:
        self._by_name.setdefault(candidate.name, []).append(candidate)

    def candidates(self, name: str) -> Iterable[Candidate]:
        return tuple(self._by_name.get(name, ()))

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())


class PathSource:
    """The one package in a local directory (a ``{ path = "../b" }`` dependency)."""

    def __init__(self, directory: Path, *, label: str | None = None) -> None:
        self.directory = Path(directory)
        self.label = label if label is not None else f"path+{self.directory.resolve()}"

    def candidate(self) -> Candidate:
        if not self.directory.is_dir():
            raise NotFoundError(
                f"path dependency directory {self.directory} does not exist",
                hint="fix the path in [dependencies] (it is relative to the "
                "manifest that names it)",
            )
        manifest = load_manifest(self.directory)
        return candidate_from_manifest(
            manifest, source=self.label, location=self.directory.resolve()
        )

    def candidates(self, name: str) -> Iterable[Candidate]:
        candidate = self.candidate()
        if candidate.name != name:
            raise InvalidInputError(
                f'path dependency "{name}" at {self.directory} is a Spirit named '
                f'"{candidate.name}"',
                hint=f'rename the dependency to "{candidate.name}" or '
                "point the path at the right directory",
            )
        return (candidate,)


_FULL_SHA = re.compile(r"[0-9a-f]{40}")


class GitSource:
    """Git dependencies, fetched with the ``git`` executable into a cache directory.

    Each repository is mirrored once (``<cache>/<hash of url>/repo.git``) and each
    commit is exported once into ``<cache>/<hash of url>/<commit>/`` (read-only use:
    nothing is ever checked out in place, so concurrent resolutions do not fight over
    a work tree). A rev may be a commit id, a tag or a branch; it is resolved to a full
    commit id, which is what the lock records. A branch or tag is re-fetched on each
    use so it follows the remote; a full commit id already present is not.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        git: str = "git",
        environ: Mapping[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.git = git
        env = dict(os.environ if environ is None else environ)
        env["GIT_TERMINAL_PROMPT"] = "0"
        self.environ = env
        self.timeout = timeout
        self._resolved: dict[tuple[str, str], str] = {}

    def _run(self, args: list[str], *, what: str) -> bytes:
        """Run git; the one place its failures are translated."""
        import subprocess  # lazy: only git dependencies run a process

        try:
            proc = subprocess.run(
                [self.git, *args],
                capture_output=True,
                env=self.environ,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise NotFoundError(
                f"cannot {what}: the git executable was not found",
                hint="install git, or use a path or registry dependency",
            ) from None
        except subprocess.TimeoutExpired:
            raise NotFoundError(
                f"cannot {what}: git took longer than {self.timeout:.0f} s",
                hint="check the repository URL and your network",
            ) from None
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            last = detail[-1] if detail else f"git exited with {proc.returncode}"
            raise NotFoundError(
                f"cannot {what}: {last}", hint="check the git URL and rev in [dependencies]"
            )
        return proc.stdout

    def _mirror(self, url: str) -> Path:

        return self.cache_dir / sha256(url.encode()).hexdigest()[:16]

    def resolve_rev(self, url: str, rev: str) -> str:
        """The full commit id ``rev`` names in ``url`` (fetching as needed)."""
        key = (url, rev)
        if key in self._resolved:
            return self._resolved[key]
        base = self._mirror(url)
        repo = base / "repo.git"
        if not repo.is_dir():
            import shutil  # lazy: only a first clone needs them
            import tempfile  # lazy: tempfile (~7 ms) only to clone or export a git tree

            base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="clone-", dir=base))
            try:
                self._run(
                    ["clone", "--bare", "--quiet", "--", url, str(tmp / "repo.git")],
                    what=f"clone {url}",
                )
                try:
                    (tmp / "repo.git").rename(repo)
                except OSError:
                    if not repo.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif not (_FULL_SHA.fullmatch(rev) and self._commit(repo, rev)):
            self._run(
                [
                    "--git-dir",
                    str(repo),
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--tags",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                ],
                what=f"fetch {url}",
            )
        commit = self._commit(repo, rev)
        if commit is None:
            raise NotFoundError(
                f'git rev "{rev}" not found in {url}',
                hint="use an existing commit id, tag or branch",
            )
        self._resolved[key] = commit
        return commit

    def _commit(self, repo: Path, rev: str) -> str | None:
        if rev.startswith("-"):
            return None
        try:
            out = self._run(
                ["--git-dir", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                what="resolve rev",
            )
        except NotFoundError:
            return None
        return out.decode().strip() or None

    def checkout(self, url: str, rev: str) -> tuple[Path, str]:
        """The exported tree of ``rev`` (directory, full commit id)."""
        commit = self.resolve_rev(url, rev)
        base = self._mirror(url)
        target = base / commit
        if not target.is_dir():
            import shutil  # lazy: shutil (~3 ms) only to export a git tree
            import tarfile  # lazy: tarfile (~5 ms) only to export a git tree
            import tempfile  # lazy: tempfile (~7 ms) only to clone or export a git tree

            data = self._run(
                ["--git-dir", str(base / "repo.git"), "archive", "--format=tar", commit],
                what=f"export {commit[:12]} of {url}",
            )
            tmp = Path(tempfile.mkdtemp(prefix="tree-", dir=base))
            try:
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                        archive.extractall(tmp, filter="data")
                except tarfile.TarError as exc:  # e.g. a link pointing outside the tree
                    raise InvalidInputError(
                        f"git dependency {url} at {commit[:12]} has an unsafe file: {exc}",
                        hint="vudo only uses repositories whose files stay inside the tree",
                    ) from None
                try:
                    tmp.rename(target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target, commit

    def source_label(self, url: str, rev: str) -> str:
        return f"git+{url}#{self.resolve_rev(url, rev)}"

    def candidate(self, url: str, rev: str) -> Candidate:
        directory, commit = self.checkout(url, rev)
        try:
            manifest = load_manifest(directory)
        except NotFoundError:
            raise NotFoundError(
                f"no spirit.toml at the root of {url} at {rev}",
                hint="point the dependency at a repository holding a Spirit",
            ) from None
        return candidate_from_manifest(manifest, source=f"git+{url}#{commit}", location=directory)
