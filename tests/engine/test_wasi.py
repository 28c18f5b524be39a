"""WASI preview1 behind capabilities, on real wasmtime with small WAT modules: every
family allowed and denied (an errno and a denied row), preopen escapes, fuel, limits,
timeouts and bad modules."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import config, grant

from vudo.capabilities import Capability as C
from vudo.engine import Engine, Limits, Sandbox
from vudo.engine.config import Preopen
from vudo.engine.traps import ProcessExit
from vudo.engine.wasi_abi import WASI_SIGNATURES
from vudo.errors import FuelExhausted, ModuleError, ResourceLimitExceeded, TimeoutExceeded

EACCES, EBADF, EROFS, EXDEV, ENOTCAPABLE, EINVAL, ENOENT = 2, 8, 69, 75, 76, 28, 44


def imports(*names: str) -> str:
    out = []
    for name in names:
        params, results = WASI_SIGNATURES[name]
        sig = "".join(f" (param {p})" for p in params) + "".join(f" (result {r})" for r in results)
        out.append(f'(import "wasi_snapshot_preview1" "{name}" (func ${name}{sig}))')
    return " ".join(out)


def module(names: tuple[str, ...], body: str, data: str = "") -> str:
    return (
        f'(module {imports(*names)} (memory (export "memory") 1) {data} {body}'
        '(func (export "_start")))'
    )


Make = Callable[..., Sandbox]


def errno_of(sb: Sandbox, function: str = "t", *args: int) -> int:
    return int(sb.call(function, list(args))[0])


def rows(sb: Sandbox, name: str) -> list[tuple[bool, int]]:
    return [(c.allowed, c.result) for c in sb.host_calls() if c.function == name]


# -- environment, clocks, random: allowed and denied ------------------------------------


@pytest.mark.parametrize(
    ("name", "cap", "call"),
    [
        ("environ_sizes_get", C.SENSOR_ENVIRONMENT, "(i32.const 0) (i32.const 4)"),
        ("environ_get", C.SENSOR_ENVIRONMENT, "(i32.const 0) (i32.const 64)"),
        ("clock_time_get", C.SENSOR_TIME, "(i32.const 0) (i64.const 1) (i32.const 8)"),
        ("clock_res_get", C.SENSOR_TIME, "(i32.const 1) (i32.const 8)"),
        ("random_get", C.SENSOR_RANDOM, "(i32.const 16) (i32.const 32)"),
    ],
)
def test_family_allowed_and_denied(make: Make, name: str, cap: C, call: str) -> None:
    wat = module((name,), f'(func (export "t") (result i32) (call ${name} {call}))')
    denied = make(wat, config(env={"A": "1"}))
    assert errno_of(denied) == EACCES
    assert rows(denied, name) == [(False, EACCES)]
    assert denied.receipt().host_calls[cap.value] == {"allowed": 0, "denied": 1}
    allowed = make(wat, config(cap, env={"A": "1"}))
    assert errno_of(allowed) == 0
    assert rows(allowed, name) == [(True, 0)]


def test_no_variables_need_no_grant(make: Make) -> None:
    wat = module(
        ("environ_sizes_get",),
        '(func (export "t") (result i32) (call $environ_sizes_get (i32.const 0) (i32.const 4)))',
    )
    sb = make(wat, config())
    assert errno_of(sb) == 0
    assert sb.read_memory(0, 8) == bytes(8)
    assert rows(sb, "environ_sizes_get") == [(True, 0)]


def test_environ_gives_only_the_given_variables(make: Make) -> None:
    os.environ["VUDO_WASI_HOST_SECRET"] = "leak"
    try:
        wat = module(
            ("environ_sizes_get", "environ_get"),
            '(func (export "t") (result i32) (call $environ_sizes_get (i32.const 0) (i32.const 4))'
            " (drop) (call $environ_get (i32.const 16) (i32.const 64)))",
        )
        sb = make(wat, config(C.SENSOR_ENVIRONMENT, env={"K": "v", "X": "y z"}))
        assert errno_of(sb) == 0
        assert sb.read_memory(0, 8) == (2).to_bytes(4, "little") + (10).to_bytes(4, "little")
        assert sb.read_memory(64, 10) == b"K=v\0X=y z\0"
    finally:
        del os.environ["VUDO_WASI_HOST_SECRET"]


def test_random_fills_and_charges_per_byte(make: Make) -> None:
    wat = module(
        ("random_get",),
        '(func (export "t") (result i32) (call $random_get (i32.const 0) (i32.const 4096)))',
    )
    sb = make(wat, config(C.SENSOR_RANDOM))
    before = sb.fuel_used
    assert errno_of(sb) == 0
    assert sb.read_memory(0, 4096) != bytes(4096)
    assert sb.fuel_used - before >= 1000 + 4096
    assert sb.receipt().bytes_in == 4096


def test_args_need_nothing(make: Make, engine: Engine) -> None:
    wat = module(
        ("args_sizes_get", "args_get"),
        '(func (export "t") (result i32) (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))'
        " (call $args_get (i32.const 16) (i32.const 64)))",
    )
    sb = make(wat, config(argv=("prog", "a b", "")))
    assert errno_of(sb) == 0
    assert sb.read_memory(0, 8) == (3).to_bytes(4, "little") + (10).to_bytes(4, "little")
    assert sb.read_memory(64, 10) == b"prog\0a b\0\0"
    assert sb.receipt().host_calls["wasi"] == {"allowed": 2, "denied": 0}


# -- stdio ---------------------------------------------------------------------------

WRITE = module(
    ("fd_write",),
    '(func (export "t") (param i32 i32) (result i32)'
    " (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (local.get 1))"
    " (call $fd_write (local.get 0) (i32.const 0) (i32.const 1) (i32.const 8)))",
    '(data (i32.const 100) "hello, world\\n")',
)


def test_stdout_and_stderr_are_streams_with_events(make: Make) -> None:
    sb = make(WRITE, config())
    seen: list[Any] = []
    sb.subscribe(seen.append)
    assert errno_of(sb, "t", 1, 13) == 0
    assert sb.output("stdout") == b"hello, world\n"
    assert errno_of(sb, "t", 2, 5) == 0
    assert sb.output("stderr") == b"hello"
    streams = [(e.stream, e.data) for e in seen if type(e).__name__ == "OutputWritten"]
    assert streams == [("stdout", b"hello, world\n"), ("stderr", b"hello")]
    assert errno_of(sb, "t", 0, 5) == EBADF  # stdin is not writable
    assert errno_of(sb, "t", 9, 5) == EBADF


def test_stdout_sink_streams(make: Make) -> None:
    got: list[bytes] = []
    sb = make(WRITE, config(sinks={"stdout": got.append}))
    errno_of(sb, "t", 1, 13)
    errno_of(sb, "t", 1, 5)
    assert got == [b"hello, world\n", b"hello"]


# Both functions store the same two iovecs (the message, then an empty one) and write
# ``count`` of them: one iovec takes fd_write's short path, two its general one, with the
# same wasm instructions (the same wasm fuel) either way.
WRITE_IOVECS = module(
    ("fd_write",),
    "(func $w (param i32 i32) (result i32)"
    " (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 13))"
    " (i32.store (i32.const 8) (i32.const 100)) (i32.store (i32.const 12) (i32.const 0))"
    " (call $fd_write (local.get 0) (i32.const 0) (local.get 1) (i32.const 16)))"
    '(func (export "t") (param i32 i32) (result i32) (call $w (local.get 0) (local.get 1)))'
    '(func (export "spin") (param i32) (loop $l (drop (call $w (i32.const 1) (local.get 0)))'
    " (br $l)))",
    '(data (i32.const 100) "hello, world\\n")',
)


def _write_effects(make: Make, count: int) -> tuple[Any, ...]:
    sb = make(WRITE_IOVECS, config())
    seen: list[Any] = []
    results = []
    for fd in (1, 2, 1, 2):
        if len(results) == 2:
            sb.subscribe(seen.append)
        errno = errno_of(sb, "t", fd, count)
        results.append((errno, sb.output("stdout"), sb.output("stderr")))
    events = [
        (type(e).__name__, getattr(e, "stream", ""), getattr(e, "data", b""))
        if type(e).__name__ == "OutputWritten"
        else (e.function, e.capability, e.allowed, e.args, e.result, e.fuel, e.reason)
        for e in seen
        if type(e).__name__ in ("OutputWritten", "HostCall")
    ]
    receipt = sb.receipt()
    return (
        results,
        sb.read_memory(16, 4),
        sb.fuel_used,
        [(c.function, c.allowed, c.result, c.fuel, c.reason) for c in sb.host_calls()],
        receipt.host_calls,
        receipt.bytes_out,
        receipt.io,
        events,
    )


def test_fd_write_short_path_has_the_general_paths_effects(make: Make) -> None:
    """One iovec to a buffered stdout/stderr takes fd_write's short path; a second, empty
    iovec sends the same write down the general path: the same results, bytes, fuel, log
    rows, receipt counts and events either way."""
    short, general = _write_effects(make, 1), _write_effects(make, 2)
    assert short == general
    line = b"hello, world\n"
    assert short[0] == [(0, line, b""), (0, b"", line)] * 2
    assert short[1] == (13).to_bytes(4, "little")
    assert [row[:3] for row in short[3]] == [("fd_write", True, 0)] * 4
    assert len(short[7]) == 4  # an OutputWritten and a HostCall for each of the last two


def test_fd_write_short_path_runs_out_of_fuel_where_the_general_one_does(make: Make) -> None:
    stops = []
    for count in (1, 2):
        sb = make(WRITE_IOVECS, config(fuel=200_000))
        with pytest.raises(FuelExhausted):
            sb.call("spin", [count])
        stops.append((len(sb.output("stdout")), sb.fuel_used, len(sb.host_calls())))
    assert stops[0] == stops[1]
    assert stops[0][0] > 0


def test_bad_iovec_is_efault(make: Make) -> None:
    wat = module(
        ("fd_write",),
        '(func (export "t") (result i32) (call $fd_write (i32.const 1) (i32.const 65530)'
        " (i32.const 4) (i32.const 8)))",
    )
    assert errno_of(make(wat, config())) == 21


def test_output_bomb_stops_with_the_limit(make: Make) -> None:
    bomb = module(
        ("fd_write",),
        '(func (export "_bomb") (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4)'
        " (i32.const 65536))"
        " (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)"
        " (i32.const 8))) (br $l)))",
    )
    sb = make(bomb, config(limits=Limits(max_output_bytes=1 << 20)))
    with pytest.raises(ResourceLimitExceeded, match="1048576-byte output limit"):
        sb.call("_bomb")
    assert len(sb.output("stdout")) == 1 << 20
    assert sb.receipt().outcome == "limit"


def test_stdin_reads_the_input(make: Make) -> None:
    wat = module(
        ("fd_read",),
        '(func (export "t") (result i32) (i32.store (i32.const 0) (i32.const 100)) (i32.store'
        " (i32.const 4) (i32.const 8))"
        " (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))",
    )
    sb = make(wat, config(input=b"0123456789"))
    assert errno_of(sb) == 0
    assert sb.read_memory(100, 8) == b"01234567"
    assert sb.receipt().io["input"] == 8


def test_blocked_on_stdin_ends_at_the_timeout(make: Make) -> None:
    read_fd, write_fd = os.pipe()
    try:
        wat = module(
            ("fd_read",),
            '(func (export "t") (result i32) (i32.store (i32.const 0) (i32.const 100))'
            " (i32.store (i32.const 4) (i32.const 8))"
            " (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))",
        )
        sb = make(wat, config(stdin_fd=read_fd, timeout=0.5))
        with pytest.raises(TimeoutExceeded, match="waiting at its deadline"):
            sb.call("t")
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_sleeping_forever_ends_at_the_timeout(make: Make) -> None:
    # one relative clock subscription of 10^18 ns
    wat = module(
        ("poll_oneoff",),
        '(func (export "t") (result i32) (i32.store8 (i32.const 8) (i32.const 0))'
        " (i64.store (i32.const 24) (i64.const 1000000000000000000))"
        " (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))",
    )
    sb = make(wat, config(timeout=0.5))
    with pytest.raises(TimeoutExceeded):
        sb.call("t")


def test_poll_sleep_needs_no_grant_but_an_absolute_clock_does(make: Make) -> None:
    wat = module(
        ("poll_oneoff",),
        '(func (export "t") (param i32) (result i32) (i32.store8 (i32.const 8) (i32.const 0))'
        " (i32.store (i32.const 16) (i32.const 1)) (i64.store (i32.const 24) (i64.const 1000))"
        " (i32.store16 (i32.const 40) (local.get 0))"
        " (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))",
    )
    sb = make(wat, config())
    assert errno_of(sb, "t", 0) == 0
    assert int.from_bytes(sb.read_memory(128, 4), "little") == 1
    assert int.from_bytes(sb.read_memory(72, 2), "little") == 0  # event error
    assert errno_of(sb, "t", 1) == 0
    assert int.from_bytes(sb.read_memory(72, 2), "little") == EACCES
    assert any(not c.allowed for c in sb.host_calls() if c.function == "poll_oneoff")


def test_proc_exit(make: Make) -> None:
    wat = module(("proc_exit",), '(func (export "t") (param i32) (call $proc_exit (local.get 0)))')
    sb = make(wat, config())
    with pytest.raises(ProcessExit) as info:
        sb.call("t", [7])
    assert info.value.exit_code == 7
    receipt = sb.receipt()
    assert (receipt.outcome, receipt.exit_code) == ("exit", 7)
    assert sb.call("t", [0]) == []
    assert sb.receipt().outcome == "exit"


# -- files ---------------------------------------------------------------------------

PATHS = (
    "path_open",
    "fd_read",
    "fd_write",
    "path_unlink_file",
    "path_create_directory",
    "path_link",
    "path_rename",
    "path_symlink",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_close",
)


def fs_module() -> str:
    """Exports taking (dirfd, path ptr, path len[, ...]) with paths placed by the test."""
    return module(
        PATHS,
        # open(dirfd, path, len, oflags, rights) -> errno; the new fd at 200
        '(func (export "open") (param i32 i32 i32 i32 i64) (result i32)'
        " (call $path_open (local.get 0) (i32.const 1) (local.get 1) (local.get 2) (local.get 3)"
        " (local.get 4) (i64.const 0) (i32.const 0) (i32.const 200)))"
        '(func (export "unlink") (param i32 i32 i32) (result i32)'
        " (call $path_unlink_file (local.get 0) (local.get 1) (local.get 2)))"
        '(func (export "mkdir") (param i32 i32 i32) (result i32)'
        " (call $path_create_directory (local.get 0) (local.get 1) (local.get 2)))"
        '(func (export "link") (param i32 i32 i32 i32 i32 i32) (result i32)'
        " (call $path_link (local.get 0) (i32.const 0) (local.get 1) (local.get 2)"
        " (local.get 3) (local.get 4) (local.get 5)))"
        '(func (export "rename") (param i32 i32 i32 i32 i32 i32) (result i32)'
        " (call $path_rename (local.get 0) (local.get 1) (local.get 2)"
        " (local.get 3) (local.get 4) (local.get 5)))"
        '(func (export "symlink") (param i32 i32 i32 i32 i32) (result i32)'
        " (call $path_symlink (local.get 0) (local.get 1) (local.get 2) (local.get 3)"
        " (local.get 4)))"
        '(func (export "prestat") (param i32) (result i32)'
        " (call $fd_prestat_get (local.get 0) (i32.const 300)))"
        '(func (export "prename") (param i32 i32) (result i32)'
        " (call $fd_prestat_dir_name (local.get 0) (i32.const 320) (local.get 1)))",
    )


READ, WRITE_RIGHT = 1 << 1, 1 << 6
O_CREAT = 1


class Fs:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.at = 1000

    def s(self, text: str) -> tuple[int, int]:
        data = text.encode()
        ptr = self.at
        self.sb.write_memory(ptr, data)
        self.at += len(data) + 8
        return ptr, len(data)

    def open(self, path: str, *, fd: int = 3, oflags: int = 0, rights: int = READ) -> int:
        return errno_of(self.sb, "open", fd, *self.s(path), oflags, rights)

    def call(self, name: str, *parts: int | str) -> int:
        args: list[int] = []
        for part in parts:
            args.extend(self.s(part) if isinstance(part, str) else (part,))
        return errno_of(self.sb, name, *args)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "file.txt").write_text("in a\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    return a, b


def fs(make: Make, dirs: list[Preopen], *caps: Any) -> Fs:
    return Fs(make(fs_module(), config(*caps, preopens=tuple(dirs))))


def scoped(path: Path, *caps: C) -> list[Any]:
    return [grant(c, f"path:{path}") for c in caps]


def test_prestat_names_the_preopens(make: Make, world: tuple[Path, Path]) -> None:
    a, b = world
    f = fs(make, [Preopen(str(a), "/data"), Preopen(str(b), "out")])
    assert f.call("prestat", 3) == 0
    assert f.sb.read_memory(300, 8) == bytes(4) + (5).to_bytes(4, "little")
    assert f.call("prename", 3, 5) == 0 and f.sb.read_memory(320, 5) == b"/data"
    assert f.call("prename", 4, 2) == 37  # ENAMETOOLONG: buffer too small
    assert f.call("prestat", 5) == EBADF  # the end of the preopens
    assert f.call("prestat", 1) == EBADF


def test_open_denied_without_a_grant(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    f = fs(make, [Preopen(str(a), "/data")])
    assert f.open("file.txt") == EACCES
    assert rows(f.sb, "path_open") == [(False, EACCES)]
    assert f.sb.receipt().host_calls["storage_read"] == {"allowed": 0, "denied": 1}


def test_open_allowed_by_a_scoped_grant_and_reads(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    f = fs(make, [Preopen(str(a), "/data")], *scoped(a, C.STORAGE_READ))
    assert f.open("file.txt") == 0
    assert rows(f.sb, "path_open") == [(True, 0)]
    # writing needs storage_write too
    assert f.open("new.txt", oflags=O_CREAT, rights=WRITE_RIGHT) == EACCES
    assert not (a / "new.txt").exists()


def test_a_grant_for_another_directory_does_not_cover(make: Make, world: tuple[Path, Path]) -> None:
    a, b = world
    f = fs(make, [Preopen(str(a), "/data")], *scoped(b, C.STORAGE_READ))
    assert f.open("file.txt") == EACCES
    # a sibling whose name starts the same is not "below" the scope


def test_path_scope_is_this_directory_or_below() -> None:
    from vudo.engine.grants import Scope

    scope = Scope.parse("path:/srv/data")
    assert scope.allows("/srv/data") and scope.allows("/srv/data/sub")
    assert not scope.allows("/srv/database") and not scope.allows("/srv")
    assert not scope.allows(None)
    for bad in ("path:", "path:relative", "path:/a/../b", "path:/a/", "path://a", "path:/a\n"):
        with pytest.raises(Exception, match="path scope"):
            Scope.parse(bad)
    assert str(Scope.parse("path:/")) == "path:/"


def test_write_and_delete_need_their_own_grants(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    f = fs(make, [Preopen(str(a), "/data")], *scoped(a, C.STORAGE_READ, C.STORAGE_WRITE))
    assert f.open("new.txt", oflags=O_CREAT, rights=WRITE_RIGHT) == 0
    assert (a / "new.txt").exists()
    assert f.call("mkdir", 3, "made") == 0 and (a / "made").is_dir()
    assert f.call("unlink", 3, "new.txt") == EACCES
    assert (a / "new.txt").exists()
    assert rows(f.sb, "path_unlink_file") == [(False, EACCES)]
    f2 = fs(make, [Preopen(str(a), "/data")], *scoped(a, C.STORAGE_DELETE))
    assert f2.call("unlink", 3, "new.txt") == 0
    assert not (a / "new.txt").exists()


def test_read_only_preopen_refuses_changes(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    f = fs(
        make,
        [Preopen(str(a), "/data", read_only=True)],
        C.STORAGE_READ,
        C.STORAGE_WRITE,
        C.STORAGE_DELETE,
    )
    assert f.open("file.txt") == 0
    assert f.open("new.txt", oflags=O_CREAT, rights=WRITE_RIGHT) == EROFS
    assert f.call("unlink", 3, "file.txt") == EROFS
    assert (a / "file.txt").exists() and not (a / "new.txt").exists()


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "sub/../../secret.txt", "/etc/passwd", "up/secret.txt", "abs", "loop"],
)
def test_escapes_are_not_capable(make: Make, world: tuple[Path, Path], path: str) -> None:
    a, _ = world
    (a / "sub").mkdir()
    (a / "up").symlink_to("..")
    (a / "abs").symlink_to(str(a.parent / "secret.txt"))
    (a / "loop").symlink_to("loop")
    f = fs(make, [Preopen(str(a), "/data")], C.STORAGE_READ)
    want = 32 if path == "loop" else ENOTCAPABLE  # ELOOP for a link to itself
    assert f.open(path) == want
    assert rows(f.sb, "path_open") == [(True, want)]


def test_symlinks_inside_are_followed(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    (a / "sub").mkdir()
    (a / "sub" / "in").symlink_to("../file.txt")
    f = fs(make, [Preopen(str(a), "/data")], C.STORAGE_READ)
    assert f.open("sub/in") == 0
    assert f.open("sub/../file.txt") == 0


def test_guest_cannot_plant_an_escaping_symlink(make: Make, world: tuple[Path, Path]) -> None:
    a, _ = world
    f = fs(make, [Preopen(str(a), "/data")], C.STORAGE_READ, C.STORAGE_WRITE)
    assert f.call("symlink", "/etc/passwd", 3, "abs") == ENOTCAPABLE
    assert f.call("symlink", "../secret.txt", 3, "rel") == 0  # made, but never followed out
    assert f.open("rel") == ENOTCAPABLE


def test_a_renamed_directory_fd_cannot_be_turned_into_an_escape(
    make: Make, world: tuple[Path, Path]
) -> None:
    """Open sub/ as a directory fd, rename it away, plant sub -> .. in its place: paths
    under the fd are resolved again from the preopen's root, so the link is refused."""
    a, _ = world
    (a / "sub").mkdir()
    f = fs(make, [Preopen(str(a), "/data")], C.STORAGE_READ, C.STORAGE_WRITE, C.STORAGE_DELETE)
    assert f.open("sub", rights=READ | (1 << 13) | (1 << 14)) == 0  # PATH_OPEN, READDIR
    subfd = int.from_bytes(f.sb.read_memory(200, 4), "little")
    assert f.call("rename", 3, "sub", 3, "moved") == 0
    assert f.call("symlink", "..", 3, "sub") == 0
    assert f.open("secret.txt", fd=subfd) == ENOTCAPABLE
    assert f.open("../secret.txt", fd=subfd) == ENOTCAPABLE


