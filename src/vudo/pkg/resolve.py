"""Dependency resolution: PubGrub (:mod:`vudo.pkg.pubgrub`) over the candidates the
sources hold.

Given the root's dependencies and where to look (:mod:`vudo.pkg.sources`), pick one
version of every package reachable from the root such that every requirement holds.
Registry dependencies prefer the highest matching version (the locked one first when a
lock is given); when a choice leads to a conflict further down, the solver learns why and
backtracks, so a newer version whose own dependencies cannot be met is skipped for an
older one that works. It finds a solution whenever one exists; the search is bounded by
time (``timeout``), not by a round count, and when the bound is hit the error names the
packages that were still in conflict.

When no combination works, :class:`DependencyConflictError` says why. Simple cases (every
requirement involved comes from one exact version) keep the short form::

    cannot resolve b: a 1.2.0 needs b ^2, c 0.4.0 needs b <2

and the others get PubGrub's chain of causes, on one line::

    Because every b ^2 depends on c <1 and app 1.0.0 depends on b ^2, c 0.5.0 is
    required. And because app 1.0.0 depends on c ^1, app 1.0.0 cannot be satisfied.

Why PubGrub and not resolvelib (the resolver pip uses, which this module used before):
measured by ``benches/pkg_resolve.py`` on the same seeded graphs, resolvelib with the best
provider we could write for it (most constrained first, cached candidate lists, memoised
checks) re-checks every pinned package each round and re-explores dead ends it has
already met; PubGrub learns each conflict once. See the bench for the numbers.

Versions a source marks ``yanked`` are skipped unless locked; prereleases match only a
requirement that names one (:mod:`vudo.pkg.versions`). Optional dependencies are left out
unless named in ``with_optional``. With ``locked`` (``--locked``), the resolution must
reproduce the lock exactly (same packages, versions, sources and digests), else the error
lists what would change. With ``prefer`` (a previous lock), locked versions are tried
first so re-resolving does not upgrade anything that still fits.

Which version a dependency may use: a registry requirement matches any candidate of the
name from the default sources (or from the named ``registry`` only, when it names one)
and any path or git candidate of the name, by version; a path or git dependency matches
only the one candidate at that place.
"""

from __future__ import annotations

import bisect
import itertools
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vudo.errors import DependencyConflictError, InvalidInputError, NotFoundError
from vudo.pkg.lockfile import Lockfile
from vudo.pkg.manifest import Dependency, Manifest
from vudo.pkg.pubgrub import (
    ROOT,
    Incompatibility,
    NoSolution,
    SolveStopped,
    Term,
    explain,
    leaves,
    solve,
)
from vudo.pkg.sources import Candidate, CandidateSource, GitSource, PathSource
from vudo.pkg.versions import Requirement, Version

__all__ = ["RequiredBy", "Resolution", "TreeRow", "Wanted", "WhyChosen", "resolve"]

_HINT = "relax one of these requirements, or pick versions of the packages that need it which agree"


def _describe(dep: Dependency) -> str:
    """``b ^2``, ``b from path ../b``, ``b ^1 from git URL rev R``."""
    if dep.kind == "path":
        where = f"from path {dep.path}"
    elif dep.kind == "git":
        where = f"from git {dep.git} rev {dep.rev}"
    else:
        return f"{dep.name} {dep.requirement}" + (
            f" from registry {dep.registry}" if dep.registry else ""
        )
    if dep.requirement.is_any:
        return f"{dep.name} {where}"
    return f"{dep.name} {dep.requirement} {where}"


def _precedence(c: Candidate) -> tuple[object, ...]:
    """SemVer precedence (build metadata ignored); cheap for releases, the common case."""
    return c.version.precedence_key


_Bounds = tuple[tuple[str, tuple[int, int, int]], ...]


def _bounds(requirement: Requirement) -> _Bounds | None:
    """The requirement's comparators on plain ``(major, minor, patch)`` tuples, for
    matching release versions fast; None when a comparator names a prerelease."""
    out = []
    for comparator in requirement.comparators:
        v = comparator.version
        if v.prerelease:
            return None
        out.append((comparator.op, (v.major, v.minor, v.patch)))
    return tuple(out)


