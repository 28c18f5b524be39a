"""The one boundary where wasmtime's errors become vudo errors.

wasmtime-py raises two unrelated roots: :class:`wasmtime.Trap` (a guest trap with an
optional :class:`wasmtime.TrapCode`) and :class:`wasmtime.WasmtimeError` (everything else:
compile and link errors, store-limit failures, and the errors our own epoch callback and
host functions return to stop a guest). :func:`translate` maps both; every ``TrapCode``
member has an entry in :data:`TRAP_CODES` (a test checks the table is complete, so a new
wasmtime trap code cannot slip through unmapped).

WAT text is parsed here too (:func:`parse_wat`), so no other layer handles wasmtime's
exceptions: ``vudo run FILE.wat``, ``vudo build`` and ``Engine.load`` all go through it.

Our own stops are tagged: the engine stops a guest by returning an error whose message
starts with ``vudo-stop:<kind>:`` (see :func:`stop_message`), and :func:`translate` turns
the kind back into the right error class with our message, not wasmtime's backtrace.
"""

from __future__ import annotations

import re

import wasmtime

from vudo.errors import (
    FuelExhausted,
    GuestTrap,
    ModuleError,
    ResourceLimitExceeded,
    RuntimeFailure,
    TimeoutExceeded,
    VudoError,
)

TC = wasmtime.TrapCode


class Terminated(RuntimeFailure):
    """The sandbox was terminated (from another thread, or by its owner) during a call."""

    title = "terminated"


class ProcessExit(RuntimeFailure):
    """A WASI program called ``proc_exit(code)``: the run ended on purpose.

    Not a failure of the sandbox: the run's outcome is ``"exit"`` and ``vudo run``
    exits with ``code`` (a program's own status passes through, as with the wasmtime
    CLI). Only a non-zero code is raised to the caller; ``proc_exit(0)`` returns.
    """

    title = "exited"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.code = int(message) if message.isdigit() else 1
        super().__init__(f"the program exited with status {self.code}", hint=hint)
        self.exit_code = self.code  # type: ignore[misc]  # the program's own status


#: Every wasmtime trap code and the error it becomes. Anything the guest did wrong is a
#: GuestTrap; running out of fuel, being interrupted and asking for an impossible
#: allocation are budget and limit failures.
TRAP_CODES: dict[wasmtime.TrapCode, type[RuntimeFailure]] = {
    TC.OUT_OF_FUEL: FuelExhausted,
    TC.INTERRUPT: TimeoutExceeded,
    TC.ALLOCATION_TOO_LARGE: ResourceLimitExceeded,
    TC.STACK_OVERFLOW: GuestTrap,
    TC.MEMORY_OUT_OF_BOUNDS: GuestTrap,
    TC.HEAP_MISALIGNED: GuestTrap,
    TC.TABLE_OUT_OF_BOUNDS: GuestTrap,
    TC.INDIRECT_CALL_TO_NULL: GuestTrap,
    TC.BAD_SIGNATURE: GuestTrap,
    TC.INTEGER_OVERFLOW: GuestTrap,
    TC.INTEGER_DIVISION_BY_ZERO: GuestTrap,
    TC.BAD_CONVERSION_TO_INTEGER: GuestTrap,
    TC.UNREACHABLE: GuestTrap,
    TC.ATOMIC_WAIT_NON_SHARED_MEMORY: GuestTrap,
    TC.NULL_REFERENCE: GuestTrap,
    TC.ARRAY_OUT_OF_BOUNDS: GuestTrap,
    TC.CAST_FAILURE: GuestTrap,
    TC.CANNOT_ENTER_COMPONENT: GuestTrap,
    TC.NO_ASYNC_RESULT: GuestTrap,
    TC.UNHANDLED_TAG: GuestTrap,
    TC.CONTINUATION_ALREADY_CONSUMED: GuestTrap,
    TC.DISABLED_OPCODE: GuestTrap,
    TC.ASYNC_DEADLOCK: GuestTrap,
    TC.CANNOT_LEAVE_COMPONENT: GuestTrap,
    TC.CANNOT_BLOCK_SYNC_TASK: GuestTrap,
    TC.INVALID_CHAR: GuestTrap,
    TC.DEBUG_ASSERT_STRING_ENCODING_FINISHED: GuestTrap,
    TC.DEBUG_ASSERT_EQUAL_CODE_UNITS: GuestTrap,
    TC.DEBUG_ASSERT_POINTER_ALIGNED: GuestTrap,
    TC.DEBUG_ASSERT_UPPER_BITS_UNSET: GuestTrap,
    TC.STRING_OUT_OF_BOUNDS: GuestTrap,
    TC.LIST_OUT_OF_BOUNDS: GuestTrap,
    TC.INVALID_DISCRIMINANT: GuestTrap,
    TC.UNALIGNED_POINTER: GuestTrap,
    TC.TASK_CANCEL_NOT_CANCELLED: GuestTrap,
    TC.TASK_CANCEL_OR_RETURN_TWICE: GuestTrap,
    TC.SUBTASK_CANCEL_AFTER_TERMINAL: GuestTrap,
    TC.TASK_RETURN_INVALID: GuestTrap,
    TC.WAITABLE_SET_DROP_HAS_WAITERS: GuestTrap,
    TC.SUBTASK_DROP_NOT_RESOLVED: GuestTrap,
    TC.THREAD_NEW_INDIRECT_INVALID_TYPE: GuestTrap,
    TC.THREAD_NEW_INDIRECT_UNINITIALIZED: GuestTrap,
    TC.BACKPRESSURE_OVERFLOW: GuestTrap,
    TC.UNSUPPORTED_CALLBACK_CODE: GuestTrap,
    TC.CANNOT_RESUME_THREAD: GuestTrap,
    TC.CONCURRENT_FUTURE_STREAM_OP: GuestTrap,
    TC.REFERENCE_COUNT_OVERFLOW: GuestTrap,
    TC.STREAM_OP_TOO_BIG: GuestTrap,
    TC.WAITABLE_SYNC_AND_ASYNC: GuestTrap,
    TC.UNCAUGHT_EXCEPTION: GuestTrap,
}

