"""The host functions of the Spirit ABI: glue between guest memory and the services.

Every row of the ABI table (:data:`vudo.engine.abi.ABI`) is implemented here as a method
of :class:`HostBridge` of the same name, one bridge per sandbox. Each call, in this order:

1. charges fuel for the call (``host_call_fuel``), so even a denied call costs something;
2. checks the capability with the sandbox's :class:`~vudo.engine.grants.GrantChecker`
   (denied -> ``CAPABILITY_DENIED``);
3. bounds-checks every guest pointer and length against the current linear memory
   (out of range -> ``INVALID_MEMORY``; never an exception into the guest);
4. enforces the per-call payload limit on an in-bounds payload (over -> the run stops
   with ResourceLimitExceeded);
5. charges fuel per payload byte (``host_byte_fuel``);
6. calls the service, which signals failure with ``HostCallError(code)``;
7. records the call: per-capability allowed/denied counters and bytes in/out (always),
   a compact entry in the host-call log, and a :class:`~vudo.engine.events.HostCall`
   event (only built when someone subscribes).

Speed matters: a host call is on the guest's hot path. The bridge is linked with
wasmtime's *unchecked* function API (raw argument words read into a tuple of ints, no
``Val`` marshalling: see :func:`make_trampoline`), reads memory through a raw data
pointer and :data:`_bytes_at`, and charges fuel with two direct FFI calls whose
ctypes arguments are made once per sandbox. See ``benches/engine.py`` for the numbers.

A host function stops the guest (instead of returning a code) only when the *engine*
must: fuel ran out while charging, a payload limit was hit, or the sandbox was terminated.
It does so by returning a wasm trap tagged with :func:`vudo.engine.traps.stop_message`.
"""

from __future__ import annotations

import ctypes
import operator
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

import wasmtime
from wasmtime import _bindings as ffi
from wasmtime import _ffi as _wasmtime_ffi

from vudo.capabilities import AnyCapability, Capability
from vudo.engine.abi import ABI, HOST_MODULE, ErrorCode, HostCallError, StopGuest
from vudo.engine.compose import Calls, dependency_name, export_name
from vudo.engine.custom import NO_CAPABILITY_COUNTER, HostContext, HostFunction, fits
from vudo.engine.events import (
    LEVEL_NAMES,
    EventStream,
    HostCall,
    LogMessage,
    Notification,
    OutputWritten,
)
from vudo.engine.identity import credit_account
from vudo.engine.runio import OUTPUT, RunIO
from vudo.engine.traps import stop_message
from vudo.engine.wasi_abi import WASI_SIGNATURES
from vudo.errors import printable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from vudo.engine.config import Limits

_OK = int(ErrorCode.OK)
_DENIED = int(ErrorCode.CAPABILITY_DENIED)
_BAD_MEMORY = int(ErrorCode.INVALID_MEMORY)

_BAD_PARAM = int(ErrorCode.INVALID_PARAMETER)
_STORAGE_ERROR = int(ErrorCode.STORAGE_ERROR)
_CREDIT_ERROR = int(ErrorCode.CREDIT_ERROR)
_INTERNAL = int(ErrorCode.INTERNAL_ERROR)
_NOT_FOUND = int(ErrorCode.NOT_FOUND)
_QUOTA = int(ErrorCode.QUOTA_EXCEEDED)

_U32 = 0xFFFFFFFF
ACCOUNT_BYTES = 32

# Private FFI prototypes with pointer-sized integer results (wasmtime-py's own wrappers
# return ctypes pointers, which cost an allocation and an addressof per call).
#
# They release the GIL (CFUNCTYPE, CDLL), although keeping it would make each call about
# a quarter cheaper: while a guest runs, its host calls are where another Python thread
# (the workbench's UI, which watches the run) gets its turn. Kept through all of them,
# the UI thread fell far behind a live run (tests/tui: a suspend/resume run then timed
# out). The fuel read and write below are the exception: they keep it.
_dll: Any = ffi.__dict__["dll"]
#: The same library through ``PyDLL``: calls keep the GIL. For FFI calls that return at
#: once and never call back (the sandbox's once-per-call ones, the fuel counter's).
DLL_WITH_GIL = ctypes.PyDLL(_dll._name, handle=_dll._handle)
_memory_data = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
    ("wasmtime_memory_data", _dll)
)
_memory_size = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p)(
    ("wasmtime_memory_data_size", _dll)
)
# The out-parameter is a plain pointer (a ``byref`` or an address), not
# ``POINTER(c_uint64)``: ctypes converts that type-checked argument at twice the cost, and
# the fuel is read on every host call.
_get_fuel = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(
    ("wasmtime_context_get_fuel", _dll)
)
_set_fuel = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)(
    ("wasmtime_context_set_fuel", _dll)
)
# The store's fuel is read and written on every host call. These two take ctypes
# arguments made once per sandbox (the context as a ``c_void_p``, the ``c_uint64`` box
# by reference to read into and by value to write from): no per-call conversion, a third
# cheaper than the prototypes above. Both return an error only without fuel metering.
# They only read or store a counter, so they are called through a ``PyDLL`` view of the
# same library, which keeps the GIL: releasing and taking it back around a call that
# short cost more than the call itself.
_fuel_read = DLL_WITH_GIL["wasmtime_context_get_fuel"]
_fuel_read.restype = None
_fuel_write = DLL_WITH_GIL["wasmtime_context_set_fuel"]
_fuel_write.restype = None
#: ``ctypes.string_at(address, length)`` without its Python wrapper (one frame less per
#: guest read): the bytes at a (non-null) host address, copied into a new ``bytes``.
_bytes_at = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
    ("PyBytes_FromStringAndSize", ctypes.pythonapi)
)
_trap_new = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)(
    ("wasmtime_trap_new", _dll)
)

_monotonic = time.monotonic
_NULL_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_EXTERN_MEMORY: int = _wasmtime_ffi.__dict__["WASMTIME_EXTERN_MEMORY"].value


#: The receipt's ``host_calls`` key of each host function (its row's ``counter``).
_COUNTERS: dict[str, str] = {name: row.counter for name, row in ABI.items()}
#: The receipt's ``host_calls`` key of the WASI calls that need no capability (stdio,
#: args, fds the guest holds, exit); no capability is named "wasi".
WASI_CALLS = "wasi"
_COUNTERS.update(dict.fromkeys(WASI_SIGNATURES, WASI_CALLS))


def trap_address(kind: str, message: str) -> int:
    """A fresh wasm trap carrying our stop tag, as the address a host callback returns."""
    text = stop_message(kind, message)
    return int(_trap_new(text, len(text)) or 0)


