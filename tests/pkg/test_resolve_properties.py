"""Property tests of the resolver on random small graphs, against an exhaustive search.

Every returned solution satisfies every requirement; when the resolver says there is no
solution, trying every combination agrees; the explanation names only packages that the
root can reach. Derandomized, so the suite runs the same examples every time.
"""

from __future__ import annotations

import functools
import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vudo.errors import DependencyConflictError, NotFoundError
from vudo.pkg.manifest import Dependency
from vudo.pkg.resolve import resolve
from vudo.pkg.sources import Candidate, MemorySource
from vudo.pkg.versions import Version, parse_requirement

NAMES = ["pkga", "pkgb", "pkgc", "pkgd", "pkge"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
REQUIREMENTS = ["^1", "^2", "=1.0.0", ">=1.1", "<1.1", "*", "*", "~2.1"]

Graph = dict[str, dict[str, list[tuple[str, str]]]]  # name -> version -> [(dep, req)]

edge = st.tuples(st.sampled_from(NAMES), st.sampled_from(REQUIREMENTS))
package = st.dictionaries(
    st.sampled_from(VERSIONS),
    st.lists(edge, max_size=2, unique_by=lambda e: e[0]),
    min_size=1,
    max_size=4,
)
# pkge, when drawn, is often missing: a dependency on a package no source has
graphs = st.fixed_dictionaries({name: package for name in NAMES[:4]}, optional={NAMES[4]: package})
roots = st.lists(edge, min_size=1, max_size=3, unique_by=lambda e: e[0])


def source_of(graph: Graph) -> MemorySource:
    source = MemorySource()
    for name, versions in graph.items():
        for version, deps in versions.items():
            source.add(
                Candidate(
                    name,
                    Version(version),
                    tuple(Dependency(d, parse_requirement(r)) for d, r in deps if d != name),
                    "registry+prop",
                )
            )
    return source


@functools.cache
def matches(req: str, version: str) -> bool:
    return parse_requirement(req).matches(Version(version))


def exhaustive(graph: Graph, root: list[tuple[str, str]]) -> bool:
    """Whether some choice (a version or nothing, per package) meets every requirement."""
    names = sorted(graph)
    options = [[None, *graph[n]] for n in names]
    for combo in itertools.product(*options):
        pick = dict(zip(names, combo, strict=True))

        def ok(dep: str, req: str, pick: dict[str, str | None] = pick) -> bool:
            chosen = pick.get(dep)
            return chosen is not None and matches(req, chosen)

        if not all(ok(d, r) for d, r in root):
            continue
        if all(
            ok(d, r) for n, v in pick.items() if v is not None for d, r in graph[n][v] if d != n
        ):
            return True
    return False


def reachable(graph: Graph, root: list[tuple[str, str]]) -> set[str]:
    seen: set[str] = set()
    todo = [d for d, _ in root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for deps in graph.get(name, {}).values():
            todo.extend(d for d, _ in deps)
    return seen


@settings(
    max_examples=120, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(graphs, roots)
def test_resolver_agrees_with_exhaustive_search(graph: Graph, root: list[tuple[str, str]]) -> None:
    deps = [Dependency(d, parse_requirement(r)) for d, r in root]
    try:
        res = resolve(deps, source_of(graph))
    except (DependencyConflictError, NotFoundError) as exc:
        assert not exhaustive(graph, root), exc.message
        named = set(re.findall(r"\bpkg[a-e]\b", exc.message))
        assert named, exc.message
        assert named <= reachable(graph, root), exc.message
        assert "\n" not in exc.message and exc.hint
        return
    for dep in deps:
        assert dep.requirement.matches(res[dep.name].version), (dep, res[dep.name])
    for candidate in res.values():
        for dep in candidate.dependencies:
            assert dep.requirement.matches(res[dep.name].version), (candidate, dep)
    assert set(res) <= reachable(graph, root)