#: The kinds of stop the engine itself requests, and the error each becomes.
STOP_KINDS: dict[str, type[RuntimeFailure]] = {
    "timeout": TimeoutExceeded,
    "fuel": FuelExhausted,
    "limit": ResourceLimitExceeded,
    "terminated": Terminated,
    "exit": ProcessExit,
    "trap": GuestTrap,
}

_STOP = re.compile(r"vudo-stop:(\w+):([^\n]*)")

#: Messages from wasmtime's store limiter and instantiation that mean a limit was hit.
_LIMIT_HINTS = (
    "exceeds memory limits",
    "memory limit",
    "table limit",
    "exceeds table limits",
    "resource limit exceeded",
    "instance limit",
    "count of instances",
    "count of tables",
    "count of memories",
    "maximum number of",
    "cannot grow",
)

_HINTS: dict[type[VudoError], str] = {
    FuelExhausted: "raise the budget with --fuel, or refuel the sandbox and call again",
    TimeoutExceeded: "raise the limit with --timeout, or look for an endless loop",
    ResourceLimitExceeded: "raise the limit (e.g. --memory) or make the Spirit use less",
    GuestTrap: "the Spirit has a bug; the trap message says where",
    Terminated: "the sandbox was terminated while the call ran",
}


def _limit_hint(message: str) -> str:
    """The hint for one limit: --memory helps only with linear memory."""
    lowered = message.lower()
    if "-byte limit" in lowered:  # a host call's payload (vudo.engine.host.payload_limit)
        return "one host call may carry at most that many bytes: split the data over several calls"
    if "table" in lowered:
        return "declare smaller tables in the module (table elements are limited)"
    if (
        "instance" in lowered
        or "count of" in lowered
        or "count too high" in lowered
        or "maximum number" in lowered
    ):
        return "the module declares more instances, tables or memories than allowed"
    return _HINTS[ResourceLimitExceeded]


def stop_message(kind: str, message: str) -> bytes:
    """The error text that stops a guest and comes back as ``STOP_KINDS[kind]``."""
    if kind not in STOP_KINDS:
        raise ValueError(f"unknown stop kind {kind!r}")
    return f"vudo-stop:{kind}:{message}".encode()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("error while executing"):
            return line
    return text.strip() or "unknown error"