class HostBridge:
    """Per-sandbox state every host function needs, and the functions themselves.

    The sandbox binds its context and memory (:meth:`bind_context`, :meth:`bind_memory`)
    at instantiation. The ``counters`` dict maps capability name (``"network"`` for the
    network handle calls, which need no capability of their own) to a two-item list
    ``[allowed, denied]``; the receipt reads it.

    Slotted: a bridge has more attributes than CPython 3.11 keeps inline in an instance
    (30), past which every bridge would build a dict of its own at creation and each
    attribute read on the host-call path would go through it.
    """

    __slots__ = (
        "_caller_memory",
        "_context",
        "_fuel",
        "_fuel_ref",
        "_names",
        "byte_fuel",
        "bytes_in",
        "bytes_out",
        "call_fuel",
        "calls",
        "checker",
        "clock",
        "context",
        "context_arg",
        "counters",
        "deadline",
        "depth",
        "env",
        "events",
        "fuel_floor",
        "fuel_hook",
        "identity",
        "interrupt",
        "io",
        "known_size",
        "ledger",
        "limits",
        "log",
        "log_to_stderr",
        "memory_base",
        "memory_ref",
        "min_log_level",
        "namespace",
        "network",
        "note",
        "origin",
        "peak_memory",
        "random",
        "sandbox_id",
        "services",
        "stderr",
        "wasi",
    )

    def __init__(
        self,
        *,
        sandbox_id: str,
        checker: Any,
        events: EventStream,
        limits: Limits,
        services: Any,
        identity: str,
        namespace: str,
        host_call_fuel: int,
        host_byte_fuel: int,
        log_to_stderr: bool,
        min_log_level: int,
        clock_origin: float,
        deadline: Callable[[], float | None],
        network: Any = None,
        ledger: Any = None,
        stderr: TextIO | None = None,
        depth: int = 0,
        io: RunIO | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.sandbox_id = sandbox_id
        #: How deep this sandbox is on a call chain (0: top level; see vudo.engine.compose).
        self.depth = depth
        #: The sandbox's callees (a vudo.engine.compose.Calls), when it has dependencies.
        self.calls: Calls | None = None
        self._names: dict[tuple[str, bytes], str] = {}
        self.checker = checker
        self.events = events
        self.limits = limits
        self.services = services
        self.identity = identity
        self.namespace = namespace
        self.call_fuel = host_call_fuel
        self.byte_fuel = host_byte_fuel
        self.log_to_stderr = log_to_stderr
        self.min_log_level = min_log_level
        self.origin = clock_origin
        self.deadline = deadline
        self.network = network
        self.ledger = ledger
        self.stderr = stderr
        self.io = io if io is not None else RunIO(max_output=limits.max_output_bytes)
        self.env: Mapping[str, str] = env if env is not None else {}
        self.context: int = 0
        #: The same address as a ctypes argument, for the per-call fuel calls.
        self.context_arg = ctypes.c_void_p(0)
        #: Fuel in the store that is not the guest's (a live call's hidden reserve).
        self.fuel_floor = 0
        #: Set during a live call: charges fuel itself, waiting for a refuel if short.
        self.fuel_hook: Callable[[int], None] | None = None
        #: The sandbox's WASI world (:class:`vudo.engine.wasi.WasiState`), set by the
        #: sandbox before instantiation.
        self.wasi: Any = None
        #: The address of the guest memory's ``wasmtime_memory_t`` (None: no memory).
        self.memory_ref: Any = None
        #: Its base address: asked once, as the memory never moves (see bind_memory).
        self.memory_base = 0
        #: The guest memory's size when last asked (it only grows): see _address.
        self.known_size = 0
        self._caller_memory: Any = None  # keeps the extern bind_caller_memory points into
        self._context: HostContext | None = None  # for the application's host functions
        self.counters: dict[str, list[int]] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self.peak_memory = 0
        self.log: deque[tuple[float, str, bool, int, int, str]] = deque(maxlen=1024)
        self.note = ""
        #: A KeyboardInterrupt or SystemExit caught inside a C callback (where it cannot
        #: propagate); the sandbox stops the guest and re-raises it when the call returns.
        self.interrupt: BaseException | None = None
        self._fuel = ctypes.c_uint64(0)
        self._fuel_ref = ctypes.byref(self._fuel)
        clock = getattr(services, "clock", None)
        self.clock: Callable[[], int] = clock if clock is not None else time.time_ns
        random = getattr(services, "random", None)
        self.random: Callable[[int], bytes] = random if random is not None else os.urandom

    # -- plumbing ----------------------------------------------------------------------

    def _internal_error(self, name: str, exc: Exception) -> int:
        """A bug or unexpected service failure: INTERNAL_ERROR to the guest, logged."""
        self.note = f"internal error: {exc}"
        row = ABI.get(name)
        self.record(name, row.capability if row is not None else None, True, "", _INTERNAL, 0)
        return _INTERNAL

    def bind_context(self, address: int) -> None:
        """Use the store context at ``address`` (the sandbox's, once it has a store)."""
        self.context = address
        self.context_arg = ctypes.c_void_p(address)

    def fuel_left(self) -> int:
        """The fuel left in the guest's store right now."""
        _fuel_read(self.context_arg, self._fuel_ref)
        return max(self._fuel.value - self.fuel_floor, 0)

    def charge(self, amount: int) -> None:
        """Take ``amount`` fuel from the guest's store; stop the guest if there is not enough
        (in a live call, wait for a refuel instead)."""
        hook = self.fuel_hook
        if hook is not None:
            hook(amount)
            return
        box = self._fuel
        _fuel_read(self.context_arg, self._fuel_ref)
        if box.value < amount:
            box.value = 0
            _fuel_write(self.context_arg, box)
            raise StopGuest("fuel", "fuel ran out in a host call")
        box.value -= amount
        _fuel_write(self.context_arg, box)

    def hold(self, amount: int) -> int:
        """:meth:`charge` in two halves, for a host call that may charge twice: stop the
        guest unless ``amount`` is there, and return what is left after it, written back
        by :meth:`commit` (with any second charge) on every way out: one read and one
        write of the store's fuel per call. -1 in a live call (its hook charged)."""
        hook = self.fuel_hook
        if hook is not None:
            hook(amount)
            return -1
        _fuel_read(self.context_arg, self._fuel_ref)
        left = self._fuel.value - amount
        if left < 0:
            _set_fuel(self.context, 0)
            raise StopGuest("fuel", "fuel ran out in a host call")
        return left

    def commit(self, left: int, more: int = 0) -> None:
        """Write back what :meth:`hold` left, less ``more`` (stop the guest if short)."""
        if left < 0:
            hook = self.fuel_hook
            if more and hook is not None:
                hook(more)
            return
        if left < more:
            _set_fuel(self.context, 0)
            raise StopGuest("fuel", "fuel ran out in a host call")
        box = self._fuel
        box.value = left - more
        _fuel_write(self.context_arg, box)

    def check(self, capability: AnyCapability, target: str | None = None) -> bool:
        """Ask the grant checker; a denial's reason goes into the next host-call event."""
        checker = self.checker
        if checker is None:
            self.note = "no grant checker"
            return False
        decision = checker.check(capability, target)
        if decision.allowed:
            return True
        self.note = decision.reason
        return False

    def record(
        self,
        function: str,
        capability: AnyCapability | None,
        allowed: bool,
        args: str | Callable[[], str],
        result: int,
        fuel: int,
    ) -> int:
        """Count and log one host call; returns ``result`` for the caller's convenience."""
        # A capability is a str equal to its value, so it finds its counter's key without
        # the (slow) enum ``.value``; only the first call of each kind builds the key.
        key = (
            capability if capability is not None else _COUNTERS.get(function, NO_CAPABILITY_COUNTER)
        )
        counter = self.counters.get(key)
        if counter is None:
            if capability is not None:
                key = capability.value
            counter = self.counters[key] = [0, 0]
        counter[0 if allowed else 1] += 1
        at = _monotonic() - self.origin
        note = self.note
        if note:
            self.note = ""
        self.log.append((at, function, allowed, result, fuel, note))
        if self.events.active:
            summary = args() if callable(args) else args
            if note:
                summary = f"{summary} ({note})" if summary else note
            self.events.emit(
                HostCall(
                    self.sandbox_id,
                    function,
                    capability,
                    allowed,
                    summary,
                    result,
                    fuel,
                    at,
                    note,
                    self.depth,
                )
            )
        return result

    def refused(
        self,
        function: str,
        capability: AnyCapability | None,
        args: str,
        exc: HostCallError,
        fuel: int,
    ) -> int:
        """Record a call the service refused; its error code is what the guest gets back.

        The refusal's detail goes into the host-call event, so the log says why.
        """
        self.note = exc.detail
        return self.record(function, capability, True, args, int(exc.code), fuel)

    def bind_caller_memory(self, caller: Any) -> None:
        """Bind the calling instance's ``memory`` export before the sandbox does.

        The sandbox binds memory once instantiation returns, but a start function runs
        inside instantiation: its host calls look the export up through their caller
        (only while nothing is bound, so later calls pay one ``is None`` test).
        """
        item: Any = ffi.wasmtime_extern_t()
        if (
            ffi._wasmtime_caller_export_get(
                ctypes.cast(caller, ctypes.POINTER(ffi.wasmtime_caller_t)),
                b"memory",
                6,
                ctypes.byref(item),
            )
            and item.kind == _EXTERN_MEMORY
        ):
            self._caller_memory = item
            self.bind_memory(ctypes.addressof(item.of.memory))

    def bind_memory(self, ref: int | None) -> None:
        """Use the guest memory whose ``wasmtime_memory_t`` is at ``ref`` (None: none).

        Its base address is asked here, once: the engine's memory never moves (it grows
        in place, ``memory_may_move`` off, see :mod:`vudo.engine.compiler`), so every
        host call reads guest memory with no FFI call for the address.
        """
        self.memory_ref = ref
        self.known_size = 0
        self.memory_base = 0 if ref is None else int(_memory_data(self.context, ref) or 0)
        if ref is not None:
            self.memory_size()

    def memory_bounds(self) -> tuple[int, int]:
        """(base address, size in bytes) of the guest's linear memory right now; (0, 0)
        without one."""
        return self.memory_base, self.memory_size()

    def memory_size(self) -> int:
        """The guest's linear memory size in bytes right now (0 without one), noted as
        the size last seen and, past it, the peak."""
        ref = self.memory_ref
        if ref is None:
            return 0
        size: int = _memory_size(self.context, ref)
        self.known_size = size
        if size > self.peak_memory:
            self.peak_memory = size
        return size

    def _address(self, ptr: int, length: int) -> int | None:
        """Host address of guest range [ptr, ptr+length) (already masked), or None.

        Linear memory never shrinks, so a range inside the size last seen is inside now:
        only a range past it asks for the size again. Nor does it move: the base is the
        one :meth:`bind_memory` asked for.
        """
        if self.memory_ref is None:
            return None
        end = ptr + length
        if end > self.known_size and end > self.memory_size():
            return None
        base = self.memory_base
        return base + ptr if base else None

    def read(self, ptr: int, length: int) -> bytes | None:
        """Guest bytes [ptr, ptr+length), or None when out of range."""
        length &= _U32
        address = self._address(ptr & _U32, length)
        return None if address is None else _bytes_at(address, length)

    def writable(self, ptr: int, length: int) -> int | None:
        """Host address of guest range [ptr, ptr+length), or None when out of range."""
        return self._address(ptr & _U32, length & _U32)

    def payload_limit(self, ptr: int, length: int, limit: int, what: str) -> None:
        """Stop the guest when the in-bounds payload [ptr, ptr+length) is over ``limit``.

        A range outside guest memory is a bad argument, not a big payload: it is left to
        the bounds check, which returns INVALID_MEMORY (a length of -1 is 4 GiB here).
        """
        length &= _U32
        if length > limit and (ptr & _U32) + length <= self.memory_size():
            raise StopGuest("limit", f"{what} of {length} bytes is over the {limit}-byte limit")

    def _service(self, name: str, code: int) -> Any:
        service = getattr(self.services, name, None) if self.services is not None else None
        if service is None:
            raise HostCallError(ErrorCode(code), f"no {name} service configured")
        return service

    # -- time, random, log -------------------------------------------------------------

    def host_time_now(self, args: Any) -> int:
        cap = Capability.SENSOR_TIME
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record("host_time_now", cap, False, "", _DENIED, fuel)
        return self.record("host_time_now", cap, True, "", int(self.clock()), fuel)

    def host_random_bytes(self, args: Any) -> int:
        cap = Capability.SENSOR_RANDOM
        name = "host_random_bytes"
        ptr = args[0] & _U32
        length = args[1] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"len={length}", _DENIED, fuel)
        self.payload_limit(ptr, length, self.limits.max_random_bytes, "random request")
        address = self.writable(ptr, length)
        if address is None:
            return self.record(name, cap, True, f"ptr={ptr} len={length}", _BAD_MEMORY, fuel)
        extra = length * self.byte_fuel
        self.charge(extra)
        data = self.random(length)
        ctypes.memmove(address, data, length)
        self.bytes_in += length
        return self.record(name, cap, True, f"len={length}", _OK, fuel + extra)

    def host_log(self, args: Any) -> int:
        cap = Capability.ACTUATOR_LOG
        level = args[0]
        ptr = args[1] & _U32
        length = args[2] & _U32
        fuel = self.call_fuel
        left = self.hold(fuel)  # every way out commits it
        if not self.check(cap):
            self.commit(left)
            return self.record("host_log", cap, False, f"level={level} len={length}", _DENIED, fuel)
        if level < 0 or level > 4:
            self.commit(left)
            return self.record(
                "host_log", cap, True, f"level={level} len={length}", _BAD_PARAM, fuel
            )
        if length > self.limits.max_log_bytes:
            self.commit(left)
            self.payload_limit(ptr, length, self.limits.max_log_bytes, "log message")
            left = self.hold(0)
        address = self._address(ptr, length)
        if address is None:
            self.commit(left)
            return self.record("host_log", cap, True, f"ptr={ptr} len={length}", _BAD_MEMORY, fuel)
        raw = _bytes_at(address, length)
        extra = length * self.byte_fuel
        self.commit(left, extra)
        try:
            message = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.record(
                "host_log", cap, True, f"level={level} invalid UTF-8", _BAD_PARAM, fuel + extra
            )
        self.bytes_out += length
        if level >= self.min_log_level:
            if self.events.active:
                at = time.monotonic() - self.origin
                self.events.emit(LogMessage(self.sandbox_id, level, message, at))
            if self.log_to_stderr:
                self._say(LEVEL_NAMES[level], message)
        return self.record(
            "host_log", cap, True, lambda: f"level={level} len={length}", _OK, fuel + extra
        )

    def _say(self, tag: str, message: str) -> None:
        """One escaped line on stderr (``log_to_stderr``): a guest's escape sequences must
        not recolour, retitle or clear the terminal, and a newline must not print a line
        that looks like vudo's own ("error: ..."). Events keep the text as sent."""
        stream = self.stderr if self.stderr is not None else sys.stderr
        line = printable(message.replace("\n", "\\n").replace("\r", "\\r"))
        stream.write(f"[{tag}] {line}\n")

    # -- plugin I/O: input, output, environment, notifications --------------------------

    def host_input_len(self, args: Any) -> int:
        fuel = self.call_fuel
        self.charge(fuel)
        return self.record("host_input_len", None, True, "", len(self.io.input), fuel)

    def host_input_read(self, args: Any) -> int:
        name = "host_input_read"
        ptr = args[0] & _U32
        length = args[1] & _U32
        offset = args[2]
        fuel = self.call_fuel
        left = self.hold(fuel)  # one read and one write of the store's fuel
        if offset < 0:
            self.commit(left)
            return self.record(name, None, True, f"len={length} offset={offset}", _BAD_PARAM, fuel)
        address = self._address(ptr, length)
        if address is None:
            self.commit(left)
            summary = f"ptr={ptr} len={length} offset={offset}"
            return self.record(name, None, True, summary, _BAD_MEMORY, fuel)
        io = self.io
        copied = max(0, min(length, len(io.input) - offset))
        extra = copied * self.byte_fuel
        self.commit(left, extra)
        if copied:  # [ptr, ptr+copied) is inside [ptr, ptr+length), checked above
            ctypes.memmove(address, io.read(offset, copied), copied)
            self.bytes_in += copied
        # the summary is only read by an event (record): none is built when nobody listens
        summary = f"len={length} offset={offset}" if self.events.active else ""
        return self.record(name, None, True, summary, copied, fuel + extra)

    def host_output_write(self, args: Any) -> int:
        name = "host_output_write"
        ptr = args[0] & _U32
        length = args[1] & _U32
        fuel = self.call_fuel
        left = self.hold(fuel)  # one read and one write of the store's fuel
        io = self.io
        address = self._address(ptr, length)  # asks the size only past the last one seen
        if address is None:
            self.commit(left)
            return self.record(name, None, True, f"ptr={ptr} len={length}", _BAD_MEMORY, fuel)
        if length > io.room():
            self.commit(left)
            self.note = f"over the {io.max_output}-byte output limit"
            return self.record(name, None, True, f"len={length}", _QUOTA, fuel)
        extra = length * self.byte_fuel
        self.commit(left, extra)
        data = _bytes_at(address, length)
        io.write(OUTPUT, data)
        self.bytes_out += length
        if self.events.active:
            at = time.monotonic() - self.origin
            self.events.emit(OutputWritten(self.sandbox_id, OUTPUT, data, at))
            return self.record(name, None, True, f"len={length}", _OK, fuel + extra)
        return self.record(name, None, True, "", _OK, fuel + extra)

    def host_env_get(self, args: Any) -> int:
        cap = Capability.SENSOR_ENVIRONMENT
        name = "host_env_get"
        kptr, klen, vptr, vcap = (args[i] & _U32 for i in range(4))
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"klen={klen}", _DENIED, fuel)
        self.payload_limit(kptr, klen, self.limits.max_storage_key, "environment variable name")
        raw = self.read(kptr, klen)
        if raw is None or self.writable(vptr, vcap) is None:
            return self.record(name, cap, True, f"klen={klen}", _BAD_MEMORY, fuel)
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.record(name, cap, True, f"klen={klen} invalid UTF-8", _BAD_PARAM, fuel)
        summary = f"name={key[:32]!r}"
        value = self.env.get(key)
        if value is None:
            return self.record(name, cap, True, summary, _NOT_FOUND, fuel)
        encoded = value.encode("utf-8")
        copied = min(len(encoded), vcap)
        extra = (klen + copied) * self.byte_fuel
        self.charge(extra)
        address = self.writable(vptr, copied)
        if address is None:
            return self.record(name, cap, True, summary, _BAD_MEMORY, fuel)
        ctypes.memmove(address, encoded, copied)
        self.bytes_in += copied
        self.bytes_out += klen
        return self.record(name, cap, True, summary, len(encoded), fuel + extra)

    def host_notify(self, args: Any) -> int:
        cap = Capability.ACTUATOR_NOTIFY
        name = "host_notify"
        level = args[0]
        ptr = args[1] & _U32
        length = args[2] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        summary = f"level={level} len={length}"
        if not self.check(cap):
            return self.record(name, cap, False, summary, _DENIED, fuel)
        if level < 0 or level > 4:
            return self.record(name, cap, True, summary, _BAD_PARAM, fuel)
        self.payload_limit(ptr, length, self.limits.max_notify_bytes, "notification")
        raw = self.read(ptr, length)
        if raw is None:
            return self.record(name, cap, True, f"ptr={ptr} len={length}", _BAD_MEMORY, fuel)
        extra = length * self.byte_fuel
        self.charge(extra)
        try:
            message = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.record(name, cap, True, f"{summary} invalid UTF-8", _BAD_PARAM, fuel)
        self.bytes_out += length
        if self.events.active:
            at = time.monotonic() - self.origin
            self.events.emit(Notification(self.sandbox_id, level, message, at))
        if self.log_to_stderr:
            self._say(f"notify {LEVEL_NAMES[level]}", message)
        return self.record(name, cap, True, summary, _OK, fuel + extra)

    # -- the application's own host functions (vudo.engine.custom) --------------------

    def call_custom(self, fn: HostFunction, values: list[Any]) -> int:
        """One call of an application's host function: charged, checked, called, recorded."""
        label = fn.label
        cap = fn.capability
        fuel = fn.fuel
        self.charge(fuel)
        if cap is not None and not self.check(cap):
            return self.record(label, cap, False, "", _DENIED, fuel)
        ctx = self._context
        if ctx is None:
            ctx = self._context = HostContext(self)
        ctx.fuel = 0
        try:
            result = fn.func(ctx, *values)
        except HostCallError as exc:
            return self.refused(label, cap, "", exc, fuel + ctx.fuel)
        except StopGuest:
            raise
        except Exception as exc:  # the application's bug: the guest gets a code, we go on
            self.note = f"{type(exc).__name__} in {label}: {str(exc)[:200]}"
            return self.record(label, cap, True, "", _INTERNAL, fuel + ctx.fuel)
        if not fits(result, fn.results[0]):
            self.note = f"{label} returned {str(result)[:40]}, not an {fn.results[0]}"
            return self.record(label, cap, True, "", _INTERNAL, fuel + ctx.fuel)
        return self.record(label, cap, True, "", result, fuel + ctx.fuel)

    # -- storage -----------------------------------------------------------------------

    def _key(self, kptr: int, klen: int) -> bytes | None:
        self.payload_limit(kptr, klen, self.limits.max_storage_key, "storage key")
        return self.read(kptr, klen)

    def host_storage_read(self, args: Any) -> int:
        cap = Capability.STORAGE_READ
        name = "host_storage_read"
        kptr, klen, vptr, vcap = (args[i] for i in range(4))
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"klen={klen & _U32}", _DENIED, fuel)
        key = self._key(kptr, klen)
        vcap &= _U32
        if key is None or self.writable(vptr, vcap) is None:
            return self.record(name, cap, True, f"klen={klen & _U32}", _BAD_MEMORY, fuel)
        try:
            value = self._service("storage", _STORAGE_ERROR).read(self.namespace, key)
        except HostCallError as exc:
            return self.refused(name, cap, _summ_key(key), exc, fuel)
        if value is None:
            return self.record(name, cap, True, _summ_key(key), _NOT_FOUND, fuel)
        copied = min(len(value), vcap)
        extra = (len(key) + copied) * self.byte_fuel
        self.charge(extra)
        address = self.writable(vptr, copied)
        if address is None:
            return self.record(name, cap, True, _summ_key(key), _BAD_MEMORY, fuel)
        ctypes.memmove(address, value, copied)
        self.bytes_in += copied
        self.bytes_out += len(key)
        return self.record(name, cap, True, _summ_key(key), len(value), fuel + extra)

    def host_storage_write(self, args: Any) -> int:
        cap = Capability.STORAGE_WRITE
        name = "host_storage_write"
        kptr, klen, vptr, vlen = (args[i] for i in range(4))
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"klen={klen & _U32}", _DENIED, fuel)
        key = self._key(kptr, klen)
        self.payload_limit(vptr, vlen, self.limits.max_storage_value, "storage value")
        value = self.read(vptr, vlen)
        if key is None or value is None:
            return self.record(name, cap, True, f"klen={klen & _U32}", _BAD_MEMORY, fuel)
        extra = (len(key) + len(value)) * self.byte_fuel
        self.charge(extra)
        try:
            self._service("storage", _STORAGE_ERROR).write(self.namespace, key, value)
        except HostCallError as exc:
            return self.refused(name, cap, _summ_key(key), exc, fuel + extra)
        self.bytes_out += len(key) + len(value)
        return self.record(
            name, cap, True, lambda: f"{_summ_key(key)} len={len(value)}", _OK, fuel + extra
        )

    def host_storage_delete(self, args: Any) -> int:
        cap = Capability.STORAGE_DELETE
        name = "host_storage_delete"
        kptr, klen = args[0], args[1]
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"klen={klen & _U32}", _DENIED, fuel)
        key = self._key(kptr, klen)
        if key is None:
            return self.record(name, cap, True, f"klen={klen & _U32}", _BAD_MEMORY, fuel)
        extra = len(key) * self.byte_fuel
        self.charge(extra)
        try:
            deleted = self._service("storage", _STORAGE_ERROR).delete(self.namespace, key)
        except HostCallError as exc:
            return self.refused(name, cap, _summ_key(key), exc, fuel + extra)
        self.bytes_out += len(key)
        return self.record(name, cap, True, _summ_key(key), 1 if deleted else 0, fuel + extra)

    # -- credit ------------------------------------------------------------------------

    def _account(self, ptr: int) -> bytes | None:
        return self.read(ptr, ACCOUNT_BYTES)

    def _credit(
        self, name: str, target: str | None, action: Callable[[Any], int], summary: str
    ) -> int:
        cap = Capability.ACTUATOR_CREDIT
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap, target):
            return self.record(name, cap, False, summary, _DENIED, fuel)
        view = self.ledger
        if view is None:
            return self.record(name, cap, True, summary, _CREDIT_ERROR, fuel)
        try:
            result = action(view)
        except HostCallError as exc:
            return self.refused(name, cap, summary, exc, fuel)
        return self.record(name, cap, True, summary, result, fuel)

    def _account_query(self, query: Literal["balance", "available"], ptr: int) -> int:
        """``host_credit_<query>``: the ledger view's ``query`` of the account at ``ptr``."""
        name = f"host_credit_{query}"
        account = self._account(ptr)
        if account is None:
            return self._bad_memory(name, Capability.ACTUATOR_CREDIT)
        return self._credit(
            name,
            None,
            lambda view: int(getattr(view, query)(account)),
            f"acct={account.hex()[:12]}",
        )

    def host_credit_balance(self, args: Any) -> int:
        return self._account_query("balance", args[0])

    def host_credit_available(self, args: Any) -> int:
        return self._account_query("available", args[0])

    def host_credit_transfer(self, args: Any) -> int:
        source = self._account(args[0])
        dest = self._account(args[1])
        amount = args[2]
        if source is None or dest is None:
            return self._bad_memory("host_credit_transfer", Capability.ACTUATOR_CREDIT)

        def transfer(view: Any) -> int:
            view.transfer(source, dest, amount)
            return _OK

        # The scope is checked against the destination: a peer:<key> grant limits whom
        # the Spirit may pay.
        return self._credit(
            "host_credit_transfer", dest.hex(), transfer, f"to={dest.hex()[:12]} amount={amount}"
        )

    def host_credit_reserve(self, args: Any) -> int:
        account = self._account(args[0])
        amount = args[1]
        if account is None:
            return self._bad_memory("host_credit_reserve", Capability.ACTUATOR_CREDIT)
        return self._credit(
            "host_credit_reserve",
            None,
            lambda view: int(view.reserve(account, amount)),
            f"amount={amount}",
        )

    def _close_reservation(self, how: Literal["release", "consume"], rid: int) -> int:
        """``host_credit_<how>``: release or consume the sandbox's reservation ``rid``."""

        def close(view: Any) -> int:
            getattr(view, how)(rid)
            return _OK

        return self._credit(f"host_credit_{how}", None, close, f"id={rid}")

    def host_credit_release(self, args: Any) -> int:
        return self._close_reservation("release", args[0])

    def host_credit_consume(self, args: Any) -> int:
        return self._close_reservation("consume", args[0])

    def host_credit_account(self, args: Any) -> int:
        """Write the sandbox's own 32-byte account (no capability: it is its own number)."""
        name = "host_credit_account"
        ptr = args[0] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        address = self.writable(ptr, ACCOUNT_BYTES)
        if address is None:
            return self.record(name, None, True, f"ptr={ptr}", _BAD_MEMORY, fuel)
        account = self.ledger.account if self.ledger is not None else credit_account(self.identity)
        ctypes.memmove(address, account, ACCOUNT_BYTES)
        self.bytes_in += ACCOUNT_BYTES
        return self.record(name, None, True, f"acct={account.hex()[:12]}", _OK, fuel)

    def _bad_memory(self, name: str, cap: Capability) -> int:
        fuel = self.call_fuel
        self.charge(fuel)
        allowed = self.check(cap)
        return self.record(
            name, cap, allowed, "bad pointer", _BAD_MEMORY if allowed else _DENIED, fuel
        )

    # -- network -----------------------------------------------------------------------

    def _net(self) -> Any:
        if self.network is None:
            raise HostCallError(ErrorCode.NETWORK_ERROR, "no network service configured")
        return self.network

    def _net_deadline(self) -> float:
        deadline = self.deadline()
        return deadline if deadline is not None else time.monotonic() + 3600.0

    def host_network_connect(self, args: Any) -> int:
        cap = Capability.NETWORK_CONNECT
        name = "host_network_connect"
        aptr, alen = args[0], args[1]
        fuel = self.call_fuel
        self.charge(fuel)
        if (alen & _U32) > 255:
            return self.record(name, cap, False, f"alen={alen & _U32}", _BAD_PARAM, fuel)
        raw = self.read(aptr, alen)
        if raw is None:
            return self.record(name, cap, self.check(cap), "bad pointer", _BAD_MEMORY, fuel)
        try:
            address = raw.decode("ascii")
            normalize = _normalize_address()
            target = normalize(address) if normalize is not None else address
        except (UnicodeDecodeError, HostCallError, ValueError):
            return self.record(name, cap, self.check(cap), repr(raw[:64]), _BAD_PARAM, fuel)
        if not self.check(cap, target):  # before any DNS lookup: a lookup leaks data too
            return self.record(name, cap, False, target, _DENIED, fuel)
        checker = self.checker

        def admit(address: str) -> tuple[bool, str]:
            decision = checker.check_resolved(cap, target, address)
            return decision.allowed, decision.reason

        try:
            handle = int(self._net().connect(target, self._net_deadline(), admit))
        except HostCallError as exc:
            if exc.code is ErrorCode.CAPABILITY_DENIED:  # no resolved address is covered
                self.note = exc.detail
                return self.record(name, cap, False, target, _DENIED, fuel)
            return self.refused(name, cap, target, exc, fuel)
        return self.record(name, cap, True, target, handle, fuel)

    def host_network_listen(self, args: Any) -> int:
        cap = Capability.NETWORK_LISTEN
        name = "host_network_listen"
        port = args[0]
        fuel = self.call_fuel
        self.charge(fuel)
        if not 0 <= port <= 65535:
            return self.record(name, cap, self.check(cap), f"port={port}", _BAD_PARAM, fuel)
        if not self.check(cap, f"127.0.0.1:{port}"):
            return self.record(name, cap, False, f"port={port}", _DENIED, fuel)
        try:
            handle = int(self._net().listen(port))
        except HostCallError as exc:
            return self.refused(name, cap, f"port={port}", exc, fuel)
        return self.record(name, cap, True, f"port={port}", handle, fuel)

    def host_network_accept(self, args: Any) -> int:
        name = "host_network_accept"
        handle = args[0]
        fuel = self.call_fuel
        self.charge(fuel)
        try:
            conn = int(self._net().accept(handle, self._net_deadline()))
        except HostCallError as exc:
            return self.refused(name, None, f"handle={handle}", exc, fuel)
        return self.record(name, None, True, f"handle={handle}", conn, fuel)

    def host_network_send(self, args: Any) -> int:
        name = "host_network_send"
        handle, ptr, length = args[0], args[1], args[2] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        self.payload_limit(ptr, length, self.limits.max_network_payload, "network send")
        data = self.read(ptr, length)
        if data is None:
            return self.record(name, None, True, f"handle={handle}", _BAD_MEMORY, fuel)
        extra = length * self.byte_fuel
        self.charge(extra)
        try:
            sent = int(self._net().send(handle, data, self._net_deadline()))
        except HostCallError as exc:
            return self.refused(name, None, f"handle={handle}", exc, fuel + extra)
        self.bytes_out += sent
        return self.record(name, None, True, f"handle={handle} len={length}", sent, fuel + extra)

    def host_network_recv(self, args: Any) -> int:
        name = "host_network_recv"
        handle, ptr, cap_bytes = args[0], args[1], args[2] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        self.payload_limit(ptr, cap_bytes, self.limits.max_network_payload, "network receive")
        if self.writable(ptr, cap_bytes) is None:
            return self.record(name, None, True, f"handle={handle}", _BAD_MEMORY, fuel)
        try:
            data = self._net().recv(handle, cap_bytes, self._net_deadline())
        except HostCallError as exc:
            return self.refused(name, None, f"handle={handle}", exc, fuel)
        extra = len(data) * self.byte_fuel
        self.charge(extra)
        address = self.writable(ptr, len(data))
        if address is None:
            return self.record(name, None, True, f"handle={handle}", _BAD_MEMORY, fuel)
        ctypes.memmove(address, data, len(data))
        self.bytes_in += len(data)
        return self.record(name, None, True, f"handle={handle}", len(data), fuel + extra)

    def host_network_close(self, args: Any) -> int:
        name = "host_network_close"
        handle = args[0]
        fuel = self.call_fuel
        self.charge(fuel)
        try:
            self._net().close(handle)
        except HostCallError as exc:
            return self.refused(name, None, f"handle={handle}", exc, fuel)
        return self.record(name, None, True, f"handle={handle}", _OK, fuel)

    def host_network_broadcast(self, args: Any) -> int:
        cap = Capability.NETWORK_BROADCAST
        name = "host_network_broadcast"
        ptr, length = args[0], args[1] & _U32
        fuel = self.call_fuel
        self.charge(fuel)
        if not self.check(cap):
            return self.record(name, cap, False, f"len={length}", _DENIED, fuel)
        self.payload_limit(ptr, length, self.limits.max_network_payload, "broadcast message")
        data = self.read(ptr, length)
        if data is None:
            return self.record(name, cap, True, f"len={length}", _BAD_MEMORY, fuel)
        extra = length * self.byte_fuel
        self.charge(extra)
        try:
            count = int(self._net().broadcast(data))
        except HostCallError as exc:
            return self.refused(name, cap, f"len={length}", exc, fuel + extra)
        self.bytes_out += length
        return self.record(name, cap, True, f"len={length}", count, fuel + extra)

    # -- Spirits calling Spirits (vudo.engine.compose) --------------------------------
    #
    # On the hot path of a composed Spirit (benches/compose.py): guest memory is looked up
    # once per call, names are parsed once per distinct spelling, and the fuel of the
    # payload and of the callee is charged in one step after the call.

    def _call_name(self, raw: bytes | int, what: str) -> str | int:
        """A dependency name (``what="dependency"``) or an export name, validated whole
        (and remembered); the error code to return otherwise (``raw`` may be one)."""
        if isinstance(raw, int):
            return raw
        known = self._names.get((what, raw))
        if known is not None:
            return known
        try:
            name = dependency_name(raw) if what == "dependency" else export_name(raw)
        except HostCallError as exc:
            self.note = exc.detail
            return int(exc.code)
        if len(self._names) >= 64:
            self._names.clear()
        self._names[(what, raw)] = name
        return name

    def _span(self, base: int, size: int, ptr: int, length: int, limit: int) -> bytes | int:
        """Guest bytes [ptr, ptr+length) of a memory at ``base`` of ``size`` bytes;
        INVALID_PARAMETER when longer than ``limit``, INVALID_MEMORY when out of range."""
        ptr &= _U32
        length &= _U32
        if length > limit:
            self.note = f"{length} bytes is over the {limit}-byte limit"
            return _BAD_PARAM
        if ptr + length > size or not base:
            return _BAD_MEMORY
        data: bytes = _bytes_at(base + ptr, length)
        return data

    def _call_payload(
        self, args: Any, first: int, base: int, size: int
    ) -> tuple[bytes, int, int] | int:
        """The input bytes at ``args[first:first + 2]`` and the output buffer at
        ``args[first + 2:first + 4]`` of host_spirit_call/host_sandbox_call, checked
        before any callee is touched: (input, optr, ocap), or the error code. Input over
        the input limit stops the guest (a payload limit)."""
        iptr, ilen, optr, ocap = args[first : first + 4]
        length = ilen & _U32
        if length > self.limits.max_input_bytes:
            self.payload_limit(iptr, length, self.limits.max_input_bytes, "call input")
        optr &= _U32
        ocap &= _U32
        data = self._span(base, size, iptr, length, length)
        if isinstance(data, int) or optr + ocap > size:
            return _BAD_MEMORY
        return data, optr, ocap

    def _call_child(
        self,
        name: str,
        cap: Capability | None,
        label: str,
        child: Any,
        function: str,
        payload: tuple[bytes, int, int],
        fuel: int,
        base: int,
    ) -> int:
        """Call ``function`` of the callee sandbox ``child`` with the checked ``payload``
        (the shared end of host_spirit_call and host_sandbox_call). ``base`` is the
        caller's memory: it cannot move while its guest waits in this call."""
        data, optr, ocap = payload
        length = len(data)
        extra = length * self.byte_fuel
        calls = self.calls
        assert calls is not None
        # The caller's fuel now: nothing else takes from it while its guest waits here
        # (the callee runs on its own store), so the call's whole cost is one write back.
        left = self.hold(0)
        budget = (left if left >= 0 else self.fuel_left()) - extra
        try:
            code, output, used = calls.invoke(child, function, data, budget)
        except HostCallError as exc:  # invoke charged what the callee used
            return self.refused(name, cap, label, exc, fuel)
        copied = min(len(output), ocap)
        extra += used + copied * self.byte_fuel
        self.commit(left, extra)
        if copied:
            ctypes.memmove(base + optr, output, copied)
        self.bytes_in += copied
        self.bytes_out += length
        result = code if code < 0 else len(output)
        # the summary is only read by an event (record): none is built when nobody listens
        summary = f"{label} in={length} out={len(output)}" if self.events.active else ""
        return self.record(name, cap, True, summary, result, fuel + extra)

    def host_spirit_call(self, args: Any) -> int:
        cap = Capability.CROSS_SANDBOX_CALL
        name = "host_spirit_call"
        fuel = self.call_fuel
        self.charge(fuel)
        base, size = self.memory_bounds()
        dep_name = self._call_name(self._span(base, size, args[0], args[1], 64), "dependency")
        function = self._call_name(self._span(base, size, args[2], args[3], 128), "export")
        if isinstance(dep_name, int) or isinstance(function, int):
            code = dep_name if isinstance(dep_name, int) else function
            assert isinstance(code, int)
            return self.record(name, cap, True, "bad name", code, fuel)
        label = f"{dep_name}.{function}"
        calls = self.calls
        try:
            if calls is None:
                raise HostCallError(ErrorCode.NOT_FOUND, "this Spirit has no dependencies")
            dep = calls.dependency(dep_name)
            if not self.check(cap, dep.peer):
                return self.record(name, cap, False, label, _DENIED, fuel)
            payload = self._call_payload(args, 4, base, size)
            if isinstance(payload, int):
                return self.record(name, cap, True, label, payload, fuel)
            child = calls.child_for(dep_name)
        except HostCallError as exc:
            return self.refused(name, cap, label, exc, fuel)
        return self._call_child(name, cap, label, child, function, payload, fuel, base)

    def host_sandbox_spawn(self, args: Any) -> int:
        cap = Capability.SPAWN_SANDBOX
        name = "host_sandbox_spawn"
        fuel = self.call_fuel
        self.charge(fuel)
        base, size = self.memory_bounds()
        dep_name = self._call_name(self._span(base, size, args[0], args[1], 64), "dependency")
        if isinstance(dep_name, int):
            return self.record(name, cap, True, "bad name", dep_name, fuel)
        calls = self.calls
        try:
            if calls is None:
                raise HostCallError(ErrorCode.NOT_FOUND, "this Spirit has no dependencies")
            dep = calls.dependency(dep_name)
            if not self.check(cap, dep.peer):
                return self.record(name, cap, False, dep_name, _DENIED, fuel)
            handle = int(calls.spawn(dep_name))
        except HostCallError as exc:
            return self.refused(name, cap, dep_name, exc, fuel)
        return self.record(name, cap, True, dep_name, handle, fuel)

    def host_sandbox_call(self, args: Any) -> int:
        name = "host_sandbox_call"
        handle = args[0]
        fuel = self.call_fuel
        self.charge(fuel)
        base, size = self.memory_bounds()
        function = self._call_name(self._span(base, size, args[1], args[2], 128), "export")
        if isinstance(function, int):
            return self.record(name, None, True, f"handle={handle}", function, fuel)
        label = f"handle={handle} {function}"
        try:
            if self.calls is None:
                raise HostCallError(ErrorCode.INVALID_PARAMETER, f"handle {handle} is not open")
            child = self.calls.handle(handle)
        except HostCallError as exc:
            return self.refused(name, None, label, exc, fuel)
        payload = self._call_payload(args, 3, base, size)
        if isinstance(payload, int):
            return self.record(name, None, True, label, payload, fuel)
        return self._call_child(name, None, label, child, function, payload, fuel, base)

    def host_sandbox_close(self, args: Any) -> int:
        name = "host_sandbox_close"
        handle = args[0]
        fuel = self.call_fuel
        self.charge(fuel)
        try:
            if self.calls is None:
                raise HostCallError(ErrorCode.INVALID_PARAMETER, f"handle {handle} is not open")
            self.calls.close_handle(handle)
        except HostCallError as exc:
            return self.refused(name, None, f"handle={handle}", exc, fuel)
        return self.record(name, None, True, f"handle={handle}", _OK, fuel)


