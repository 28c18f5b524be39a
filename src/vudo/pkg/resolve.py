"""Dependency resolution: a backtracking resolver on resolvelib (the resolver pip uses).

Given the root's dependencies and where to look (:mod:`vudo.pkg.sources`), pick one
version of every package reachable from the root such that every requirement holds.
Registry dependencies prefer the highest matching version; when a choice leads to a
conflict further down, resolvelib backtracks and tries the next one, so a newer version
whose own dependencies cannot be met is skipped for an older one that works.

When no combination works, :class:`DependencyConflictError` says who needs what, in
words a user can act on::

    cannot resolve b: a 1.2.0 needs b ^2, c 0.4.0 needs b <2

Optional dependencies are left out unless named in ``with_optional``. With ``locked``
(``--locked``), the resolution must reproduce the lock exactly (same packages, versions,
sources and digests), else the error lists what would change. With ``prefer`` (a
previous lock), locked versions are tried first so re-resolving does not upgrade
anything that still fits.

resolvelib's exceptions are translated in :func:`resolve`, and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep, ResolverException

from vudo.errors import DependencyConflictError, InvalidInputError, NotFoundError, VudoError
from vudo.pkg.lockfile import Lockfile
from vudo.pkg.manifest import Dependency, Manifest
from vudo.pkg.sources import Candidate, CandidateSource, GitSource, PathSource
from vudo.pkg.versions import Version

__all__ = ["Resolution", "resolve"]

_HINT = ("relax one of these requirements, or pick versions of the packages that need it "
         "which agree")


@dataclass(frozen=True, slots=True)
class _Req:
    """One dependency edge: ``parent`` (None for the root) needs ``dependency``."""

    dependency: Dependency
    parent: Candidate | None
    base: Path | None  # directory relative path dependencies are resolved against
    checked: dict[int, bool] = field(default_factory=dict, compare=False, hash=False,
                                     repr=False)  # id(candidate) -> satisfied

    @property
    def name(self) -> str:
        return self.dependency.name

    def describe(self) -> str:
        dep = self.dependency
        if dep.kind == "path":
            where = f"from path {dep.path}"
        elif dep.kind == "git":
            where = f"from git {dep.git} rev {dep.rev}"
        else:
            return f"{dep.name} {dep.requirement}" + (
                f" from registry {dep.registry}" if dep.registry else "")
        if dep.requirement.is_any:
            return f"{dep.name} {where}"
        return f"{dep.name} {dep.requirement} {where}"


def _version_key(c: Candidate) -> Version:
    """SemVer precedence (build metadata ignored)."""
    key: Version = c.version.truncate("prerelease")
    return key


@dataclass(frozen=True, slots=True)
class Resolution(Mapping[str, Candidate]):
    """The chosen candidates, name -> Candidate, iterated in install order (every package
    after its dependencies; ties broken by name so the order is stable)."""

    packages: tuple[Candidate, ...]
    edges: tuple[tuple[str, str], ...] = ()
    """(dependent, dependency) pairs; the root is ``""``."""
    _index: dict[str, Candidate] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c.name: c for c in self.packages})

    def __getitem__(self, name: str) -> Candidate:
        return self._index[name]

    def __iter__(self) -> Iterator[str]:
        return (c.name for c in self.packages)

    def __len__(self) -> int:
        return len(self.packages)

    def dependencies_of(self, name: str) -> tuple[str, ...]:
        """Names ``name`` depends on in this resolution (``""`` for the root)."""
        return tuple(sorted(child for parent, child in self.edges if parent == name))


class _Provider(AbstractProvider[_Req, Candidate, str]):
    def __init__(self, sources: Sequence[CandidateSource],
                 registries: Mapping[str, CandidateSource], git: GitSource | None,
                 root_dir: Path | None, with_optional: Collection[str],
                 preferred: Mapping[str, tuple[Version, str]]) -> None:
        self.sources = sources
        self.registries = registries
        self.git = git
        self.root_dir = root_dir
        self.with_optional = with_optional
        self.preferred = preferred
        self._registry_pool: dict[tuple[str, str | None], list[Candidate]] = {}
        self._direct: dict[str, Candidate] = {}

    # -- sources ------------------------------------------------------------

    def _path_dir(self, req: _Req) -> Path:
        assert req.dependency.path is not None
        if req.base is None:
            parent = req.parent
            raise InvalidInputError(
                f"{parent} from {parent.source if parent else 'the request'} has a path "
                f'dependency "{req.name}", which only works in a local project',
                hint="depend on a registry or git version instead")
        return (req.base / req.dependency.path).resolve()

    def _path_label(self, directory: Path) -> str:
        if self.root_dir is not None:
            rel = os.path.relpath(directory, self.root_dir.resolve())
            return "path+" + Path(rel).as_posix()
        return f"path+{directory}"

    def _git_source(self, req: _Req) -> GitSource:
        if self.git is None:
            raise InvalidInputError(f'"{req.name}" is a git dependency but no git cache was '
                                    "given to the resolver",
                                    hint="pass git=GitSource(cache_dir) to resolve()")
        return self.git

    def source_label(self, req: _Req) -> str | None:
        dep = req.dependency
        if dep.kind == "path":
            return self._path_label(self._path_dir(req))
        if dep.kind == "git":
            assert dep.git is not None and dep.rev is not None
            return self._git_source(req).source_label(dep.git, dep.rev)
        return None

    def direct_candidate(self, req: _Req) -> Candidate:
        label = self.source_label(req)
        assert label is not None
        if label not in self._direct:
            dep = req.dependency
            if dep.kind == "path":
                candidate = PathSource(self._path_dir(req), label=label).candidates(dep.name)
                self._direct[label] = next(iter(candidate))
            else:
                assert dep.git is not None and dep.rev is not None
                found = self._git_source(req).candidate(dep.git, dep.rev)
                if found.name != dep.name:
                    raise InvalidInputError(
                        f'git dependency "{dep.name}" ({dep.git}) is a Spirit named '
                        f'"{found.name}"', hint=f'rename the dependency to "{found.name}"')
                self._direct[label] = found
        return self._direct[label]

    def registry_pool(self, name: str, registry: str | None) -> list[Candidate]:
        key = (name, registry)
        if key not in self._registry_pool:
            if registry is not None:
                if registry not in self.registries:
                    known = ", ".join(sorted(self.registries)) or "none configured"
                    raise NotFoundError(f'unknown registry "{registry}" (needed for {name})',
                                        hint=f"known registries: {known}")
                sources: Sequence[CandidateSource] = (self.registries[registry],)
            else:
                sources = self.sources
            seen: dict[Version, Candidate] = {}
            for source in sources:
                for candidate in source.candidates(name):
                    if candidate.name == name and candidate.version not in seen:
                        seen[candidate.version] = candidate
            self._registry_pool[key] = sorted(seen.values(), key=_version_key, reverse=True)
        return self._registry_pool[key]

    def pool(self, name: str, reqs: Sequence[_Req]) -> list[Candidate]:
        for req in reqs:
            if req.dependency.kind != "registry":
                return [self.direct_candidate(req)]
        registry = next((r.dependency.registry for r in reqs if r.dependency.registry), None)
        return self.registry_pool(name, registry)

    # -- resolvelib interface ------------------------------------------------

    def identify(self, requirement_or_candidate: _Req | Candidate) -> str:
        return requirement_or_candidate.name

    def get_preference(self, identifier: str, resolutions: Mapping[str, Candidate],
                       candidates: Mapping[str, Iterator[Candidate]],
                       information: Mapping[str, Iterator[Any]],
                       backtrack_causes: Sequence[Any]) -> Any:
        infos = list(information[identifier])
        direct = any(i.requirement.dependency.kind != "registry" for i in infos)
        from_root = any(i.parent is None for i in infos)
        in_conflict = any(c.requirement.name == identifier for c in backtrack_causes)
        return (not direct, not in_conflict, not from_root, identifier)

    def narrow_requirement_selection(self, identifiers: Iterable[str],
                                     resolutions: Mapping[str, Candidate],
                                     candidates: Mapping[str, Iterator[Candidate]],
                                     information: Mapping[str, Iterator[Any]],
                                     backtrack_causes: Sequence[Any]) -> Iterable[str]:
        names = list(identifiers)
        if backtrack_causes:
            causes = {c.requirement.name for c in backtrack_causes}
            causes.update(c.parent.name for c in backtrack_causes if c.parent is not None)
            narrowed = [n for n in names if n in causes]
            if narrowed:
                return narrowed
        return names

    def find_matches(self, identifier: str, requirements: Mapping[str, Iterator[_Req]],
                     incompatibilities: Mapping[str, Iterator[Candidate]]) -> list[Candidate]:
        reqs = list(requirements[identifier])
        bad = {(c.version, c.source) for c in incompatibilities[identifier]}
        matches = [c for c in self.pool(identifier, reqs)
                   if (c.version, c.source) not in bad
                   and all(self.is_satisfied_by(r, c) for r in reqs)]
        preferred = self.preferred.get(identifier)
        if preferred is not None:
            matches.sort(key=lambda c: (c.version, c.source) != preferred)
        return matches

    def is_satisfied_by(self, requirement: _Req, candidate: Candidate) -> bool:
        # resolvelib re-checks every pin against every requirement each round (quadratic
        # in the graph size); the answer never changes, so each requirement remembers it.
        # Candidates live in the provider's pools for the whole resolution, so their ids
        # are stable.
        known = requirement.checked.get(id(candidate))
        if known is None:
            known = requirement.checked[id(candidate)] = self._satisfies(requirement, candidate)
        return known

    def _satisfies(self, requirement: _Req, candidate: Candidate) -> bool:
        dep = requirement.dependency
        if dep.kind != "registry":
            if candidate.source != self.source_label(requirement):
                return False
            if dep.requirement.is_any:
                return True
        return dep.requirement.matches(candidate.version)

    def get_dependencies(self, candidate: Candidate) -> Iterable[_Req]:
        return [_Req(dep, candidate, candidate.location) for dep in candidate.dependencies
                if not dep.optional or dep.name in self.with_optional]


def _install_order(mapping: Mapping[str, Candidate],
                   edges: Sequence[tuple[str, str]]) -> tuple[Candidate, ...]:
    children: dict[str, list[str]] = {}
    for parent, child in edges:
        children.setdefault(parent, []).append(child)
    order: list[str] = []
    done: set[str] = set()
    active: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in active:
            return  # a cycle: its members go in name order
        active.add(name)
        for child in sorted(children.get(name, ())):
            visit(child)
        active.discard(name)
        done.add(name)
        if name in mapping:
            order.append(name)

    visit("")
    for name in sorted(mapping):
        visit(name)
    return tuple(mapping[name] for name in order)


def _explain(exc: ResolutionImpossible[_Req, Candidate], provider: _Provider,
             root_label: str) -> DependencyConflictError | NotFoundError:
    """Turn resolvelib's causes into "a 1.2.0 needs b ^2, c 0.4.0 needs b <2"."""
    by_name: dict[str, list[str]] = {}
    reqs_by_name: dict[str, list[_Req]] = {}
    for info in exc.causes:
        req: _Req = info.requirement
        who = root_label if info.parent is None else str(info.parent)
        line = f"{who} needs {req.describe()}"
        if line not in by_name.setdefault(req.name, []):
            by_name[req.name].append(line)
            reqs_by_name.setdefault(req.name, []).append(req)
    parts: list[str] = []
    missing: list[str] = []
    for name, lines in by_name.items():
        reqs = reqs_by_name[name]
        text = ", ".join(lines)
        if all(r.dependency.kind == "registry" for r in reqs):
            pool = provider.pool(name, reqs)
            if not pool:
                missing.append(name)
                parts.append(f"{text}, but no source has a package named {name}")
                continue
            if len(lines) == 1:
                shown = ", ".join(str(c.version) for c in pool[:5])
                more = f" and {len(pool) - 5} more" if len(pool) > 5 else ""
                text += f", but no version matches (available: {shown}{more})"
        parts.append(f"cannot resolve {name}: {text}")
    message = "; ".join(parts)
    if missing and len(missing) == len(by_name):
        return NotFoundError(message, hint="check the package name, or install or publish it "
                                           "first")
    return DependencyConflictError(message, hint=_HINT)


