"""Versions and version requirements (SemVer 2, Cargo-style requirements).

Every version vudo handles is a :class:`Version` (SemVer 2, defined here: the
``semantic_version`` package this replaced imports ``importlib.metadata`` when loaded,
which cost ``vudo search`` more than its query); this module parses versions and the
requirement strings found in manifests (``b = "^1.2"``) and on the command line
(``vudo install b@">=1.2, <2"``).

Requirement syntax, one or more comma-joined terms that must all hold:

=============  =========================================================================
``^1.2.3``     compatible: ``>=1.2.3, <2.0.0``; ``^0.2.3`` is ``>=0.2.3, <0.3.0``;
               ``^0.0.3`` is ``>=0.0.3, <0.0.4`` (the left-most non-zero part is fixed)
``~1.2.3``     patch updates: ``>=1.2.3, <1.3.0``; ``~1`` is ``>=1.0.0, <2.0.0``
``1.2.3``      a bare version means the same as ``^1.2.3``, as in Cargo
``=1.2.3``     exactly that version (``=1.2`` is any ``1.2.x``)
``>=``, ``>``  bounds; partial versions are filled like Cargo: ``>1.2`` means ``>=1.3.0``
``<=``, ``<``  and ``<=1.2`` means ``<1.3.0``
``*``          any version (``1.*`` and ``1.2.*`` are wildcards too)
=============  =========================================================================

Prereleases follow SemVer 2 ordering (``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta <
1.0.0``). As in Cargo and npm, a prerelease version only matches a requirement that
itself names a prerelease of the same ``major.minor.patch`` (``^1.0.0-beta`` matches
``1.0.0-rc.1`` but ``^1.0`` does not, and nothing matches ``2.0.0-alpha`` by accident).
That keeps ``vudo install`` from picking up unfinished releases unless asked to.

Build metadata (``+build5``) is kept on versions but ignored when comparing, per SemVer 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vudo.errors import InvalidInputError

_NUMERIC = re.compile(r"0|[1-9][0-9]*")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+")
_FULL = re.compile(
    r"(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


class Version:
    """A SemVer 2 version: ``major.minor.patch[-prerelease][+build]``, immutable.

    Ordering is SemVer precedence: numbers, then a prerelease below its release, its
    identifiers compared one by one (numeric ones as numbers and below alphanumeric
    ones, a longer list above its prefix). Build metadata is ignored when ordering but
    kept by equality and hashing (``1.0.0+a`` is neither below, above nor equal to
    ``1.0.0+b``), as ``semantic_version`` did.
    """

    __slots__ = ("_key", "build", "major", "minor", "patch", "prerelease")

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]
    build: tuple[str, ...]
    _key: tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]

    def __init__(
        self,
        version_string: str | None = None,
        *,
        major: int | None = None,
        minor: int | None = None,
        patch: int | None = None,
        prerelease: Iterable[str] | None = None,
        build: Iterable[str] | None = None,
    ) -> None:
        if version_string is not None:
            m = _FULL.fullmatch(version_string)
            if m is None:
                raise ValueError(f"Invalid version string: {version_string!r}")
            major, minor, patch = int(m["major"]), int(m["minor"]), int(m["patch"])
            prerelease = m["pre"].split(".") if m["pre"] else ()
            build = m["build"].split(".") if m["build"] else ()
        if major is None or minor is None or patch is None:
            raise ValueError("a version needs major, minor and patch")
        pre, meta = tuple(prerelease or ()), tuple(build or ())
        for part in pre:
            if not _IDENTIFIER.fullmatch(part) or (part.isdigit() and not _NUMERIC.fullmatch(part)):
                raise ValueError(f"Invalid prerelease identifier {part!r}")
        for part in meta:
            if not _IDENTIFIER.fullmatch(part):
                raise ValueError(f"Invalid build identifier {part!r}")
        if min(major, minor, patch) < 0:
            raise ValueError("version numbers cannot be negative")
        setattr_ = object.__setattr__
        setattr_(self, "major", int(major))
        setattr_(self, "minor", int(minor))
        setattr_(self, "patch", int(patch))
        setattr_(self, "prerelease", pre)
        setattr_(self, "build", meta)
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre)
        setattr_(self, "_key", (int(major), int(minor), int(patch), 0 if pre else 1, ids))

    @property
    def precedence_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """What ordering compares: the numbers, release above prerelease, identifiers."""
        return self._key

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Version is immutable")

    def __iter__(self) -> Iterator[Any]:
        return iter((self.major, self.minor, self.patch, self.prerelease, self.build))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.prerelease, self.build))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key == other._key and self.build == other.build

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return not self == other

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return bool(self._key < other._key)

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return bool(self._key <= other._key)

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return bool(self._key > other._key)

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return bool(self._key >= other._key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Version, (str(self),))


__all__ = [
    "Comparator",
    "Requirement",
    "Version",
    "parse_requirement",
    "parse_version",
]

_VERSION_HINT = "versions look like 1.2.3 (major.minor.patch, optionally -prerelease or +build)"
_REQUIREMENT_HINT = 'requirements look like "^1.2", "~1.2.3", ">=1.2, <2", "=1.0.0", "1.2.3" or "*"'

_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_NUM = r"0|[1-9][0-9]*"
_PARTIAL = re.compile(
    rf"(?P<major>{_NUM}|\*|x|X)"
    rf"(?:\.(?P<minor>{_NUM}|\*|x|X))?"
    rf"(?:\.(?P<patch>{_NUM}|\*|x|X))?"
    rf"(?:-(?P<pre>{_IDENT}))?"
    rf"(?:\+(?P<build>{_IDENT}))?"
)
_TERM = re.compile(r"(?P<op>\^|~|>=|<=|>|<|=)?\s*(?P<version>\S+)")  # used with fullmatch


def parse_version(text: str) -> Version:
    """Parse a full ``major.minor.patch[-pre][+build]`` version.

    Raise InvalidInputError with a hint on anything else (partial versions such as
    ``1.2`` are requirements, not versions).
    """
    if not isinstance(text, str):
        raise InvalidInputError(
            f"version must be a string, not {type(text).__name__}", hint=_VERSION_HINT
        )
    candidate = text.strip()
    if candidate.startswith(("v", "V")) and candidate[1:2].isdigit():
        raise InvalidInputError(
            f'invalid version "{text}"', hint=f'drop the leading "v": "{candidate[1:]}"'
        )
    try:
        return Version(candidate)
    except ValueError as exc:
        raise InvalidInputError(f'invalid version "{text}": {exc}', hint=_VERSION_HINT) from None


def _release(version: Version) -> Version:
    """The version without build metadata (what SemVer 2 compares)."""
    if version.build:
        return Version(
            major=version.major,
            minor=version.minor,
            patch=version.patch,
            prerelease=version.prerelease,
        )
    return version


@dataclass(frozen=True, slots=True)
class Comparator:
    """One primitive bound: ``op`` is one of ``>= > <= < ==`` against a full version."""

    op: str
    version: Version

    def matches(self, version: Version) -> bool:
        v = _release(version)
        if self.op == ">=":
            return bool(v >= self.version)
        if self.op == ">":
            return bool(v > self.version)
        if self.op == "<=":
            return bool(v <= self.version)
        if self.op == "<":
            return bool(v < self.version)
        return bool(v == self.version)


@dataclass(frozen=True, slots=True)
class _Partial:
    major: int | None
    minor: int | None
    patch: int | None
    pre: tuple[str, ...]

    def full(self) -> Version:
        return Version(
            major=self.major or 0,
            minor=self.minor or 0,
            patch=self.patch or 0,
            prerelease=self.pre or None,
        )


def _v(major: int, minor: int, patch: int) -> Version:
    return Version(major=major, minor=minor, patch=patch)


def _parse_partial(text: str, original: str) -> _Partial:
    match = _PARTIAL.fullmatch(text)
    if match is None:
        raise InvalidInputError(f'invalid version requirement "{original}"', hint=_REQUIREMENT_HINT)
    parts: list[int | None] = []
    wildcard_seen = False
    for key in ("major", "minor", "patch"):
        raw = match.group(key)
        if raw is None or raw in ("*", "x", "X"):
            wildcard_seen = True
            parts.append(None)
        elif wildcard_seen:
            raise InvalidInputError(
                f'invalid version requirement "{original}": a number cannot follow a wildcard',
                hint=_REQUIREMENT_HINT,
            )
        else:
            parts.append(int(raw))
    pre = match.group("pre")
    if pre is not None and parts[2] is None:
        raise InvalidInputError(
            f'invalid version requirement "{original}": a prerelease needs a full '
            "major.minor.patch version",
            hint=_REQUIREMENT_HINT,
        )
    return _Partial(parts[0], parts[1], parts[2], tuple(pre.split(".")) if pre else ())


def _compile(op: str, p: _Partial) -> tuple[Comparator, ...]:
    """Turn one term into primitive comparators (Cargo's semantics)."""
    if p.major is None:
        return ()  # "*": anything
    major = p.major
    if op == "^":
        if p.minor is None:
            return (Comparator(">=", _v(major, 0, 0)), Comparator("<", _v(major + 1, 0, 0)))
        minor = p.minor
        if p.patch is None:
            upper = _v(major + 1, 0, 0) if major > 0 else _v(0, minor + 1, 0)
            return (Comparator(">=", _v(major, minor, 0)), Comparator("<", upper))
        if major > 0:
            upper = _v(major + 1, 0, 0)
        elif minor > 0:
            upper = _v(0, minor + 1, 0)
        else:
            upper = _v(0, 0, p.patch + 1)
        return (Comparator(">=", p.full()), Comparator("<", upper))
    if op == "~":
        if p.minor is None:
            return (Comparator(">=", _v(major, 0, 0)), Comparator("<", _v(major + 1, 0, 0)))
        return (Comparator(">=", p.full()), Comparator("<", _v(major, p.minor + 1, 0)))
    if op == "=":
        if p.minor is None:
            return (Comparator(">=", _v(major, 0, 0)), Comparator("<", _v(major + 1, 0, 0)))
        if p.patch is None:
            return (
                Comparator(">=", _v(major, p.minor, 0)),
                Comparator("<", _v(major, p.minor + 1, 0)),
            )
        return (Comparator("==", p.full()),)
    if op == ">=":
        return (Comparator(">=", p.full()),)
    if op == ">":
        if p.minor is None:
            return (Comparator(">=", _v(major + 1, 0, 0)),)
        if p.patch is None:
            return (Comparator(">=", _v(major, p.minor + 1, 0)),)
        return (Comparator(">", p.full()),)
    if op == "<":
        return (Comparator("<", p.full()),)
    # "<="
    if p.minor is None:
        return (Comparator("<", _v(major + 1, 0, 0)),)
    if p.patch is None:
        return (Comparator("<", _v(major, p.minor + 1, 0)),)
    return (Comparator("<=", p.full()),)


@dataclass(frozen=True, slots=True)
class Requirement:
    """A parsed version requirement: the conjunction of its comma-joined terms.

    ``terms`` keeps the normalised text of each term (``">=1.2"``) so ``str()`` round
    trips through :func:`parse_requirement`; ``comparators`` is what matching uses.
    """

    terms: tuple[str, ...]
    comparators: tuple[Comparator, ...]
    prerelease_releases: tuple[tuple[int, int, int], ...]
    """The ``major.minor.patch`` of every prerelease the requirement names."""

    def __str__(self) -> str:
        return ", ".join(self.terms) if self.terms else "*"

    @property
    def is_any(self) -> bool:
        """Whether every (non-prerelease) version matches."""
        return not self.comparators

    def matches(self, version: Version) -> bool:
        """Whether ``version`` satisfies every term (see the module doc on prereleases)."""
        if version.prerelease and (
            (version.major, version.minor, version.patch) not in self.prerelease_releases
        ):
            return False
        return all(c.matches(version) for c in self.comparators)

    def select(self, versions: Iterable[Version]) -> Version | None:
        """The highest of ``versions`` that matches, or None."""
        best: Version | None = None
        for version in versions:
            if self.matches(version) and (best is None or _release(version) > _release(best)):
                best = version
        return best

    def filter(self, versions: Iterable[Version]) -> list[Version]:
        """The matching versions, highest first."""
        return sorted((v for v in versions if self.matches(v)), key=_release, reverse=True)


ANY = Requirement(terms=(), comparators=(), prerelease_releases=())


def parse_requirement(text: str) -> Requirement:
    """Parse a requirement string (see the module docstring for the syntax).

    Raise InvalidInputError with a hint on anything malformed.
    """
    if not isinstance(text, str):
        raise InvalidInputError(
            f"version requirement must be a string, not {type(text).__name__}",
            hint=_REQUIREMENT_HINT,
        )
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("empty version requirement", hint=_REQUIREMENT_HINT)
    if "||" in stripped:
        raise InvalidInputError(
            f'invalid version requirement "{text}": "||" is not supported',
            hint='write one range, e.g. ">=1.2, <3"',
        )
    terms: list[str] = []
    comparators: list[Comparator] = []
    pre_releases: list[tuple[int, int, int]] = []
    for raw in stripped.split(","):
        term = raw.strip()
        if not term:
            raise InvalidInputError(
                f'invalid version requirement "{text}": empty term', hint=_REQUIREMENT_HINT
            )
        match = _TERM.fullmatch(term)
        if match is None:
            raise InvalidInputError(f'invalid version requirement "{text}"', hint=_REQUIREMENT_HINT)
        op = match.group("op") or ""
        partial = _parse_partial(match.group("version"), text)
        if partial.major is None and op not in ("", "="):
            raise InvalidInputError(
                f'invalid version requirement "{text}": "{op}*" means nothing',
                hint='use "*" for any version',
            )
        if partial.major is None:
            if len(terms) == 0 and len(stripped.split(",")) == 1:
                return ANY
            terms.append("*")
            continue
        wildcard = partial.minor is None or partial.patch is None
        wildcard = wildcard and any(ch in match.group("version") for ch in "*xX")
        comparators.extend(_compile(op or ("=" if wildcard else "^"), partial))
        if partial.pre:
            assert partial.minor is not None and partial.patch is not None
            pre_releases.append((partial.major, partial.minor, partial.patch))
        terms.append(f"{op}{match.group('version')}")
    return Requirement(
        terms=tuple(terms), comparators=tuple(comparators), prerelease_releases=tuple(pre_releases)
    )