def _summ_key(key: bytes) -> str:
    text = key[:32].decode("utf-8", "replace")
    return f"key={text!r}" + ("..." if len(key) > 32 else "")


def _normalize_address() -> Callable[[str], str] | None:
    try:
        # lazy: engine.network (socket, ipaddress; ~30 ms) only once a guest names an address
        from vudo.engine.network import normalize_address
    except ImportError:
        return None
    return normalize_address


_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def _valtype(name: str) -> wasmtime.ValType:
    return _VALTYPES[name]()


# -- linking ---------------------------------------------------------------------------
#
# The host functions are linked once per engine (and pre-instantiated once per module),
# not once per sandbox: each import is one process-wide trampoline that finds the bridge
# of the sandbox running on this thread. A thread runs at most one guest at a time (host
# functions never re-enter a sandbox), and the sandbox sets ``_CURRENT.bridge`` around
# every instantiation and call.

_CURRENT = threading.local()


def current_thread_state() -> threading.local:
    """The per-thread slot the running sandbox puts its bridge (and itself) into."""
    return _CURRENT


#: The C type of our trampolines: wasmtime's unchecked callback, with the raw argument
#: array seen as 32-bit words. Each raw value is a 16-byte little-endian slot, so an
#: import's argument k starts at word 4k: an i32 is that word as a plain (signed) int,
#: an i64 is it and the next one. Indexing a ``POINTER(c_int32)`` yields ints, where
#: ``args[k].i32`` on ``wasmtime_val_raw_t`` builds a ctypes union per argument (about
#: 0.4 us of a four-argument call here). The caller is a bare address for the same
#: reason.
_RawCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_int32),
    ctypes.c_size_t,
)


