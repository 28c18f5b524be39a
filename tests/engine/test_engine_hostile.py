"""Hostile modules against the engine itself: a clear vudo error, and the process lives."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import config, spirit

from vudo.capabilities import Capability as C
from vudo.engine import Engine, LogMessage, Sandbox
from vudo.engine.abi import ErrorCode
from vudo.engine.config import Limits
from vudo.engine.ledger import CreditLedger
from vudo.engine.services import HostServices
from vudo.engine.storage import KeyValueStore
from vudo.errors import (
    FuelExhausted,
    ModuleError,
    ResourceLimitExceeded,
    UsageError,
    VudoError,
)


@pytest.mark.parametrize(
    ("body", "imports", "where"),
    [
        ('(func (export "f") (param i32 v128))', "", 'export "f"'),
        ('(func (export "f") (result v128) (v128.const i32x4 0 0 0 0))', "", 'export "f"'),
        (
            "",
            '(import "vudo" "host_time_now" (func (result v128)))',
            'import "vudo" "host_time_now"',
        ),
    ],
)
def test_v128_in_a_boundary_signature_is_a_module_error(
    engine: Engine, body: str, imports: str, where: str
) -> None:
    with pytest.raises(ModuleError, match=f"{where} has a v128 parameter or result") as info:
        engine.load(spirit(body, imports))
    assert info.value.hint


def test_v128_and_references_inside_the_module_load(engine: Engine) -> None:
    module = engine.load(
        spirit(
            "(func $i (param v128)) (table 1 funcref) "
            '(func (export "main") (param externref) (result funcref) ref.null func)'
        )
    )
    assert module.export("main").params == ("anyref",)


@pytest.mark.parametrize("fuel", [0, -1, 2**63, 10**26])
def test_fuel_outside_the_i64_counter_is_refused(fuel: int) -> None:
    with pytest.raises(ValueError, match="fuel must be a positive int"):
        config(fuel=fuel)


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_timeout_must_be_positive_and_finite(timeout: float) -> None:
    # NaN compares false both ways, so it used to mean "never time out".
    with pytest.raises(ValueError, match="timeout must be positive, finite"):
        config(timeout=timeout)


def test_refuel_past_the_counter_is_refused_and_keeps_the_budget(
    make: Callable[..., Sandbox],
) -> None:
    sb = make(spirit('(func (export "main"))'), config(fuel=2**63 - 10))
    with pytest.raises(UsageError, match="past"):
        sb.refuel(100)
    sb.refuel(9)
    assert sb.call("main") == []


HOST = spirit(
    '(func (export "log") (param i32 i32) (result i32) '
    "(call $log (i32.const 2) (local.get 0) (local.get 1))) "
    '(func (export "random") (param i32 i32) (result i32) '
    "(call $random (local.get 0) (local.get 1))) "
    '(func (export "write") (param i32 i32 i32 i32) (result i32) '
    "(call $write (local.get 0) (local.get 1) (local.get 2) (local.get 3))) "
    '(func (export "delete") (param i32 i32) (result i32) '
    "(call $delete (local.get 0) (local.get 1)))",
    '(import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32))) '
    '(import "vudo" "host_random_bytes" (func $random (param i32 i32) (result i32))) '
    '(import "vudo" "host_storage_write" (func $write (param i32 i32 i32 i32) (result i32))) '
    '(import "vudo" "host_storage_delete" (func $delete (param i32 i32) (result i32)))',
)


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("log", [0, -1]),  # a length of -1 is 4 GiB once read as unsigned
        ("log", [-1, 70_000]),
        ("random", [0, -5]),
        ("random", [65_000, 65_537]),
        ("write", [0, -1, 0, 3]),
        ("write", [0, 3, 100, -1]),
        ("delete", [0, -1]),
    ],
)
def test_out_of_bounds_payload_is_invalid_memory_not_a_limit(
    make: Callable[..., Sandbox], tmp_path: Path, function: str, args: list[int]
) -> None:
    # DESIGN §1: a bad pointer or length returns INVALID_MEMORY; the guest keeps running.
    caps = (C.ACTUATOR_LOG, C.SENSOR_RANDOM, C.STORAGE_WRITE, C.STORAGE_DELETE)
    with HostServices.open(tmp_path / "data") as services:
        sb = make(HOST, config(*caps, services=services))
        assert sb.call(function, args) == [int(ErrorCode.INVALID_MEMORY)]
        assert sb.state == "ready"


def test_in_bounds_payload_over_the_limit_still_stops_the_run(
    make: Callable[..., Sandbox],
) -> None:
    sb = make(HOST, config(C.ACTUATOR_LOG, limits=Limits(max_log_bytes=16)))
    with pytest.raises(ResourceLimitExceeded, match="log message of 17 bytes"):
        sb.call("log", [0, 17])
    assert sb.state == "failed"


def test_limit_hints_name_the_limit_that_was_hit(make: Callable[..., Sandbox]) -> None:
    # Every limit used to say "raise the limit (e.g. --memory)", which helps only memory.
    sb = make(HOST, config(C.ACTUATOR_LOG, limits=Limits(max_log_bytes=16)))
    with pytest.raises(ResourceLimitExceeded) as payload:
        sb.call("log", [0, 17])
    assert payload.value.hint and "--memory" not in payload.value.hint
    assert "split" in payload.value.hint
    table = make(spirit("(table 20000 funcref)"), instantiate=False)
    with pytest.raises(ResourceLimitExceeded, match="table") as tables:
        table.instantiate()
    assert tables.value.hint and "table" in tables.value.hint
    assert "--memory" not in tables.value.hint
    memory = make(
        spirit("", memory='(memory (export "memory") 2)'),
        config(limits=Limits(memory_bytes=65536)),
        instantiate=False,
    )
    with pytest.raises(ResourceLimitExceeded) as mem:
        memory.instantiate()
    assert mem.value.hint and "--memory" in mem.value.hint


@pytest.mark.parametrize("opener", [KeyValueStore, CreditLedger])
def test_damaged_database_is_named_and_left_as_it_was(
    tmp_path: Path, opener: Callable[[Path], object]
) -> None:
    path = tmp_path / "data.sqlite"
    garbage = bytes(range(256)) * 12
    path.write_bytes(garbage)
    with pytest.raises(VudoError, match="is damaged") as info:
        opener(path)
    assert str(path) in info.value.message
    assert info.value.hint and "writable" not in info.value.hint  # it was writable
    assert path.read_bytes() == garbage  # never recreated over the user's data


@pytest.mark.parametrize("value", [-1, 2**63, 2**64])
def test_limits_outside_the_i64_range_are_refused(value: int) -> None:
    # 2**64 bytes of memory wrapped to 0 in wasmtime's limiter: nothing could run.
    with pytest.raises(ValueError, match="must be an int from 0 to"):
        Limits(memory_bytes=value)


def test_fuel_burned_retrying_a_refused_memory_grow_says_so(
    make: Callable[..., Sandbox],
) -> None:
    # With the default budget a grow-forever loop runs out of fuel long before its
    # timeout, and the error said only "all fuel used".
    bomb = spirit('(func (export "main") (loop (drop (memory.grow (i32.const 1))) br 0))')
    sb = make(bomb, config(fuel=5_000_000, limits=Limits(memory_bytes=16 * 65536)))
    with pytest.raises(FuelExhausted, match=r"after memory reached its limit of 1048576") as info:
        sb.call("main")
    assert info.value.hint and "memory.grow returns -1" in info.value.hint
    assert sb.state == "suspended"  # still out of fuel, still resumable
    spin = make(spirit('(func (export "main") (loop br 0))'), config(fuel=100_000))
    with pytest.raises(FuelExhausted) as plain:
        spin.call("main")
    assert "memory" not in plain.value.message


def test_guest_log_cannot_drive_the_terminal(engine: Engine) -> None:
    # The bytes went to stderr as sent: colours, a window title, and a second line that
    # looked like vudo's own error.
    text = b"hi\x1b[31mRED\x1b]0;pwned\x07\nerror: fake (hint: x)\r\x08\xc2\x9b2J\ttab"
    wat = spirit(
        '(func (export "main") (result i32) '
        f"(call $log (i32.const 4) (i32.const 0) (i32.const {len(text)})))",
        '(import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))',
        memory='(memory (export "memory") 1) (data (i32.const 0) "'
        + "".join(f"\\{b:02x}" for b in text)
        + '")',
    )
    sink = io.StringIO()
    events: list[object] = []
    with Sandbox(
        engine, engine.load(wat), config(C.ACTUATOR_LOG, log_to_stderr=True), stderr=sink
    ) as sb:
        sb.subscribe(events.append)
        sb.instantiate()
        assert sb.call("main") == [0]
    written = sink.getvalue()
    assert written.count("\n") == 1 and written.endswith("\n")
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in written)
    assert "\x9b" not in written and "\x7f" not in written
    assert written == (
        "[error] hi\\x1b[31mRED\\x1b]0;pwned\\x07\\nerror: fake (hint: x)\\r\\x08\\x9b2J\ttab\n"
    )
    [log] = [e for e in events if isinstance(e, LogMessage)]
    assert log.message == text.decode()  # subscribers get the text as sent


def test_wat_bytes_with_a_utf8_bom_load(engine: Engine) -> None:
    module = engine.load(b"\xef\xbb\xbf" + spirit('(func (export "main"))').encode())
    assert [f.name for f in module.exports] == ["main"]


def test_shared_memory_is_an_unsupported_feature_not_a_guest_bug(
    make: Callable[..., Sandbox],
) -> None:
    # Was GuestTrap (exit 10) "instantiation failed ... the Spirit has a bug".
    sb = make(
        spirit('(func (export "main"))', memory='(memory (export "memory") 1 1 shared)'),
        instantiate=False,
    )
    with pytest.raises(ModuleError, match="feature vudo does not enable") as info:
        sb.instantiate()
    assert info.value.hint and "shared memory" in info.value.hint


def test_too_many_memories_names_the_count_once(make: Callable[..., Sandbox]) -> None:
    sb = make(
        spirit('(func (export "main"))', memory='(memory 1) (memory (export "memory") 1)'),
        instantiate=False,
    )
    with pytest.raises(ResourceLimitExceeded) as info:
        sb.instantiate()
    assert info.value.message.count("resource limit exceeded") == 1
    assert info.value.hint and "--memory" not in info.value.hint