def _range_mask(bounds: _Bounds, ascending: list[tuple[int, int, int]]) -> int:
    """The bits of the versions within ``bounds``, by bisection: bit ``i`` is
    ``ascending[n - 1 - i]`` (candidates are newest first), and a conjunction of
    comparators is one contiguous range."""
    n = len(ascending)
    lo, hi = 0, n
    for op, b in bounds:
        if op == ">=":
            lo = max(lo, bisect.bisect_left(ascending, b))
        elif op == ">":
            lo = max(lo, bisect.bisect_right(ascending, b))
        elif op == "<":
            hi = min(hi, bisect.bisect_left(ascending, b))
        elif op == "<=":
            hi = min(hi, bisect.bisect_right(ascending, b))
        else:
            lo = max(lo, bisect.bisect_left(ascending, b))
            hi = min(hi, bisect.bisect_right(ascending, b))
    if hi <= lo:
        return 0
    return ((1 << (n - lo)) - 1) & ~((1 << (n - hi)) - 1)


def _within(bounds: _Bounds, v: tuple[int, int, int]) -> bool:
    for op, b in bounds:
        if op == ">=":
            if v < b:
                return False
        elif op == "<":
            if v >= b:
                return False
        elif op == ">":
            if v <= b:
                return False
        elif op == "<=":
            if v > b:
                return False
        elif v != b:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Wanted:
    """One requirement in a resolution: ``dependent`` (``""`` for the root) needs
    ``dependency`` as ``requirement`` (e.g. ``b ^2`` or ``b from path ../b``)."""

    dependent: str
    dependency: str
    requirement: str


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One line of :meth:`Resolution.tree`: ``name`` at ``depth`` (1 under the root),
    required as ``requirement`` by the row above it; ``repeat`` when shown before."""

    depth: int
    name: str
    requirement: str
    repeat: bool


@dataclass(frozen=True, slots=True)
class RequiredBy:
    """One reason a package is in a resolution: ``dependent`` (``app 0.1.0``) needs it
    as ``requirement``, reached from the root along ``path`` (labels, root first)."""

    dependent: str
    requirement: str
    path: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "dependent": self.dependent,
            "requirement": self.requirement,
            "path": list(self.path),
        }


@dataclass(frozen=True, slots=True)
class WhyChosen:
    """``vudo why NAME``: the version chosen, why, and who requires it
    (:meth:`Resolution.why`)."""

    name: str
    version: Version
    source: str
    reason: str
    required_by: tuple[RequiredBy, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version),
            "source": self.source,
            "reason": self.reason,
            "required_by": [r.to_json() for r in self.required_by],
        }


@dataclass(frozen=True, slots=True)
class Resolution(Mapping[str, Candidate]):
    """The chosen candidates, name -> Candidate, iterated in install order (every package
    after its dependencies; ties broken by name so the order is stable)."""

    packages: tuple[Candidate, ...]
    edges: tuple[tuple[str, str], ...] = ()
    """(dependent, dependency) pairs; the root is ``""``."""
    wanted: tuple[Wanted, ...] = field(default=(), compare=False)
    """Every requirement the chosen versions (and the root) make."""
    reasons: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(name, why this version was chosen)."""
    root: str = field(default="the request", compare=False)
    """How the root reads in messages (``app 0.3.0`` for a manifest)."""
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

    def wanted_by(self, name: str) -> tuple[Wanted, ...]:
        """The requirements on ``name`` (who pulled it in, and how)."""
        return tuple(w for w in self.wanted if w.dependency == name)

    def wanted_by_dependent(self, name: str) -> tuple[Wanted, ...]:
        """The requirements ``name`` makes (``""`` for the root)."""
        return tuple(w for w in self.wanted if w.dependent == name)

    def tree(self) -> tuple[TreeRow, ...]:
        """The graph as an indented tree from the root (children by name); a package
        seen before is listed again as ``repeat`` and not expanded (also ends cycles)."""
        rows: list[TreeRow] = []
        expanded: set[str] = set()
        by_parent: dict[str, list[Wanted]] = {}
        for w in self.wanted:
            by_parent.setdefault(w.dependent, []).append(w)
        stack: list[tuple[int, Wanted]] = [
            (1, w) for w in sorted(by_parent.get("", ()), key=lambda w: w.dependency, reverse=True)
        ]
        while stack:
            depth, w = stack.pop()
            repeat = w.dependency in expanded
            rows.append(TreeRow(depth, w.dependency, w.requirement, repeat))
            if not repeat:
                expanded.add(w.dependency)
                stack.extend(
                    (depth + 1, child)
                    for child in sorted(
                        by_parent.get(w.dependency, ()), key=lambda c: c.dependency, reverse=True
                    )
                )
        return tuple(rows)

    def path_to(self, name: str) -> tuple[str, ...]:
        """A shortest chain of names from the root to ``name`` (``("", "a", name)``), or
        () when it is not in the resolution."""
        parents: dict[str, str] = {"": ""}
        queue = [""]
        for current in queue:
            if current == name:
                chain = [current]
                while chain[-1] != "":
                    chain.append(parents[chain[-1]])
                return tuple(reversed(chain))
            for child in self.dependencies_of(current):
                if child not in parents:
                    parents[child] = current
                    queue.append(child)
        return ()

    def reason(self, name: str) -> str:
        """Why ``name`` is at its version (newest that fits, locked, or what ruled out
        the newer ones)."""
        return dict(self.reasons).get(name, "")

    def label(self, name: str) -> str:
        """How a package reads in a chain: ``name version``, the root as :attr:`root`."""
        return self.root if name == "" else f"{name} {self[name].version}"

    def why(self, name: str) -> WhyChosen:
        """Why ``name`` is in this resolution (NotFoundError when it is not)."""
        if name not in self:
            raise NotFoundError(
                f'"{name}" is not a dependency of {self.root}',
                hint="`vudo tree` lists the packages it depends on",
            )
        chosen = self[name]
        return WhyChosen(
            chosen.name,
            chosen.version,
            chosen.source,
            self.reason(chosen.name),
            tuple(
                RequiredBy(
                    self.label(w.dependent),
                    w.requirement,
                    tuple(self.label(n) for n in self.path_to(w.dependent)),
                )
                for w in self.wanted_by(name)
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """``vudo tree --json``: the root's requirements, then each package chosen with
        its source, the reason for its version, and its own requirements."""

        def requirements(dependent: str) -> list[dict[str, str]]:
            return [
                {"name": w.dependency, "requirement": w.requirement}
                for w in self.wanted_by_dependent(dependent)
            ]

        return {
            "root": self.root,
            "dependencies": requirements(""),
            "packages": [
                {
                    "name": c.name,
                    "version": str(c.version),
                    "source": c.source,
                    "reason": self.reason(c.name),
                    "dependencies": requirements(c.name),
                }
                for c in self.values()
            ],
        }


# ---------------------------------------------------------------------- the provider


class _Restart(Exception):
    """A path or git candidate turned up for a package whose candidate list is already
    fixed: solve again with it in the list from the start."""


@dataclass(slots=True)
class _Package:
    """One name's candidates (bit ``i`` is ``candidates[i]``, best first) and caches."""

    name: str
    candidates: list[Candidate]
    origins: list[str | None]  # "" direct (path/git), None default sources, else registry
    full: int
    masks: dict[tuple[object, ...], int] = field(default_factory=dict)
    labels: dict[int, Dependency] = field(default_factory=dict)  # mask -> the first
    # dependency that asked for exactly these candidates (how a term reads)
    ascending: list[tuple[int, int, int]] | None = None
    """The versions oldest first, when all are distinct releases from the default
    sources (then a requirement's candidates are found by bisection)."""
    releases: list[tuple[int, int, int] | None] = field(default_factory=list)
    """(major, minor, patch) of each candidate; None for a prerelease."""
    active: list[list[Dependency] | None] = field(default_factory=list)
    """Each candidate's dependencies that apply (filled on demand)."""

    yanked: int = 0
    """Yanked candidates (not locked): no requirement accepts them."""
    edges: dict[int, list[tuple[int, str, int, object]]] = field(default_factory=dict)
    """Each decided candidate's dependency edges, as given to the solver."""

    def __post_init__(self) -> None:
        self.releases = [
            None if c.version.prerelease else (c.version.major, c.version.minor, c.version.patch)
            for c in self.candidates
        ]
        self.active = [None] * len(self.candidates)
        ascending = [r for r in reversed(self.releases) if r is not None]
        if (
            len(ascending) == len(self.candidates)
            and all(o is None for o in self.origins)
            and all(a < b for a, b in itertools.pairwise(ascending))
        ):
            self.ascending = ascending


class _Provider:
    """The vudo side of the solver: candidate lists, choices and dependency edges."""

    def __init__(
        self,
        root: Candidate,
        root_dependencies: Sequence[Dependency],
        sources: Sequence[CandidateSource],
        registries: Mapping[str, CandidateSource],
        git: GitSource | None,
        root_dir: Path | None,
        with_optional: Collection[str],
        preferred: Mapping[str, tuple[Version, str]],
        direct: dict[str, dict[str, Candidate]],
        pools: dict[tuple[str, str | None], list[Candidate]],
    ) -> None:
        self.root = root
        self.root_dependencies = root_dependencies
        self.sources = sources
        self.registries = registries
        self.git = git
        self.root_dir = root_dir
        self.with_optional = with_optional
        self.preferred = preferred
        self.direct = direct  # name -> source label -> candidate (kept across restarts)
        self.pools = pools  # (name, registry) -> candidates (kept across restarts)
        self.packages: dict[str, _Package] = {}
        self._label_cache: dict[tuple[object, ...], str] = {}
        self._bounds: dict[tuple[object, ...], tuple[_Bounds | None]] = {}

    # -- candidates -------------------------------------------------------------

    def pool(self, name: str, registry: str | None) -> list[Candidate]:
        """Every version of ``name`` in the default sources (first wins) or one registry."""
        key = (name, registry)
        found = self.pools.get(key)
        if found is None:
            sources = self.sources if registry is None else (self.registries[registry],)
            seen: dict[tuple[object, ...], Candidate] = {}
            for source in sources:
                for candidate in source.candidates(name):
                    v = candidate.version
                    same = (v.major, v.minor, v.patch, v.prerelease, v.build)
                    if candidate.name == name and same not in seen:
                        seen[same] = candidate
            found = self.pools[key] = sorted(seen.values(), key=_precedence, reverse=True)
        return found

    def package(self, name: str) -> _Package:
        package = self.packages.get(name)
        if package is None:
            if name == ROOT:
                package = _Package(ROOT, [self.root], [""], 1)
            else:
                entries: list[tuple[Candidate, str | None]] = [
                    (c, "") for c in self.direct.get(name, {}).values()
                ]
                registry_entries: list[tuple[Candidate, str | None]] = [
                    (c, None) for c in self.pool(name, None)
                ]
                for registry in sorted(self.registries):
                    registry_entries += [(c, registry) for c in self.pool(name, registry)]
                if self.registries:
                    registry_entries.sort(key=lambda e: _precedence(e[0]), reverse=True)
                entries += registry_entries
                preferred = self.preferred.get(name)
                package = _Package(
                    name, [c for c, _ in entries], [o for _, o in entries], (1 << len(entries)) - 1
                )
                package.yanked = sum(
                    1 << i
                    for i, (c, _) in enumerate(entries)
                    if c.yanked and (c.version, c.source) != preferred
                )
            self.packages[name] = package
        return package

    def _path_dir(self, dep: Dependency, base: Path | None, parent: Candidate) -> Path:
        assert dep.path is not None
        if base is None:
            raise InvalidInputError(
                f'{parent} from {parent.source} has a path dependency "{dep.name}", which '
                "only works in a local project",
                hint="depend on a registry or git version instead",
            )
        return (base / dep.path).resolve()

    def _direct_candidate(self, dep: Dependency, parent: Candidate) -> Candidate:
        """Load the one candidate a path or git dependency names (cached by label)."""
        base = self.root_dir if parent is self.root else parent.location
        key = (dep.path, dep.git, dep.rev, base)
        label = self._label_cache.get(key)
        if label is None:
            if dep.kind == "path":
                directory = self._path_dir(dep, base, parent)
                if self.root_dir is not None:
                    rel = os.path.relpath(directory, self.root_dir.resolve())
                    label = "path+" + Path(rel).as_posix()
                else:
                    label = f"path+{directory}"
                known = self.direct.get(dep.name, {}).get(label)
                if known is None:
                    known = next(iter(PathSource(directory, label=label).candidates(dep.name)))
            else:
                assert dep.git is not None and dep.rev is not None
                if self.git is None:
                    raise InvalidInputError(
                        f'"{dep.name}" is a git dependency but no git cache was given to '
                        "the resolver",
                        hint="pass git=GitSource(cache_dir) to resolve()",
                    )
                label = self.git.source_label(dep.git, dep.rev)
                known = self.direct.get(dep.name, {}).get(label)
                if known is None:
                    known = self.git.candidate(dep.git, dep.rev)
                    if known.name != dep.name:
                        raise InvalidInputError(
                            f'git dependency "{dep.name}" ({dep.git}) is a Spirit named '
                            f'"{known.name}"',
                            hint=f'rename the dependency to "{known.name}"',
                        )
            self._label_cache[key] = label
            labels = self.direct.setdefault(dep.name, {})
            if label not in labels:
                labels[label] = known
                if dep.name in self.packages:
                    raise _Restart
        return self.direct[dep.name][label]

    def dependency_mask(self, dep: Dependency, parent: Candidate) -> tuple[int, _Package]:
        """The candidates of ``dep.name`` that ``dep`` (of ``parent``) accepts."""
        source: str | None = None
        if dep.kind != "registry":
            source = self._direct_candidate(dep, parent).source
        elif dep.registry is not None and dep.registry not in self.registries:
            known = ", ".join(sorted(self.registries)) or "none configured"
            raise NotFoundError(
                f'unknown registry "{dep.registry}" (needed for {dep.name})',
                hint=f"known registries: {known}",
            )
        package = self.package(dep.name)
        key = (dep.requirement.terms, dep.requirement.prerelease_releases, source, dep.registry)
        mask = package.masks.get(key)
        if mask is None:
            mask = 0
            requirement = dep.requirement
            bounds_key = key[:2]
            bounds = self._bounds.get(bounds_key)
            if bounds is None:
                bounds = self._bounds[bounds_key] = (_bounds(requirement),)
            fast = bounds[0]
            if fast is not None and source is None and package.ascending is not None:
                mask = _range_mask(fast, package.ascending)
            else:
                mask = self._scan_mask(package, requirement, fast, source, dep.registry)
            mask &= ~package.yanked
            package.masks[key] = mask
            package.labels.setdefault(mask, dep)
        return mask, package

    @staticmethod
    def _scan_mask(
        package: _Package,
        requirement: Requirement,
        fast: _Bounds | None,
        source: str | None,
        registry: str | None,
    ) -> int:
        """The accepted candidates, one by one (path/git, prereleases, named registries)."""
        mask = 0
        for i, (candidate, origin, release) in enumerate(
            zip(package.candidates, package.origins, package.releases, strict=True)
        ):
            if source is not None:
                if candidate.source != source:
                    continue
                if requirement.is_any:
                    mask |= 1 << i
                    continue
            elif origin != "" and origin != registry:
                continue
            if (
                _within(fast, release)
                if fast is not None and release is not None
                else requirement.matches(candidate.version)
            ):
                mask |= 1 << i
        return mask

    def active(self, candidate: Candidate) -> list[Dependency]:
        """The dependencies that apply (optional ones only when asked for)."""
        deps = self.root_dependencies if candidate is self.root else candidate.dependencies
        return [d for d in deps if not d.optional or d.name in self.with_optional]

    def _active(self, package: _Package, i: int) -> list[Dependency]:
        found = package.active[i]
        if found is None:
            found = package.active[i] = self.active(package.candidates[i])
        return found

    # -- the solver's questions -------------------------------------------------

    def choose(self, name: str, allowed: int) -> int | None:
        package = self.package(name)
        preferred = self.preferred.get(name)
        if preferred is not None:
            rest = allowed
            while rest:
                bit = rest & -rest
                i = bit.bit_length() - 1
                c = package.candidates[i]
                if (c.version, c.source) == preferred:
                    return i
                rest ^= bit
        return (allowed & -allowed).bit_length() - 1 if allowed else None

    def dependencies(self, name: str, version: int) -> list[tuple[int, str, int, object]]:
        package = self.package(name)
        known = package.edges.get(version)
        if known is not None:
            return known
        candidate = package.candidates[version]
        out: list[tuple[int, str, int, object]] = []
        for dep in self._active(package, version):
            mask, _ = self.dependency_mask(dep, candidate)
            out.append((1 << version, dep.name, mask, (dep, mask)))
        package.edges[version] = out
        return out

    def widen(self, name: str, version: int, payload: object) -> int:
        package = self.package(name)
        assert isinstance(payload, tuple)
        dep: object = payload[0]
        assert isinstance(dep, Dependency)
        mask = 1 << version
        if dep.kind != "registry":
            return mask  # relative to this candidate's own location
        name, terms, registry = dep.name, dep.requirement.terms, dep.registry
        optional_ok = name in self.with_optional
        for i, candidate in enumerate(package.candidates):
            for d in candidate.dependencies:
                if (
                    d.name == name
                    and d.requirement.terms == terms
                    and d.registry == registry
                    and d.path is None
                    and d.git is None
                    and (not d.optional or optional_ok)
                ):
                    mask |= 1 << i
                    break
        return mask

    # -- words --------------------------------------------------------------------

    def term(self, term: Term) -> str:
        if term.package == ROOT:
            return str(self.root_label)
        package = self.package(term.package)
        mask = term.mask
        if mask & (mask - 1) == 0 and mask:
            return str(package.candidates[mask.bit_length() - 1])
        if mask == package.full:
            return f"every version of {term.package}"
        label = package.labels.get(mask)
        if label is not None:
            return _describe(label)
        runs: list[str] = []
        i = 0
        bits = mask
        while bits >> i:
            if (bits >> i) & 1:
                j = i
                while (bits >> (j + 1)) & 1:
                    j += 1
                low, high = package.candidates[j].version, package.candidates[i].version
                runs.append(str(low) if i == j else f"{low} to {high}")
                i = j + 1
            else:
                i += 1
        return f"{term.package} " + ", ".join(reversed(runs))

    root_label = "the request"

    def failure(self) -> str:
        return f"{self.root_label} cannot be satisfied"

    def external(self, incompatibility: Incompatibility) -> str:
        if incompatibility.kind == "root":
            return f"{self.root_label} is required"
        if incompatibility.kind == "no_versions":
            (term,) = incompatibility.terms
            return f"no candidate of {self.term(term)} can be used"
        dep, mask = _edge(incompatibility)
        parent = next((t for t in incompatibility.terms if t.positive), None)
        who = self.term(parent) if parent is not None else self.root_label
        if parent is not None and parent.mask & (parent.mask - 1) and not who.startswith("every "):
            who = "every " + who
        text = f"{who} depends on {_describe(dep)}"
        if mask:
            return text
        if not self.package(dep.name).candidates:
            return f"{text}, but no source has a package named {dep.name}"
        return f"{text}, which no version matches"


def _edge(incompatibility: Incompatibility) -> tuple[Dependency, int]:
    """The dependency (and the mask it allows) a dependency incompatibility stands for."""
    payload = incompatibility.payload
    assert isinstance(payload, tuple)
    dep: object = payload[0]
    mask: object = payload[1]
    assert isinstance(dep, Dependency) and isinstance(mask, int)
    return dep, mask


# ---------------------------------------------------------------------- explanations


def _short_form(
    failure: Incompatibility, provider: _Provider
) -> DependencyConflictError | NotFoundError | None:
    """ "cannot resolve b: a 1.2.0 needs b ^2, c 0.4.0 needs b <2" when every requirement
    in the derivation comes from one exact version (or the root); else None."""
    edges: list[tuple[str, str, Dependency]] = []  # (who, target, dep)
    parents: set[str] = set()
    involved: dict[str, Candidate] = {}  # who -> the exact version named
    seen: dict[str, int] = {}  # package -> the one version of it the leaves name
    for leaf in leaves(failure):
        if leaf.kind == "root":
            continue
        if leaf.kind != "dependency":
            return None
        dep, _ = _edge(leaf)
        parent = next((t for t in leaf.terms if t.positive), None)
        if parent is None:
            who = provider.root_label
            involved[who] = provider.root
        elif parent.mask & (parent.mask - 1) == 0:
            if seen.setdefault(parent.package, parent.mask) != parent.mask:
                return None  # several versions were tried: the chain explains it better
            parents.add(parent.package)
            who = provider.term(parent)
            involved[who] = provider.package(parent.package).candidates[
                parent.mask.bit_length() - 1
            ]
        else:
            return None
        edges.append((who, dep.name, dep))
    targets: dict[str, list[tuple[str, Dependency]]] = {}
    for _, target, _ in edges:
        if target not in parents:
            targets.setdefault(target, [])
    # every requirement the versions involved make on a target, not only the one that
    # ended the search ("app 0.1.0 needs lib ^0.1, mid 0.1.0 needs lib >=0.2")
    for who, candidate in involved.items():
        edges += [(who, d.name, d) for d in provider.active(candidate) if d.name in targets]
    for who, target, dep in edges:
        lines = targets.get(target)
        if lines is not None and all(line[0] != who or line[1] != dep for line in lines):
            lines.append((who, dep))
    if not targets:
        return None
    parts: list[str] = []
    missing = 0
    for name, lines in targets.items():
        text = ", ".join(f"{who} needs {_describe(dep)}" for who, dep in lines)
        package = provider.package(name)
        if not package.candidates:
            missing += 1
            parts.append(f"{text}, but no source has a package named {name}")
            continue
        if len(lines) == 1:
            shown_all = [
                c
                for c, o in zip(package.candidates, package.origins, strict=True)
                if lines[0][1].kind != "registry" or o in ("", lines[0][1].registry)
            ]
            shown = ", ".join(
                str(c.version) + (" (yanked)" if c.yanked else "") for c in shown_all[:5]
            )
            more = f" and {len(shown_all) - 5} more" if len(shown_all) > 5 else ""
            text += f", but no version matches (available: {shown}{more})"
        parts.append(f"cannot resolve {name}: {text}")
    message = "; ".join(parts)
    if missing == len(targets):
        return NotFoundError(message, hint="check the package name, or install or publish it first")
    return DependencyConflictError(message, hint=_HINT)


def _explain(
    failure: Incompatibility, provider: _Provider
) -> DependencyConflictError | NotFoundError:
    short = _short_form(failure, provider)
    if short is not None:
        return short
    text = " ".join(line[:1].upper() + line[1:] for line in explain(failure, provider))
    return DependencyConflictError(text, hint=_HINT)


# ---------------------------------------------------------------------- results


def _install_order(
    mapping: Mapping[str, Candidate], edges: Sequence[tuple[str, str]]
) -> tuple[Candidate, ...]:
    children: dict[str, list[str]] = {}
    for parent, child in edges:
        children.setdefault(parent, []).append(child)
    order: list[str] = []
    done: set[str] = set()
    active: set[str] = set()

    def visit(name: str) -> None:
        stack: list[tuple[str, Iterator[str]]] = []
        if name in done:
            return
        active.add(name)
        stack.append((name, iter(sorted(children.get(name, ())))))
        while stack:
            current, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                active.discard(current)
                done.add(current)
                if current in mapping:
                    order.append(current)
            elif child not in done and child not in active:  # a cycle: name order
                active.add(child)
                stack.append((child, iter(sorted(children.get(child, ())))))

    visit("")
    for name in sorted(mapping):
        visit(name)
    return tuple(mapping[name] for name in order)


def _reasons(
    provider: _Provider, chosen: Mapping[str, int], wanted: Sequence[tuple[str, int]]
) -> tuple[tuple[str, str], ...]:
    """Why each version: the newest that fits, the locked one, or which newer versions
    fit every requirement on the package but had dependencies that conflicted."""
    allowed: dict[str, int] = {}
    for name, mask in wanted:
        allowed[name] = allowed.get(name, -1) & mask
    out = []
    for name, index in sorted(chosen.items()):
        package = provider.package(name)
        candidate = package.candidates[index]
        preferred = provider.preferred.get(name)
        newer = allowed.get(name, package.full) & ((1 << index) - 1)
        if preferred == (candidate.version, candidate.source):
            why = "locked"
        elif candidate.source.startswith(("path+", "git+")):
            why = f"from {candidate.source}"
        elif not newer:
            why = "newest that fits every requirement"
        else:
            skipped = [str(package.candidates[i].version) for i in range(index) if (newer >> i) & 1]
            shown = ", ".join(skipped[:3]) + (
                f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            )
            why = f"newer {shown} fit the requirements but their dependencies conflict"
        out.append((name, why))
    return tuple(out)


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


def resolve(
    root: Manifest | Iterable[Dependency],
    sources: CandidateSource | Sequence[CandidateSource] = (),
    *,
    registries: Mapping[str, CandidateSource] | None = None,
    git: GitSource | None = None,
    root_dir: Path | None = None,
    with_optional: Collection[str] = (),
    locked: Lockfile | None = None,
    prefer: Lockfile | None = None,
    timeout: float = 60.0,
    max_rounds: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Resolution:
    """Resolve ``root``'s dependencies (a manifest, or dependencies named directly, e.g.
    by ``vudo install``).

    ``sources`` are the default registries, searched in order (for the same version the
    first wins); ``registries`` are the named ones a dependency can pick with
    ``registry = "..."``; ``git`` is the git cache (needed only for git dependencies);
    ``root_dir`` is where the root's relative path dependencies start (and what path
    sources in the lock are relative to). The search stops after ``timeout`` seconds of
    ``clock`` (or ``max_rounds`` decisions, when given). Raises DependencyConflictError
    (conflict, bound hit, or ``locked`` not reproduced), NotFoundError (a package no
    source has), or the source's own error (bad path, bad git rev, bad manifest).
    """
    if isinstance(sources, CandidateSource):
        sources = (sources,)
    if isinstance(root, Manifest):
        dependencies = list(root.dependencies)
        root_label = f"{root.name} {root.version}"
        root_candidate = Candidate(root.name, root.version, (), "root")
    else:
        dependencies = list(root)
        root_label = "the request"
        root_candidate = Candidate("the request", Version("0.0.0"), (), "root")
    base = Path(root_dir) if root_dir is not None else None
    previous = locked if locked is not None else prefer
    preferred = (
        {p.name: (p.version, p.source) for p in previous.packages} if previous is not None else {}
    )
    direct: dict[str, dict[str, Candidate]] = {}
    pools: dict[tuple[str, str | None], list[Candidate]] = {}
    deadline = clock() + timeout
    while True:
        provider = _Provider(
            root_candidate,
            dependencies,
            tuple(sources),
            registries or {},
            git,
            base,
            with_optional,
            preferred,
            direct,
            pools,
        )
        provider.root_label = root_label
        try:
            chosen = solve(provider, clock=clock, deadline=deadline, max_rounds=max_rounds)
        except _Restart:
            continue
        except NoSolution as exc:
            raise _explain(exc.incompatibility, provider) from None
        except SolveStopped as exc:
            names = ", ".join(exc.busiest) or "none"
            raise DependencyConflictError(
                f"dependency resolution {exc.reason} (after {exc.rounds} decisions; "
                f"still in conflict: {names})",
                hint="pin the versions of the packages named here more tightly, or give the "
                "resolver more time",
            ) from None
        break
    mapping = {name: provider.package(name).candidates[i] for name, i in chosen.items()}
    edges: set[tuple[str, str]] = set()
    wanted: list[Wanted] = []
    masks: list[tuple[str, int]] = []
    for parent_name, parent in [(ROOT, root_candidate), *mapping.items()]:
        for dep in provider.active(parent):
            edges.add((parent_name, dep.name))
            wanted.append(Wanted(parent_name, dep.name, _describe(dep)))
            masks.append((dep.name, provider.dependency_mask(dep, parent)[0]))
    ordered_edges = tuple(sorted(edges))
    resolution = Resolution(
        _install_order(mapping, ordered_edges),
        ordered_edges,
        tuple(sorted(wanted, key=lambda w: (w.dependent, w.dependency))),
        _reasons(provider, chosen, masks),
        root_label,
    )
    if locked is not None:
        changes = _lock_changes(locked, resolution)
        if changes:
            raise DependencyConflictError(
                "spirit.lock is out of date: " + "; ".join(changes),
                hint="run without --locked to update spirit.lock",
            )
    return resolution
