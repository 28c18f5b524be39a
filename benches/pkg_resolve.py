"""Resolution time for a seeded random graph (default 1,000 packages x 20 versions).

Package ``pNNNN`` has versions 1.0.0 .. 1.9.0 and 2.0.0 .. 2.9.0 (for 20 versions);
each version depends on 3 packages further down the list with caret or range
requirements, so almost every package is reachable from the root. Backtracking is needed
on purpose: one package in ten has a newest version that needs a version nobody has,
and one in ten has a newest version whose dependency's newest versions need one (so the
dead end shows only one level down). The root needs every 50th package.

Times are CPU time of this process (``time.process_time``): the machines these run on
are shared, and wall time there measures the neighbours as much as the resolver; on an
idle machine the two agree (the resolver is single-threaded). The best of ``--repeats``
runs is kept for both the resolver and the baseline, measured alternately.

Prints, as its last line, ``resolved N packages x V versions in T ms (R x the time to
enumerate the candidates once)`` or ``no solution: <explanation>``. The baseline,
measured in the same process, enumerates every candidate once and matches each of its
dependency requirements against one version (the least work any resolver must do).

``--algorithm resolvelib`` runs the same graph through resolvelib (the resolver pip uses)
with the best provider we found for it: most constrained package first, candidate lists
sorted once and cached, satisfaction checks memoised. It is here for the comparison that
chose PubGrub for :mod:`vudo.pkg.resolve`.

    .venv/bin/python benches/pkg_resolve.py [--packages 1000] [--versions 20] [--seed 7]
        [--algorithm pubgrub|resolvelib] [--repeats 3] [--json]

``run(packages, versions)`` returns the numbers as a dict, for ``benches/pkg.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import sized

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vudo.errors import VudoError
from vudo.pkg.manifest import Dependency
from vudo.pkg.resolve import resolve
from vudo.pkg.sources import Candidate, MemorySource
from vudo.pkg.versions import Version, parse_requirement


def build_graph(packages: int, versions: int, seed: int = 7) -> MemorySource:
    rng = random.Random(seed)
    names = [f"p{i:04d}" for i in range(packages)]
    per_major = max(1, versions // 2)
    reqs = [parse_requirement(t) for t in ("^1", "^2", ">=1.5, <2.5", "^1.2", "*")]
    impossible = parse_requirement("^9")
    newest = Version(
        major=1 + (versions - 1) // per_major, minor=(versions - 1) % per_major, patch=0
    )
    exact_newest = parse_requirement(f"={newest}")
    source = MemorySource()
    for i, name in enumerate(names):
        later = names[i + 1 : i + 60]
        trap = i % 10 == 0 and bool(later)  # newest needs a version nobody has
        deep_trap = i % 10 == 5 and bool(later)  # newest needs a trap's newest
        deep_target = next((n for n in later if int(n[1:]) % 10 == 0), None)
        for n in range(versions):
            major, minor = 1 + n // per_major, n % per_major
            deps = [
                Dependency(target, rng.choice(reqs))
                for target in rng.sample(later, min(3, len(later)))
            ]
            if n == versions - 1:
                if trap:
                    deps.append(Dependency(later[0], impossible))
                elif deep_trap and deep_target is not None:
                    deps = [d for d in deps if d.name != deep_target]
                    deps.append(Dependency(deep_target, exact_newest))
            source.add(
                Candidate(
                    name, Version(major=major, minor=minor, patch=0), tuple(deps), "registry+bench"
                )
            )
    return source


def root_of(packages: int) -> list[Dependency]:
    return [Dependency(f"p{i:04d}", parse_requirement("*")) for i in range(0, packages, 50)]


def baseline(source: MemorySource) -> float:
    start = time.process_time()
    probe = Version("1.5.0")
    hits = 0
    for name in source.names():
        for candidate in source.candidates(name):
            for dep in candidate.dependencies:
                hits += dep.requirement.matches(probe)
    elapsed = time.process_time() - start
    assert hits >= 0
    return elapsed


# ------------------------------------------------------------- resolvelib, for comparison


def resolve_with_resolvelib(
    root: Sequence[Dependency], source: MemorySource, max_rounds: int = 200_000
) -> dict[str, Candidate]:
    """The same graph through resolvelib with a provider tuned for it."""
    from resolvelib import AbstractProvider, BaseReporter, Resolver

    Req = tuple[Dependency, int]  # (dependency, id of the parent candidate or 0)

    class Provider(AbstractProvider[Req, Candidate, str]):
        def __init__(self) -> None:
            self.pools: dict[str, list[Candidate]] = {}
            self.sat: dict[tuple[int, int], bool] = {}

        def pool(self, name: str) -> list[Candidate]:
            found = self.pools.get(name)
            if found is None:
                found = self.pools[name] = sorted(
                    source.candidates(name), key=lambda c: c.version, reverse=True
                )
            return found

        def identify(self, requirement_or_candidate: Req | Candidate) -> str:
            if isinstance(requirement_or_candidate, Candidate):
                return requirement_or_candidate.name
            return requirement_or_candidate[0].name

        def get_preference(
            self,
            identifier: str,
            resolutions: Mapping[str, Candidate],
            candidates: Mapping[str, Iterator[Candidate]],
            information: Mapping[str, Iterator[Any]],
            backtrack_causes: Sequence[Any],
        ) -> Any:
            # most constrained first: how many candidates every requirement accepts
            reqs = [i.requirement for i in information[identifier]]
            left = sum(
                1 for c in self.pool(identifier) if all(self.is_satisfied_by(r, c) for r in reqs)
            )
            causes = any(c.requirement[0].name == identifier for c in backtrack_causes)
            return (not causes, left, identifier)

        def find_matches(
            self,
            identifier: str,
            requirements: Mapping[str, Iterator[Req]],
            incompatibilities: Mapping[str, Iterator[Candidate]],
        ) -> list[Candidate]:
            reqs = list(requirements[identifier])
            bad = {id(c) for c in incompatibilities[identifier]}
            return [
                c
                for c in self.pool(identifier)
                if id(c) not in bad and all(self.is_satisfied_by(r, c) for r in reqs)
            ]

        def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
            key = (id(requirement[0]), id(candidate))
            known = self.sat.get(key)
            if known is None:
                known = self.sat[key] = requirement[0].requirement.matches(candidate.version)
            return known

        def get_dependencies(self, candidate: Candidate) -> Iterable[Req]:
            return [(d, id(candidate)) for d in candidate.dependencies]

    resolver: Resolver[Req, Candidate, str] = Resolver(Provider(), BaseReporter())
    result = resolver.resolve([(d, 0) for d in root], max_rounds=max_rounds)
    return dict(result.mapping)


def check(root: Sequence[Dependency], mapping: Mapping[str, Candidate]) -> None:
    """Every requirement of the root and of every chosen version holds."""
    for dep in root:
        assert dep.requirement.matches(mapping[dep.name].version), dep
    for candidate in mapping.values():
        for dep in candidate.dependencies:
            assert dep.requirement.matches(mapping[dep.name].version), (candidate, dep)


def run(
    packages: int = 1000,
    versions: int = 20,
    repeats: int = 3,
    seed: int = 7,
    algorithm: str = "pubgrub",
) -> dict[str, Any]:
    source = build_graph(packages, versions, seed)
    root = root_of(packages)
    bases: list[float] = []
    times: list[float] = []
    resolved = 0
    error = None
    for _ in range(repeats):  # interleaved, so a burst of load hits both alike
        bases.append(baseline(source))
        start = time.process_time()
        try:
            if algorithm == "resolvelib":
                mapping = resolve_with_resolvelib(root, source)
            else:
                mapping = dict(resolve(root, source))
        except VudoError as exc:
            error = exc.message
            break
        except Exception as exc:  # resolvelib's own errors
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            break
        times.append(time.process_time() - start)
        check(root, mapping)
        resolved = len(mapping)
    best = min(times) if times else 0.0
    base = min(bases)
    return {
        "packages": packages,
        "versions": versions,
        "seed": seed,
        "algorithm": algorithm,
        "candidates": len(source),
        "resolved": resolved,
        "resolve_seconds": best,
        "baseline_seconds": base,
        "ratio": best / base,
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packages", type=int, default=sized(1000, 40))
    parser.add_argument("--versions", type=int, default=sized(20, 4))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--algorithm", choices=("pubgrub", "resolvelib"), default="pubgrub")
    parser.add_argument("--repeats", type=int, default=sized(3, 1))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.packages, args.versions, args.repeats, args.seed, args.algorithm)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.algorithm}: {result['packages']} packages x {result['versions']} versions "
        f"({result['candidates']} candidates, seed {args.seed}), {result['resolved']} "
        f"resolved; baseline {result['baseline_seconds'] * 1000:.1f} ms"
    )
    if result["error"] is not None:
        print(f"no solution: {result['error']}")
    else:
        print(
            f"resolved {result['packages']} packages x {result['versions']} versions in "
            f"{result['resolve_seconds'] * 1000:.0f} ms ({result['ratio']:.1f} x the time "
            "to enumerate the candidates once)"
        )


if __name__ == "__main__":
    main()
