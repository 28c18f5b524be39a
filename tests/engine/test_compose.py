"""Spirits calling Spirits: host_spirit_call and the host_sandbox_* handle calls, on real
wasmtime with a resolver that stands in for the project layer's (vudo.engine.compose)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from engine_helpers import GRANTER_HEX, OTHER, grant

from vudo.capabilities import Capability
from vudo.engine import Engine, Limits, Sandbox, SandboxConfig
from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.config import Callee
from vudo.engine.events import HostCall
from vudo.engine.services import HostServices
from vudo.engine.traps import Terminated
from vudo.errors import FuelExhausted, ResourceLimitExceeded, TimeoutExceeded

CALLER = "a1" * 32
CALLEE = "b2" * 32
THIRD = "c3" * 32

SPIRIT_CALL = (
    '(import "vudo" "host_spirit_call" '
    "(func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))"
)
SPAWN = '(import "vudo" "host_sandbox_spawn" (func $spawn (param i32 i32) (result i64)))'
HANDLE_CALL = (
    '(import "vudo" "host_sandbox_call" '
    "(func $hcall (param i64 i32 i32 i32 i32 i32 i32) (result i64)))"
)
CLOSE = '(import "vudo" "host_sandbox_close" (func $close (param i64) (result i32)))'
NOW = '(import "vudo" "host_time_now" (func $now (result i64)))'
LOG = '(import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))'


def caller_wat(dep: str = "callee", function: str = "run", ocap: int = 64) -> str:
    """main() -> i64: one host_spirit_call of ``dep``.``function`` with no input."""
    return f"""(module {SPIRIT_CALL}
      (memory (export "memory") 1)
      (data (i32.const 0) "{dep}")
      (data (i32.const 64) "{function}")
      (func (export "main") (result i64)
        (call $call (i32.const 0) (i32.const {len(dep)}) (i32.const 64) (i32.const {len(function)})
                    (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const {ocap}))))"""


CALLEE_UPPER = """(module
  (import "vudo" "host_input_len" (func $ilen (result i64)))
  (import "vudo" "host_input_read" (func $iread (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $owrite (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (local $n i32) (local $i i32) (local $c i32)
    (local.set $n (i32.wrap_i64 (call $ilen)))
    (drop (call $iread (i32.const 0) (local.get $n) (i64.const 0)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.load8_u (local.get $i)))
      (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
        (then (i32.store8 (local.get $i) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $owrite (i32.const 0) (local.get $n))))"""


def io_caller(text: str, ocap: int) -> str:
    """main() -> i64: call callee.run with ``text`` as input, output to 1024 (``ocap``)."""
    return f"""(module {SPIRIT_CALL}
      (memory (export "memory") 1)
      (data (i32.const 0) "callee")
      (data (i32.const 64) "run")
      (data (i32.const 128) "{text}")
      (data (i32.const 1024) "{"." * 32}")
      (func (export "main") (result i64)
        (call $call (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 3)
                    (i32.const 128) (i32.const {len(text)})
                    (i32.const 1024) (i32.const {ocap}))))"""


CALLEE_OK = f"""(module {LOG}
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from the callee")
  (func (export "run") (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 21)))
    (i32.const 7)))"""

CALLEE_TRAP = '(module (func (export "run") (result i32) unreachable))'

CALLEE_TIME = f"""(module {NOW}
  (func (export "run") (result i32)
    (if (i64.lt_s (call $now) (i64.const 0)) (then (return (i32.const -1))))
    (i32.const 0)))"""

CALLEE_SHAPES = """(module
  (func (export "add") (param i32) (result i32) local.get 0)
  (func (export "pair") (result i32 i32) i32.const 1 i32.const 2))"""

CALLEE_SPIN = '(module (func (export "run") (result i32) (loop $l (br $l)) i32.const 0))'

CALLEE_COUNTER = """(module
  (global $n (mut i32) (i32.const 0))
  (func (export "bump") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.sub (i32.const 0) (global.get $n))))"""


def _wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine() as eng:
        yield eng


def callee_config(identity: str, *caps: Capability, **kwargs: Any) -> SandboxConfig:
    grants = tuple(grant(c, grantee=identity) for c in caps)
    return SandboxConfig(
        grants=grants,
        trusted_granters=(GRANTER_HEX,),
        identity=identity,
        log_to_stderr=False,
        **kwargs,
    )


def resolver(
    engine: Engine, table: dict[str, tuple[str, SandboxConfig, str]]
) -> Callable[[str], Callee]:
    """name -> (wat, config, peer key); anything else is NOT_FOUND, as the project's is."""

    def resolve(name: str) -> Callee:
        if name not in table:
            raise HostCallError(ErrorCode.NOT_FOUND, f"{name} is not a dependency")
        wat, cfg, peer = table[name]
        return Callee(name, _wasm(wat), cfg, peer)

    return resolve


@pytest.fixture
def run(engine: Engine) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def factory(
        wat: str,
        deps: dict[str, tuple[str, SandboxConfig, str]],
        *caps: Capability | Any,
        **kwargs: Any,
    ) -> Sandbox:
        grants = tuple(
            c if not isinstance(c, Capability) else grant(c, grantee=CALLER) for c in caps
        )
        kwargs.setdefault("timeout", 5.0)
        cfg = SandboxConfig(
            grants=grants,
            trusted_granters=(GRANTER_HEX,),
            identity=CALLER,
            log_to_stderr=False,
            dependencies=resolver(engine, deps),
            **kwargs,
        )
        sb = Sandbox(engine, engine.load(wat, name="caller"), cfg)
        made.append(sb)
        sb.instantiate()
        return sb

    yield factory
    for sb in made:
        sb.close()


CALL = Capability.CROSS_SANDBOX_CALL


def test_a_call_runs_the_callee_with_its_own_identity_and_nests_its_receipt(
    run: Callable[..., Sandbox],
) -> None:
    events: list[Any] = []
    deps = {"callee": (CALLEE_OK, callee_config(CALLEE, Capability.ACTUATOR_LOG), OTHER)}
    sb = run(caller_wat(), deps, CALL)
    sb.subscribe(events.append)
    assert sb.call("main") == [0]
    receipt = sb.receipt()
    assert receipt.host_calls["cross_sandbox_call"] == {"allowed": 1, "denied": 0}
    (child,) = receipt.calls
    assert child.sandbox_id == f"{sb.id}/callee"
    assert child.function == "run" and child.outcome == "ok" and child.results == (7,)
    assert child.host_calls == {"actuator_log": {"allowed": 1, "denied": 0}}
    assert 0 < child.fuel_used < receipt.fuel_used
    data = receipt.to_dict()
    assert data["calls"][0]["host_calls"] == {"actuator_log": {"allowed": 1, "denied": 0}}
    assert data["calls"][0]["calls"] == []
    # the callee's host call reaches the caller's subscribers, one level down, before
    # the call that made it
    calls = [e for e in events if isinstance(e, HostCall)]
    assert [(c.function, c.depth, c.sandbox_id) for c in calls] == [
        ("host_log", 1, f"{sb.id}/callee"),
        ("host_spirit_call", 0, sb.id),
    ]
    # a second call reuses the callee's sandbox (no second instantiation)
    assert sb.call("main") == [0]
    assert len(sb.receipt().calls) == 1


def test_the_callers_grants_never_reach_the_callee(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_TIME, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, Capability.SENSOR_TIME)
    # the caller may read the time; the callee, running as itself, may not: its denial
    # is its own result, passed to the caller as the call's code
    assert sb.call("main") == [ErrorCode.CAPABILITY_DENIED]
    (child,) = sb.receipt().calls
    assert child.host_calls == {"sensor_time": {"allowed": 0, "denied": 1}}


def test_the_callee_uses_its_own_grants(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_TIME, callee_config(CALLEE, Capability.SENSOR_TIME), OTHER)}
    sb = run(caller_wat(), deps, CALL)
    assert sb.call("main") == [0]
    assert sb.receipt().calls[0].host_calls == {"sensor_time": {"allowed": 1, "denied": 0}}


def test_a_caller_without_cross_sandbox_call_is_denied(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_OK, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps)
    assert sb.call("main") == [ErrorCode.CAPABILITY_DENIED]
    receipt = sb.receipt()
    assert receipt.host_calls["cross_sandbox_call"] == {"allowed": 0, "denied": 1}
    assert receipt.calls == ()


def test_a_peer_scope_admits_only_callees_signed_by_that_key(run: Callable[..., Sandbox]) -> None:
    scoped = grant(CALL, f"peer:{OTHER}", grantee=CALLER)
    signed_by_other = {"callee": (CALLEE_OK, callee_config(CALLEE), OTHER)}
    assert run(caller_wat(), signed_by_other, scoped).call("main") == [0]
    signed_by_third = {"callee": (CALLEE_OK, callee_config(CALLEE), THIRD)}
    assert run(caller_wat(), signed_by_third, scoped).call("main") == [ErrorCode.CAPABILITY_DENIED]


def test_a_trapping_callee_is_a_code_to_the_caller(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_TRAP, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL)
    assert sb.call("main") == [ErrorCode.CALL_FAILED]
    assert str(sb.state) == "ready"  # the caller keeps running
    assert sb.receipt().calls[0].outcome == "trap"
    # the failed callee is replaced by a fresh one on the next call
    assert sb.call("main") == [ErrorCode.CALL_FAILED]
    assert [c.outcome for c in sb.receipt().calls] == ["trap", "trap"]


@pytest.mark.parametrize(
    ("dep", "function", "code"),
    [
        ("missing", "run", ErrorCode.NOT_FOUND),  # not in the manifest
        ("callee", "nope", ErrorCode.NOT_FOUND),  # no such export
        ("callee", "add", ErrorCode.INVALID_PARAMETER),  # takes a parameter
        ("callee", "pair", ErrorCode.INVALID_PARAMETER),  # two results
        ("Callee", "run", ErrorCode.INVALID_PARAMETER),  # not a dependency name
        ("../x", "run", ErrorCode.INVALID_PARAMETER),
    ],
)
def test_bad_calls_are_codes(
    run: Callable[..., Sandbox], dep: str, function: str, code: ErrorCode
) -> None:
    deps = {"callee": (CALLEE_SHAPES, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(dep, function), deps, CALL)
    assert sb.call("main") == [code]
    assert str(sb.state) == "ready"


def test_no_dependencies_means_not_found(engine: Engine) -> None:
    cfg = SandboxConfig(
        grants=(grant(CALL, grantee=CALLER),),
        trusted_granters=(GRANTER_HEX,),
        identity=CALLER,
        log_to_stderr=False,
    )
    with Sandbox(engine, engine.load(caller_wat(), name="caller"), cfg) as sb:
        sb.instantiate()
        assert sb.call("main") == [ErrorCode.NOT_FOUND]


def test_bad_pointers_are_invalid_memory(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_OK, callee_config(CALLEE), OTHER)}
    wat = caller_wat().replace("(i32.const 1024)", "(i32.const 65530)")  # output past memory
    sb = run(wat, deps, CALL)
    assert sb.call("main") == [ErrorCode.INVALID_MEMORY]
    assert sb.receipt().calls == ()  # checked before the callee is started
    wat = caller_wat().replace("(i32.const 0) (i32.const 6)", "(i32.const 65534) (i32.const 6)")
    assert run(wat, deps, CALL).call("main") == [ErrorCode.INVALID_MEMORY]


def test_a_cycle_is_refused(engine: Engine, run: Callable[..., Sandbox]) -> None:
    # caller -> callee -> caller (the same identity again): the second call is refused
    back = callee_config(CALLER)  # the caller's own identity
    inner = resolver(engine, {"back": (caller_wat("back"), back, OTHER)})
    wrapped = _wrap_i32(caller_wat("back"))
    deps = {"callee": (wrapped, callee_config(CALLEE, CALL, dependencies=inner), OTHER)}
    sb = run(caller_wat(), deps, CALL)
    assert sb.call("main") == [ErrorCode.QUOTA_EXCEEDED]
    (child,) = sb.receipt().calls
    assert child.host_calls == {"cross_sandbox_call": {"allowed": 1, "denied": 0}}
    assert child.calls == ()


def _wrap_i32(wat: str) -> str:
    """Add ``run() -> i32`` returning main's result (as an i32) to a caller module."""
    return wat.rstrip()[:-1] + '(func (export "run") (result i32) (i32.wrap_i64 (call 1))))'


def test_call_depth_is_bounded(engine: Engine, run: Callable[..., Sandbox]) -> None:
    # caller -> b -> c -> d, with depth limited to 2: c's call to d is refused
    leaf = {"d": (CALLEE_OK, callee_config(THIRD), OTHER)}
    c_deps = resolver(engine, leaf)
    c = (_wrap_i32(caller_wat("d")), callee_config("d4" * 32, CALL, dependencies=c_deps), OTHER)
    b_deps = resolver(engine, {"c": c})
    b = (_wrap_i32(caller_wat("c")), callee_config(CALLEE, CALL, dependencies=b_deps), OTHER)
    sb = run(caller_wat("b"), {"b": b}, CALL, limits=Limits(max_call_depth=2))
    assert sb.call("main") == [ErrorCode.QUOTA_EXCEEDED]
    (b_receipt,) = sb.receipt().calls
    (c_receipt,) = b_receipt.calls
    assert c_receipt.calls == ()  # d never started
    # with room for it, the chain runs to the end
    sb = run(caller_wat("b"), {"b": b}, CALL, limits=Limits(max_call_depth=3))
    assert sb.call("main") == [0]
    assert sb.receipt().calls[0].calls[0].calls[0].results == (7,)


def test_callee_fuel_comes_out_of_the_callers_budget(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_SPIN, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, fuel=200_000)
    with pytest.raises(FuelExhausted):
        sb.call("main")
    assert sb.fuel_used == 200_000
    assert sb.receipt().calls[0].fuel_used > 150_000


def test_callee_time_comes_out_of_the_callers_deadline(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_SPIN, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, timeout=0.3, fuel=10**15)
    with pytest.raises(TimeoutExceeded):
        sb.call("main")
    assert sb.receipt().outcome == "timeout"


SPAWNER = f"""(module {SPAWN} {HANDLE_CALL} {CLOSE}
  (memory (export "memory") 1)
  (data (i32.const 0) "counter")
  (data (i32.const 16) "bump")
  (func $bump (param $h i64) (result i64)
    (call $hcall (local.get $h) (i32.const 16) (i32.const 4)
                 (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 0)))
  (func (export "spawn") (result i64) (call $spawn (i32.const 0) (i32.const 7)))
  (func (export "bump") (param $h i64) (result i64) (call $bump (local.get $h)))
  (func (export "close") (param $h i64) (result i32) (call $close (local.get $h))))"""


def test_spawn_call_close(run: Callable[..., Sandbox]) -> None:
    deps = {"counter": (CALLEE_COUNTER, callee_config(CALLEE), OTHER)}
    sb = run(SPAWNER, deps, Capability.SPAWN_SANDBOX)
    (first,) = sb.call("spawn")
    (second,) = sb.call("spawn")
    assert first > 0 and second > 0 and first != second
    # state is kept between calls by handle (the counter returns minus its count)
    assert [sb.call("bump", [first])[0] for _ in range(3)] == [-1, -2, -3]
    assert sb.call("bump", [second]) == [-1]
    assert sb.call("close", [first]) == [0]
    assert sb.call("bump", [first]) == [ErrorCode.INVALID_PARAMETER]  # closed
    assert sb.call("close", [first]) == [ErrorCode.INVALID_PARAMETER]
    receipt = sb.receipt()
    assert receipt.host_calls["spawn_sandbox"] == {"allowed": 2, "denied": 0}
    assert receipt.host_calls["sandbox"] == {"allowed": 7, "denied": 0}
    assert [c.sandbox_id for c in receipt.calls] == [
        f"{sb.id}/counter#{first}",
        f"{sb.id}/counter#{second}",
    ]
    assert [str(c.outcome) for c in receipt.calls] == ["ok", "ok"]
    sb.close()
    assert receipt.calls[1].outcome == "ok"


def test_spawn_needs_its_grant(run: Callable[..., Sandbox]) -> None:
    deps = {"counter": (CALLEE_COUNTER, callee_config(CALLEE), OTHER)}
    sb = run(SPAWNER, deps, CALL)
    assert sb.call("spawn") == [ErrorCode.CAPABILITY_DENIED]


def test_a_handle_from_another_sandbox_is_refused(run: Callable[..., Sandbox]) -> None:
    deps = {"counter": (CALLEE_COUNTER, callee_config(CALLEE), OTHER)}
    owner = run(SPAWNER, deps, Capability.SPAWN_SANDBOX)
    other = run(SPAWNER, deps, Capability.SPAWN_SANDBOX)
    (handle,) = owner.call("spawn")
    assert other.call("bump", [handle]) == [ErrorCode.INVALID_PARAMETER]
    assert other.call("close", [handle]) == [ErrorCode.INVALID_PARAMETER]
    assert owner.call("bump", [handle]) == [-1]


def test_fan_out_is_bounded(run: Callable[..., Sandbox]) -> None:
    deps = {"counter": (CALLEE_COUNTER, callee_config(CALLEE), OTHER)}
    sb = run(SPAWNER, deps, Capability.SPAWN_SANDBOX, limits=Limits(max_callees=2))
    assert sb.call("spawn")[0] > 0
    assert sb.call("spawn")[0] > 0
    assert sb.call("spawn") == [ErrorCode.QUOTA_EXCEEDED]
    assert len(sb.receipt().calls) == 2


def test_closing_the_caller_closes_its_callees(run: Callable[..., Sandbox]) -> None:
    deps = {"counter": (CALLEE_COUNTER, callee_config(CALLEE), OTHER)}
    sb = run(SPAWNER, deps, Capability.SPAWN_SANDBOX)
    sb.call("spawn")
    child = sb.bridge.calls._children[0]
    sb.close()
    assert str(child.state) == "terminated"


def test_bytes_in_and_out(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_UPPER, callee_config(CALLEE), OTHER)}
    sb = run(io_caller("Hello, vudo", 32), deps, CALL)
    assert sb.call("main") == [11]  # the output's length
    assert sb.read_memory(1024, 12) == b"HELLO, VUDO."
    receipt = sb.receipt()
    assert receipt.bytes_out == 11 and receipt.bytes_in == 11
    (child,) = receipt.calls
    assert child.io == {"input": 11, "output": 11}
    assert child.host_calls == {"io": {"allowed": 3, "denied": 0}}


