"""Plain data the panes draw: no textual, no engine objects.

:mod:`vudo.tui.session` turns engine events, receipts and store records into these, so
every pane can be driven (and tested) with values alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle change, ``at`` seconds after the sandbox was created."""

    old: str
    new: str
    at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallRow:
    """One host call as the log shows it."""

    function: str
    capability: str
    allowed: bool
    args: str
    result: int
    fuel: int
    reason: str = ""  # why a call was denied or refused ("" otherwise)


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """What a finished run produced (a view of the engine's ``Receipt``)."""

    module: str
    digest: str
    function: str
    outcome: str
    error: str | None
    results: tuple[object, ...]
    fuel_budget: int
    fuel_used: int
    wall_time: float
    peak_memory: int
    host_calls: tuple[tuple[str, int, int], ...]  # capability, allowed, denied
    bytes_in: int
    bytes_out: int
    price: int | None
    #: The running Spirit's own credit balance, when its run has the ledger open.
    balance: int | None = None
    #: The Spirits it called (host_spirit_call, host_sandbox_spawn), each its own receipt.
    calls: tuple[ReceiptRow, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One Spirit in the registry browser: what is available and what is installed."""

    name: str
    version: str
    description: str = ""
    installed: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    signer: str = ""
    trusted: bool = False
    source: str = ""  # where it can be installed from (a .spirit path or registry name)


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """What an install or upgrade asks for, shown on the consent screen.

    ``previous`` holds the capabilities an upgrade's installed version already had, so the
    screen can mark the ones that widen access.
    """

    name: str
    version: str
    signer: str
    trusted: bool
    capabilities: tuple[str, ...]
    previous: tuple[str, ...] | None = None
    action: str = "install"


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """An error as both faces show it: the error class title, the message, the hint."""

    title: str
    message: str
    hint: str | None = None
    #: The tool's whole diagnostic (a compiler's, with its source line and caret).
    detail: str | None = None
    #: Where the diagnostic points: (project-relative path, line, column).
    location: tuple[str, int, int] | None = None
