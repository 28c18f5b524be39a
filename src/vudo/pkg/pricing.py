"""The price of one run, from the manifest's ``[pricing]`` and the run's receipt.

Prices are integer credits (the unit the credit ledger moves), computed with integer
arithmetic only, so the same run always costs the same on every machine::

    price = base_cost
          + ceil(fuel_used / fuel_unit) * per_fuel_cost
          + host_calls * per_host_call_cost
          + (bytes_in + bytes_out) * per_byte_cost

Fuel is charged per started ``fuel_unit`` (rounded up), so a Spirit can price in, say,
credits per million fuel (``fuel_unit = 1_000_000``) and a run that used any fuel at
all pays for at least one unit. ``host_calls`` counts the calls the sandbox allowed (a
denied call did no work for the caller); :func:`count_host_calls` gets that number from
a receipt's per-capability table. A Spirit without ``[pricing]`` is free (price 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from vudo.errors import InvalidInputError

__all__ = ["PRICING_KEYS", "Pricing", "count_host_calls", "price"]

PRICING_KEYS: tuple[str, ...] = (
    "base_cost",
    "per_fuel_cost",
    "fuel_unit",
    "per_host_call_cost",
    "per_byte_cost",
)


class Pricing(NamedTuple):
    """What one run of the Spirit costs, in integer credits (the manifest's ``[pricing]``).

    ``per_fuel_cost`` is charged per ``fuel_unit`` units of fuel (default 1), so a
    Spirit can price in e.g. credits per million fuel without fractions;
    ``per_byte_cost`` applies to bytes in plus bytes out.

    A NamedTuple, not a frozen dataclass: a project run with ``[pricing]`` builds one
    from its build stamp (see the :mod:`vudo` package docstring).
    """

    base_cost: int = 0
    per_fuel_cost: int = 0
    fuel_unit: int = 1
    per_host_call_cost: int = 0
    per_byte_cost: int = 0

    def to_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in PRICING_KEYS}


def _check(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(
            f"{name} must be a non-negative integer, not {value!r}",
            hint="pass the counters from the run's receipt",
        )
    return value


def price(
    pricing: Pricing | None,
    *,
    fuel_used: int,
    host_calls: int = 0,
    bytes_in: int = 0,
    bytes_out: int = 0,
) -> int:
    """The price in credits of a run with these counters (see the module doc)."""
    fuel_used = _check("fuel_used", fuel_used)
    host_calls = _check("host_calls", host_calls)
    bytes_in = _check("bytes_in", bytes_in)
    bytes_out = _check("bytes_out", bytes_out)
    if pricing is None:
        return 0
    fuel_units = -(-fuel_used // pricing.fuel_unit)  # ceiling division, integers only
    return (
        pricing.base_cost
        + fuel_units * pricing.per_fuel_cost
        + host_calls * pricing.per_host_call_cost
        + (bytes_in + bytes_out) * pricing.per_byte_cost
    )


def count_host_calls(
    host_calls: Mapping[str, Mapping[str, int]], *, include_denied: bool = False
) -> int:
    """Total calls in a receipt's ``host_calls`` table (capability -> {allowed, denied})."""
    total = 0
    for counts in host_calls.values():
        total += int(counts.get("allowed", 0))
        if include_denied:
            total += int(counts.get("denied", 0))
    return total
