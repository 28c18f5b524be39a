"""Every resource limit trips, with the documented error and exit code, and the host
process keeps going afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from engine_helpers import config, spirit

from vudo.engine import Limits, Sandbox
from vudo.errors import ResourceLimitExceeded, TimeoutExceeded

Make = Callable[..., Sandbox]
PAGE = 65536

GROW = spirit(
    """
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "bomb") (result i32)
      (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
      unreachable)
    (func (export "spin_bomb")
      (loop $l (drop (memory.grow (i32.const 1))) (br $l)))
    """
)


def test_memory_limit_at_instantiation(make: Make) -> None:
    wat = spirit("", memory='(memory (export "memory") 32)')
    sb = make(wat, config(limits=Limits(memory_bytes=16 * PAGE)), instantiate=False)
    with pytest.raises(ResourceLimitExceeded) as info:
        sb.instantiate()
    assert info.value.exit_code == 13
    assert sb.state == "failed"


def test_memory_grow_is_refused_at_the_limit(make: Make) -> None:
    sb = make(GROW, config(limits=Limits(memory_bytes=4 * PAGE)))
    assert sb.call("grow", [3]) == [1]
    assert sb.call("grow", [1]) == [-1]
    assert sb.receipt().peak_memory == 4 * PAGE


def test_memory_growth_bomb(make: Make) -> None:
    sb = make(GROW, config(limits=Limits(memory_bytes=64 * PAGE)))
    with pytest.raises(ResourceLimitExceeded, match="memory limit of 4194304 bytes"):
        sb.call("bomb")
    assert sb.state == "failed"
    assert sb.receipt().outcome == "limit"
    assert sb.receipt().peak_memory <= 64 * PAGE


def test_memory_growth_bomb_that_ignores_failure(make: Make) -> None:
    sb = make(GROW, config(limits=Limits(memory_bytes=8 * PAGE), timeout=0.1))
    with pytest.raises(ResourceLimitExceeded, match=r"memory\.grow refused"):
        sb.call("spin_bomb")


def test_table_elements_limit(make: Make) -> None:
    wat = spirit("(table 5000 funcref)")
    ok = make(wat, config(limits=Limits(table_elements=5000)))
    assert ok.state == "ready"
    sb = make(wat, config(limits=Limits(table_elements=100)), instantiate=False)
    with pytest.raises(ResourceLimitExceeded):
        sb.instantiate()


def test_tables_limit(make: Make) -> None:
    wat = spirit("(table $a 1 funcref) (table $b 1 funcref)")
    sb = make(wat, config(limits=Limits(tables=1)), instantiate=False)
    with pytest.raises(ResourceLimitExceeded):
        sb.instantiate()
    assert make(wat, config(limits=Limits(tables=2))).state == "ready"


def test_memories_limit(make: Make) -> None:
    wat = spirit("(memory $second 1)")
    sb = make(wat, config(limits=Limits(memories=1)), instantiate=False)
    with pytest.raises(ResourceLimitExceeded):
        sb.instantiate()
    assert make(wat, config(limits=Limits(memories=2))).state == "ready"


def test_instances_limit(make: Make) -> None:
    sb = make(spirit(""), config(limits=Limits(instances=0)), instantiate=False)
    with pytest.raises(ResourceLimitExceeded):
        sb.instantiate()


def test_timeout_during_start_function(make: Make) -> None:
    wat = spirit("(func $forever (loop $l (br $l))) (start $forever)")
    sb = make(wat, config(timeout=0.1), instantiate=False)
    with pytest.raises(TimeoutExceeded) as info:
        sb.instantiate()
    assert info.value.exit_code == 12
    assert sb.state == "failed"


def test_limits_validate() -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        Limits(memory_bytes=-1)
    with pytest.raises(ValueError, match="fuel"):
        config(fuel=0)
    with pytest.raises(ValueError, match="timeout"):
        config(timeout=0)


def test_host_keeps_working_after_every_failure(make: Make) -> None:
    sb = make(spirit('(func (export "main") (result i32) (i32.const 1))'))
    assert sb.call("main") == [1]


def test_config_validates_identity_and_prices() -> None:
    from vudo.engine import SandboxConfig

    with pytest.raises(ValueError, match="identity"):
        SandboxConfig(identity="nothex")
    with pytest.raises(ValueError, match="host_call_fuel"):
        config(host_call_fuel=-1)
