"""Pricing: integer arithmetic, rounding of fuel units, free Spirits, bad counters."""

from __future__ import annotations

import pytest

from vudo.errors import InvalidInputError
from vudo.pkg.manifest import Pricing, parse_manifest
from vudo.pkg.pricing import count_host_calls, price


def test_free_without_pricing() -> None:
    assert price(None, fuel_used=10**9, host_calls=5, bytes_in=10, bytes_out=10) == 0


def test_all_terms_add_up() -> None:
    p = Pricing(base_cost=100, per_fuel_cost=3, per_host_call_cost=7, per_byte_cost=2)
    assert price(p, fuel_used=10, host_calls=4, bytes_in=5, bytes_out=6) == (
        100 + 10 * 3 + 4 * 7 + 11 * 2
    )


@pytest.mark.parametrize(
    ("fuel", "units"),
    [(0, 0), (1, 1), (999_999, 1), (1_000_000, 1), (1_000_001, 2), (5_000_000, 5)],
)
def test_fuel_is_charged_per_started_unit(fuel: int, units: int) -> None:
    p = Pricing(per_fuel_cost=10, fuel_unit=1_000_000)
    assert price(p, fuel_used=fuel) == units * 10


def test_large_values_stay_exact() -> None:
    p = Pricing(base_cost=1, per_fuel_cost=10**12)
    assert price(p, fuel_used=10**12) == 10**24 + 1


def test_design_example_manifest() -> None:
    m = parse_manifest(
        'name = "h"\nversion = "0.1.0"\nauthor = "' + "0" * 64 + '"\n'
        "[pricing]\nbase_cost = 100\nper_fuel_cost = 1\n"
    )
    assert price(m.pricing, fuel_used=1234, host_calls=3) == 1334


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_bad_counters_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        price(Pricing(), fuel_used=bad)  # type: ignore[arg-type]


def test_count_host_calls_from_receipt_table() -> None:
    table = {"sensor_time": {"allowed": 3, "denied": 1}, "actuator_log": {"allowed": 2}}
    assert count_host_calls(table) == 5
    assert count_host_calls(table, include_denied=True) == 6
    assert count_host_calls({}) == 0
