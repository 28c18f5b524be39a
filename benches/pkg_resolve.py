"""Resolution time for a synthetic graph: 1,000 packages x 20 versions each.

The graph is seeded (the same every run): package ``pNNNN`` has versions 1.0.0 .. 1.9.0
and 2.0.0 .. 2.9.0; each version depends on 3 packages further down the list with caret
or range requirements, so almost every package is reachable from the root. One in ten
packages has a newest version whose dependency cannot be met, so the resolver must
backtrack past it.

Prints the resolution time and, as the ratio, that time over a baseline measured in the
same process: enumerating every candidate once and matching each of its dependency
requirements against one version (the least work any resolver must do).

    .venv/bin/python benches/pkg_resolve.py [--packages 1000] [--versions 20] [--json]

``run(packages, versions)`` returns the numbers as a dict, for ``benches/pkg.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

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
    source = MemorySource()
    for i, name in enumerate(names):
        later = names[i + 1:i + 60]
        trap = i % 10 == 0 and bool(later)
        for n in range(versions):
            major, minor = 1 + n // per_major, n % per_major
            deps = [Dependency(target, rng.choice(reqs))
                    for target in rng.sample(later, min(3, len(later)))]
            if trap and n == versions - 1:
                deps.append(Dependency(later[0], impossible))
            source.add(Candidate(name, Version(major=major, minor=minor, patch=0),
                                 tuple(deps), "registry+bench"))
    return source


def baseline(source: MemorySource) -> float:
    start = time.perf_counter()
    probe = Version("1.5.0")
    hits = 0
    for name in source.names():
        for candidate in source.candidates(name):
            for dep in candidate.dependencies:
                hits += dep.requirement.matches(probe)
    elapsed = time.perf_counter() - start
    assert hits >= 0
    return elapsed


def run(packages: int = 1000, versions: int = 20, repeats: int = 3) -> dict[str, float]:
    source = build_graph(packages, versions)
    root = [Dependency(f"p{i:04d}", parse_requirement("*")) for i in range(0, packages, 50)]
    base = min(baseline(source) for _ in range(repeats))
    times: list[float] = []
    resolved = 0
    for _ in range(repeats):
        start = time.perf_counter()
        resolution = resolve(root, source)
        times.append(time.perf_counter() - start)
        resolved = len(resolution)
    best = min(times)
    return {"packages": packages, "versions": versions, "candidates": len(source),
            "resolved": resolved, "resolve_seconds": best, "baseline_seconds": base,
            "ratio": best / base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.packages, args.versions, args.repeats)
    if args.json:
        print(json.dumps(result))
        return
    print(f"resolve: {result['packages']} packages x {result['versions']} versions "
          f"({result['candidates']} candidates), {result['resolved']} resolved")
    print(f"  resolution time      {result['resolve_seconds']:.3f} s")
    print(f"  baseline (enumerate) {result['baseline_seconds']:.4f} s")
    print(f"  ratio                {result['ratio']:.1f}x the baseline")


if __name__ == "__main__":
    main()
