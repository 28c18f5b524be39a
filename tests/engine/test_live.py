"""Live calls (SandboxConfig.live): fuel readings during pure compute, refuel-and-continue,
and the non-live path's exact out-of-fuel trap, all on real wasmtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from engine_helpers import IMPORTS, config, spirit

from vudo.capabilities import Capability
from vudo.engine import Sandbox, SandboxState
from vudo.engine.events import Event, FuelSample, StateChanged
from vudo.engine.sandbox import FUEL_SLICE
from vudo.engine.traps import Terminated
from vudo.errors import FuelExhausted, TimeoutExceeded

S = SandboxState
Make = Callable[..., Sandbox]

WAT = spirit(
    """
    (global $done (mut i32) (i32.const 0))
    (data (i32.const 0) "tick")
    ;; pure compute: n iterations, no calls at all
    (func (export "count") (param $n i64) (result i64) (local $i i64)
      (loop $l
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
      (local.get $i))
    ;; n side effects (host_log), each followed by `spin` iterations of compute
    (func (export "effects") (param $n i32) (param $spin i32) (result i32) (local $j i32)
      (block $out (loop $again
        (br_if $out (i32.ge_u (global.get $done) (local.get $n)))
        (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4)))
        (global.set $done (i32.add (global.get $done) (i32.const 1)))
        (local.set $j (i32.const 0))
        (block $spun (loop $spin
          (br_if $spun (i32.ge_u (local.get $j) (local.get $spin)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $spin)))
        (br $again)))
      (global.get $done))
    (func (export "spin") (loop $l (br $l)))
    """,
    IMPORTS["log"],
)


def call_in_thread(
    sb: Sandbox, function: str, args: list[int]
) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(sb.call(function, args))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def test_fuel_samples_move_during_pure_compute(make: Make) -> None:
    """A loop with no calls: the non-live monitor can only report 0 until it returns; a
    live call's samples climb while it runs."""
    seen: dict[bool, list[int]] = {}
    for live in (False, True):
        sb = make(WAT, config(fuel=10**12, live=live, timeout=30.0))
        samples: list[int] = []
        sb.subscribe(lambda e, s=samples: s.append(e.used) if isinstance(e, FuelSample) else None)
        thread, outcome = call_in_thread(sb, "count", [40_000_000])
        wait_for(lambda sb=sb: sb.in_call)
        mid: list[int] = []
        while thread.is_alive():
            mid.append(sb.fuel_used)
            time.sleep(0.005)
        assert outcome == [[40_000_000]]
        seen[live] = samples
        if live:
            assert max(mid) > 0, "fuel_used did not move during the call"
    assert set(seen[False]) <= {0}
    assert len({u for u in seen[True] if u}) >= 3
    assert seen[True] == sorted(seen[True])
    assert all(u <= 10**12 for u in seen[True])


def test_refuel_continues_the_same_call_and_side_effects_happen_once(make: Make) -> None:
    """Out of fuel part way, refuelled again and again: the call finishes where it left
    off, with exactly as many host calls as an unbounded run makes."""
    n, spin = 300, 20_000
    unbounded = make(WAT, config(Capability.ACTUATOR_LOG, fuel=10**12, live=True))
    assert unbounded.call("effects", [n, spin]) == [n]
    needed = unbounded.receipt().fuel_used
    assert unbounded.receipt().host_calls["actuator_log"]["allowed"] == n

    budget = needed // 7
    sb = make(WAT, config(Capability.ACTUATOR_LOG, fuel=budget, live=True, timeout=60.0))
    events: list[Event] = []
    sb.subscribe(events.append)
    thread, outcome = call_in_thread(sb, "effects", [n, spin])
    refuels = 0
    while thread.is_alive():
        if sb.state is S.SUSPENDED and sb.suspend_reason == "out of fuel":
            assert sb.in_call  # suspended in the middle of the call, not after it
            assert sb.fuel_used == sb.fuel_budget  # never a unit of the hidden reserve
            sb.refuel(budget)
            refuels += 1
        time.sleep(0.001)
    assert outcome == [[n]], outcome
    assert refuels >= 6
    receipt = sb.receipt()
    assert receipt.outcome == "ok"
    assert receipt.host_calls["actuator_log"]["allowed"] == n
    # wasmtime checks fuel at loop headers and calls: a budget that ends in the last few
    # straight-line instructions lets them finish (as its own trap would), counted up to
    # the budget
    assert receipt.fuel_used == min(needed, sb.fuel_budget)
    assert needed - sb.fuel_budget < 100
    suspended = [e for e in events if isinstance(e, StateChanged) and e.new == "suspended"]
    assert len(suspended) == refuels
    assert all("out of fuel" in e.reason for e in suspended)