def test_links_and_renames_across_preopens_refused(make: Make, world: tuple[Path, Path]) -> None:
    a, b = world
    f = fs(
        make,
        [Preopen(str(a), "/a"), Preopen(str(b), "/b")],
        C.STORAGE_READ,
        C.STORAGE_WRITE,
        C.STORAGE_DELETE,
    )
    assert f.call("link", 3, "file.txt", 4, "hard.txt") == EXDEV
    assert f.call("rename", 3, "file.txt", 4, "moved.txt") == EXDEV
    assert f.call("link", 3, "../secret.txt", 3, "hard.txt") == ENOTCAPABLE
    assert f.call("rename", 3, "file.txt", 3, "../moved.txt") == ENOTCAPABLE
    assert not (b / "hard.txt").exists() and (a / "file.txt").exists()
    assert f.call("link", 3, "file.txt", 3, "hard.txt") == 0
    assert (a / "hard.txt").read_text() == "in a\n"
    assert f.call("rename", 3, "hard.txt", 3, "moved.txt") == 0


def test_no_preopen_means_no_filesystem(make: Make) -> None:
    f = fs(make, [], C.STORAGE_READ)
    assert f.open("x") == EBADF
    assert f.call("prestat", 3) == EBADF


# -- sockets -------------------------------------------------------------------------