def argument_reader(params: tuple[str, ...]) -> Callable[[Any], Sequence[int]]:
    """The arguments of an import with parameter types ``params`` (i32/i64), read from
    its raw argument words as a sequence of ints, signed as in wasm."""
    if any(kind not in ("i32", "i64") for kind in params):
        raise ValueError(f"no raw argument reader for parameter types {params}")
    words = tuple(4 * k for k in range(len(params)))
    low: Callable[[Any], Sequence[int]] = (
        operator.itemgetter(*words)  # one C call for the whole tuple
        if len(words) > 1
        else lambda raw: tuple(raw[w] for w in words)
    )
    # an i64 argument is its low word (read by ``low`` as if an i32) and the next one
    wide = tuple((k, 4 * k + 1) for k, kind in enumerate(params) if kind == "i64")
    if not wide:
        return low

    def read(raw: Any) -> list[int]:
        values = list(low(raw))
        for k, high in wide:
            values[k] = (raw[high] << 32) | (values[k] & _U32)
        return values

    return read


def make_trampoline(
    name: str, params: tuple[str, ...], impl: Callable[[HostBridge, Any], int]
) -> Any:
    """The C callback of one import: finds this thread's bridge, calls ``impl`` with the
    arguments as a sequence of ints (see :func:`argument_reader`)."""
    local = _CURRENT
    no_bridge = f"{name} called outside a vudo sandbox call"
    read = argument_reader(params)

    # Every import has one result, an i32 or an i64. Both are written as 64 bits (words
    # 0 and 1): the guest reads the low 32 bits of an i32 result, negative codes included.
    def raw(env: Any, caller: int, args: Any, nargs: int) -> int:
        bridge = getattr(local, "bridge", None)
        if bridge is None:
            return trap_address("terminated", no_bridge)
        try:
            if bridge.memory_ref is None:  # a start function: instantiation not done yet
                bridge.bind_caller_memory(caller)
            result = impl(bridge, read(args))
            args[0] = result  # ctypes keeps the low 32 bits of each
            args[1] = result >> 32
        except StopGuest as stop:
            return trap_address(stop.kind, stop.message)
        except Exception as exc:
            result = bridge._internal_error(name, exc)
            args[0] = result
            args[1] = result >> 32
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop, re-raise later
            bridge.interrupt = exc
            return trap_address("terminated", f"interrupted ({type(exc).__name__})")
        return 0

    return ctypes.cast(_RawCallback(raw), ffi.wasmtime_func_unchecked_callback_t)


