"""The sandbox lifecycle, fuel, timeouts, the live monitor and receipts, on real wasmtime."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
from engine_helpers import IMPORTS, config, spirit

from vudo.capabilities import Capability
from vudo.engine import (
    Event,
    FuelSample,
    IllegalTransition,
    Sandbox,
    SandboxState,
    StateChanged,
    Terminated,
)
from vudo.engine.config import TRANSITIONS
from vudo.errors import FuelExhausted, GuestTrap, TimeoutExceeded, UsageError

S = SandboxState
Make = Callable[..., Sandbox]

WAT = spirit(
    """
    (global $counter (mut i32) (i32.const 0))
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    (func (export "bump") (result i32)
      (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
      (global.get $counter))
    (func (export "trap") unreachable)
    (func (export "spin") (loop $l (br $l)))
    (func $nop)
    (func (export "spin_calls") (loop $l (call $nop) (br $l)))
    (func $rec (param i32) (result i32)
      (i32.add (i32.const 1) (call $rec (local.get 0))))
    (func (export "recurse") (result i32) (call $rec (i32.const 0)))
    (func (export "burn") (param $n i32) (result i32)
      (block $b (loop $l
        (br_if $b (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
      (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
      (global.get $counter))
    (func (export "mix") (param i64 f32 f64) (result i64 f64)
      (local.get 0) (f64.add (f64.promote_f32 (local.get 1)) (local.get 2)))
    """
)


def states(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.old, e.new) for e in events if isinstance(e, StateChanged)]


def test_happy_path_transitions_are_events(make: Make) -> None:
    sb = make(WAT, instantiate=False)
    events: list[Event] = []
    sb.subscribe(events.append)
    assert sb.state is S.CREATED
    sb.instantiate()
    assert sb.state is S.READY
    assert sb.call("add", [2, 40]) == [42]
    sb.terminate()
    assert sb.state is S.TERMINATED
    assert states(events) == [
        ("created", "initializing"),
        ("initializing", "ready"),
        ("ready", "running"),
        ("running", "ready"),
        ("ready", "terminated"),
    ]
    assert all(e.sandbox_id == sb.id for e in events if isinstance(e, StateChanged))


def test_transition_table_is_the_design() -> None:
    assert TRANSITIONS[S.TERMINATED] == frozenset()
    for state in S:
        if state is not S.TERMINATED:
            assert S.TERMINATED in TRANSITIONS[state]
    assert TRANSITIONS[S.RUNNING] >= {S.READY, S.SUSPENDED, S.FAILED}


def test_illegal_transitions_raise(make: Make) -> None:
    sb = make(WAT, instantiate=False)
    with pytest.raises(IllegalTransition, match="cannot go from created to running"):
        sb.call("add", [1, 2])
    with pytest.raises(IllegalTransition):
        sb.suspend()
    with pytest.raises(IllegalTransition):
        sb.resume()
    sb.instantiate()
    with pytest.raises(IllegalTransition, match="from ready to initializing"):
        sb.instantiate()
    with pytest.raises(IllegalTransition, match="from ready to suspended"):
        sb.suspend()
    sb.terminate()
    for action in (
        sb.instantiate,
        sb.terminate,
        lambda: sb.call("add", [1, 2]),
        lambda: sb.refuel(5),
    ):
        with pytest.raises(IllegalTransition):
            action()
    sb.close()  # close after terminate is fine
    assert sb.state is S.TERMINATED


def test_trap_fails_and_still_reports_fuel(make: Make) -> None:
    sb = make(WAT)
    sb.call("burn", [1000])
    before = sb.fuel_used
    assert before > 1000
    with pytest.raises(GuestTrap, match="unreachable") as info:
        sb.call("trap")
    assert info.value.exit_code == 10
    assert sb.state is S.FAILED
    receipt = sb.receipt()
    assert receipt.outcome == "trap"
    assert receipt.fuel_used >= before
    assert receipt.error is not None and "unreachable" in receipt.error
    with pytest.raises(IllegalTransition):
        sb.call("add", [1, 2])
    sb.terminate()


def test_failed_state_after_instantiation_trap(make: Make) -> None:
    sb = make(spirit("(func $boom unreachable) (start $boom)"), instantiate=False)
    with pytest.raises(GuestTrap):
        sb.instantiate()
    assert sb.state is S.FAILED
    assert sb.receipt().outcome == "trap"


def test_fuel_exhaustion_suspends_then_refuel_continues(make: Make) -> None:
    sb = make(WAT, config(fuel=200_000))
    assert sb.call("bump") == [1]
    events: list[Event] = []
    sb.subscribe(events.append)
    with pytest.raises(FuelExhausted) as info:
        sb.call("burn", [10_000_000])
    assert info.value.exit_code == 11
    assert sb.state is S.SUSPENDED
    assert sb.suspend_reason == "out of fuel"
    assert sb.fuel_used == 200_000
    assert sb.receipt().outcome == "fuel exhausted"
    with pytest.raises(IllegalTransition, match="out of fuel"):
        sb.resume()
    sb.refuel(1_000_000)
    assert sb.fuel_budget == 1_200_000
    # Globals survived the suspension: the counter continues from 1.
    assert sb.call("burn", [10]) == [2]
    assert sb.state is S.READY
    assert ("running", "suspended") in states(events)
    assert ("suspended", "running") in states(events)
    assert sb.receipt().outcome == "ok"


def test_call_from_suspended_without_refuel_exhausts_again(make: Make) -> None:
    sb = make(WAT, config(fuel=10_000))
    with pytest.raises(FuelExhausted):
        sb.call("burn", [1_000_000])
    with pytest.raises(FuelExhausted):
        sb.call("bump")
    assert sb.state is S.SUSPENDED


def test_infinite_loop_times_out(make: Make) -> None:
    sb = make(WAT, config(timeout=0.2))
    started = time.monotonic()
    with pytest.raises(TimeoutExceeded, match=r"0\.2s timeout") as info:
        sb.call("spin")
    assert 0.15 < time.monotonic() - started < 5.0
    assert info.value.exit_code == 12
    assert sb.state is S.FAILED
    assert sb.receipt().outcome == "timeout"


def test_deep_recursion_is_a_trap(make: Make) -> None:
    sb = make(WAT)
    with pytest.raises(GuestTrap, match="stack exhausted"):
        sb.call("recurse")
    assert sb.state is S.FAILED


def test_live_fuel_samples(make: Make) -> None:
    sb = make(WAT, config(timeout=0.3))
    samples: list[FuelSample] = []
    sb.subscribe(lambda e: samples.append(e) if isinstance(e, FuelSample) else None)
    with pytest.raises(TimeoutExceeded):
        sb.call("spin_calls")
    assert len(samples) >= 5
    used = [s.used for s in samples]
    assert used == sorted(used) and used[-1] > used[0]
    assert all(s.budget == sb.fuel_budget for s in samples)


def run_in_thread(sb: Sandbox, function: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(sb.call(function))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_suspend_and_resume_from_another_thread(make: Make) -> None:
    sb = make(WAT, config(timeout=0.5))
    samples: list[float] = []
    sb.subscribe(lambda e: samples.append(time.monotonic()) if isinstance(e, FuelSample) else None)
    thread, outcome = run_in_thread(sb, "spin_calls")
    wait_for(lambda: len(samples) >= 2)
    sb.suspend()
    assert sb.state is S.SUSPENDED
    assert sb.suspend_reason == "paused"
    time.sleep(0.05)
    count = len(samples)
    fuel = sb.fuel_used
    time.sleep(0.6)  # longer than the timeout: paused time does not count
    assert len(samples) == count, "guest kept running while suspended"
    assert sb.fuel_used == fuel
    with pytest.raises(IllegalTransition, match="already running"):
        sb.call("add", [1, 2])
    sb.resume()
    assert sb.state is S.RUNNING
    thread.join(5)
    assert isinstance(outcome[0], TimeoutExceeded)
    assert len(samples) > count


def test_terminate_a_running_call_from_another_thread(make: Make) -> None:
    sb = make(WAT, config(timeout=5.0))
    thread, outcome = run_in_thread(sb, "spin")
    wait_for(lambda: sb.state is S.RUNNING)
    time.sleep(0.03)
    sb.terminate()
    thread.join(3)
    assert not thread.is_alive()
    assert isinstance(outcome[0], Terminated)
    assert sb.state is S.TERMINATED
    assert sb.receipt().outcome == "terminated"


def test_terminate_reaches_a_spinning_guest_without_the_ticker() -> None:
    """terminate() moves the epoch itself: the guest stops even when the engine's ticker is
    stopped right after (closing the workbench closes the engine at once)."""
    from vudo.engine import Engine

    engine = Engine()
    sb = Sandbox(engine, engine.load(WAT, name="t"), config(timeout=None))
    sb.instantiate()
    thread, outcome = run_in_thread(sb, "spin")
    wait_for(lambda: sb.state is S.RUNNING)
    time.sleep(0.03)
    started = time.monotonic()
    sb.terminate()
    engine.close()  # no more ticks from here on
    thread.join(3)
    assert not thread.is_alive(), "the guest kept spinning"
    assert isinstance(outcome[0], Terminated)
    assert time.monotonic() - started < 1.0
    sb.close()


def test_terminate_while_suspended(make: Make) -> None:
    sb = make(WAT, config(timeout=5.0))
    thread, outcome = run_in_thread(sb, "spin")
    wait_for(lambda: sb.state is S.RUNNING)
    time.sleep(0.03)
    sb.suspend()
    time.sleep(0.03)
    sb.terminate()
    thread.join(3)
    assert isinstance(outcome[0], Terminated)


def test_argument_checking(make: Make) -> None:
    sb = make(WAT)
    with pytest.raises(UsageError, match="takes 2 argument"):
        sb.call("add", [1])
    with pytest.raises(UsageError, match="must be an i32"):
        sb.call("add", [1, "2"])
    with pytest.raises(UsageError, match="must be an i32"):
        sb.call("add", [1, 2**40])
    assert sb.call("add", [2**32 - 1, 1]) == [0]
    assert sb.call("mix", [2**63, 1.5, 2]) == [-(2**63), 3.5]
    assert sb.state is S.READY


def test_receipt_json(make: Make) -> None:
    wat = spirit(
        '(data (i32.const 0) "hi") (func (export "main") (result i32) '
        "(call $log (i32.const 2) (i32.const 0) (i32.const 2)))",
        IMPORTS["log"] + IMPORTS["time"],
    )
    sb = make(wat, config(Capability.ACTUATOR_LOG))
    assert sb.call("main") == [0]
    receipt = sb.receipt()
    data = json.loads(receipt.to_json())
    assert data["outcome"] == "ok" and data["function"] == "main"
    assert data["results"] == [0]
    assert data["host_calls"] == {"actuator_log": {"allowed": 1, "denied": 0}}
    assert data["bytes_out"] == 2
    assert data["peak_memory"] == 65536
    assert data["fuel_budget"] == 1_000_000_000
    assert 0 < data["fuel_used"] < 10_000
    assert data["price"] is None
    assert receipt.with_price(7).price == 7
    assert data["digest"] == sb.module.digest


def test_subscriber_errors_do_not_break_the_run(make: Make) -> None:
    sb = make(WAT, instantiate=False)

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    unsubscribe = sb.subscribe(broken)
    sb.instantiate()
    assert sb.call("add", [1, 1]) == [2]
    assert sb.events.errors > 0
    unsubscribe()
    assert not sb.events.active


def test_memory_helpers(make: Make) -> None:
    sb = make(WAT)
    sb.write_memory(100, b"abc")
    assert sb.read_memory(100, 3) == b"abc"
    with pytest.raises(UsageError):
        sb.read_memory(65535, 2)


def test_refuel_while_paused_applies_on_the_run_thread(make: Make) -> None:
    sb = make(WAT, config(fuel=50_000_000, timeout=5.0))
    seen: list[FuelSample] = []
    sb.subscribe(lambda e: seen.append(e) if isinstance(e, FuelSample) else None)
    thread, outcome = run_in_thread(sb, "spin_calls")
    wait_for(lambda: len(seen) >= 2)
    sb.suspend()
    time.sleep(0.03)
    live = sb.fuel_used  # read from this thread while the call is paused: the last sample
    assert 0 < live <= 50_000_000
    sb.refuel(25_000_000)
    assert sb.fuel_budget == 75_000_000
    sb.resume()
    thread.join(5)
    assert isinstance(outcome[0], FuelExhausted)
    assert sb.fuel_used == 75_000_000
    assert seen[-1].budget == 75_000_000


@pytest.mark.parametrize("setup", ["created", "ready", "failed", "out of fuel"])
def test_terminate_from_every_resting_state(make: Make, setup: str) -> None:
    sb = make(WAT, config(fuel=100_000), instantiate=False)
    if setup != "created":
        sb.instantiate()
    if setup == "failed":
        with pytest.raises(GuestTrap):
            sb.call("trap")
    if setup == "out of fuel":
        with pytest.raises(FuelExhausted):
            sb.call("burn", [10_000_000])
    before = sb.state
    events: list[Event] = []
    sb.subscribe(events.append)
    sb.terminate("done")
    assert states(events) == [(before.value, "terminated")]
    assert [e.reason for e in events if isinstance(e, StateChanged)] == ["done"]


def test_out_of_fuel_in_the_start_function_fails(make: Make) -> None:
    wat = spirit("(func $forever (loop $l (br $l))) (start $forever)")
    sb = make(wat, config(fuel=10_000), instantiate=False)
    with pytest.raises(FuelExhausted):
        sb.instantiate()
    assert sb.state is S.FAILED
    assert sb.receipt().outcome == "fuel exhausted"
    assert sb.fuel_used == 10_000


def test_trap_while_paused_reports_after_resume(make: Make) -> None:
    wat = spirit(
        "(func $nop) (global $n (mut i32) (i32.const 0))"
        '(func (export "work_then_trap") (loop $l (call $nop)'
        "  (global.set $n (i32.add (global.get $n) (i32.const 1)))"
        "  (br_if $l (i32.lt_u (global.get $n) (i32.const 30000000)))) unreachable)"
    )
    sb = make(wat, config(timeout=5.0))
    thread, outcome = run_in_thread(sb, "work_then_trap")
    wait_for(lambda: sb.state is S.RUNNING)
    sb.suspend()
    time.sleep(0.1)
    assert not outcome, "the call reported while paused"
    sb.resume()
    thread.join(5)
    assert isinstance(outcome[0], GuestTrap)
    assert sb.state is S.FAILED


def test_closing_an_idle_sandbox_keeps_the_last_outcome(make: Make) -> None:
    sb = make(WAT)
    assert sb.call("add", [1, 2]) == [3]
    sb.close()
    receipt = sb.receipt()
    assert receipt.outcome == "ok" and receipt.results == (3,)
    assert receipt.fuel_used > 0


def test_keyboard_interrupt_inside_the_monitor_stops_the_guest(make: Make) -> None:
    sb = make(WAT, config(timeout=5.0))

    def interrupt(event: Event) -> None:
        if isinstance(event, FuelSample):
            raise KeyboardInterrupt

    sb.subscribe(interrupt)
    with pytest.raises(KeyboardInterrupt):
        sb.call("spin")
    assert sb.state is S.FAILED
    assert sb.receipt().outcome == "terminated"


def test_ctrl_c_on_the_main_thread_stops_the_guest(make: Make) -> None:
    import os
    import signal

    assert threading.current_thread() is threading.main_thread()
    sb = make(WAT, config(timeout=5.0))
    timer = threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sb.call("spin")
    timer.join()
    assert time.monotonic() - started < 3.0
    assert sb.state is S.FAILED
    assert sb.receipt().outcome == "terminated"
    # Outside a guest, Ctrl-C is an ordinary KeyboardInterrupt again.
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)
