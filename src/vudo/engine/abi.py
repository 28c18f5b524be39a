"""The Spirit ABI's result codes (DESIGN.md §1).

Host functions never raise into the guest for a bad argument: they return one of these
negative codes. Host-side services (storage, ledger, network, grants) signal a failure by
raising :class:`HostCallError` with the code to return; the host-function glue turns it
into the guest's result and records the call.
"""

from __future__ import annotations

from enum import IntEnum

#: Import module name every Spirit imports its host functions from.
HOST_MODULE = "vudo"

#: The largest i64: wasmtime keeps fuel and store limits in i64s (more wraps silently),
#: and credit amounts cross the ABI as i64s. The one spelling of 2**63 - 1.
I64_MAX = 2**63 - 1


class ErrorCode(IntEnum):
    OK = 0
    CAPABILITY_DENIED = -1
    INVALID_MEMORY = -2
    INVALID_PARAMETER = -3
    STORAGE_ERROR = -4
    NETWORK_ERROR = -5
    CREDIT_ERROR = -6
    BUFFER_TOO_SMALL = -7
    INTERNAL_ERROR = -8
    NOT_FOUND = -9
    QUOTA_EXCEEDED = -10
    CALL_FAILED = -11


class HostCallError(Exception):
    """Raised by a host-side service; the guest sees ``code`` as the call's result."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.name}: {detail}" if detail else code.name)
        self.code = code
        self.detail = detail


class StopGuest(Exception):
    """Raised inside a host function to stop the guest (fuel, limit, terminated): the
    engine must stop it, a code would not do (see :mod:`vudo.engine.host`)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