#: One C callback per import, alive for the life of the process (linkers point at them).
TRAMPOLINES: dict[str, Any] = {
    name: make_trampoline(name, row.params, getattr(HostBridge, name)) for name, row in ABI.items()
}

Signatures = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def define_imports(linker: wasmtime.Linker) -> None:
    """Define every ABI import in ``linker`` (unchecked calls: raw arguments, no Val)."""
    signatures = {name: (row.params, row.results) for name, row in ABI.items()}
    define_functions(linker, HOST_MODULE, signatures, TRAMPOLINES)


def define_functions(
    linker: wasmtime.Linker, module_name: str, signatures: Signatures, callbacks: dict[str, Any]
) -> None:
    """Define ``module_name``'s functions (name -> signature) with their trampolines."""
    module = module_name.encode()
    for name, (params, results) in signatures.items():
        ty = wasmtime.FuncType([_valtype(p) for p in params], [_valtype(r) for r in results])
        raw_name = name.encode()
        err = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(),
            module,
            len(module),
            raw_name,
            len(raw_name),
            ty.ptr(),
            callbacks[name],
            None,
            _NULL_FINALIZER,
        )
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)


def _custom_trampoline(fn: HostFunction) -> Any:
    """The C callback of one application host function (see :func:`_trampoline`)."""
    local = _CURRENT
    fields = fn.params
    count = len(fields)
    no_bridge = f"{fn.label} called outside a vudo sandbox call"

    def raw(env: Any, caller: Any, args: Any, nargs: int) -> int:
        bridge = getattr(local, "bridge", None)
        if bridge is None:
            return trap_address("terminated", no_bridge)
        try:
            if bridge.memory_ref is None:
                bridge.bind_caller_memory(caller)
            values = [getattr(args[i], fields[i]) for i in range(count)]
            args[0].i64 = bridge.call_custom(fn, values)
        except StopGuest as stop:
            return trap_address(stop.kind, stop.message)
        except Exception as exc:
            bridge.note = f"internal error: {exc}"
            args[0].i64 = bridge.record(fn.label, fn.capability, True, "", _INTERNAL, 0)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop, re-raise later
            bridge.interrupt = exc
            return trap_address("terminated", f"interrupted ({type(exc).__name__})")
        return 0

    return ffi.wasmtime_func_unchecked_callback_t(raw)


_FLOAT_VALTYPES = {"f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}


def define_custom(linker: wasmtime.Linker, functions: Iterable[HostFunction]) -> list[Any]:
    """Define the application's host functions in ``linker``; returns their C callbacks,
    which the caller keeps alive as long as the linker (and anything linked by it)."""
    keep: list[Any] = []
    for fn in functions:
        ty = wasmtime.FuncType(
            [(_VALTYPES.get(p) or _FLOAT_VALTYPES[p])() for p in fn.params],
            [_valtype(r) for r in fn.results],
        )
        callback = _custom_trampoline(fn)
        keep.append(callback)
        module, name = fn.module.encode(), fn.name.encode()
        err = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(),
            module,
            len(module),
            name,
            len(name),
            ty.ptr(),
            callback,
            None,
            _NULL_FINALIZER,
        )
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)
    return keep