def test_sockets_only_those_given_and_behind_network_listen(make: Make) -> None:
    wat = module(
        ("sock_accept", "sock_recv", "sock_send", "sock_shutdown"),
        '(func (export "accept") (param i32) (result i32) (call $sock_accept (local.get 0)'
        " (i32.const 0) (i32.const 200)))"
        '(func (export "recv") (param i32) (result i32) (i32.store (i32.const 0) (i32.const 100))'
        " (i32.store (i32.const 4) (i32.const 16))"
        " (call $sock_recv (local.get 0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 8)"
        " (i32.const 12)))"
        '(func (export "send") (param i32) (result i32) (i32.store (i32.const 0) (i32.const 100))'
        " (i32.store (i32.const 4) (i32.load (i32.const 8)))"
        " (call $sock_send (local.get 0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 8)))",
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        denied = make(wat, config(listeners=(listener,)))
        assert errno_of(denied, "accept", 3) == EACCES
        assert rows(denied, "sock_accept") == [(False, EACCES)]
        assert errno_of(denied, "accept", 1) == 57  # ENOTSOCK: stdout is no socket
        sb = make(
            wat, config(grant(C.NETWORK_LISTEN, f"domain:127.0.0.1:{port}"), listeners=(listener,))
        )
        client = socket.create_connection(("127.0.0.1", port))
        try:
            assert errno_of(sb, "accept", 3) == 0
            conn = int.from_bytes(sb.read_memory(200, 4), "little")
            client.sendall(b"ping")
            assert errno_of(sb, "recv", conn) == 0
            assert sb.read_memory(100, 4) == b"ping"
            assert errno_of(sb, "send", conn) == 0
            assert client.recv(16) == b"ping"
        finally:
            client.close()
    finally:
        listener.close()


def test_accept_waits_only_until_the_timeout(make: Make) -> None:
    wat = module(
        ("sock_accept",),
        '(func (export "accept") (param i32) (result i32) (call $sock_accept (local.get 0)'
        " (i32.const 0) (i32.const 200)))",
    )
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        sb = make(wat, config(C.NETWORK_LISTEN, listeners=(listener,), timeout=0.5))
        with pytest.raises(TimeoutExceeded):
            sb.call("accept", [3])
    finally:
        listener.close()


# -- bad modules ---------------------------------------------------------------------


def test_unknown_wasi_function_is_a_module_error(engine: Engine) -> None:
    wat = '(module (import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32))))'
    with pytest.raises(ModuleError, match='"fd_teleport" is not a WASI preview1 function') as info:
        engine.load(wat)
    assert info.value.exit_code == 3


def test_wrong_wasi_signature_is_a_module_error(engine: Engine) -> None:
    wat = (
        '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32) (result i32))))'
    )
    with pytest.raises(
        ModuleError,
        match=r"fd_write.*has signature \(i32, i32\) -> \(i32\), "
        r"expected \(i32, i32, i32, i32\) -> \(i32\)",
    ):
        engine.load(wat)


def test_wasi_and_vudo_imports_mix(make: Make) -> None:
    wat = (
        '(module (import "vudo" "host_time_now" (func $now (result i64)))'
        f" {imports('fd_write')}"
        ' (memory (export "memory") 1) (data (i32.const 100) "hi")'
        ' (func (export "_start") (drop (call $now)) (i32.store (i32.const 0) (i32.const 100))'
        " (i32.store (i32.const 4) (i32.const 2))"
        " (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"
    )
    sb = make(wat, config(C.SENSOR_TIME))
    sb.call("_start")
    assert sb.output("stdout") == b"hi"
    assert sb.receipt().host_calls == {
        "sensor_time": {"allowed": 1, "denied": 0},
        "wasi": {"allowed": 1, "denied": 0},
    }


def test_every_wasi_function_charges_fuel_and_is_logged(make: Make) -> None:
    """Even a call with a bad fd costs the per-call price and leaves a row."""
    names = tuple(n for n in WASI_SIGNATURES if n != "proc_exit")
    calls = []
    for name in names:
        params, _results = WASI_SIGNATURES[name]
        args = " ".join(f"({p}.const 99)" for p in params)
        calls.append(f"(drop (call ${name} {args}))")
    wat = module(names, '(func (export "t") ' + " ".join(calls) + ")")
    sb = make(wat, config(timeout=5.0))
    before = sb.fuel_used
    sb.call("t")
    logged = [c.function for c in sb.host_calls()]
    assert sorted(logged) == sorted(names)
    assert sb.fuel_used - before >= 1000 * len(names)
    threading.enumerate()  # no thread left behind is checked by the suite's fixtures
