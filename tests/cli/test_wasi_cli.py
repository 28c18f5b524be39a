"""`vudo run` with WASI programs, as users run them: a real subprocess. The programs are
the conformance probe (tests/engine/wasi_programs/conform.c, built once with the ziglang
wheel) and small WAT modules; the real program is the C template's `wc`, compared with the
same source built natively."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from wasi_helpers import PROGRAMS, build_c

#: The ``vudo_cli`` fixture (tests/cli/conftest.py): runs vudo in a subprocess.
Vudo = Callable[..., Any]

WASI = "wasi_snapshot_preview1"


@pytest.fixture(scope="session")
def conform() -> Path:
    return build_c(PROGRAMS / "conform.c")


def run_bytes(
    env: dict[str, str], cwd: Path, *argv: str, stdin: bytes = b""
) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "vudo", "run", *argv],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def test_stdout_and_stderr_are_the_programs_own(
    env: dict[str, str], tmp_path: Path, conform: Path
) -> None:
    code, out, err = run_bytes(env, tmp_path, str(conform), "--", "streams")
    assert code == 0, err
    assert out == b"to stdout\nraw\0bytes\n"  # exactly, a NUL included, nothing of vudo's
    assert err.startswith(b"to stderr\n")
    assert b"._start: ok" in err and b"wasi 8 allowed" in err
    code, out, err = run_bytes(env, tmp_path, str(conform), "-q", "--", "streams")
    assert (code, out, err) == (0, b"to stdout\nraw\0bytes\n", b"to stderr\n")


def test_argv_after_the_double_dash(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    code, out, _ = run_bytes(
        env, tmp_path, str(conform), "-q", "--", "args", "-5", "two words", "--x"
    )
    assert code == 0
    assert out == b"argc=5\n[args]\n[-5]\n[two words]\n[--x]\n"


@pytest.mark.parametrize("status", [0, 1, 3, 14, 125])
def test_exit_status_passes_through(
    env: dict[str, str], tmp_path: Path, conform: Path, status: int
) -> None:
    code, _, err = run_bytes(env, tmp_path, str(conform), "--", "exit", str(status))
    assert code == status
    assert b"error:" not in err  # the program's own status, not a vudo failure
    # the receipt says how it ended (main returning 0 needs no proc_exit: outcome ok)
    assert (b"._start: exit" if status else b"._start: ok") in err


def test_json_carries_the_streams(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    import json

    code, out, _ = run_bytes(env, tmp_path, str(conform), "--json", "--", "exit", "4")
    data = json.loads(out)
    assert code == 4
    assert data["exit_code"] == 4 and data["receipt"]["outcome"] == "exit"
    code, out, _ = run_bytes(env, tmp_path, str(conform), "--json", "--", "streams")
    data = json.loads(out)
    assert data["stdout"] == "to stdout\nraw\x00bytes\n" and data["stderr"] == "to stderr\n"


def test_stdin_is_empty_unless_asked_for(
    env: dict[str, str], tmp_path: Path, conform: Path
) -> None:
    code, out, _ = run_bytes(env, tmp_path, str(conform), "-q", "--", "stdin", stdin=b"piped")
    assert (code, out) == (0, b"\nread 0 bytes\n")
    code, out, _ = run_bytes(
        env, tmp_path, str(conform), "--stdin", "-q", "--", "stdin", stdin=b"piped\x00in"
    )
    assert (code, out) == (0, b"piped\x00in\nread 8 bytes\n")


def test_env_and_input(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    code, out, _ = run_bytes(
        env, tmp_path, str(conform), "--env", "FOO=bar baz", "--env", "E=", "-q", "--", "env"
    )
    assert code == 0
    assert out == b"count=2\nFOO=bar baz\nE=\nFOO=bar baz\n"
    os_env = run_bytes(env, tmp_path, str(conform), "-q", "--", "env")[1]
    assert os_env == b"count=0\nFOO=(unset)\n"  # never the host's environment
    (tmp_path / "in.bin").write_bytes(b"from a file\x00")
    code, out, _ = run_bytes(env, tmp_path, str(conform), "--input", "in.bin", "-q", "--", "stdin")
    assert (code, out) == (0, b"from a file\x00\nread 12 bytes\n")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("--env", "FOO"), "expected NAME=VALUE"),
        (("--stdin", "--input", "-"), "--stdin and --input"),
    ],
)
def test_bad_io_flags_are_usage_errors(
    vudo_cli: Vudo, conform: Path, words: tuple[str, ...], message: str
) -> None:
    r = vudo_cli("run", str(conform), *words, "--", "env")
    assert r.code == 2
    assert message in r.error_line


def test_blocked_on_stdin_ends_at_the_timeout(
    env: dict[str, str], tmp_path: Path, conform: Path
) -> None:
    warm = run_bytes(env, tmp_path, str(conform), "--", "args")  # compile once, not in 1 s
    assert warm[0] == 0, warm
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vudo",
            "run",
            str(conform),
            "--stdin",
            "--timeout",
            "1",
            "--",
            "stdin",
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    try:
        code = proc.wait(timeout=60)  # stdin stays open: the program waits for it
        err = proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.kill()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert code == 12, err
    assert b"deadline" in err
    assert time.monotonic() - started < 30


def _files(root: Path) -> Path:
    data = root / "data"
    data.mkdir()
    (data / "keep.txt").write_text("kept\n")
    return data


def test_dir_is_a_read_write_preopen(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    data = _files(tmp_path)
    code, out, err = run_bytes(
        env, tmp_path, str(conform), "--dir", "data::/data", "-q", "--", "files", "/data"
    )
    assert code == 0, err
    assert b"rename: ok" in out and b"rmdir: ok" in out
    assert sorted(p.name for p in data.iterdir()) == ["keep.txt"]
    # with the guest name left out, the program sees the directory as it was typed
    code, out, err = run_bytes(
        env, tmp_path, str(conform), "--dir", "data", "-q", "--", "files", "data"
    )
    assert code == 0 and b"mkdir: ok" in out, err


def test_ro_dir_refuses_changes(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    data = _files(tmp_path)
    _, out, _ = run_bytes(
        env, tmp_path, str(conform), "--ro-dir", "data::/data", "--", "files", "/data"
    )
    assert b"mkdir: Read-only file system" in out
    assert sorted(p.name for p in data.iterdir()) == ["keep.txt"]


def test_a_path_grant_maps_its_directory(
    env: dict[str, str], tmp_path: Path, conform: Path
) -> None:
    """How an installed Spirit gets a directory: a stored (here: --grant) path: grant for
    storage is a preopen under its host path; read-only without storage_write."""
    data = _files(tmp_path).resolve()
    _, out, _ = run_bytes(
        env,
        tmp_path,
        str(conform),
        "--grant",
        f"storage_read=path:{data}",
        "-q",
        "--",
        "files",
        str(data),
    )
    assert b"mkdir: Read-only file system" in out
    grants = [f"--grant=storage_{c}=path:{data}" for c in ("read", "write", "delete")]
    code, out, err = run_bytes(env, tmp_path, str(conform), *grants, "-q", "--", "files", str(data))
    assert code == 0, err
    assert b"rmdir: ok" in out


def test_no_dir_no_files(env: dict[str, str], tmp_path: Path, conform: Path) -> None:
    _files(tmp_path)
    code, out, _ = run_bytes(env, tmp_path, str(conform), "--", "files", "/data")
    assert code == 1
    assert b"fopen w: " in out  # nothing is preopened: the path does not exist


def test_escapes_refused_through_the_cli(
    env: dict[str, str], tmp_path: Path, conform: Path
) -> None:
    data = _files(tmp_path)
    (tmp_path / "outside.txt").write_text("secret\n")
    (data / "inner").mkdir()
    (data / "uplink").symlink_to("..")
    (data / "abslink").symlink_to(str(tmp_path / "outside.txt"))
    code, out, _ = run_bytes(
        env, tmp_path, str(conform), "--dir", "data::/data", "-q", "--", "escapes", "/data"
    )
    assert code == 0
    assert out.count(b"refused") == 6 and b"OPENED" not in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing", "no such directory"),
        ("afile.txt", "not a directory"),
        ("data::", "expected HOST[::GUEST]"),
        ("::/data", "expected HOST[::GUEST]"),
    ],
)
def test_bad_dir_is_a_usage_error(
    vudo_cli: Vudo, tmp_path: Path, conform: Path, spec: str, message: str
) -> None:
    _files(tmp_path)
    (tmp_path / "afile.txt").write_text("x")
    r = vudo_cli("run", str(conform), "--dir", spec, "--", "args")
    assert r.code == 2
    assert message in r.error_line


def _wat(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_output_bomb_is_a_resource_limit(vudo_cli: Vudo, tmp_path: Path) -> None:
    bomb = _wat(
        tmp_path,
        "bomb.wat",
        f'(module (import "{WASI}" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 2) (func (export "_start")'
        " (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (i32.const 65536))"
        " (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))"
        " (br $l))))",
    )
    r = vudo_cli("run", bomb, "-q", timeout=120)
    assert r.code == 13
    assert "output limit" in r.error_line


def test_a_program_that_never_exits_times_out(vudo_cli: Vudo, tmp_path: Path) -> None:
    spin = _wat(
        tmp_path,
        "spin.wat",
        f'(module (import "{WASI}" "sched_yield" (func $y (result i32)))'
        ' (func (export "_start") (loop $l (drop (call $y)) (br $l))))',
    )
    r = vudo_cli("run", spin, "--timeout", "1")
    assert r.code == 12, r.stderr
    assert "timeout" in r.error_line.lower() or "deadline" in r.error_line


@pytest.mark.parametrize(
    ("imp", "message"),
    [
        (
            '(import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))',
            "has signature",
        ),
        (
            '(import "wasi_snapshot_preview1" "fd_teleport" (func))',
            "is not a WASI preview1 function",
        ),
    ],
)
def test_bad_wasi_imports_are_invalid_input(
    vudo_cli: Vudo, tmp_path: Path, imp: str, message: str
) -> None:
    path = _wat(tmp_path, "bad.wat", f'(module {imp} (func (export "_start")))')
    r = vudo_cli("run", path)
    assert r.code == 3
    assert message in r.error_line


# -- the real program: the C template's wc, against the same source built natively --------


@pytest.mark.slow
def test_template_wc_matches_native(vudo_cli: Vudo, env: dict[str, str], tmp_path: Path) -> None:
    # wasi-libc is built once into zig's own cache (minutes cold), not once per session
    env["ZIG_GLOBAL_CACHE_DIR"] = str(Path.home() / ".cache" / "zig")
    assert vudo_cli("new", "wc", "--template", "c").code == 0
    root = tmp_path / "wc"
    r = vudo_cli("build", "--release", cwd=root, timeout=900)
    assert r.code == 0, r.stderr
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("the quick brown fox\njumps over\n\nthe lazy dog\n")
    (texts / "b.txt").write_bytes(b"tabs\tand  spaces\r\nno newline at the end " * 50)
    (texts / "empty.txt").write_text("")
    native = tmp_path / "wc-native"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler:
        subprocess.run(
            [compiler, "-O2", "-o", str(native), str(root / "src" / "main.c")], check=True
        )
    else:  # the ziglang wheel builds for the host too
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ziglang",
                "cc",
                "-O2",
                "-o",
                str(native),
                str(root / "src" / "main.c"),
            ],
            check=True,
        )
    files = ("a.txt", "b.txt", "empty.txt", "missing.txt")
    want = subprocess.run([str(native), *files], cwd=texts, capture_output=True, check=False)
    code, out, err = run_bytes(env, root, "--ro-dir", f"{texts}::.", "-q", "--", *files)
    assert out == want.stdout
    assert err == want.stderr  # "wc: missing.txt: No such file or directory"
    assert code == want.returncode == 1
    # and stdin, when given
    piped = subprocess.run(
        [str(native)], input=b"one two\nthree\n", capture_output=True, check=True
    )
    code, out, _ = run_bytes(env, root, "--stdin", "-q", stdin=b"one two\nthree\n")
    assert (code, out) == (0, piped.stdout)


COUNTER_C = r"""#include <stdio.h>
int main(void) {
    int n = 0;
    FILE *f = fopen("/data/count.txt", "r");
    if (f) { fscanf(f, "%d", &n); fclose(f); }
    n++;
    f = fopen("/data/count.txt", "w");
    if (!f) { perror("open"); return 1; }
    fprintf(f, "%d\n", n);
    fclose(f);
    printf("run %d\n", n);
    return 0;
}
"""


@pytest.mark.slow
def test_manifest_directories_are_the_spirits_own(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path, home: Path
) -> None:
    """`directories = ["data"]`: a directory per identity under the store, preopened as
    /data, kept between runs, shown at consent; the installed Spirit (another identity)
    gets its own."""
    env["ZIG_GLOBAL_CACHE_DIR"] = str(Path.home() / ".cache" / "zig")
    assert vudo_cli("new", "counter", "--template", "c").code == 0
    root = tmp_path / "counter"
    (root / "src" / "main.c").write_text(COUNTER_C)
    manifest = root / "spirit.toml"
    manifest.write_text(
        manifest.read_text().replace(
            'capabilities = ["storage_read"]',
            'capabilities = ["storage_read", "storage_write"]\ndirectories = ["data"]',
        )
    )
    assert vudo_cli("build", cwd=root, timeout=900).code == 0
    assert vudo_cli("run", "-q", cwd=root).stdout == "run 1\n"
    assert vudo_cli("run", "-q", cwd=root).stdout == "run 2\n"
    made = list((home / "data" / "wasi").glob("*/data/count.txt"))
    assert [p.read_text() for p in made] == ["2\n"]
    r = vudo_cli("summon", str(root))  # no terminal to answer on: shown, then refused
    assert r.code == 2
    assert "directories of its own (WASI, under ~/.vudo/data/wasi/): /data" in r.stderr
    r = vudo_cli("summon", str(root), "--yes")
    assert r.code == 0, r.stderr
    assert vudo_cli("run", "counter", "-q", cwd=tmp_path).stdout == "run 1\n"
    assert len(list((home / "data" / "wasi").glob("*/data/count.txt"))) == 2
    bad = manifest.read_text().replace('directories = ["data"]', 'directories = ["../up"]')
    manifest.write_text(bad)
    r = vudo_cli("build", cwd=root)
    assert r.code == 3 and 'directory "../up"' in r.error_line


def test_build_lints_wasi_imports(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "lint").code == 0
    root = tmp_path / "lint"
    (root / "src" / "main.wat").write_text(
        f'(module (import "{WASI}" "path_open"'
        " (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"
        f' (import "{WASI}" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "_start")))'
    )
    r = vudo_cli("build", cwd=root)
    assert r.code == 0, r.stderr
    assert (
        "warning: the module imports WASI path_open but spirit.toml declares none of "
        '"storage_read" or "storage_write"'
    ) in r.stderr
    assert "fd_write" not in r.stderr  # stdio needs no capability
    (root / "src" / "main.wat").write_text(
        f'(module (import "{WASI}" "fd_teleport" (func)) (func (export "_start")))'
    )
    r = vudo_cli("build", cwd=root)
    assert r.code == 3
    assert "not a WASI preview1 function" in r.error_line