def test_out_of_fuel_in_a_host_call_waits_too(make: Make) -> None:
    """The fuel a host call costs runs out: the call waits, and its side effect happens
    once, after the refuel."""
    host_call_fuel = config().host_call_fuel
    # enough for the loop's compute, short of the first host call's price
    sb3 = make(WAT, config(Capability.ACTUATOR_LOG, fuel=host_call_fuel // 2, live=True))
    used_before = sb3.fuel_used
    thread, outcome = call_in_thread(sb3, "effects", [1, 0])
    wait_for(lambda: sb3.suspend_reason == "out of fuel")
    assert sb3.receipt().host_calls == {}
    sb3.refuel(host_call_fuel * 2)
    thread.join(5)
    assert outcome == [[1]]
    assert sb3.receipt().host_calls["actuator_log"]["allowed"] == 1
    assert sb3.fuel_used > used_before + host_call_fuel


def test_terminate_while_waiting_for_fuel(make: Make) -> None:
    sb = make(WAT, config(fuel=FUEL_SLICE // 3, live=True))
    thread, outcome = call_in_thread(sb, "spin", [])
    wait_for(lambda: sb.suspend_reason == "out of fuel")
    sb.terminate()
    thread.join(3)
    assert not thread.is_alive()
    assert isinstance(outcome[0], Terminated)
    assert sb.receipt().outcome == "terminated"
    assert sb.fuel_used <= sb.fuel_budget


def test_time_waiting_for_fuel_does_not_count_against_the_timeout(make: Make) -> None:
    sb = make(WAT, config(fuel=FUEL_SLICE * 2, live=True, timeout=0.4))
    thread, outcome = call_in_thread(sb, "spin", [])
    wait_for(lambda: sb.suspend_reason == "out of fuel")
    time.sleep(0.6)
    assert thread.is_alive() and sb.suspend_reason == "out of fuel"
    sb.refuel(10**12)
    thread.join(5)
    assert isinstance(outcome[0], TimeoutExceeded)


def test_pause_and_resume_a_live_call(make: Make) -> None:
    sb = make(WAT, config(fuel=10**13, live=True, timeout=30.0))
    thread, outcome = call_in_thread(sb, "count", [10**12])
    wait_for(lambda: sb.fuel_used > 0)
    sb.suspend()
    time.sleep(0.05)
    used = sb.fuel_used
    time.sleep(0.1)
    assert sb.fuel_used == used
    sb.resume()
    wait_for(lambda: sb.fuel_used > used)
    sb.terminate()
    thread.join(3)
    assert isinstance(outcome[0], Terminated)


def test_without_live_running_out_is_the_exact_trap(make: Make) -> None:
    """The CLI's path: FuelExhausted (exit 11), the call ends, calling again restarts."""
    sb = make(WAT, config(Capability.ACTUATOR_LOG, fuel=200_000))
    with pytest.raises(FuelExhausted):
        sb.call("effects", [10**6, 1000])
    assert sb.state is S.SUSPENDED and not sb.in_call
    assert sb.fuel_used == sb.fuel_budget
