"""Spirits built for the original Rust VUDO VM run unchanged (DESIGN.md §1).

The modules below have the exports and behaviour of the original VM's example Spirits and
of what its test suite checks (univrs/vudo, ``vudo/vudo_vm/examples/spirits/{hello_world,
counter,echo}.wat`` and ``vudo/vudo_vm/tests/spirit_tests.rs``), written here in the same
shape: like the originals they declare no memory at all. Deliberate differences from the
original VM are listed in docs/compatibility.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import config

import vudo
from vudo.capabilities import Capability
from vudo.engine import Engine, Sandbox
from vudo.engine.abi import ABI, ErrorCode

SRC = str(Path(vudo.__file__).resolve().parent.parent)

HELLO_WORLD = '(module (func $greet (export "greet") (result i32) i32.const 42))'
COUNTER = """(module
  (global $counter (mut i32) (i32.const 0))
  (func (export "init") i32.const 0 global.set $counter)
  (func (export "increment") (result i32)
    global.get $counter i32.const 1 i32.add global.set $counter global.get $counter)
  (func (export "decrement") (result i32)
    global.get $counter i32.const 1 i32.sub global.set $counter global.get $counter)
  (func (export "get") (result i32) global.get $counter))"""
ECHO = """(module
  (func (export "echo") (param i32) (result i32) local.get 0)
  (func (export "double") (param i32) (result i32) local.get 0 i32.const 2 i32.mul)
  (func (export "triple") (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"""


def _sandbox(engine: Engine, wat: str) -> Sandbox:
    sb = Sandbox(engine, engine.load(wat, name="vm"), config())
    sb.instantiate()
    return sb


def test_hello_world_greets(engine: Engine) -> None:
    with _sandbox(engine, HELLO_WORLD) as sb:
        assert [sb.call("greet") for _ in range(5)] == [[42]] * 5


def test_counter_keeps_state_between_calls(engine: Engine) -> None:
    with _sandbox(engine, COUNTER) as sb:
        sb.call("init")
        assert [sb.call("increment")[0] for _ in range(10)][-1] == 10
        assert [sb.call("decrement")[0] for _ in range(3)] == [9, 8, 7]
        assert sb.call("get") == [7]
        sb.call("init")
        assert sb.call("decrement") == [-1]
        assert sb.receipt().fuel_used > 0


def test_echo_arithmetic(engine: Engine) -> None:
    with _sandbox(engine, ECHO) as sb:
        for value in (0, 1, -1, 42, 2**31 - 1, -(2**31), 0x12345678, -0x21524111):
            assert sb.call("echo", [value]) == [value]
        assert sb.call("double", [21]) == [42]
        assert sb.call("triple", [-5]) == [-15]
        assert sb.call("add", [2**31 - 2, 1]) == [2**31 - 1]


@pytest.mark.parametrize(
    ("wat", "args", "out"),
    [
        (HELLO_WORLD, ["--function", "greet"], [42]),
        (ECHO, ["--function", "add", "--", "10", "32"], [42]),
        (COUNTER, ["--function", "increment"], [1]),
    ],
)
def test_vudo_run_runs_them(tmp_path: Path, wat: str, args: list[str], out: list[int]) -> None:
    path = tmp_path / "spirit.wat"
    path.write_text(wat)
    run = subprocess.run(
        [sys.executable, "-m", "vudo", "run", str(path), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": SRC, "VUDO_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["results"] == out


def _pointer_params(name: str) -> list[int]:
    """Arguments for a host call: every i32 a plausible pointer or length (32), a log
    level that is valid (2), every i64 a small handle or amount (1)."""
    params = ABI[name].params
    args = [32 if p == "i32" else 1 for p in params]
    if name in ("host_log", "host_notify"):
        args[0] = 2
    return args


# Host functions that take no guest pointer, so never answer INVALID_MEMORY.
NO_POINTER = {
    "host_time_now",
    "host_input_len",
    "host_network_listen",
    "host_network_accept",
    "host_network_close",
    "host_credit_release",
    "host_credit_consume",
    "host_sandbox_close",
}


@pytest.mark.parametrize("name", sorted(set(ABI) - NO_POINTER))
def test_pointer_taking_host_call_without_memory_is_invalid_memory(
    engine: Engine, name: str
) -> None:
    params, results = ABI[name].params, ABI[name].results
    args = " ".join(f"({p}.const {a})" for p, a in zip(params, _pointer_params(name), strict=True))
    ret = results[0]
    wat = (
        f'(module (import "vudo" "{name}" (func $h (param {" ".join(params)}) '
        f"(result {ret}))) "
        f'(func (export "main") (result {ret}) {args} call $h))'
    )
    caps = [c for c in Capability if c is not Capability.UNRESTRICTED]
    sb = Sandbox(engine, engine.load(wat), config(*caps))
    with sb:
        sb.instantiate()
        assert sb.call("main") == [ErrorCode.INVALID_MEMORY]
