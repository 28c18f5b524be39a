"""Spirits calling Spirits: the cost of one ``host_spirit_call`` (vudo.engine.compose).

Run: ``python benches/compose.py``. Two sandboxes already instantiated (the caller has
made one call, so its callee's sandbox exists); the caller's guest then loops ``n``
``host_spirit_call``s of a callee export that does nothing (``() -> i32``, 8 bytes of
input, 8 of output). Printed, per call:

(a) ``host_spirit_call`` (grant check, name and memory checks, fuel drawn from and
    charged back to the caller, the callee's lifecycle, nested receipt counters), in µs
    (target: under 50 µs), and its ratio to
(b) a checked host call in the same process (``host_time_now``: grant check, fuel,
    log row), the floor every host function pays;
(c) a raw wasmtime-py call from Python (``Func.__call__``) of a ``() -> i32`` export
    that does nothing: the floor of entering wasm from Python, which a nested call pays
    once for the callee.

Each is printed twice: wall-clock time, and the run thread's CPU time
(``time.thread_time``), which a machine shared with other work inflates far less (the
calls never block, so their CPU time is their cost).

No assertions: the numbers are for the report.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import sized
from vudo.capabilities import Capability
from vudo.engine import Engine, Sandbox, SandboxConfig
from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.config import Callee
from vudo.engine.grants import Scope, issue_grant

CALLER = """
(module
  (import "vudo" "host_spirit_call"
    (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (import "vudo" "host_time_now" (func $now (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "callee")
  (data (i32.const 16) "run")
  (data (i32.const 32) "12345678")
  (func (export "calls") (param $n i32) (result i64) (local $r i64)
    (block $b (loop $l
      (br_if $b (i32.eqz (local.get $n)))
      (local.set $r (call $call (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 3)
                                (i32.const 32) (i32.const 8) (i32.const 64) (i32.const 8)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $r))
  (func (export "nows") (param $n i32) (result i64) (local $r i64)
    (block $b (loop $l
      (br_if $b (i32.eqz (local.get $n)))
      (local.set $r (call $now))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $r)))
"""

CALLEE = """(module
  (import "vudo" "host_input_read" (func $read (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (drop (call $read (i32.const 0) (i32.const 8) (i64.const 0)))
    (call $write (i32.const 0) (i32.const 8))))"""

#: The baseline of (c): the same call shape with no I/O, called raw from Python.
RAW_CALLEE = '(module (func (export "run") (result i32) i32.const 0))'

GRANTER = nacl.signing.SigningKey(bytes([1]) * 32)
CALLER_KEY = "a1" * 32
CALLEE_KEY = "b2" * 32


def interleaved(
    contenders: list[Callable[[], object]], rounds: int, clock: Callable[[], float]
) -> list[float]:
    """Median seconds of one run of each contender on ``clock``, their rounds alternating
    so load spikes on a shared machine hit all of them alike."""
    times: list[list[float]] = [[] for _ in contenders]
    for _ in range(rounds):
        for fn, out in zip(contenders, times, strict=True):
            start = clock()
            fn()
            out.append(clock() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    granter = bytes(GRANTER.verify_key).hex()

    def grant(cap: Capability) -> object:
        return issue_grant(GRANTER, cap, Scope.parse("global"), CALLER_KEY, issued_at=0)

    with Engine() as engine:
        callee_wasm = bytes(wasmtime.wat2wasm(CALLEE))
        callee_config = SandboxConfig(identity=CALLEE_KEY, log_to_stderr=False)

        def resolve(name: str) -> Callee:
            if name != "callee":
                raise HostCallError(ErrorCode.NOT_FOUND, name)
            return Callee(name, callee_wasm, callee_config, CALLEE_KEY)

        config = SandboxConfig(
            fuel=10**15,
            timeout=600.0,
            grants=(grant(Capability.CROSS_SANDBOX_CALL), grant(Capability.SENSOR_TIME)),  # type: ignore[arg-type]
            trusted_granters=(granter,),
            identity=CALLER_KEY,
            log_to_stderr=False,
            dependencies=resolve,
        )
        with Sandbox(engine, engine.load(CALLER, name="caller"), config) as sb:
            sb.instantiate()
            assert sb.call("calls", [1]) == [8]  # instantiates the callee: not measured
            n = sized(500, 5)
            store = wasmtime.Store(engine.wasm_engine)
            store.set_fuel(10**15)
            store.set_epoch_deadline(2**40)  # the engine ticks epochs; never interrupt this
            module = wasmtime.Module(engine.wasm_engine, RAW_CALLEE)
            run = wasmtime.Instance(store, module, []).exports(store)["run"]
            assert isinstance(run, wasmtime.Func)

            def raw_calls() -> None:
                for _ in range(n):
                    run(store)

            contenders = [lambda: sb.call("calls", [n]), lambda: sb.call("nows", [n]), raw_calls]
            rounds = sized(21, 2)
            wall = [t / n for t in interleaved(contenders, rounds, time.perf_counter)]
            cpu = [t / n for t in interleaved(contenders, rounds, time.thread_time)]
            (child,) = sb.receipt().calls
            assert child.outcome == "ok"

    for label, (per_call, per_now, raw) in (("wall", wall), ("cpu", cpu)):
        print(
            f"{label:<4} (a) host_spirit_call {per_call * 1e6:8.2f} µs (target < 50 µs)   "
            f"(b) host_time_now {per_now * 1e6:6.2f} µs: a/b {per_call / per_now:5.1f}x   "
            f"(c) raw Func call {raw * 1e6:6.2f} µs: a/c {per_call / raw:4.1f}x"
        )


if __name__ == "__main__":
    main()