def test_an_output_buffer_too_small_gets_the_full_length_and_a_prefix(
    run: Callable[..., Sandbox],
) -> None:
    deps = {"callee": (CALLEE_UPPER, callee_config(CALLEE), OTHER)}
    sb = run(io_caller("Hello, vudo", 4), deps, CALL)
    assert sb.call("main") == [11]  # snprintf style: the full length...
    assert sb.read_memory(1024, 6) == b"HELL.."  # ...and only ocap bytes copied
    assert sb.receipt().bytes_in == 4


def test_input_over_the_input_limit_stops_the_caller(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_UPPER, callee_config(CALLEE), OTHER)}
    sb = run(io_caller("Hello, vudo", 32), deps, CALL, limits=Limits(max_input_bytes=8))
    with pytest.raises(ResourceLimitExceeded, match="call input of 11 bytes"):
        sb.call("main")
    assert sb.receipt().calls == ()  # checked before the callee is started


def test_the_callee_output_is_bounded_by_the_output_limit(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_UPPER, callee_config(CALLEE), OTHER)}
    sb = run(io_caller("Hello, vudo", 32), deps, CALL, limits=Limits(max_output_bytes=8))
    # the callee's write past the limit is QUOTA_EXCEEDED to it, which it returns
    assert sb.call("main") == [ErrorCode.QUOTA_EXCEEDED]
    assert sb.read_memory(1024, 1) == b"."