def _lock_changes(lock: Lockfile, resolution: Resolution) -> list[str]:
    changes: list[str] = []
    locked = {p.name: p for p in lock.packages}
    for name in sorted(set(locked) | set(resolution)):
        old = locked.get(name)
        new = resolution.get(name)
        if old is None and new is not None:
            changes.append(f"add {new.name} {new.version}")
        elif new is None and old is not None:
            changes.append(f"remove {old.name} {old.version}")
        elif old is not None and new is not None:
            if old.version != new.version:
                changes.append(f"{name} {old.version} -> {new.version}")
            elif old.source != new.source:
                changes.append(f"{name} {old.version} source {old.source} -> {new.source}")
            elif old.digest != new.digest:
                changes.append(f"{name} {old.version} digest {old.digest} -> {new.digest}")
            elif old.signer != new.signer:
                changes.append(f"{name} {old.version} signer {old.signer} -> {new.signer}")
            elif old.dependencies != resolution.dependencies_of(name):
                changes.append(f"{name} {old.version} dependencies changed")
    return changes


def resolve(root: Manifest | Iterable[Dependency],
            sources: CandidateSource | Sequence[CandidateSource] = (), *,
            registries: Mapping[str, CandidateSource] | None = None,
            git: GitSource | None = None, root_dir: Path | None = None,
            with_optional: Collection[str] = (), locked: Lockfile | None = None,
            prefer: Lockfile | None = None, max_rounds: int = 20_000) -> Resolution:
    """Resolve ``root``'s dependencies (a manifest, or dependencies named directly, e.g.
    by ``vudo install``).

    ``sources`` are the default registries, searched in order (for the same version the
    first wins); ``registries`` are the named ones a dependency can pick with
    ``registry = "..."``; ``git`` is the git cache (needed only for git dependencies);
    ``root_dir`` is where the root's relative path dependencies start (and what path
    sources in the lock are relative to). Raises DependencyConflictError (conflict, or
    ``locked`` not reproduced), NotFoundError (a package no source has), or the
    source's own error (bad path, bad git rev, bad manifest).
    """
    if isinstance(sources, CandidateSource):
        sources = (sources,)
    if isinstance(root, Manifest):
        dependencies: Iterable[Dependency] = root.dependencies
        root_label = f"{root.name} {root.version}"
    else:
        dependencies = list(root)
        root_label = "the request"
    base = Path(root_dir) if root_dir is not None else None
    previous = locked if locked is not None else prefer
    preferred = ({p.name: (p.version, p.source) for p in previous.packages}
                 if previous is not None else {})
    provider = _Provider(tuple(sources), registries or {}, git, base, with_optional, preferred)
    requirements = [_Req(dep, None, base) for dep in dependencies
                    if not dep.optional or dep.name in with_optional]
    resolver: Resolver[_Req, Candidate, str] = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(requirements, max_rounds=max_rounds)
    except ResolutionImpossible as exc:
        raise _explain(exc, provider, root_label) from None
    except ResolutionTooDeep:
        raise DependencyConflictError(
            f"dependency resolution gave up after {max_rounds} rounds",
            hint="the requirements leave too many combinations to try; pin some versions "
                 "more tightly") from None
    except ResolverException as exc:  # InconsistentCandidate: a provider bug, not user input
        raise VudoError(f"the dependency resolver failed: {type(exc).__name__}: {exc}",
                        hint="this is a bug in vudo; please report it") from exc
    edges = tuple(sorted(("" if parent is None else parent, child)
                         for parent, child in result.graph.iter_edges() if child is not None))
    resolution = Resolution(_install_order(result.mapping, edges), edges)
    if locked is not None:
        changes = _lock_changes(locked, resolution)
        if changes:
            raise DependencyConflictError(
                "spirit.lock is out of date: " + "; ".join(changes),
                hint="run without --locked to update spirit.lock")
    return resolution
