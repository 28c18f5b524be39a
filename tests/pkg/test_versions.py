"""Versions and requirements: parsing, matching tables, prereleases, round trips."""

from __future__ import annotations

import itertools

import pytest

from vudo.errors import InvalidInputError
from vudo.pkg.versions import Version, parse_requirement, parse_version

MATCHES: list[tuple[str, str, bool]] = [
    # caret
    ("^1.2.3", "1.2.3", True),
    ("^1.2.3", "1.9.0", True),
    ("^1.2.3", "2.0.0", False),
    ("^1.2.3", "1.2.2", False),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^1", "1.99.99", True),
    ("^1", "2.0.0", False),
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.1.9", False),
    ("^0", "0.9.9", True),
    ("^0", "1.0.0", False),
    ("^0.0", "0.0.9", True),
    ("^0.0", "0.1.0", False),
    # bare = caret
    ("1.2.3", "1.4.0", True),
    ("1.2.3", "2.0.0", False),
    ("0.4", "0.4.7", True),
    ("0.4", "0.5.0", False),
    # tilde
    ("~1.2.3", "1.2.9", True),
    ("~1.2.3", "1.3.0", False),
    ("~1.2", "1.2.0", True),
    ("~1", "1.9.0", True),
    ("~1", "2.0.0", False),
    # exact
    ("=1.2.3", "1.2.3", True),
    ("=1.2.3", "1.2.4", False),
    ("=1.2", "1.2.7", True),
    ("=1.2", "1.3.0", False),
    # bounds
    (">=1.2", "1.2.0", True),
    (">=1.2", "1.1.9", False),
    (">1.2", "1.2.9", False),
    (">1.2", "1.3.0", True),
    (">1.2.3", "1.2.4", True),
    (">1.2.3", "1.2.3", False),
    ("<2", "1.99.0", True),
    ("<2", "2.0.0", False),
    ("<=1.2", "1.2.9", True),
    ("<=1.2", "1.3.0", False),
    ("<=1.2.3", "1.2.3", True),
    ("<=1.2.3", "1.2.4", False),
    # ranges
    (">=1.2, <2", "1.5.0", True),
    (">=1.2, <2", "2.0.0", False),
    (">=1.2, <2", "1.1.0", False),
    (">= 1.2 , < 2", "1.2.0", True),
    # wildcards
    ("*", "0.0.1", True),
    ("*", "99.0.0", True),
    ("1.*", "1.5.0", True),
    ("1.*", "2.0.0", False),
    ("1.2.*", "1.2.5", True),
    ("1.2.*", "1.3.0", False),
    # prereleases
    ("^1.0", "1.1.0-beta", False),
    ("*", "1.0.0-alpha", False),
    ("<2", "2.0.0-alpha", False),
    ("^1.0.0-beta", "1.0.0-beta", True),
    ("^1.0.0-beta", "1.0.0-rc.1", True),
    ("^1.0.0-beta", "1.0.0-alpha", False),
    ("^1.0.0-beta", "1.0.0", True),
    ("^1.0.0-beta", "1.2.0", True),
    ("^1.0.0-beta", "1.2.0-beta", False),
    ("=1.0.0-rc.1", "1.0.0-rc.1", True),
    (">=1.0.0-alpha.1, <1.0.0", "1.0.0-alpha.2", True),
    (">=1.0.0-alpha.1, <1.0.0", "1.0.0-alpha", False),
    # build metadata ignored
    ("=1.2.3", "1.2.3+build.5", True),
    ("^1.2.3", "1.2.3+abc", True),
]


@pytest.mark.parametrize(("requirement", "version", "expected"), MATCHES)
def test_requirement_matching(requirement: str, version: str, expected: bool) -> None:
    assert parse_requirement(requirement).matches(Version(version)) is expected


def test_prerelease_ordering_follows_semver2() -> None:
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ]
    parsed = [parse_version(v) for v in chain]
    assert parsed == sorted(reversed(parsed))
    for low, high in itertools.pairwise(parsed):
        assert low < high and high > low and low <= high and low != high


@pytest.mark.parametrize(
    "text", ["^1.2", ">=1.2, <2", "~0.3.1", "=1.0.0-rc.1", "*", "1.2.*", "<=3", "1.2.3", ">1, <1.5"]
)
def test_str_round_trip(text: str) -> None:
    req = parse_requirement(text)
    assert str(req) == text
    assert parse_requirement(str(req)) == req


def test_str_normalises_spacing() -> None:
    assert str(parse_requirement(" >=  1.2 ,<2 ")) == ">=1.2, <2"


def test_select_highest_match() -> None:
    versions = [Version(v) for v in ["1.0.0", "1.4.2", "1.10.0", "2.0.0", "1.11.0-beta"]]
    assert parse_requirement("^1").select(versions) == Version("1.10.0")
    assert parse_requirement("~1.4").select(versions) == Version("1.4.2")
    assert parse_requirement(">=3").select(versions) is None
    assert parse_requirement("^1.11.0-alpha").select(versions) == Version("1.11.0-beta")
    assert parse_requirement("^1").filter(versions) == [
        Version(v) for v in ["1.10.0", "1.4.2", "1.0.0"]
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "^",
        "1.2.3.4",
        ">>1",
        "^1.x.3",
        "01.2.3",
        "1.2-beta",
        ">=1,",
        "1 || 2",
        ">*",
        "^1.2.3 4",
    ],
)
def test_bad_requirements_raise_with_hint(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_requirement(text)
    assert info.value.hint
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    "text", ["1.2", "1", "v1.2.3", "1.2.3.4", "01.2.3", "", "1.2.3-", "latest"]
)
def test_bad_versions_raise_with_hint(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_version(text)
    assert info.value.hint


def test_v_prefix_hint_names_the_fix() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_version("v1.2.3")
    assert info.value.hint is not None and '"1.2.3"' in info.value.hint


def test_non_string_input_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        parse_version(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        parse_requirement(None)  # type: ignore[arg-type]


def test_version_ordering_ignores_build_metadata_but_equality_does_not() -> None:
    assert not Version("1.0.0+a") < Version("1.0.0+b")
    assert not Version("1.0.0+a") > Version("1.0.0+b")
    assert Version("1.0.0+a") != Version("1.0.0+b") and Version("1.0.0") <= Version("1.0.0+b")
    assert Version("1.2.3-rc.1+b.2") == Version("1.2.3-rc.1+b.2")
    assert hash(Version("1.2.3+b")) == hash(Version("1.2.3+b"))


def test_version_parts_text_and_immutability() -> None:
    v = Version("1.2.3-rc.1+build.5")
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == (
        1,
        2,
        3,
        ("rc", "1"),
        ("build", "5"),
    )
    assert str(v) == "1.2.3-rc.1+build.5" and repr(v) == "Version('1.2.3-rc.1+build.5')"
    assert Version(major=1, minor=2, patch=3, prerelease=("rc",)) == Version("1.2.3-rc")
    with pytest.raises(AttributeError):
        v.major = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "text", ["01.2.3", "1.2", "1.0.0-01", "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-a..b", "-1.0.0"]
)
def test_version_refuses_what_semver_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        Version(text)
