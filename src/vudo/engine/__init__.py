"""vudo.engine: run Spirits in capability-checked, metered sandboxes on wasmtime.

::

    from vudo.engine import Engine, Sandbox, SandboxConfig, Limits

    with Engine(cache_dir=home / "cache") as engine:
        module = engine.load(Path("hello.wat"), name="hello")
        with Sandbox(engine, module, SandboxConfig(fuel=10_000_000)) as sb:
            sb.subscribe(print)            # StateChanged, HostCall, FuelSample, LogMessage
            sb.instantiate()
            print(sb.call("main", [1, 2]))
            print(sb.receipt().to_json())

Errors (all :class:`vudo.errors.VudoError`, each with its exit code): ``load`` raises
ModuleError (exit 3) or ResourceLimitExceeded (13); ``instantiate``/``call`` raise
GuestTrap (10), FuelExhausted (11, the sandbox is then Suspended: ``refuel`` and call
again), TimeoutExceeded (12), ResourceLimitExceeded (13), :class:`Terminated` (10) or
:class:`IllegalTransition` (1) for an operation the current state does not allow.
``suspend``, ``resume``, ``terminate`` and ``refuel`` may be called from any thread while
``call`` runs in another; event callbacks run on the thread that produced the event.

Importing this package is light: the names below load their modules (and wasmtime) on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vudo.engine.config import DEFAULT_FUEL, Limits, SandboxConfig, SandboxState
    from vudo.engine.engine import Engine, ExportedFunc, SpiritModule
    from vudo.engine.events import (
        Event,
        FuelSample,
        HostCall,
        LogMessage,
        Notification,
        OutputWritten,
        StateChanged,
    )
    from vudo.engine.receipt import Receipt
    from vudo.engine.sandbox import IllegalTransition, Sandbox
    from vudo.engine.traps import Terminated

_EXPORTS: dict[str, str] = {
    "DEFAULT_FUEL": "vudo.engine.config",
    "Limits": "vudo.engine.config",
    "SandboxConfig": "vudo.engine.config",
    "SandboxState": "vudo.engine.config",
    "Engine": "vudo.engine.engine",
    "ExportedFunc": "vudo.engine.engine",
    "SpiritModule": "vudo.engine.engine",
    "Event": "vudo.engine.events",
    "FuelSample": "vudo.engine.events",
    "HostCall": "vudo.engine.events",
    "LogMessage": "vudo.engine.events",
    "Notification": "vudo.engine.events",
    "OutputWritten": "vudo.engine.events",
    "StateChanged": "vudo.engine.events",
    "Receipt": "vudo.engine.receipt",
    "IllegalTransition": "vudo.engine.sandbox",
    "Sandbox": "vudo.engine.sandbox",
    "Terminated": "vudo.engine.traps",
}

__all__ = [
    "DEFAULT_FUEL",
    "Engine",
    "Event",
    "ExportedFunc",
    "FuelSample",
    "HostCall",
    "IllegalTransition",
    "Limits",
    "LogMessage",
    "Notification",
    "OutputWritten",
    "Receipt",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "SpiritModule",
    "StateChanged",
    "Terminated",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vudo.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
