"""Hostile modules against the engine itself: a clear vudo error, and the process lives."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from engine_helpers import config, spirit

from vudo.engine import Engine, Sandbox
from vudo.errors import ModuleError, UsageError


@pytest.mark.parametrize(("body", "imports", "where"), [
    ('(func (export "f") (param i32 v128))', "", 'export "f"'),
    ('(func (export "f") (result v128) (v128.const i32x4 0 0 0 0))', "", 'export "f"'),
    ("", '(import "vudo" "host_time_now" (func (result v128)))', 'import "vudo" "host_time_now"'),
])
def test_v128_in_a_boundary_signature_is_a_module_error(
    engine: Engine, body: str, imports: str, where: str
) -> None:
    with pytest.raises(ModuleError, match=f"{where} has a v128 parameter or result") as info:
        engine.load(spirit(body, imports))
    assert info.value.hint


def test_v128_and_references_inside_the_module_load(engine: Engine) -> None:
    module = engine.load(spirit(
        '(func $i (param v128)) (table 1 funcref) '
        '(func (export "main") (param externref) (result funcref) ref.null func)'))
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
