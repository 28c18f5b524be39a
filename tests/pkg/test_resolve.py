"""The resolver: picks, backtracking, conflicts explained, optional deps, path deps, locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from vudo.errors import DependencyConflictError, InvalidInputError, NotFoundError
from vudo.pkg.lockfile import LockedPackage, Lockfile
from vudo.pkg.manifest import Dependency, parse_manifest
from vudo.pkg.resolve import Resolution, resolve
from vudo.pkg.sources import Candidate, MemorySource
from vudo.pkg.versions import Version, parse_requirement

AUTHOR = "cd" * 32


def dep(name: str, req: str = "*", **kw: object) -> Dependency:
    return Dependency(name, parse_requirement(req), **kw)  # type: ignore[arg-type]


def cand(
    name: str, version: str, *deps: str, source: str = "registry+test", digest: str | None = None
) -> Candidate:
    parsed = []
    for text in deps:
        dep_name, _, req = text.partition(" ")
        optional = req.endswith("?")
        parsed.append(dep(dep_name, req.rstrip("?") or "*", optional=optional))
    return Candidate(name, Version(version), tuple(parsed), source, digest)


def versions(res: Resolution) -> dict[str, str]:
    return {name: str(c.version) for name, c in res.items()}


def test_picks_highest_matching_versions() -> None:
    src = MemorySource(
        [
            cand("a", "1.0.0"),
            cand("a", "1.5.0"),
            cand("a", "2.0.0"),
            cand("b", "0.1.0", "a ^1"),
            cand("b", "0.2.0", "a ^1"),
        ]
    )
    res = resolve([dep("b", "^0.1")], src)
    assert versions(res) == {"a": "1.5.0", "b": "0.1.0"}
    res = resolve([dep("b", "*")], src)
    assert versions(res) == {"a": "1.5.0", "b": "0.2.0"}


def test_install_order_puts_dependencies_first() -> None:
    src = MemorySource(
        [
            cand("app", "1.0.0", "lib ^1", "util ^1"),
            cand("lib", "1.0.0", "util ^1"),
            cand("util", "1.0.0"),
        ]
    )
    res = resolve([dep("app", "^1")], src)
    assert list(res) == ["util", "lib", "app"]
    assert res.dependencies_of("app") == ("lib", "util")
    assert res.dependencies_of("") == ("app",)
    assert res["lib"].version == Version("1.0.0")
    assert len(res) == 3 and "app" in res


def test_backtracks_past_newest_version_with_unsatisfiable_deps() -> None:
    # newest a (2.0) needs c ^2, which conflicts with b's c ^1: a 1.x must be chosen
    src = MemorySource(
        [
            cand("a", "2.0.0", "c ^2"),
            cand("a", "1.9.0", "c ^1"),
            cand("a", "1.0.0", "c ^1"),
            cand("b", "1.0.0", "c ^1"),
            cand("c", "1.0.0"),
            cand("c", "1.3.0"),
            cand("c", "2.0.0"),
        ]
    )
    res = resolve([dep("b", "^1"), dep("a", "*")], src)
    assert versions(res) == {"a": "1.9.0", "b": "1.0.0", "c": "1.3.0"}


def test_backtracks_when_newest_needs_missing_package() -> None:
    src = MemorySource([cand("a", "2.0.0", "ghost ^1"), cand("a", "1.0.0")])
    assert versions(resolve([dep("a")], src)) == {"a": "1.0.0"}


def test_deep_backtracking_chain() -> None:
    # x 3 -> y 3 -> z ^3 (missing); x 2 -> y 2 -> z ^2 (missing); x 1 -> y 1 -> z ^1
    src = MemorySource([cand("z", "1.0.0")])
    for n in (1, 2, 3):
        src.add(cand("x", f"{n}.0.0", f"y ={n}"))
        src.add(cand("y", f"{n}.0.0", f"z ^{n}"))
    assert versions(resolve([dep("x")], src)) == {"x": "1.0.0", "y": "1.0.0", "z": "1.0.0"}


def test_conflict_message_names_who_needs_what() -> None:
    src = MemorySource(
        [
            cand("a", "1.2.0", "b ^2"),
            cand("c", "0.4.0", "b <2"),
            cand("b", "1.0.0"),
            cand("b", "2.1.0"),
        ]
    )
    with pytest.raises(DependencyConflictError) as info:
        resolve([dep("a", "=1.2.0"), dep("c", "=0.4.0")], src)
    message = str(info.value)
    assert "a 1.2.0 needs b ^2" in message
    assert "c 0.4.0 needs b <2" in message
    assert message.startswith("cannot resolve b: ")
    assert info.value.hint
    assert info.value.exit_code == 6


def test_conflict_with_root_manifest_names_the_root() -> None:
    root = parse_manifest(
        f'name = "app"\nversion = "0.3.0"\nauthor = "{AUTHOR}"\n[dependencies]\nb = "^3"\n'
    )
    src = MemorySource([cand("b", v) for v in ("1.0.0", "2.0.0", "2.1.0")])
    with pytest.raises(DependencyConflictError) as info:
        resolve(root, src)
    assert str(info.value) == (
        "cannot resolve b: app 0.3.0 needs b ^3, but no version "
        "matches (available: 2.1.0, 2.0.0, 1.0.0)"
    )


def test_missing_package_is_not_found() -> None:
    with pytest.raises(NotFoundError) as info:
        resolve([dep("nothing", "^1")], MemorySource())
    assert "no source has a package named nothing" in str(info.value)
    assert info.value.exit_code == 5


def test_prerelease_only_when_asked() -> None:
    src = MemorySource([cand("a", "1.0.0"), cand("a", "1.1.0-beta.1")])
    assert versions(resolve([dep("a", "^1")], src)) == {"a": "1.0.0"}
    assert versions(resolve([dep("a", "^1.1.0-beta")], src)) == {"a": "1.1.0-beta.1"}


def test_optional_dependencies_skipped_unless_requested() -> None:
    src = MemorySource([cand("a", "1.0.0", "extra ^1?"), cand("extra", "1.0.0")])
    assert versions(resolve([dep("a")], src)) == {"a": "1.0.0"}
    res = resolve([dep("a")], src, with_optional=["extra"])
    assert versions(res) == {"a": "1.0.0", "extra": "1.0.0"}
    assert versions(resolve([dep("extra", optional=True)], src)) == {}


def test_sources_are_searched_in_order_and_merged() -> None:
    first = MemorySource([cand("a", "1.0.0", source="registry+first")])
    second = MemorySource(
        [cand("a", "1.0.0", source="registry+second"), cand("a", "1.1.0", source="registry+second")]
    )
    res = resolve([dep("a", "=1.0.0")], [first, second])
    assert res["a"].source == "registry+first"
    assert resolve([dep("a")], [first, second])["a"].source == "registry+second"


def test_named_registry() -> None:
    default = MemorySource([cand("a", "1.0.0")])
    community = MemorySource([cand("a", "9.0.0", source="registry+community")])
    res = resolve(
        [dep("a", "*", registry="community")], default, registries={"community": community}
    )
    assert res["a"].version == Version("9.0.0")
    with pytest.raises(NotFoundError, match='unknown registry "other"'):
        resolve([dep("a", "*", registry="other")], default)


def test_cycles_resolve() -> None:
    src = MemorySource([cand("a", "1.0.0", "b ^1"), cand("b", "1.0.0", "a ^1")])
    assert sorted(resolve([dep("a")], src)) == ["a", "b"]


def write_spirit(directory: Path, name: str, version: str, deps: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = f'name = "{name}"\nversion = "{version}"\nauthor = "{AUTHOR}"\n'
    if deps:
        text += "[dependencies]\n" + deps
    (directory / "spirit.toml").write_text(text)
    return directory


def test_path_dependencies_nested_relative_to_each_manifest(tmp_path: Path) -> None:
    app = write_spirit(tmp_path / "app", "app", "0.1.0", 'b = { path = "../libs/b" }\nreg = "^1"\n')
    write_spirit(tmp_path / "libs" / "b", "b", "0.2.0", 'c = { path = "../c", version = "^1" }\n')
    write_spirit(tmp_path / "libs" / "c", "c", "1.4.0")
    from vudo.pkg.manifest import load_manifest

    res = resolve(load_manifest(app), MemorySource([cand("reg", "1.0.0")]), root_dir=app)
    assert versions(res) == {"b": "0.2.0", "c": "1.4.0", "reg": "1.0.0"}
    assert res["b"].source == "path+../libs/b"
    assert res["c"].source == "path+../libs/c"
    assert list(res)[:2] == ["c", "b"]


def test_path_dependency_version_requirement_is_checked(tmp_path: Path) -> None:
    write_spirit(tmp_path / "b", "b", "0.2.0")
    with pytest.raises(DependencyConflictError, match=r"needs b \^1 from path b"):
        resolve([dep("b", "^1", path="b")], root_dir=tmp_path)


def test_path_dependency_errors(tmp_path: Path) -> None:
    write_spirit(tmp_path / "b", "actually-c", "1.0.0")
    with pytest.raises(InvalidInputError, match='is a Spirit named "actually-c"'):
        resolve([dep("b", path="b")], root_dir=tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        resolve([dep("b", path="nope")], root_dir=tmp_path)


def test_registry_package_with_path_dependency_is_refused() -> None:
    src = MemorySource([cand("a", "1.0.0")])
    src.add(Candidate("b", Version("1.0.0"), (dep("a", path="../a"),), "registry+test"))
    with pytest.raises(InvalidInputError, match="only works in a local project"):
        resolve([dep("b")], src)


# ------------------------------------------------------------------ locks


def lock_of(**pins: str) -> Lockfile:
    return Lockfile(tuple(LockedPackage(n, Version(v), "registry+test") for n, v in pins.items()))


def test_prefer_keeps_locked_versions() -> None:
    src = MemorySource([cand("a", "1.0.0"), cand("a", "1.1.0")])
    assert versions(resolve([dep("a", "^1")], src)) == {"a": "1.1.0"}
    assert versions(resolve([dep("a", "^1")], src, prefer=lock_of(a="1.0.0"))) == {"a": "1.0.0"}
    # a lock that no longer fits the requirement is ignored
    assert versions(resolve([dep("a", "^1.1")], src, prefer=lock_of(a="1.0.0"))) == {"a": "1.1.0"}


def test_locked_mode_reproduces_lock() -> None:
    src = MemorySource(
        [
            cand("a", "1.0.0", "b ^1"),
            cand("a", "1.1.0", "b ^1"),
            cand("b", "1.0.0"),
            cand("b", "1.2.0"),
        ]
    )
    first = resolve([dep("a", "^1")], src, prefer=lock_of(a="1.0.0"))
    lock = Lockfile.from_resolution(first)
    again = resolve([dep("a", "^1")], src, locked=lock)
    assert versions(again) == versions(first) == {"a": "1.0.0", "b": "1.2.0"}


def test_locked_mode_refuses_changes() -> None:
    src = MemorySource([cand("a", "1.0.0"), cand("a", "2.0.0"), cand("new", "1.0.0")])
    lock = Lockfile.from_resolution(resolve([dep("a", "^1")], src))
    with pytest.raises(DependencyConflictError) as info:
        resolve([dep("a", "^2"), dep("new")], src, locked=lock)
    assert str(info.value) == "spirit.lock is out of date: a 1.0.0 -> 2.0.0; add new 1.0.0"
    assert info.value.hint == "run without --locked to update spirit.lock"
    with pytest.raises(DependencyConflictError, match=r"remove a 1\.0\.0"):
        resolve([], src, locked=lock)


def test_locked_mode_detects_changed_digest() -> None:
    lock = Lockfile.from_resolution(
        resolve([dep("a")], MemorySource([cand("a", "1.0.0", digest="aa")]))
    )
    with pytest.raises(DependencyConflictError, match="digest aa -> bb"):
        resolve([dep("a")], MemorySource([cand("a", "1.0.0", digest="bb")]), locked=lock)


def test_random_graph_resolution_satisfies_every_requirement() -> None:
    # A seeded random graph that has a solution by construction: the newest version of
    # each package, except every 7th package, whose newest version needs something that
    # does not exist (the resolver must step back to the one before).
    import random

    rng = random.Random(3)
    names = [f"p{i:03d}" for i in range(150)]
    all_versions = [f"{1 + n // 4}.{n % 4}.0" for n in range(8)]
    good = {
        name: all_versions[-2] if i % 7 == 0 else all_versions[-1] for i, name in enumerate(names)
    }
    src = MemorySource()
    for i, name in enumerate(names):
        later = names[i + 1 : i + 25]
        for version in all_versions:
            deps = []
            for target in rng.sample(later, min(3, len(later))):
                v = Version(good[target])
                deps.append(
                    f"{target} "
                    + rng.choice([f"^{v.major}", f">={v}", f"~{v.major}.{v.minor}", f"={v}", "*"])
                )
            if i % 7 == 0 and version == all_versions[-1] and later:
                deps.append(f"{later[0]} ^9")
            src.add(cand(name, version, *deps))
    res = resolve([dep(n) for n in names[:10]], src)
    assert len(res) > 100
    position = {name: i for i, name in enumerate(res)}
    for candidate in res.values():
        for d in candidate.dependencies:
            assert d.requirement.matches(res[d.name].version), (candidate, d)
            assert position[d.name] < position[candidate.name]
        assert str(candidate.version) == good[candidate.name]


def test_too_many_rounds_is_a_conflict_with_hint() -> None:
    src = MemorySource([cand("a", "1.0.0", "b ^1"), cand("b", "1.0.0", "c ^1"), cand("c", "1.0.0")])
    with pytest.raises(DependencyConflictError, match="gave up after 2 rounds") as info:
        resolve([dep("a")], src, max_rounds=2)
    assert info.value.hint


def test_every_resolvelib_error_is_translated() -> None:
    import resolvelib.resolvers as rr

    from vudo.errors import VudoError

    errors = [c for c in vars(rr).values() if isinstance(c, type) and issubclass(c, Exception)]
    # resolve() catches the two user-facing errors by name and the base class for the rest
    assert {rr.ResolutionImpossible, rr.ResolutionTooDeep, rr.InconsistentCandidate} <= set(errors)
    assert all(issubclass(c, rr.ResolverException) for c in errors)
    assert issubclass(DependencyConflictError, VudoError)


def test_path_dependency_also_satisfies_registry_requirements(tmp_path: Path) -> None:
    write_spirit(tmp_path / "b", "b", "1.4.0")
    src = MemorySource([cand("a", "1.0.0", "b ^1"), cand("b", "1.9.0")])
    res = resolve([dep("a"), dep("b", path="b")], src, root_dir=tmp_path)
    assert res["b"].source == "path+b" and res["b"].version == Version("1.4.0")


def test_two_different_paths_for_one_name_conflict(tmp_path: Path) -> None:
    write_spirit(tmp_path / "one", "b", "1.0.0")
    write_spirit(tmp_path / "two", "b", "1.0.0")
    write_spirit(tmp_path / "a", "a", "1.0.0", 'b = { path = "../two" }\n')
    with pytest.raises(DependencyConflictError) as info:
        resolve([dep("b", path="one"), dep("a", path="a")], root_dir=tmp_path)
    assert "the request needs b from path one" in str(info.value)
    assert "a 1.0.0 needs b from path ../two" in str(info.value)
