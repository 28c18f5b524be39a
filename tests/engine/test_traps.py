"""The wasmtime error boundary: every trap code is mapped, our stop tags round-trip."""

from __future__ import annotations

import pytest
import wasmtime

from vudo.engine.traps import STOP_KINDS, TRAP_CODES, Terminated, stop_message, translate
from vudo.errors import (
    FuelExhausted,
    GuestTrap,
    ModuleError,
    ResourceLimitExceeded,
    RuntimeFailure,
    TimeoutExceeded,
)


def test_every_trap_code_is_mapped() -> None:
    assert set(TRAP_CODES) == set(wasmtime.TrapCode)
    for cls in TRAP_CODES.values():
        assert issubclass(cls, RuntimeFailure)


def test_budget_codes_map_to_their_errors() -> None:
    assert TRAP_CODES[wasmtime.TrapCode.OUT_OF_FUEL] is FuelExhausted
    assert TRAP_CODES[wasmtime.TrapCode.INTERRUPT] is TimeoutExceeded
    assert TRAP_CODES[wasmtime.TrapCode.UNREACHABLE] is GuestTrap


@pytest.mark.parametrize("kind", sorted(set(STOP_KINDS) - {"exit"}))
def test_stop_tags_round_trip_through_both_roots(kind: str) -> None:
    text = stop_message(kind, "why it stopped").decode()
    for exc in (
        wasmtime.WasmtimeError(f"error while executing\n\nCaused by:\n    {text}\n"),
        wasmtime.Trap(text),
    ):
        err = translate(exc)
        assert type(err) is STOP_KINDS[kind]
        assert err.message == "why it stopped"
        assert err.hint


def test_a_wasi_exit_round_trips_its_status() -> None:
    text = stop_message("exit", "3").decode()
    for exc in (
        wasmtime.WasmtimeError(f"error while executing\n\nCaused by:\n    {text}\n"),
        wasmtime.Trap(text),
    ):
        err = translate(exc)
        assert type(err) is STOP_KINDS["exit"]
        assert err.exit_code == 3 and "status 3" in err.message


def test_unknown_stop_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        stop_message("nonsense", "x")


def test_plain_errors_by_phase() -> None:
    assert isinstance(translate(wasmtime.WasmtimeError("bad magic"), during="compile"), ModuleError)
    assert isinstance(translate(wasmtime.WasmtimeError("boom"), during="instantiate"), GuestTrap)
    assert isinstance(translate(wasmtime.WasmtimeError("boom")), GuestTrap)
    limit = translate(
        wasmtime.WasmtimeError("memory minimum size of 10 pages exceeds memory limits"),
        during="instantiate",
    )
    assert isinstance(limit, ResourceLimitExceeded)
    assert Terminated.exit_code == 10


def test_real_trap_codes(engine: object) -> None:
    eng = wasmtime.Engine()
    store = wasmtime.Store(eng)
    module = wasmtime.Module(
        eng,
        '(module (func (export "f") unreachable)'
        '(func (export "d") (drop (i32.div_u (i32.const 1) '
        "(i32.const 0)))))",
    )
    inst = wasmtime.Instance(store, module, [])
    for name in ("f", "d"):
        func = inst.exports(store)[name]
        assert isinstance(func, wasmtime.Func)
        with pytest.raises(wasmtime.Trap) as info:
            func(store)
        err = translate(info.value)
        assert isinstance(err, GuestTrap)
        assert "\n" not in err.message


def test_budget_messages_do_not_repeat_the_title() -> None:
    # `vudo test` shows "<outcome>: <message>" and the TUI "<title> — <message>": a message
    # that began with its own title read "fuel exhausted: fuel exhausted: all fuel used".
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    store = wasmtime.Store(wasmtime.Engine(cfg))
    store.set_fuel(1_000)
    module = wasmtime.Module(store.engine, '(module (func (export "f") (loop br 0)))')
    func = wasmtime.Instance(store, module, []).exports(store)["f"]
    assert isinstance(func, wasmtime.Func)
    with pytest.raises(wasmtime.Trap) as info:
        func(store)
    err = translate(info.value)
    assert isinstance(err, FuelExhausted)
    assert err.message == "all fuel used"
    assert not err.message.startswith(FuelExhausted.title)
