"""Property tests: the package reader fed mutated ``.spirit`` files.

Byte flips, truncations, inserted bytes, edited member headers (names turned into
``../`` or absolute paths, sizes, name lengths) and duplicated members: every such file
is refused by :func:`verify_package` with a verification (exit 4) or invalid-input
(exit 3) error, never any other exception, and :func:`extract` either refuses it the
same way or writes only inside its target directory. Examples are derandomized, so the
run is the same every time and takes a few seconds.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vudo.errors import InvalidInputError, VerificationError
from vudo.pkg.archive import MemberDigests, extract, pack
from vudo.pkg.keys import generate_keypair
from vudo.pkg.signing import check_package, sign_package, verify_package

REFUSALS = (VerificationError, InvalidInputError)
LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
HOSTILE_NAMES = (
    b"../evil",
    b"/tmp/evil",
    b"a/../../evil",
    b"assets/../../x",
    b"..",
    b"./module.wasm",
    b"assets\\..\\x",
    b"module.wasm\x00",
    b"",
    b"assets/",
)


def _base(root: Path) -> bytes:
    """One signed package with a module, the manifest, an asset in a folder and the
    signature: the input every example mutates."""
    signer = generate_keypair(lambda n: bytes([7]) * n)
    src = root / "src"
    (src / "assets").mkdir(parents=True)
    (src / "spirit.toml").write_text(
        f'name = "prop"\nversion = "1.0.0"\nauthor = "{signer.public_hex}"\n'
        'description = "property test"\ncapabilities = ["sensor_time"]\n'
    )
    (src / "module.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00" + bytes(range(200)))
    (src / "assets" / "data.txt").write_bytes(b"hello " * 40)
    out = pack(
        src / "spirit.toml",
        src / "module.wasm",
        root / "prop-1.0.0.spirit",
        assets=[("assets/data.txt", src / "assets" / "data.txt")],
    )
    sign_package(out, signer)
    verify_package(out)  # the base itself is good
    return out.read_bytes()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _base(tmp_path_factory.mktemp("base"))


def _headers(data: bytes) -> list[tuple[int, bool]]:
    """(offset, is_central) of every local and central header signature."""
    found: list[tuple[int, bool]] = []
    for sig, central in ((LOCAL_SIG, False), (CENTRAL_SIG, True)):
        start = data.find(sig)
        while start != -1:
            found.append((start, central))
            start = data.find(sig, start + 1)
    return sorted(found)


def _edit_header(data: bytes, pick: int, field: int, value: int, name: bytes) -> bytes:
    headers = _headers(data)
    if not headers:
        return data  # an earlier mutation cut every header off
    offset, central = headers[pick % len(headers)]
    fixed = 46 if central else 30
    name_len_at = offset + (28 if central else 26)
    (name_len,) = struct.unpack_from("<H", data, name_len_at)
    out = bytearray(data)
    if field == 0:  # replace the member name (same length, or a new length declared)
        new = name[:name_len].ljust(name_len, b"/") if value % 2 else name
        out[offset + fixed : offset + fixed + name_len] = new
        struct.pack_into("<H", out, name_len_at, len(new))
    else:  # overwrite one 16- or 32-bit field of the fixed header part
        at = offset + 4 + (value % (fixed - 6))
        struct.pack_into("<H", out, at, field & 0xFFFF)
    return bytes(out)


def _duplicate(data: bytes, pick: int, central: bool) -> bytes:
    """Insert a second copy of one header block (local header + data, or a central entry)."""
    headers = [h for h in _headers(data) if h[1] == central]
    if not headers:
        return data  # an earlier mutation cut every such header off
    start = headers[pick % len(headers)][0]
    later = [o for o, _ in _headers(data) if o > start]
    end = min(later) if later else data.rfind(b"PK\x05\x06")
    return data[:end] + data[start:end] + data[end:]


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=9)),
    st.tuples(
        st.just("header"),
        st.integers(0, 50),
        st.tuples(st.integers(0, 0xFFFF), st.integers(0, 100), st.sampled_from(HOSTILE_NAMES)),
    ),
    st.tuples(st.just("duplicate"), st.integers(0, 50), st.booleans()),
)


def _mutate(data: bytes, kind: str, where: int, arg: object) -> bytes:
    if not data and kind in ("flip", "truncate"):
        return data  # an earlier mutation truncated it to nothing
    if kind == "flip":
        at = where % len(data)
        assert isinstance(arg, int)
        return data[:at] + bytes([data[at] ^ arg]) + data[at + 1 :]
    if kind == "truncate":
        return data[: where % len(data)]
    if kind == "insert":
        at = where % (len(data) + 1)
        assert isinstance(arg, bytes)
        return data[:at] + arg + data[at:]
    if kind == "header":
        assert isinstance(arg, tuple)
        field, value, name = arg
        return _edit_header(data, where, field, value, name)
    assert isinstance(arg, bool)
    return _duplicate(data, where, arg)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutations=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_packages_are_refused_and_never_escape(
    base: bytes, tmp_path: Path, mutations: list[tuple[str, int, object]]
) -> None:
    data = base
    for kind, where, arg in mutations:
        data = _mutate(data, kind, where, arg)
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "outside").mkdir(parents=True)
    package = work / "p.spirit"
    package.write_bytes(data)
    try:
        verified = verify_package(package)
    except REFUSALS as err:
        assert err.exit_code in (3, 4)
    else:  # only an unchanged package may pass
        assert data == base, f"a mutated package verified: {verified.manifest.name}"
    # As a download is checked: member digests worked out from the bytes as they
    # stream past (in uneven chunks), then only the headers read.
    streamed = MemberDigests()
    for at in range(0, len(data), 7919):
        streamed.update(data[at : at + 7919])
    try:
        checked = check_package(package, streamed=streamed)
    except REFUSALS as err:
        assert err.exit_code in (3, 4)
    else:
        assert data == base, f"a mutated package checked: {checked.manifest.name}"
    dest = work / "out"
    try:
        extract(package, dest)
    except REFUSALS as err:
        assert err.exit_code in (3, 4)
    escaped = {
        p
        for p in _tree(work)
        if p not in ("p.spirit", "outside", "out") and not p.startswith("out" + os.sep)
    }
    assert not escaped, f"extract wrote outside its target: {sorted(escaped)}"
    assert not any((work / "outside").iterdir())
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


@pytest.mark.parametrize(
    "hostile",
    [
        b"../assets/d.txt",
        b"/tmp/evil/d.txt",
        b"assets/../../xx",
        b"assets//data.tx",
        b"assets/./data.t",
        b"C:\\evil\\dd.txtx",
    ],
)
def test_a_consistently_renamed_member_is_refused_before_anything_is_written(
    base: bytes, tmp_path: Path, hostile: bytes
) -> None:
    # The same hostile name in the local header, the central directory and the envelope,
    # so the archive stays well-formed and only the name itself is wrong.
    assert len(hostile) == len(b"assets/data.txt")
    package = tmp_path / "p.spirit"
    package.write_bytes(base.replace(b"assets/data.txt", hostile))
    with pytest.raises(REFUSALS):
        verify_package(package)
    with pytest.raises(REFUSALS) as info:
        extract(package, tmp_path / "out")
    assert "member name" in info.value.message or "unsafe" in info.value.message
    assert _tree(tmp_path) <= {"p.spirit", "out"}
    assert not Path("/tmp/evil").exists()
