"""The PubGrub resolver's newer promises: explanations as chains of causes, yanked
versions, the time bound, and why each version was chosen."""

from __future__ import annotations

import itertools

import pytest

from vudo.errors import DependencyConflictError
from vudo.pkg.lockfile import LockedPackage, Lockfile
from vudo.pkg.manifest import Dependency, parse_manifest
from vudo.pkg.resolve import Wanted, resolve
from vudo.pkg.sources import Candidate, MemorySource
from vudo.pkg.versions import Version, parse_requirement

AUTHOR = "cd" * 32


def dep(name: str, req: str = "*") -> Dependency:
    return Dependency(name, parse_requirement(req))


def cand(name: str, version: str, *deps: str, yanked: bool = False) -> Candidate:
    return Candidate(
        name,
        Version(version),
        tuple(dep(*d.split(" ", 1)) for d in deps),
        "registry+test",
        yanked=yanked,
    )


def app(deps: str) -> object:
    return parse_manifest(
        f'name = "app"\nversion = "1.0.0"\nauthor = "{AUTHOR}"\n[dependencies]\n{deps}'
    )


def test_explains_a_conflict_one_level_down_as_a_chain_of_causes() -> None:
    # app needs b ^2 and c ^1, but every b 2.x needs c <1
    src = MemorySource(
        [
            cand("b", "2.0.0", "c <1"),
            cand("b", "2.1.0", "c <1"),
            cand("b", "1.0.0", "c ^1"),
            cand("c", "0.5.0"),
            cand("c", "1.0.0"),
        ]
    )
    with pytest.raises(DependencyConflictError) as info:
        resolve(app('b = "^2"\nc = "^1"\n'), src)  # type: ignore[arg-type]
    message = info.value.message
    assert message == (
        "Because every b ^2 depends on c <1 and app 1.0.0 depends on b ^2, "
        "c 0.5.0 is required. And because app 1.0.0 depends on c ^1, "
        "app 1.0.0 cannot be satisfied."
    )
    assert info.value.exit_code == 6 and info.value.hint


def test_explanation_of_a_deep_conflict_names_only_the_packages_involved() -> None:
    # every a needs b; every b needs x; every x needs y 1.0.0, which needs a missing z ^3.
    # "noise" is required too but has nothing to do with it.
    src = MemorySource(
        [
            cand("a", "1.0.0", "b ^1"),
            cand("a", "2.0.0", "b ^2"),
            cand("b", "1.0.0", "x ^1"),
            cand("b", "2.0.0", "x ^2"),
            cand("x", "1.0.0", "y ^1"),
            cand("x", "2.0.0", "y ^1"),
            cand("y", "1.0.0", "z ^3"),
            cand("z", "1.0.0"),
            cand("noise", "1.0.0"),
            cand("noise", "2.0.0"),
        ]
    )
    with pytest.raises(DependencyConflictError) as info:
        resolve([dep("noise"), dep("a")], src)
    message = info.value.message
    assert "y 1.0.0 depends on z ^3, which no version matches" in message
    assert "x 1.0.0 depends on y ^1" in message and "b 2.0.0 depends on x ^2" in message
    assert "noise" not in message
    assert "\n" not in message


def test_yanked_versions_are_skipped_unless_locked() -> None:
    src = MemorySource([cand("a", "1.0.0"), cand("a", "1.1.0", yanked=True)])
    assert str(resolve([dep("a", "^1")], src)["a"].version) == "1.0.0"
    lock = Lockfile((LockedPackage("a", Version("1.1.0"), "registry+test"),))
    assert str(resolve([dep("a", "^1")], src, prefer=lock)["a"].version) == "1.1.0"
    assert str(resolve([dep("a", "^1")], src, locked=lock)["a"].version) == "1.1.0"
    only_yanked = MemorySource([cand("a", "1.1.0", yanked=True)])
    with pytest.raises(DependencyConflictError, match="no version matches"):
        resolve([dep("a", "^1")], only_yanked)


def chain(length: int) -> MemorySource:
    """q000 -> q001 -> ...; every newest version needs a package nobody has."""
    src = MemorySource()
    for i in range(length):
        src.add(cand(f"q{i:03d}", "2.0.0", "missing ^1"))
        src.add(cand(f"q{i:03d}", "1.0.0", *([f"q{i + 1:03d} *"] if i < length - 1 else [])))
    return src


def test_time_bound_names_the_packages_still_in_conflict() -> None:
    ticks = itertools.count()  # a clock that jumps 1 s per reading
    with pytest.raises(DependencyConflictError) as info:
        resolve([dep("q000")], chain(100), timeout=2.0, clock=lambda: float(next(ticks)))
    message = info.value.message
    assert message.startswith(
        "dependency resolution ran out of time (after 48 decisions; "
        "still in conflict: missing, q000, q001"
    )
    assert "more time" in info.value.hint
    assert info.value.exit_code == 6


def test_no_round_limit_by_default_on_a_long_chain() -> None:
    # 300 packages in a chain, each newest version unusable: resolved without a round cap
    res = resolve([dep("q000")], chain(300))
    assert len(res) == 300 and {str(c.version) for c in res.values()} == {"1.0.0"}


def test_resolution_says_who_wants_what_and_why_each_version() -> None:
    src = MemorySource(
        [
            cand("a", "2.0.0", "c ^2"),
            cand("a", "1.9.0", "c ^1"),
            cand("b", "1.0.0", "c ^1"),
            cand("c", "1.0.0"),
            cand("c", "1.3.0"),
            cand("c", "2.0.0"),
        ]
    )
    res = resolve([dep("b", "^1"), dep("a", "*")], src)
    assert res.wanted_by("c") == (Wanted("a", "c", "c ^1"), Wanted("b", "c", "c ^1"))
    assert res.wanted_by("a") == (Wanted("", "a", "a *"),)
    assert res.reason("c") == "newest that fits every requirement"
    assert res.reason("a") == ("newer 2.0.0 fit the requirements but their dependencies conflict")
    lock = Lockfile((LockedPackage("c", Version("1.0.0"), "registry+test"),))
    assert resolve([dep("b", "^1")], src, prefer=lock).reason("c") == "locked"


def test_tree_and_paths() -> None:
    from vudo.pkg.resolve import TreeRow

    src = MemorySource(
        [
            cand("app", "1.0.0", "lib ^1", "util ^1"),
            cand("lib", "1.0.0", "util ^1", "app ^1"),
            cand("util", "1.2.0"),
        ]
    )
    res = resolve([dep("app", "^1")], src)
    assert res.tree() == (
        TreeRow(1, "app", "app ^1", False),
        TreeRow(2, "lib", "lib ^1", False),
        TreeRow(3, "app", "app ^1", True),  # the cycle ends here
        TreeRow(3, "util", "util ^1", False),
        TreeRow(2, "util", "util ^1", True),
    )
    assert res.path_to("util") == ("", "app", "util")
    assert res.path_to("lib") == ("", "app", "lib")
    assert res.path_to("nothing") == ()
