"""Compiling is bounded: a module too big to compile within the budget is a
ResourceLimitExceeded (exit 13), and a big module within it still loads and runs.

Small modules compile in-process; one with more than IN_PROCESS_FUNCTIONS functions (or
IN_PROCESS_CODE_BYTES of code) compiles in a child process under RLIMIT_AS and a deadline.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import config

import vudo
from vudo.engine import Engine, Sandbox
from vudo.engine.engine import IN_PROCESS_FUNCTIONS
from vudo.errors import ModuleError, ResourceLimitExceeded

SRC = str(Path(vudo.__file__).resolve().parent.parent)


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _section(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + _uleb(len(body)) + body


def tiny_functions(n: int) -> bytes:
    """A module of ``n`` functions ``() -> i32`` returning their index; ``main`` is the
    last one. Compile time and memory grow with n (about 0.1 ms and 6 KB each)."""
    types = _section(1, b"\x01\x60\x00\x01\x7f")
    funcs = _section(3, _uleb(n) + b"\x00" * n)
    export = _section(7, b"\x01\x04main\x00" + _uleb(n - 1))
    bodies = b"".join(
        _uleb(len(body)) + body for body in (b"\x00\x41" + _sleb(i) + b"\x0b" for i in range(n))
    )
    code = _section(10, _uleb(n) + bodies)
    return b"\0asm\1\0\0\0" + types + funcs + export + code


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        done = (n == 0 and not b & 0x40) or (n == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def test_a_big_module_compiles_in_a_child_and_runs(tmp_path: Path) -> None:
    wasm = tiny_functions(IN_PROCESS_FUNCTIONS * 3)
    with Engine(cache_dir=tmp_path) as engine:
        module = engine.load(wasm, name="big")
        assert module.cache == "miss"
        with Sandbox(engine, module, config()) as sb:
            sb.instantiate()
            assert sb.call("main") == [IN_PROCESS_FUNCTIONS * 3 - 1]
    with Engine(cache_dir=tmp_path) as fresh:  # the child's artifact went to the cache
        assert fresh.load(wasm, name="big").cache == "hit"


def test_compiling_past_the_deadline_is_a_resource_limit() -> None:
    with (
        Engine(compile_timeout=0.05) as engine,
        pytest.raises(ResourceLimitExceeded, match=r"compiling took longer than 0\.05 s") as info,
    ):
        engine.load(tiny_functions(20_000), name="slow")
    assert info.value.exit_code == 13 and "--timeout" in (info.value.hint or "")


def test_the_load_timeout_overrides_the_engine_default() -> None:
    with Engine() as engine, pytest.raises(ResourceLimitExceeded, match=r"0\.01 s"):
        engine.load(tiny_functions(20_000), name="slow", compile_timeout=0.01)


def test_compiling_past_the_memory_budget_is_a_resource_limit() -> None:
    # 96 MiB is enough for the child to compile a small module, not 20,000 functions
    # (a generous deadline: on a loaded machine the child may be slow to reach the limit)
    with (
        Engine(compile_memory=96 * 1024 * 1024, compile_timeout=120) as engine,
        pytest.raises(ResourceLimitExceeded, match="needs more than 100663296 bytes"),
    ):
        engine.load(tiny_functions(20_000), name="fat")


def test_an_invalid_module_is_refused_before_any_child_runs() -> None:
    wasm = bytearray(tiny_functions(IN_PROCESS_FUNCTIONS * 2))
    wasm[-1] = 0x6A  # the last body ends in i32.add instead of end
    with (
        Engine(compile_timeout=0.001) as engine,
        pytest.raises(ModuleError, match="not a valid WebAssembly module"),
    ):
        engine.load(bytes(wasm))


def test_vudo_run_timeout_bounds_compiling(tmp_path: Path) -> None:
    path = tmp_path / "big.wasm"
    path.write_bytes(tiny_functions(20_000))
    run = subprocess.run(
        [sys.executable, "-m", "vudo", "run", str(path), "--timeout", "0.05"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": SRC, "VUDO_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)},
    )
    assert run.returncode == 13, run.stderr
    assert "compiling took longer than 0.05 s" in run.stderr and "(hint: " in run.stderr


def nested_loops(depth: int) -> bytes:
    """One function of ``depth`` nested loops (3 bytes each): compile time grows with the
    square of the depth (2,700 deep, 8 KiB: 1.4 s), so size alone does not bound it."""
    body = (
        b"\x00"
        + b"\x03\x40" * depth
        + b"\x20\x00\x0d"
        + _uleb(depth - 1)
        + b"\x0b" * depth
        + b"\x20\x00\x0b"
    )
    return (
        b"\0asm\1\0\0\0"
        + _section(1, b"\x01\x60\x01\x7f\x01\x7f")
        + _section(3, b"\x01\x00")
        + _section(7, b"\x01\x04main\x00\x00")
        + _section(10, b"\x01" + _uleb(len(body)) + body)
    )


def test_a_small_but_slow_to_compile_module_is_bounded_too() -> None:
    import time

    wasm = nested_loops(8_000)  # 24 KiB; compiling it in-process took over 10 s
    started = time.monotonic()
    with (
        Engine(compile_timeout=0.5) as engine,
        pytest.raises(ResourceLimitExceeded, match="compiling took longer"),
    ):
        engine.load(wasm, name="deep")
    assert time.monotonic() - started < 5.0
