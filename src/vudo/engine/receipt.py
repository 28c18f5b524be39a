"""The receipt: what one run did, as a value and as JSON.

A receipt is written for every call, whatever the outcome: a trap, a timeout or an
exhausted budget still report the fuel used, wall time and host calls up to that point.
``price`` is left ``None`` by the engine; the caller fills it from the manifest's
[pricing] (``vudo.pkg.pricing``) with :meth:`Receipt.with_price`.

:class:`Receipt` is a :class:`~typing.NamedTuple` (immutable, slotted, compared by value):
every ``vudo run`` imports this module, and a NamedTuple is several times cheaper to
define than a frozen dataclass.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each, ~250 fields on a run's path), and this module
# is imported by every ``vudo run``. Annotations naming a later or TYPE_CHECKING-only
# class are quoted.

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

_NO_IO: Mapping[str, int] = MappingProxyType({})


class Receipt(NamedTuple):
    """The record of one call into a sandbox.

    ``host_calls`` maps a capability name to ``{"allowed": n, "denied": m}``; the network
    handle calls that need no capability of their own (``host_network_accept``, ``_send``,
    ``_recv``, ``_close``) are counted under ``"network"``, and ``host_credit_account``
    (which needs none either) under ``"credit"``, the plugin I/O calls (``host_input_*``,
    ``host_output_write``) under ``"io"``, ``host_sandbox_call`` and ``host_sandbox_close``
    (on the Spirit's own handles) under ``"sandbox"``. ``bytes_out`` counts payload
    bytes the guest handed to the host (logs, writes, sends); ``bytes_in`` counts bytes the
    host copied into guest memory (random bytes, reads, receives). ``io`` breaks the
    call's own streams out: ``"input"`` the input bytes the guest read, and each output
    stream (``"output"``, WASI's ``"stdout"``/``"stderr"``) the bytes written to it.

    ``calls`` are the receipts of the sandboxes this one called (``host_spirit_call``,
    ``host_sandbox_spawn``; see :mod:`vudo.engine.compose`), each with its own host calls
    and fuel, and its own ``calls``. The fuel they used is also in this receipt's
    ``fuel_used`` (it came out of this sandbox's budget).
    """

    sandbox_id: str
    module: str
    digest: str
    function: str
    outcome: str
    error: str | None
    results: tuple[Any, ...]
    fuel_budget: int
    fuel_used: int
    wall_time: float
    peak_memory: int
    host_calls: Mapping[str, Mapping[str, int]]
    bytes_in: int
    bytes_out: int
    price: int | None = None
    #: A WASI program's ``proc_exit`` status (outcome ``"exit"``), else None.
    exit_code: int | None = None
    io: Mapping[str, int] = _NO_IO
    calls: "tuple[Receipt, ...]" = ()

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def with_price(self, price: int) -> "Receipt":
        return self._replace(price=price)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sandbox_id": self.sandbox_id,
            "module": self.module,
            "digest": self.digest,
            "function": self.function,
            "outcome": self.outcome,
            "error": self.error,
            "results": [_json_value(v) for v in self.results],
            "fuel_budget": self.fuel_budget,
            "fuel_used": self.fuel_used,
            "wall_time": self.wall_time,
            "peak_memory": self.peak_memory,
            "host_calls": {k: dict(v) for k, v in sorted(self.host_calls.items())},
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "price": self.price,
            "exit_code": self.exit_code,
            "io": dict(sorted(self.io.items())),
            "calls": [call.to_dict() for call in self.calls],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        import json  # lazy: json (~2 ms) stays off a plain run; only a JSON receipt needs it

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _json_value(value: Any) -> Any:
    """Results as JSON allows them: non-finite floats become their string names, a
    non-null reference its kind (``"funcref"``; a null reference is null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, int | float | str):
        return value
    return "funcref" if type(value).__name__ == "Func" else "externref"