def _cause(text: str) -> str:
    """wasmtime puts the real reason after "Caused by:"; fall back to the first line.

    A numbered chain ("0: WebAssembly translation error", "1: Invalid input ... type
    mismatch") ends with the innermost, most specific cause: that one is kept.
    """
    if "Caused by:" in text:
        causes = text.split("Caused by:", 1)[1]
        chain = _CHAIN.findall(causes)
        return chain[-1].strip() if chain else _first_line(causes)
    return _first_line(text)


_CHAIN = re.compile(r"^\s*\d+: (.+)$", re.MULTILINE)


def translate(exc: wasmtime.Trap | wasmtime.WasmtimeError, *, during: str = "run") -> VudoError:
    """Map one wasmtime exception to the vudo error the user sees.

    ``during`` is ``"parse"`` (WAT text), ``"compile"``, ``"instantiate"`` or ``"run"``;
    a non-trap WasmtimeError while parsing or compiling is a ModuleError, while running it
    is a GuestTrap unless it carries one of our stop tags or a store-limit message.
    """
    text = str(exc)
    stop = _STOP.search(text)
    if stop:
        cls: type[VudoError] = STOP_KINDS.get(stop.group(1), GuestTrap)
        message = stop.group(2).strip()
        return cls(
            message, hint=_limit_hint(message) if cls is ResourceLimitExceeded else _HINTS.get(cls)
        )
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        cls = TRAP_CODES.get(code, GuestTrap) if code is not None else GuestTrap
        # The outcome (the class title) is shown next to the message by `vudo test`,
        # the receipt and the TUI, so the budget messages do not repeat it.
        if cls is FuelExhausted:
            return cls("all fuel used", hint=_HINTS[cls])
        if cls is TimeoutExceeded:
            return cls("interrupted at its deadline", hint=_HINTS[cls])
        return cls(f"{cls.title}: {_cause(text)}", hint=_HINTS.get(cls))
    lowered = text.lower()
    if any(hint in lowered for hint in _LIMIT_HINTS):
        cause = _cause(text)
        if cause.lower().startswith("resource limit exceeded: "):
            cause = cause[len("resource limit exceeded: ") :]
        return ResourceLimitExceeded(f"resource limit exceeded: {cause}", hint=_limit_hint(cause))
    if during == "parse":
        return ModuleError(
            f"not a valid WebAssembly text module: {_first_line(text)}",
            hint="pass a .wasm file or valid .wat source",
        )
    if during == "compile":
        return ModuleError(
            f"not a valid WebAssembly module: {_cause(text)}",
            hint="check that the file is a .wasm or .wat Spirit",
        )
    if during == "instantiate" and "support is disabled" in text.lower():
        # e.g. shared memory: the module needs a feature this engine leaves off; that is
        # not a bug the Spirit hit while running.
        return ModuleError(
            f"uses a WebAssembly feature vudo does not enable: {_cause(text)}",
            hint="build the Spirit without it (e.g. no threads or shared memory)",
        )
    if during == "instantiate":
        return GuestTrap(f"instantiation failed: {_cause(text)}", hint=_HINTS[GuestTrap])
    return GuestTrap(f"guest trapped: {_cause(text)}", hint=_HINTS[GuestTrap])


class WatError(ModuleError):
    """WAT source wasmtime could not parse. ``output`` is wasmtime's whole message (the
    offending line with a caret under it), for ``vudo build`` to show in full."""

    def __init__(self, message: str, *, output: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.output = output


_WAT_AT = re.compile(r"--> [^:\n]*:(\d+):(\d+)")


def parse_wat(text: str, filename: str | None = None) -> bytes:
    """WAT text to a wasm binary; :class:`WatError` naming ``filename:line:col`` and
    keeping wasmtime's message (one ``error:``, not two), or, for text that came from no
    file, saying it is not a valid text module."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raw = str(exc)
        first = _first_line(raw)
        if filename is None:
            raise WatError(
                f"not a valid WebAssembly text module: {first}",
                output=raw,
                hint="pass a .wasm file or valid .wat source",
            ) from None
        where = _WAT_AT.search(raw)
        loc = f"{filename}:{where.group(1)}:{where.group(2)}" if where else filename
        raise WatError(
            f"{loc}: {first}", output=raw.replace("<anon>", filename), hint="fix the WAT source"
        ) from None