def test_terminating_the_caller_stops_its_running_callee(run: Callable[..., Sandbox]) -> None:
    deps = {"callee": (CALLEE_SPIN, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, fuel=10**15, timeout=30.0)
    stopper = threading.Timer(0.3, sb.terminate, args=("stop it",))
    stopper.start()
    started = time.monotonic()
    with pytest.raises(Terminated):
        sb.call("main")
    assert time.monotonic() - started < 5.0
    stopper.join()
    assert sb.receipt().outcome == "terminated"
    sb.close()
    assert str(sb.bridge.calls._children[0].state) == "terminated"  # type: ignore[union-attr]


CALLEE_BUSY = """(module
  (import "vudo" "host_input_len" (func $ilen (result i64)))
  (func (export "run") (result i32) (loop $l (drop (call $ilen)) (br $l)) i32.const 0))"""


def test_pausing_the_caller_pauses_its_running_callee(run: Callable[..., Sandbox]) -> None:
    # a loop making calls, so the monitor's fuel samples are exact
    deps = {"callee": (CALLEE_BUSY, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, fuel=10**15, timeout=30.0)
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            sb.call("main")
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=drive)
    worker.start()
    time.sleep(0.2)
    sb.suspend()
    child = sb.bridge.calls._children[0]  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while True:  # the callee's monitor sees the pause at its next tick: then nothing burns
        before = child.fuel_used
        time.sleep(0.2)
        if child.fuel_used == before or time.monotonic() > deadline:
            break
    assert child.fuel_used == before
    time.sleep(0.2)
    assert child.fuel_used == before  # still paused
    sb.resume()
    while child.fuel_used == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.fuel_used > before  # running again
    sb.terminate()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert isinstance(failure[0], Terminated)


@pytest.mark.parametrize(
    ("nptr", "nlen", "code"),
    [
        (0, 65, ErrorCode.INVALID_PARAMETER),  # longer than any dependency name
        (0, -1, ErrorCode.INVALID_PARAMETER),  # 4 GiB
        (65_530, 10, ErrorCode.INVALID_MEMORY),  # runs off the end of memory
        (0, 0, ErrorCode.INVALID_PARAMETER),  # empty
    ],
)
def test_hostile_name_ranges_are_codes(
    run: Callable[..., Sandbox], nptr: int, nlen: int, code: ErrorCode
) -> None:
    deps = {"callee": (CALLEE_OK, callee_config(CALLEE), OTHER)}
    wat = caller_wat().replace(
        "(call $call (i32.const 0) (i32.const 6)",
        f"(call $call (i32.const {nptr}) (i32.const {nlen})",
    )
    sb = run(wat, deps, CALL)
    assert sb.call("main") == [code]
    assert sb.receipt().calls == ()


WRITE = '(import "vudo" "host_storage_write" (func $write (param i32 i32 i32 i32) (result i32)))'

CALLEE_STORES = f"""(module {WRITE}
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (data (i32.const 8) "callee")
  (func (export "run") (result i32)
    (call $write (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 6))))"""

CALLER_STORES = f"""(module {SPIRIT_CALL} {WRITE}
  (memory (export "memory") 1)
  (data (i32.const 0) "callee")
  (data (i32.const 64) "run")
  (data (i32.const 96) "k")
  (data (i32.const 104) "caller")
  (func (export "main") (result i64)
    (drop (call $write (i32.const 96) (i32.const 1) (i32.const 104) (i32.const 6)))
    (call $call (i32.const 0) (i32.const 6) (i32.const 64) (i32.const 3)
                (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 0))))"""


def test_the_callee_has_its_own_storage(run: Callable[..., Sandbox], tmp_path: Path) -> None:
    with HostServices.open(tmp_path / "data") as services:
        callee = callee_config(CALLEE, Capability.STORAGE_WRITE, services=services)
        deps = {"callee": (CALLEE_STORES, callee, OTHER)}
        sb = run(CALLER_STORES, deps, CALL, Capability.STORAGE_WRITE, services=services)
        assert sb.call("main") == [0]
        # the same key, each in its own identity's namespace
        assert services.storage.read(CALLER, b"k") == b"caller"
        assert services.storage.read(CALLEE, b"k") == b"callee"
        sb.close()


CALLEE_WORK = """(module
  (func (export "run") (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
    (i32.const 0)))"""


def test_out_of_fuel_in_the_callee_then_refuel_and_call_again(
    run: Callable[..., Sandbox],
) -> None:
    deps = {"callee": (CALLEE_WORK, callee_config(CALLEE), OTHER)}
    sb = run(caller_wat(), deps, CALL, fuel=100_000)
    with pytest.raises(FuelExhausted):
        sb.call("main")
    assert sb.suspend_reason == "out of fuel"
    sb.refuel(10_000_000)
    assert sb.call("main") == [0]  # the same callee sandbox, funded again, finishes
    (child,) = sb.receipt().calls
    assert child.outcome == "ok"
    assert sb.fuel_used > child.fuel_used > 100_000
