"""Our SemVer 2 :class:`~vudo.pkg.versions.Version` against the reference implementation.

vudo's runtime used ``semantic_version`` until its import (it loads ``importlib.metadata``)
cost ``vudo search`` more than the query; :mod:`vudo.pkg.versions` now defines its own
``Version``. The tests keep the library as the oracle: on random versions, both parse the
same strings, refuse the same strings, and order, compare and print them the same way.
"""

from __future__ import annotations

import semantic_version
from hypothesis import given, settings
from hypothesis import strategies as st

from vudo.pkg.versions import Version

_number = st.integers(min_value=0, max_value=10**6).map(str)
_ident = st.one_of(
    _number,
    st.text(alphabet="0123456789abcxyzABZ-", min_size=1, max_size=8).filter(
        lambda s: not s.isdigit()
    ),
)
_parts = st.lists(_ident, min_size=1, max_size=4).map(".".join)
versions = st.builds(
    lambda core, pre, build: core + (f"-{pre}" if pre else "") + (f"+{build}" if build else ""),
    st.tuples(_number, _number, _number).map(".".join),
    st.one_of(st.none(), _parts),
    st.one_of(st.none(), _parts),
)
# Strings near the grammar: leading zeros, empty parts, stray characters, partial versions.
near_misses = st.text(alphabet="0123456789v.+-a", min_size=1, max_size=16)


def _reference(text: str) -> semantic_version.Version | None:
    try:
        return semantic_version.Version(text)
    except ValueError:
        return None


def _ours(text: str) -> Version | None:
    try:
        return Version(text)
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(versions, versions)
def test_order_and_equality_match_the_reference(a: str, b: str) -> None:
    ra, rb = semantic_version.Version(a), semantic_version.Version(b)
    oa, ob = Version(a), Version(b)
    assert (oa < ob, oa == ob, oa > ob, oa <= ob, oa >= ob) == (
        ra < rb,
        ra == rb,
        ra > rb,
        ra <= rb,
        ra >= rb,
    ), (a, b)
    assert str(oa) == str(ra)


@settings(max_examples=300, deadline=None)
@given(st.one_of(versions, near_misses))
def test_the_same_strings_are_versions(text: str) -> None:
    ours, reference = _ours(text), _reference(text)
    assert (ours is None) == (reference is None), text
    if ours is not None and reference is not None:
        assert (ours.major, ours.minor, ours.patch) == (
            reference.major,
            reference.minor,
            reference.patch,
        )
        assert ours.prerelease == tuple(reference.prerelease)
        assert ours.build == tuple(reference.build)
