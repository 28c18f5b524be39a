"""The Spirit ABI in one table (DESIGN.md §1): every ``"vudo"`` import, its wasm
signature, the capability that guards it, and its result codes.

Everything that needs to know the ABI reads :data:`ABI` (or a view derived from it
here): the linker defines exactly its rows (:func:`vudo.engine.host.define_imports`), the
loader and ``vudo build``/``vudo check`` validate a module's imports against it, ``vudo
capabilities`` lists each capability's host calls from it, and the receipt counts each
call under its row's ``counter``. Adding a host function is one row here plus its method
on :class:`vudo.engine.host.HostBridge` (a test checks the two agree).

Host functions never raise into the guest for a bad argument: they return one of the
negative :class:`ErrorCode` values. Host-side services (storage, ledger, network, grants)
signal a failure by raising :class:`HostCallError` with the code to return; the
host-function glue turns it into the guest's result and records the call.

Pointers and lengths are i32 (wasm32 guests); handles, amounts, ids, counts and offsets
are i64.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from vudo.capabilities import Capability

#: Import module name every Spirit imports its host functions from.
HOST_MODULE = "vudo"

#: The largest i64: wasmtime keeps fuel and store limits in i64s (more wraps silently),
#: and credit amounts cross the ABI as i64s. The one spelling of 2**63 - 1.
I64_MAX = 2**63 - 1

I32 = "i32"
I64 = "i64"

#: The Python ints an i32/i64 argument or result may be: signed or unsigned readings of
#: the same bits.
INT_RANGES = {I32: (-(2**31), 2**32 - 1), I64: (-(2**63), 2**64 - 1)}


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


class HostImport(NamedTuple):
    """One host function of the ABI.

    ``capability`` is what a call needs (None: nothing, e.g. the handle calls, which work
    only on a handle the sandbox was allowed to open). ``counter`` is the receipt's
    ``host_calls`` key the call is counted under: the capability's name, or for a call
    that needs none a group name that no capability has (``"network"``, ``"credit"``,
    ``"io"``), so the two can never collide.
    """

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    capability: Capability | None
    meaning: str
    counter: str = ""

    @property
    def signature(self) -> str:
        return format_signature(self.params, self.results)


def _row(
    name: str,
    params: tuple[str, ...],
    result: str,
    capability: Capability | None,
    meaning: str,
    group: str = "",
) -> HostImport:
    counter = capability.value if capability is not None else group
    assert counter, f"{name}: a call that needs no capability names its receipt group"
    return HostImport(name, params, (result,), capability, meaning, counter)


C = Capability

#: Every ``"vudo"`` import, in the order DESIGN.md §1 lists them.
ABI: dict[str, HostImport] = {
    row.name: row
    for row in (
        # -- time, random, log
        _row("host_time_now", (), I64, C.SENSOR_TIME, "Unix time in nanoseconds"),
        _row(
            "host_random_bytes",
            (I32, I32),
            I32,
            C.SENSOR_RANDOM,
            "fill len bytes from the OS CSPRNG; 0 or error",
        ),
        _row(
            "host_log",
            (I32, I32, I32),
            I32,
            C.ACTUATOR_LOG,
            "(level, ptr, len): UTF-8 message; level 0 trace .. 4 error",
        ),
        # -- storage
        _row(
            "host_storage_read",
            (I32, I32, I32, I32),
            I32,
            C.STORAGE_READ,
            "(kptr, klen, vptr, vcap): the value's full length, copying min(len, vcap) "
            "bytes (snprintf style); NOT_FOUND if absent",
        ),
        _row(
            "host_storage_write",
            (I32, I32, I32, I32),
            I32,
            C.STORAGE_WRITE,
            "(kptr, klen, vptr, vlen): overwrite; 0 or error",
        ),
        _row(
            "host_storage_delete",
            (I32, I32),
            I32,
            C.STORAGE_DELETE,
            "(kptr, klen): 1 deleted, 0 absent, or error",
        ),
        # -- network (the handle calls need no capability of their own: only a sandbox
        #    granted connect or listen holds a handle, and only in that sandbox)
        _row(
            "host_network_connect",
            (I32, I32),
            I64,
            C.NETWORK_CONNECT,
            '(aptr, alen): "host:port"; a connection handle',
        ),
        _row("host_network_listen", (I32,), I64, C.NETWORK_LISTEN, "(port): a listener handle"),
        _row(
            "host_network_accept",
            (I64,),
            I64,
            None,
            "(listener): wait for a connection (until the run's deadline); a connection handle",
            "network",
        ),
        _row(
            "host_network_send",
            (I64, I32, I32),
            I64,
            None,
            "(handle, ptr, len): send bytes; how many were sent",
            "network",
        ),
        _row(
            "host_network_recv",
            (I64, I32, I32),
            I64,
            None,
            "(handle, ptr, cap): receive up to cap bytes; how many (0 = peer closed)",
            "network",
        ),
        _row(
            "host_network_close",
            (I64,),
            I32,
            None,
            "(handle): close a connection or listener; 0",
            "network",
        ),
        _row(
            "host_network_broadcast",
            (I32, I32),
            I64,
            C.NETWORK_BROADCAST,
            "(mptr, mlen): how many peers received it",
        ),
        # -- credit (accounts are 32-byte Ed25519 public keys in guest memory)
        _row("host_credit_balance", (I32,), I64, C.ACTUATOR_CREDIT, "(acct_ptr): the balance"),
        _row(
            "host_credit_transfer",
            (I32, I32, I64),
            I32,
            C.ACTUATOR_CREDIT,
            "(from_ptr, to_ptr, amount): only from an account the sandbox owns",
        ),
        _row(
            "host_credit_reserve",
            (I32, I64),
            I64,
            C.ACTUATOR_CREDIT,
            "(acct_ptr, amount): a reservation id",
        ),
        _row(
            "host_credit_release",
            (I64,),
            I32,
            C.ACTUATOR_CREDIT,
            "(id): only this sandbox's reservations",
        ),
        _row(
            "host_credit_consume",
            (I64,),
            I32,
            C.ACTUATOR_CREDIT,
            "(id): only this sandbox's reservations",
        ),
        _row(
            "host_credit_available",
            (I32,),
            I64,
            C.ACTUATOR_CREDIT,
            "(acct_ptr): balance minus open reservations",
        ),
        _row(
            "host_credit_account",
            (I32,),
            I32,
            None,
            "(ptr): writes the sandbox's own 32-byte account (the one it may spend from)",
            "credit",
        ),
        # -- plugin I/O (the call's own bytes: no capability, bounded by the limits)
        _row("host_input_len", (), I64, None, "length of the call's input bytes", "io"),
        _row(
            "host_input_read",
            (I32, I32, I64),
            I32,
            None,
            "(ptr, len, offset): copy input[offset:offset+len]; bytes copied",
            "io",
        ),
        _row(
            "host_output_write",
            (I32, I32),
            I32,
            None,
            "(ptr, len): append to the call's output; 0, or QUOTA_EXCEEDED past the "
            "output limit (nothing written)",
            "io",
        ),
        _row(
            "host_env_get",
            (I32, I32, I32, I32),
            I32,
            C.SENSOR_ENVIRONMENT,
            "(kptr, klen, vptr, vcap): a variable given to this run, snprintf style; "
            "NOT_FOUND if absent",
        ),
        _row(
            "host_notify",
            (I32, I32, I32),
            I32,
            C.ACTUATOR_NOTIFY,
            "(level, ptr, len): a notification for the user (TUI toast, CLI line on "
            "stderr, library event); level 0 trace .. 4 error",
        ),
        # -- composition (vudo.engine.compose): a Spirit calls the Spirits its manifest
        #    depends on, each in a sandbox of its own with its own identity and grants.
        #    Results: the callee's full output length (min(len, ocap) bytes copied to
        #    optr, snprintf style), or a code: NOT_FOUND (not a dependency, no such
        #    export), INVALID_PARAMETER (wrong export shape, bad name, handle not open
        #    here), QUOTA_EXCEEDED (depth, fan-out or a cycle), CALL_FAILED (the callee
        #    trapped or hit a limit), or the callee's own negative i32 result.
        _row(
            "host_spirit_call",
            (I32, I32, I32, I32, I32, I32, I32, I32),
            I64,
            C.CROSS_SANDBOX_CALL,
            "(nptr, nlen, fptr, flen, iptr, ilen, optr, ocap): call export f (() -> () or "
            "() -> i32, bytes through host_input_*/host_output_write) of dependency n (from "
            "this Spirit's manifest and lock) in its own sandbox, with its own identity and "
            "grants; peer:<key> scopes name the callee's signer; fuel and time from the "
            "caller's budget; the output's full length",
        ),
        _row(
            "host_sandbox_spawn",
            (I32, I32),
            I64,
            C.SPAWN_SANDBOX,
            "(nptr, nlen): start a sandbox of dependency n (as host_spirit_call would); a "
            "handle, valid only in this sandbox, closed with it",
        ),
        _row(
            "host_sandbox_call",
            (I64, I32, I32, I32, I32, I32, I32),
            I64,
            None,
            "(handle, fptr, flen, iptr, ilen, optr, ocap): call export f of the spawned "
            "sandbox (its state kept between calls); as host_spirit_call",
            "sandbox",
        ),
        _row(
            "host_sandbox_close",
            (I64,),
            I32,
            None,
            "(handle): close a spawned sandbox (its receipt stays nested); 0",
            "sandbox",
        ),
    )
}

#: import name -> the capability it needs (None: none of its own). Derived from :data:`ABI`.
IMPORT_CAPABILITIES: dict[str, Capability | None] = {n: r.capability for n, r in ABI.items()}


def format_signature(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def host_calls_of(capability: Capability) -> list[str]:
    """The host functions that ``capability`` guards, in table order."""
    return [name for name, row in ABI.items() if row.capability is capability]
