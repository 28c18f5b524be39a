"""The sandbox: one Spirit instance with its own store, fuel, limits, grants and monitor.

Lifecycle (DESIGN.md §2; :data:`vudo.engine.config.TRANSITIONS` is the whole table)::

    Created -> Initializing -> Ready -> Running -> Ready          (call returned)
                          \\               |  \\-> Suspended -> Running   (pause/resume,
                           \\-> Failed <----/                            out of fuel/refuel)
    any -> Terminated (final)

Every transition is a :class:`~vudo.engine.events.StateChanged` event; an illegal one
raises :class:`IllegalTransition`. A trap, timeout or limit moves the sandbox to Failed;
running out of fuel moves it to Suspended with memory and globals intact, so the owner can
``refuel(n)`` and call again (the call restarts from the function's entry). A live
sandbox (``SandboxConfig.live``, the workbench) instead waits in the middle of the call,
and ``refuel(n)`` continues it where it stopped (see :meth:`Sandbox._call_live`).

The live monitor is the store's epoch-deadline callback. The engine's ticker bumps the
epoch every ~10 ms; while the guest runs, each tick calls :meth:`Sandbox._on_epoch` on the
run thread, which (1) stops the guest when the wall-clock deadline has passed or the
sandbox was terminated, (2) emits a fuel sample, and (3) blocks, releasing the GIL, while
the sandbox is paused by :meth:`suspend` from another thread, returning when
:meth:`resume` is called. Time spent paused does not count against the timeout.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C core: signal.py costs ~2 ms
import contextlib
import ctypes
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import wasmtime
from wasmtime import _bindings as ffi
from wasmtime import _ffi as _wasmtime_ffi

from vudo.engine.abi import IMPORT_CAPABILITIES, INT_RANGES, HostCallError, StopGuest
from vudo.engine.compose import Calls
from vudo.engine.config import MAX_FUEL, TRANSITIONS, Callee, SandboxConfig, SandboxState
from vudo.engine.engine import Engine, ExportedFunc, SpiritModule
from vudo.engine.events import Event, EventStream, FuelSample, HostCall, StateChanged
from vudo.engine.host import (
    DLL_WITH_GIL,
    HostBridge,
    _fuel_read,
    _fuel_write,
    _get_fuel,
    _set_fuel,
    current_thread_state,
)
from vudo.engine.identity import credit_account
from vudo.engine.receipt import Receipt
from vudo.engine.runio import OUTPUT, RunIO
from vudo.engine.traps import ProcessExit, Terminated, stop_message, translate
from vudo.engine.wasi_abi import WASI_CAPABILITIES
from vudo.errors import (
    FuelExhausted,
    GuestTrap,
    ResourceLimitExceeded,
    TimeoutExceeded,
    UsageError,
    VudoError,
)

if TYPE_CHECKING:
    from vudo.capabilities import Capability

S = SandboxState
# The states a call goes through, as plain module globals: an attribute of an Enum class
# is a slow lookup in Python 3.11 (about 0.1 µs), and a call reads several.
_READY, _RUNNING, _SUSPENDED, _TERMINATED = S.READY, S.RUNNING, S.SUSPENDED, S.TERMINATED
_EXTERN_MEMORY: int = _wasmtime_ffi.__dict__["WASMTIME_EXTERN_MEMORY"].value
_DLL: Any = ffi.__dict__["dll"]
_ids = itertools.count(1)

_EpochCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
# The FFI calls a call or an instantiation makes once (not the host calls': see the note
# in vudo.engine.host) keep the GIL (PYFUNCTYPE, PyDLL): they return at once and never
# call back, and releasing and retaking the GIL costs about a quarter of such a call.
_set_epoch_callback = ctypes.PYFUNCTYPE(
    None, ctypes.c_void_p, _EpochCallback, ctypes.c_void_p, ctypes.c_void_p
)(("wasmtime_store_epoch_deadline_callback", _DLL))
# Set on every call: with ctypes arguments made once (the bridge's context, one tick).
_set_epoch_deadline = DLL_WITH_GIL["wasmtime_context_set_epoch_deadline"]
_set_epoch_deadline.restype = None
_ONE_TICK = ctypes.c_uint64(1)
_error_new = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(("wasmtime_error_new", _DLL))
# wasmtime-py's Store.set_limits and instance export lookup, with plain addresses for
# pointers: its prototypes type-check each pointer argument (instantiation pays both).
_store_limiter = ctypes.PYFUNCTYPE(None, ctypes.c_void_p, *[ctypes.c_int64] * 5)(
    ("wasmtime_store_limiter", _DLL)
)
_export_get = ctypes.PYFUNCTYPE(
    ctypes.c_bool,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
)(("wasmtime_instance_export_get", _DLL))

_OUTCOMES: dict[type[VudoError], str] = {
    ProcessExit: "exit",
    FuelExhausted: "fuel exhausted",
    TimeoutExceeded: "timeout",
    ResourceLimitExceeded: "limit",
    Terminated: "terminated",
    GuestTrap: "trap",
}


def _epoch(context: int, data: int, delta: Any, kind: Any) -> int:
    """The one epoch-deadline callback: forwards to the sandbox running on this thread."""
    sandbox = getattr(current_thread_state(), "sandbox", None)
    if sandbox is None:
        delta[0] = 1
        kind[0] = 0
        return 0
    return int(sandbox._on_epoch(context, data, delta, kind))


_EPOCH_TRAMPOLINE = _EpochCallback(_epoch)

#: :data:`TRANSITIONS` as (from, to) pairs of member ids: the members are singletons,
#: and an int pair hashes in C where a StrEnum member hashes in Python (twice a check).
_LEGAL = frozenset((id(old), id(new)) for old, news in TRANSITIONS.items() for new in news)

#: The gate of every sandbox not yet paused: set, and never cleared (see _close_gate).
_OPEN = threading.Event()
_OPEN.set()


class IllegalTransition(VudoError):
    """A lifecycle operation that the sandbox's current state does not allow."""

    title = "illegal state transition"


class Sandbox:
    """One running Spirit. Create, :meth:`instantiate`, :meth:`call`, read :meth:`receipt`.

    Use it as a context manager (or call :meth:`close`): leaving terminates the sandbox and
    frees its store and its network handles. ``sandbox_id`` defaults to
    ``"<module name>-<n>"`` with a process-wide counter (deterministic for tests).

    Slotted, like :class:`~vudo.engine.host.HostBridge` (more attributes than CPython
    3.11 keeps inline in an instance).
    """

    __slots__ = (
        "_budget",
        "_call_lock",
        "_deadline",
        "_exports",
        "_fuel_box",
        "_fuel_ref",
        "_funcs",
        "_gate",
        "_hidden",
        "_instance",
        "_interval",
        "_last_error",
        "_last_function",
        "_last_outcome",
        "_last_results",
        "_last_sample",
        "_live",
        "_live_used",
        "_lock",
        "_memory",
        "_origin",
        "_outer",
        "_pending_fuel",
        "_running",
        "_state",
        "_stop_request",
        "_store",
        "_suspend_reason",
        "_thread_state",
        "_used_at_close",
        "_wall",
        "bridge",
        "call_fuel",
        "checker",
        "config",
        "engine",
        "events",
        "exit_code",
        "id",
        "io",
        "ledger",
        "module",
        "network",
        "parent",
    )

    def __init__(
        self,
        engine: Engine,
        module: SpiritModule,
        config: SandboxConfig | None = None,
        *,
        sandbox_id: str | None = None,
        stderr: TextIO | None = None,
        parent: Sandbox | None = None,
    ) -> None:
        self.engine = engine
        #: The sandbox whose Spirit called this one (host_spirit_call, host_sandbox_spawn);
        #: None for a top-level sandbox. See :mod:`vudo.engine.compose`.
        self.parent = parent
        self.module = module
        self.config = config = config if config is not None else SandboxConfig()
        self.id = sandbox_id or f"{module.name}-{next(_ids)}"
        limits = config.limits
        if module.size > limits.module_size:
            raise ResourceLimitExceeded(
                f"module {module.name} is {module.size} bytes, over the "
                f"{limits.module_size}-byte module size limit",
                hint="raise the module size limit",
            )
        self.events = EventStream()
        self._origin = time.monotonic()
        self._lock = threading.RLock()
        self._call_lock = threading.Lock()
        self._gate = _OPEN  # see _close_gate
        self._state = S.CREATED
        self._suspend_reason = ""
        self._stop_request: str | None = None
        self._deadline: float | None = None
        self._budget = config.fuel
        self._store: wasmtime.Store | None = None
        #: The instance, a raw ``wasmtime_instance_t``.
        self._instance: Any = None
        #: The memory export, a ``wasmtime_extern_t`` (the bridge points into it).
        self._memory: Any = None
        self._funcs: dict[str, Callable[..., Any]] = {}
        self._thread_state = current_thread_state()
        self._outer: tuple[Any, Any] = (None, None)
        self._running = False
        self._wall = 0.0
        self._last_function = ""
        self._last_outcome = "ok"
        self._last_error: str | None = None
        self._last_results: tuple[Any, ...] = ()
        self._used_at_close = 0
        self._pending_fuel = 0
        self._exports: dict[str, ExportedFunc] = {}
        self._interval = 0  # a live store's fuel yield interval, as last set
        self._live = False  # calls run as live calls (config.live, after instantiation)
        self._hidden = 0  # fuel in the store that is not the guest's (a live call's reserve)
        self._last_sample = 0.0
        self._live_used = 0
        self._fuel_box = ctypes.c_uint64(0)
        self._fuel_ref = ctypes.byref(self._fuel_box)
        #: The fuel the last :meth:`call_bytes` used.
        self.call_fuel = 0
        self.checker = (
            _NO_GRANTS
            if _denies_everything(config)
            else engine.checker(
                (
                    config.grants,
                    config.identity,
                    config.trusted_granters,
                    config.revocations,
                    config.grant_clock,
                    config.grant_refresh,
                ),
                lambda: _make_checker(config),
            )
        )
        self.network = _make_network(config, self.id)
        self.ledger = _make_ledger(config, self.id)
        self.io = RunIO(
            input=_check_input(config.input, limits.max_input_bytes),
            max_output=limits.max_output_bytes,
            sinks=config.sinks,
        )
        self.bridge: HostBridge = HostBridge(
            sandbox_id=self.id,
            checker=self.checker,
            # A callee's host calls and logs go to its caller's subscribers (the top-level
            # sandbox's, through the chain); its lifecycle events stay its own.
            events=parent.bridge.events if parent is not None else self.events,
            limits=limits,
            services=config.services,
            identity=config.identity,
            namespace=config.namespace or config.identity,
            host_call_fuel=config.host_call_fuel,
            host_byte_fuel=config.host_byte_fuel,
            log_to_stderr=config.log_to_stderr,
            min_log_level=config.min_log_level,
            clock_origin=self._origin,
            deadline=lambda: self._deadline,
            network=self.network,
            ledger=self.ledger,
            stderr=stderr,
            depth=0 if parent is None else parent.bridge.depth + 1,
            io=self.io,
            env=config.env,
        )
        if config.dependencies is not None:
            chain = parent.bridge.calls.chain if parent is not None and parent.bridge.calls else ()
            self.bridge.calls = Calls(self, config.dependencies, chain)
        #: What a WASI program's proc_exit passed (None: it has not called it).
        self.exit_code: int | None = None
        if module.uses_wasi:
            self.bridge.wasi = self._wasi_state(config)

    def _wasi_state(self, config: SandboxConfig) -> Any:
        from vudo.engine.wasi import WasiState  # lazy: only WASI programs need it

        return WasiState(
            self.bridge,
            argv=config.argv,
            preopens=config.preopens,
            env=tuple(config.env.items()),
            sockets=config.listeners,
            stdin=config.stdin_fd,
            interactive=config.interactive,
            stop_requested=lambda: self._stop_request is not None,
        )

    def __repr__(self) -> str:
        return f"<Sandbox {self.id} {self._state.value} fuel {self.fuel_used}/{self._budget}>"

    # -- state machine -----------------------------------------------------------------

    @property
    def state(self) -> SandboxState:
        return self._state

    @property
    def in_call(self) -> bool:
        """Whether a call (or instantiation) is in progress on the run thread: running,
        paused, or waiting for fuel in the middle of it."""
        return self._running

    @property
    def suspend_reason(self) -> str:
        """Why the sandbox is Suspended: ``"paused"`` (resume()) or ``"out of fuel"``
        (refuel() then call again); empty in any other state."""
        return self._suspend_reason if self._state is S.SUSPENDED else ""

    def _transition(self, new: SandboxState, reason: str) -> None:
        """Move to ``new``; the caller holds ``self._lock`` (every caller checks or sets
        more state under it)."""
        old = self._state
        if (id(old), id(new)) not in _LEGAL:
            raise IllegalTransition(
                f"sandbox {self.id}: cannot go from {old} to {new} ({reason})",
                hint=f"from {old} the sandbox can go to "
                + (", ".join(sorted(TRANSITIONS[old])) or "nothing (final)"),
            )
        self._state = new
        if self.events.active:
            self.events.emit(
                StateChanged(self.id, old.value, new.value, time.monotonic() - self._origin, reason)
            )

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Receive every event from now on; returns the function that unsubscribes."""
        return self.events.subscribe(callback)

    # -- instantiate -------------------------------------------------------------------

    def instantiate(self) -> None:
        """Created -> Initializing -> Ready: build the store, link, run the start function.

        A trap, timeout or limit during instantiation moves the sandbox to Failed and
        raises the matching error.
        """
        with self._lock:
            self._transition(S.INITIALIZING, "instantiate")
        engine = self.engine
        limits = self.config.limits
        store = wasmtime.Store(engine.wasm_engine)
        self._store = store
        address = _address(store.ptr())
        _store_limiter(
            address,
            limits.memory_bytes,
            limits.table_elements,
            limits.instances,
            limits.tables,
            limits.memories,
        )
        _set_epoch_callback(address, _EPOCH_TRAMPOLINE, None, None)
        self.bridge.bind_context(_address(store._context()))
        _check(_set_fuel(self.bridge.context, self._budget))
        engine.ensure_ticker()
        started = time.monotonic()
        error: VudoError | None = None
        try:
            pre = engine.instance_pre(self.module)
        except VudoError as exc:
            raise self._finish_failed(exc, "instantiate") from None
        _catch_sigint()
        with self._lock:
            self._begin()
        try:
            self._instance = _instantiate(pre, self.bridge.context)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            error = translate(exc, during="instantiate")
        finally:
            self._end(started)
        if error is None:
            item = self._export_raw("memory")
            if item is not None and item.kind == _EXTERN_MEMORY:
                self._memory = item
                self.bridge.bind_memory(ctypes.addressof(item.of.memory))
        self._last_function = "(instantiate)"
        self._reraise_interrupt(error, "instantiate")
        if error is not None:
            raise self._finish_failed(error, "instantiate")
        if self.config.live and self.parent is None:
            _check(_yield_interval(self.bridge.context, FUEL_SLICE))
            self._interval = FUEL_SLICE
            self._live = True
        if not self._settle(S.READY, "instantiated"):
            raise self._terminated_error()

    def _export_raw(self, name: str) -> Any:
        """The instance's export ``name`` as a raw ``wasmtime_extern_t`` (None if absent)."""
        assert self._instance is not None
        raw = name.encode()
        item = ffi.wasmtime_extern_t()
        found = _export_get(
            self.bridge.context,
            ctypes.addressof(self._instance),
            raw,
            len(raw),
            ctypes.addressof(item),
        )
        return item if found else None

    # -- calls ------------------------------------------------------------------------

    def call(
        self, function: str, args: Sequence[Any] = (), *, input: bytes | None = None
    ) -> list[Any]:
        """Call an exported function; returns its results as a list.

        ``input`` is the call's input bytes (``host_input_read``); None gives it the
        config's ``input``. What the call writes with ``host_output_write`` is
        :meth:`output` afterwards (or went to the config's sink for the stream).

        Allowed from Ready, and from Suspended when the sandbox ran out of fuel (after
        :meth:`refuel`). On a trap, timeout or limit the sandbox moves to Failed and the
        error is raised; on fuel exhaustion it moves to Suspended and FuelExhausted is
        raised. The receipt is updated either way.
        """
        export = self._export(function)
        values = _coerce_args(function, export.params, args) if args or export.params else []
        if input is not None:
            input = _check_input(input, self.config.limits.max_input_bytes)
        if self.parent is None:  # a callee runs inside its caller's call, which did it
            _catch_sigint()
        return list(self._call(function, export, values, input, None))

    def call_bytes(
        self, function: str, data: bytes, fuel: int
    ) -> tuple[tuple[Any, ...], bytes, int]:
        """Call ``function`` (no parameters) with ``data`` as its input and exactly
        ``fuel`` fuel (a callee's call: its caller's remaining fuel): its results, the
        output bytes it wrote and the fuel it used. Raises as :meth:`call` does;
        :attr:`call_fuel` then says what the failed call used."""
        self.call_fuel = 0  # a call refused before it starts uses none
        results = self._call(
            function,
            self._export(function),
            (),
            _check_input(data, self.config.limits.max_input_bytes),
            fuel,
        )
        return results, self.io.output(), self.call_fuel

    def _export(self, function: str) -> ExportedFunc:
        export = self._exports.get(function)
        if export is None:
            export = self._exports[function] = self.module.export(function)
        return export

    def _call(
        self,
        function: str,
        export: ExportedFunc,
        values: Sequence[Any],
        input: bytes | None,
        fuel: int | None,
    ) -> tuple[Any, ...]:
        """The one call path of :meth:`call` and :meth:`call_bytes` (checked arguments):
        the results as the tuple the receipt keeps. ``fuel`` (a callee's call) replaces
        the store's fuel for the call, and :attr:`call_fuel` says what it used."""
        if not self._call_lock.acquire(blocking=False):
            raise IllegalTransition(
                f"sandbox {self.id} is already running a call",
                hint="wait for it to return, or terminate the sandbox",
            )
        try:
            with self._lock:
                if self._state is _SUSPENDED and self._suspend_reason == "paused":
                    raise IllegalTransition(
                        f"sandbox {self.id} is paused", hint="resume() it first"
                    )
                self._transition(_RUNNING, f"call {function}")
                self._suspend_reason = ""
                self._begin(fuel)
            started = time.monotonic()
            error: VudoError | None = None
            results: Any = None
            try:
                self.io.start_call(input)
                func = self._funcs.get(function)
                if func is None:
                    func = self._funcs[function] = _fast_func(
                        self._export_raw(function), _plan(self.module, export)
                    )
                assert self._store is not None
                self._last_function = function
                if self._live:
                    results = self._call_live(function, export, values)
                else:
                    results = func(self._store, *values)
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                error = translate(exc)
            finally:
                self._end(started, fuel)
            if self.bridge.interrupt is not None:
                self._reraise_interrupt(error, function)
            if isinstance(error, ProcessExit):
                return tuple(self._exited(error, function))
            if error is None:
                self._last_results = _as_tuple(results, len(export.results))
                self._last_outcome, self._last_error = "ok", None
                if not self._settle(_READY, f"{function} returned"):
                    raise self._terminated_error()
                return self._last_results
            self._last_results = ()
            raise self._finish_failed(error, function)
        finally:
            self._call_lock.release()

    def _exited(self, error: ProcessExit, function: str) -> list[Any]:
        """A WASI proc_exit: outcome ``exit``; status 0 returns, any other is raised."""
        self.exit_code = error.code
        self._last_results = ()
        self._last_outcome = "exit"
        self._last_error = None if error.code == 0 else error.message
        if not self._settle(S.READY, f"{function} exited with status {error.code}"):
            raise self._terminated_error()
        if error.code:
            raise error
        return []

    def _reraise_interrupt(self, error: VudoError | None, where: str) -> None:
        """Re-raise a KeyboardInterrupt/SystemExit that a C callback had to swallow.

        The guest was stopped; the sandbox fails with outcome ``"terminated"`` so the
        receipt is still right, then the interrupt continues up the caller's stack.
        """
        interrupt = self.bridge.interrupt
        if interrupt is None:
            return
        self.bridge.interrupt = None
        self._last_results = ()
        self._finish_failed(
            Terminated(f"interrupted ({type(interrupt).__name__})")
            if error is None or not isinstance(error, Terminated)
            else error,
            where,
        )
        raise interrupt

    def _terminated_error(self) -> Terminated:
        self._last_outcome = "terminated"
        self._last_error = f"sandbox {self.id} was terminated"
        return Terminated(self._last_error, hint="the sandbox was terminated during the call")

    def _finish_failed(self, error: VudoError, where: str) -> VudoError:
        """Record a failed call or instantiation, move state; returns the error to raise."""
        error = self._limit_cause(error)
        cls = type(error)
        self._last_outcome = next(
            (name for klass, name in _OUTCOMES.items() if issubclass(cls, klass)), "trap"
        )
        self._last_error = error.message
        if isinstance(error, FuelExhausted) and self._state is not S.INITIALIZING:
            # Out of fuel in a call: resumable by refuel + call. (In the start function
            # there is nothing to resume, so that fails like a trap.)
            self._settle(S.SUSPENDED, f"out of fuel in {where}", suspend_reason="out of fuel")
        else:
            self._settle(S.FAILED, f"{error.title} in {where}: {error.message}")
        return error

    def _limit_cause(self, error: VudoError) -> VudoError:
        """A trap or timeout with memory at its limit was most likely caused by the limit.

        wasmtime's store limiter makes ``memory.grow`` return -1 at the limit (the wasm
        way of saying "out of memory"); a guest that then traps or spins is reported as
        ResourceLimitExceeded naming the limit, not as a bug in the guest.
        """
        if (
            not isinstance(error, GuestTrap | TimeoutExceeded | FuelExhausted)
            or self._memory is None
        ):
            return error
        limit = self.config.limits.memory_bytes
        if isinstance(error, FuelExhausted):
            # Still out of fuel (so still resumable), but say why it most likely burned.
            if self.bridge.peak_memory + 65536 > limit:
                return FuelExhausted(
                    f"{error.message} after memory reached its limit of {limit} bytes "
                    "(memory.grow refused)",
                    hint="the Spirit likely kept retrying memory.grow; raise the memory "
                    "limit (--memory) or make it stop when memory.grow returns -1",
                )
            return error
        if self.bridge.peak_memory + 65536 > limit:
            return ResourceLimitExceeded(
                f"memory limit of {limit} bytes reached (memory.grow refused), then: "
                f"{error.message}",
                hint="raise the memory limit (--memory) or make the Spirit use less",
            )
        return error

    def _begin(self, fuel: int | None = None) -> None:
        """Start running a guest (a call, or instantiation), with ``self._lock`` held (a
        refuel() from another thread then waits until the call is marked running).
        ``fuel``, for a callee's call, replaces the fuel left in the store."""
        config = self.config
        if self.parent is not None:  # a callee runs within its caller's deadline
            self._deadline = self.parent._deadline
        else:
            self._deadline = time.monotonic() + config.timeout if config.timeout else None
        box = self._fuel_box
        _fuel_read(self.bridge.context_arg, self._fuel_ref)
        if fuel is not None:
            self._budget += fuel - box.value  # used so far + fuel
            box.value = fuel
            _fuel_write(self.bridge.context_arg, box)
        self._live_used = self._budget - box.value
        self._running = True
        state = self._thread_state
        self._outer = (getattr(state, "bridge", None), getattr(state, "sandbox", None))
        state.bridge = self.bridge
        state.sandbox = self
        _set_epoch_deadline(self.bridge.context_arg, _ONE_TICK)

    def _end(self, started: float, fuel: int | None = None) -> None:
        """Stop running a guest; for a callee's call (``fuel`` given, as to
        :meth:`_begin`) :attr:`call_fuel` is then what it used of it."""
        # Restore whatever ran on this thread before (a subscriber may drive another
        # sandbox from inside a host call of this one).
        self._thread_state.bridge, self._thread_state.sandbox = self._outer
        store = self._store
        with self._lock:
            pending, self._pending_fuel = self._pending_fuel, 0
            if store is not None and pending:
                store.set_fuel(store.get_fuel() + pending)
            self._running = False
        if fuel is not None:
            _fuel_read(self.bridge.context_arg, self._fuel_ref)
            self.call_fuel = fuel - self._fuel_box.value
        self._deadline = None
        self._wall += time.monotonic() - started
        if self._memory is not None:
            self.bridge.memory_size()

    def _settle(self, new: SandboxState, reason: str, *, suspend_reason: str = "") -> bool:
        """End a call or instantiation in state ``new``; False if it was terminated.

        A call that finishes (returns, traps, runs out of fuel) while paused reports only
        after resume(), so the pause is real to the caller too. The check and the
        transition happen under the lock, so a suspend() racing with the end of the call
        either lands before (and is waited out) or finds the sandbox no longer running.
        """
        while True:
            gate = self._gate
            if gate is not _OPEN and not gate.is_set():
                gate.wait()
            with self._lock:
                if self._state is _TERMINATED:
                    return False
                gate = self._gate
                if gate is _OPEN or gate.is_set():
                    self._transition(new, reason)
                    self._suspend_reason = suspend_reason
                    return True

    # -- the live monitor (runs on the run thread, inside wasm) ------------------------

    def _on_epoch(self, context: int, data: int, delta: Any, kind: Any) -> int:
        try:
            interrupt = self.bridge.interrupt
            if interrupt is not None:
                message = f"interrupted ({type(interrupt).__name__})"
                return int(_error_new(stop_message("terminated", message)) or 0)
            stop = self._stop_request
            if self.parent is not None:
                stop = self._lineage_control(stop)
            elif stop is None and not self._gate.is_set():
                paused_at = time.monotonic()
                self._gate.wait()
                if self._deadline is not None:
                    self._deadline += time.monotonic() - paused_at
                stop = self._stop_request
            if stop is not None:
                return int(_error_new(stop_message("terminated", stop)) or 0)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                return int(
                    _error_new(
                        stop_message("timeout", f"call passed its {self.config.timeout}s timeout")
                    )
                    or 0
                )
            if self._memory is not None:
                self.bridge.memory_size()
            _get_fuel(context, self._fuel_ref)
            if self._pending_fuel and not self._hidden:  # a live call takes it at its slices
                with self._lock:
                    pending, self._pending_fuel = self._pending_fuel, 0
                _set_fuel(context, self._fuel_box.value + pending)
                _get_fuel(context, self._fuel_ref)
            used = self._budget + self._hidden - self._fuel_box.value
            self._live_used = used = max(self._live_used, min(used, self._budget))
            self._last_sample = time.monotonic()
            if self.events.active:
                self.events.emit(
                    FuelSample(self.id, used, self._budget, time.monotonic() - self._origin)
                )
        except Exception:
            self.events.errors += 1
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop, re-raise later
            self.bridge.interrupt = exc
            message = f"interrupted ({type(exc).__name__})"
            return int(_error_new(stop_message("terminated", message)) or 0)
        delta[0] = 1
        kind[0] = 0
        return 0

    def _lineage_control(self, stop: str | None) -> str | None:
        """For a callee: its callers' pause and stop apply to it too (the monitor tick).

        Waits while any sandbox up the chain is paused (extending every deadline on the
        chain by the pause) and returns the first stop request found, if any.
        """
        chain: list[Sandbox] = []
        node: Sandbox | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        for node in chain:
            if stop is None and not node._gate.is_set():
                paused_at = time.monotonic()
                node._gate.wait()
                paused = time.monotonic() - paused_at
                for other in chain:
                    if other._deadline is not None:
                        other._deadline += paused
            stop = stop or node._stop_request
        return stop

    def lineage_stopped(self) -> bool:
        """Whether a caller up the chain was terminated (so this callee was stopped for it)."""
        node = self.parent
        while node is not None:
            if node._stop_request is not None:
                return True
            node = node.parent
        return False

    def child(self, dep: Callee, config: SandboxConfig, sandbox_id: str) -> Sandbox:
        """A sandbox for the callee ``dep`` of this one (see :mod:`vudo.engine.compose`)."""
        module = self.engine.load(dep.wasm, name=dep.name)
        return Sandbox(self.engine, module, config, sandbox_id=sandbox_id, parent=self)

    # -- live calls (config.live) ----------------------------------------------------

    def _call_live(self, function: str, export: ExportedFunc, values: Sequence[Any]) -> Any:
        """Call ``function`` as a wasmtime async call that yields every FUEL_SLICE fuel.

        wasmtime keeps a running guest's fuel counter in a register and writes it back
        only at calls, returns and the out-of-fuel check, so an epoch callback cannot read
        it during a loop that never calls out. A store with a fuel yield interval runs
        calls on a fiber that comes back to this thread at the out-of-fuel check every
        slice, with the counter written back: here the fuel is exact, a sample is taken,
        and when the budget is spent the call waits for refuel() instead of trapping.
        The store holds a hidden reserve beyond the budget (the guest never gets it: the
        slice is cut so that it ends at the budget) so wasmtime never traps first.
        """
        params = export.params
        kinds = export.results
        if not all(k in _VAL_KINDS for k in params + kinds):
            raise UsageError(
                f"{function} has parameters or results a live call cannot pass",
                hint="run it without live fuel",
            )
        assert self._store is not None
        ctx = self.bridge.context
        item = self._export_raw(function)
        args = (ffi.wasmtime_val_t * max(len(params), 1))()
        for index, (kind, value) in enumerate(zip(params, values, strict=True)):
            args[index].kind = _VAL_KINDS[kind]  # type: ignore[assignment]
            setattr(args[index].of, kind, value)
        out = (ffi.wasmtime_val_t * max(len(kinds), 1))()
        trap = _TRAP_POINTER()
        error = _ERROR_POINTER()
        self._hidden = FUEL_SLICE
        self.bridge.fuel_floor = FUEL_SLICE
        self.bridge.fuel_hook = self._live_charge
        _get_fuel(ctx, self._fuel_ref)
        self._slice(ctx, self._fuel_box.value + FUEL_SLICE)
        future = _call_async(
            self._store._context(), ctypes.byref(item.of.func), args, len(params), out, len(kinds),
            ctypes.byref(trap), ctypes.byref(error),
        )  # fmt: skip
        try:
            while not _poll(future):
                self._on_slice(ctx)
        finally:
            _future_delete(future)
            self.bridge.fuel_hook = None
            self.bridge.fuel_floor = 0
            _get_fuel(ctx, self._fuel_ref)
            _set_fuel(ctx, max(self._fuel_box.value - FUEL_SLICE, 0))
            self._hidden = 0
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        if trap:
            raise wasmtime.Trap._from_ptr(trap)
        if not kinds:
            return None
        found = [getattr(out[i].of, kind) for i, kind in enumerate(kinds)]
        return found[0] if len(found) == 1 else found

    def _slice(self, ctx: Any, store_fuel: int) -> None:
        """Give the guest its next slice: the store holds ``store_fuel`` (budget left plus
        the hidden reserve); the slice ends at FUEL_SLICE or at the budget, if sooner."""
        interval = max(1, min(FUEL_SLICE, store_fuel - FUEL_SLICE))
        if interval != self._interval:  # the common case (a full slice) needs no call
            _check(_yield_interval(ctx, interval))
            self._interval = interval
        _set_fuel(ctx, store_fuel)

    def _on_slice(self, ctx: Any) -> None:
        """The guest used a slice (run thread, outside wasm): take pending fuel, sample,
        and wait for a refuel when the budget is spent. Never raises."""
        try:
            _get_fuel(ctx, self._fuel_ref)
            store_fuel = self._fuel_box.value
            if self._budget + FUEL_SLICE - store_fuel >= self._budget:
                self._wait_for_fuel()
            if self._pending_fuel:
                with self._lock:
                    pending, self._pending_fuel = self._pending_fuel, 0
                store_fuel += pending
            if self._stop_request is not None or self.bridge.interrupt is not None:
                # the monitor ends the call at its next check: reach it now, and give the
                # guest only what it needs to get there (the hidden reserve)
                self.engine.wasm_engine.increment_epoch()
                store_fuel = max(store_fuel, FUEL_SLICE)
            self._slice(ctx, store_fuel)
            used = min(self._budget + FUEL_SLICE - store_fuel, self._budget)
            self._live_used = used = max(used, self._live_used)
            now = time.monotonic()
            if self.events.active and now - self._last_sample >= EPOCH_SAMPLE:
                self._last_sample = now
                self.events.emit(FuelSample(self.id, used, self._budget, now - self._origin))
        except Exception:
            self.events.errors += 1

    def _wait_for_fuel(self) -> None:
        """Out of fuel in a live call: Suspended ("out of fuel") until refuel() or
        terminate(); the time waited does not count against the timeout."""
        waited_from = time.monotonic()
        while True:
            with self._lock:
                if self._stop_request is not None or self._pending_fuel:
                    return
                if self._state is S.RUNNING:
                    self._live_used = self._budget
                    self._transition(S.SUSPENDED, f"out of fuel in {self._last_function}")
                    self._suspend_reason = "out of fuel"
                    self._close_gate()
                    break
            self._gate.wait()  # paused at this moment: out of fuel once resumed
        self._gate.wait()
        if self._deadline is not None:
            self._deadline += time.monotonic() - waited_from

    def _live_charge(self, amount: int) -> None:
        """A host call's fuel in a live call (on the run thread, inside the host call): the
        budget's, never the hidden reserve; short, it waits for a refuel. The next slice
        is cut to the budget left after the charge."""
        ctx = self.bridge.context
        while True:
            _get_fuel(ctx, self._fuel_ref)
            store_fuel = self._fuel_box.value
            if self._pending_fuel:
                with self._lock:
                    pending, self._pending_fuel = self._pending_fuel, 0
                store_fuel += pending
            if store_fuel - FUEL_SLICE >= amount:
                break
            _set_fuel(ctx, store_fuel)
            if self._stop_request is not None:
                raise StopGuest("terminated", self._stop_request)
            self._wait_for_fuel()
        self._slice(ctx, store_fuel - amount)

    # -- control from other threads --------------------------------------------------

    def suspend(self) -> None:
        """Pause the running call (from another thread); it stops within ~10 ms."""
        with self._lock:
            self._transition(S.SUSPENDED, "suspended")
            self._suspend_reason = "paused"
            self._close_gate()
        self._interrupt_now()

    def _close_gate(self) -> None:
        """Close the gate the run thread waits at while the sandbox is paused or out of
        fuel (``self._lock`` held). A sandbox starts with the shared, always open
        :data:`_OPEN` and gets an Event of its own the first time its gate closes: most
        sandboxes never pause, and an Event costs more than a small guest's first call."""
        if self._gate is _OPEN:
            self._gate = threading.Event()
        else:
            self._gate.clear()

    def _open_gate(self) -> None:
        """Open the gate (``self._lock`` held), waking the run thread if it waits there."""
        if self._gate is not _OPEN:  # the shared gate is open already
            self._gate.set()

    def _interrupt_now(self) -> None:
        """Make a running guest reach the monitor at its next loop or call, not the next
        tick: the epoch moves now (for every store of the engine, which costs the others
        one extra monitor call). Without it a stop would wait for the ticker, and a
        closing engine may stop the ticker first (quitting the workbench during a
        compute-bound run then waited for the guest's fuel or timeout, ~15 s)."""
        if self._running:
            self.engine.wasm_engine.increment_epoch()

    def resume(self) -> None:
        """Continue a paused call. A sandbox out of fuel is resumed by refuel() + call()."""
        with self._lock:
            if self._state is S.SUSPENDED and self._suspend_reason == "out of fuel":
                raise IllegalTransition(
                    f"sandbox {self.id} is suspended because it ran out of fuel",
                    hint="refuel(n): a live call then continues; otherwise call the function again",
                )
            self._transition(S.RUNNING, "resumed")
            self._suspend_reason = ""
            self._open_gate()

    def refuel(self, amount: int) -> None:
        """Add ``amount`` fuel to the budget (any state but Failed and Terminated)."""
        if not isinstance(amount, int) or amount <= 0:
            raise UsageError(f"refuel amount must be a positive integer, got {amount!r}")
        with self._lock:
            if self._state in (S.FAILED, S.TERMINATED):
                raise IllegalTransition(f"cannot refuel a {self._state} sandbox")
            if self._budget + amount > MAX_FUEL:
                raise UsageError(
                    f"refuel of {amount} would take the budget past {MAX_FUEL}",
                    hint="add less fuel",
                )
            self._budget += amount
            if self._running:
                # The store belongs to the run thread while a call is in progress (even
                # a paused one): the monitor adds this fuel there, at its next tick (a
                # live call at its next slice, or now if it is waiting for fuel).
                self._pending_fuel += amount
                if self._state is S.SUSPENDED and self._suspend_reason == "out of fuel":
                    self._transition(S.RUNNING, f"refuelled {amount}")
                    self._suspend_reason = ""
                    self._open_gate()
            elif self._store is not None:
                self._store.set_fuel(self._store.get_fuel() + amount)

    def terminate(self, reason: str = "terminated") -> None:
        """Any state -> Terminated (final). A running call stops within ~10 ms.

        The call then raises :class:`~vudo.engine.traps.Terminated` and the receipt's
        outcome is ``"terminated"``; terminating an idle sandbox keeps the outcome of its
        last call. Network handles close and open credit reservations are released.
        """
        with self._lock:
            self._transition(S.TERMINATED, reason)
            self._stop_request = reason
            self._open_gate()
        self._interrupt_now()
        if self.network is not None:
            self.network.close_all()
        if self.ledger is not None:
            with contextlib.suppress(HostCallError):
                self.ledger.ledger.release_all(self.ledger.owner)

    def close(self) -> None:
        """Terminate (if not yet) and release the store once no call is running."""
        if self._state is not S.TERMINATED:
            self.terminate("closed")
        calls = self.bridge.calls
        if calls is not None:
            calls.close()
        if not self._running and self._store is not None:
            self._used_at_close = self.fuel_used
            self._funcs.clear()
            if self.bridge.wasi is not None:
                self.bridge.wasi.close()
            self._instance = None
            self._memory = None
            self.bridge.bind_memory(None)
            self._store = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reporting --------------------------------------------------------------------

    @property
    def fuel_budget(self) -> int:
        return self._budget

    @property
    def fuel_used(self) -> int:
        """Fuel used so far (instantiation and every call), also after a trap.

        While a call runs this is the monitor's latest sample (the store belongs to the
        run thread). wasmtime keeps the fuel counter of a loop that makes no calls in a
        register, so for such a loop the sample, and the count after a timeout stops it,
        lag behind what was really burnt, except in a live call (``config.live``), whose
        samples are exact at every slice; running out of fuel is always exact.
        """
        if self._running:
            return self._live_used
        if self._store is None:
            return self._used_at_close
        left = ctypes.c_uint64()  # its own box: any thread may ask
        _check(_get_fuel(self.bridge.context, ctypes.byref(left)))
        return self._budget - left.value

    def host_calls(self) -> list[HostCall]:
        """The recent host-call log (last 1024 calls), oldest first."""
        custom = self.engine.host_functions
        depth = self.bridge.depth
        return [
            HostCall(
                self.id,
                name,
                _capability_of(name, custom),
                allowed,
                "",
                result,
                fuel,
                at,
                reason,
                depth,
            )
            for at, name, allowed, result, fuel, reason in self.bridge.log
        ]

    def output(self, stream: str = OUTPUT) -> bytes:
        """The bytes the current (or last) call wrote to ``stream`` (``"output"``:
        ``host_output_write``); empty for a stream that has a sink."""
        return self.io.output(stream)

    def read_memory(self, ptr: int, length: int) -> bytes:
        data = self.bridge.read(ptr, length) if self._memory is not None else None
        if data is None:
            raise UsageError(f"memory range {ptr}+{length} is outside the guest's memory")
        return data

    def write_memory(self, ptr: int, data: bytes) -> None:
        address = self.bridge.writable(ptr, len(data)) if self._memory is not None else None
        if address is None:
            raise UsageError(f"memory range {ptr}+{len(data)} is outside the guest's memory")
        ctypes.memmove(address, data, len(data))

    def receipt(self) -> Receipt:
        """The receipt of this sandbox's run so far (cumulative over all calls)."""
        return Receipt(
            sandbox_id=self.id,
            module=self.module.name,
            digest=self.module.digest,
            function=self._last_function,
            outcome=self._last_outcome,
            error=self._last_error,
            results=self._last_results,
            fuel_budget=self._budget,
            fuel_used=self.fuel_used,
            wall_time=self._wall,
            peak_memory=self.bridge.peak_memory,
            host_calls={
                k: {"allowed": v[0], "denied": v[1]} for k, v in self.bridge.counters.items()
            },
            bytes_in=self.bridge.bytes_in,
            bytes_out=self.bridge.bytes_out,
            calls=self.bridge.calls.receipts() if self.bridge.calls is not None else (),
            exit_code=self.exit_code,
            io=dict(self.io.counts),
        )


_RAW_FIELDS = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}


class _CallPlan:
    """How to call one export through the unchecked API: raw value fields and buffer size.

    Computed once per (module, function) and shared by every sandbox of the module.
    """

    __slots__ = ("buffer_type", "params", "results")

    def __init__(self, export: ExportedFunc) -> None:
        self.params = tuple(_RAW_FIELDS[k] for k in export.params)
        self.results = tuple(_RAW_FIELDS[k] for k in export.results)
        self.buffer_type = ffi.wasmtime_val_raw_t * max(len(self.params), len(self.results), 1)


_PLANS: dict[tuple[str, str], _CallPlan | None] = {}
_TRAP_POINTER = ctypes.POINTER(ffi.wasm_trap_t)
# wasmtime_func_call_unchecked with every pointer as a plain address: wasmtime-py's
# prototype type-checks four pointer arguments and allocates its pointer result per call.
# It runs wasm, so it releases the GIL (CFUNCTYPE).
_call_unchecked = ctypes.CFUNCTYPE(
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
)(("wasmtime_func_call_unchecked", _DLL))
_ERROR_POINTER = ctypes.POINTER(ffi.wasmtime_error_t)
# wasmtime_instance_pre_instantiate, the same way (it runs the start function: CFUNCTYPE).
_pre_instantiate = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)(("wasmtime_instance_pre_instantiate", _DLL))
_call_async = ffi._wasmtime_func_call_async
_poll = ffi._wasmtime_call_future_poll
_future_delete = ffi._wasmtime_call_future_delete
_yield_interval = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)(
    ("wasmtime_context_fuel_async_yield_interval", _DLL)
)
#: wasmtime_val_t kinds of the values a live call passes.
_VAL_KINDS = {"i32": 0, "i64": 1, "f32": 2, "f64": 3}
#: A live call comes back to the run thread every this many fuel units (about 2 ms of
#: pure compute on this project's machines); also the size of its hidden reserve.
FUEL_SLICE = 1 << 22
#: The least time between two fuel samples of a live call's slices (the epoch ticker's).
EPOCH_SAMPLE = 0.01


def _instantiate(pre: wasmtime.InstancePre, context: int) -> Any:
    """``pre.instantiate(store)`` (``context``: the store's) as the raw
    ``wasmtime_instance_t``, without wasmtime-py's per-call context manager (it exists
    for exceptions raised by wasmtime-py's own host functions; ours are unchecked
    trampolines that never let one through) or its ``Instance`` object."""
    instance = ffi.wasmtime_instance_t()
    trap = ctypes.c_void_p()
    _check(
        _pre_instantiate(
            _address(pre.ptr()), context, ctypes.addressof(instance), ctypes.addressof(trap)
        )
    )
    if trap.value:
        raise wasmtime.Trap._from_ptr(ctypes.cast(trap.value, _TRAP_POINTER))
    return instance


def _check(error: int | None) -> None:
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, _ERROR_POINTER))


def _plan(module: SpiritModule, export: ExportedFunc) -> _CallPlan | None:
    key = (module.digest, export.name)
    if key not in _PLANS:
        if len(_PLANS) > 4096:
            _PLANS.clear()
        numeric = all(k in _RAW_FIELDS for k in export.params + export.results)
        _PLANS[key] = _CallPlan(export) if numeric else None
    return _PLANS[key]


def _fast_func(item: Any, plan: _CallPlan | None) -> Callable[..., Any]:
    """A caller for the exported function ``item`` (a ``wasmtime_extern_t``).

    Calls go through ``wasmtime_func_call_unchecked`` with one preallocated raw value
    buffer (the export's types are known from validation), skipping wasmtime-py's per-call
    type lookups and ``Val`` marshalling. Functions whose parameters or results are not
    plain numbers (no plan) fall back to ``Func.__call__``.
    """
    if plan is None:
        return wasmtime.Func._from_raw(item.of.func)
    params = plan.params
    results = plan.results
    buffer = plan.buffer_type()
    size = len(buffer)
    buffer_address = ctypes.addressof(buffer)
    func_address = ctypes.addressof(item.of.func)
    trap = ctypes.c_void_p()
    trap_address = ctypes.addressof(trap)
    call_unchecked = _call_unchecked
    # (store, its context's address): the funcs are per sandbox, so one store in practice
    bound: list[Any] = [None, 0]

    def call(store: wasmtime.Store, *values: Any) -> Any:
        for index, field in enumerate(params):
            setattr(buffer[index], field, values[index])
        if store is not bound[0]:
            bound[:] = [store, _address(store._context())]
        trap.value = None
        error = call_unchecked(bound[1], func_address, buffer_address, size, trap_address)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, _ERROR_POINTER))
        if trap.value:
            raise wasmtime.Trap._from_ptr(ctypes.cast(trap.value, _TRAP_POINTER))
        if not results:
            return None
        if len(results) == 1:
            return getattr(buffer[0], results[0])
        return [getattr(buffer[index], field) for index, field in enumerate(results)]

    # keep the extern struct alive as long as the caller (func_address points into it)
    call.item = item  # type: ignore[attr-defined]
    return call


def _on_sigint(signum: int, frame: Any) -> None:
    """SIGINT while the main thread runs a guest: flag it; otherwise Python's default."""
    bridge = getattr(current_thread_state(), "bridge", None)
    if bridge is not None:
        bridge.interrupt = KeyboardInterrupt()
        return
    _signal.default_int_handler(signum, frame)


def _catch_sigint() -> None:
    """Make Ctrl-C on the main thread stop a running guest cleanly.

    Python runs signal handlers between bytecodes of the main thread, which inside a guest
    means at the entry of our C callbacks (epoch monitor, host functions), where an
    exception cannot propagate and would be lost. So when SIGINT still has Python's
    default handler, :func:`_on_sigint` replaces it: outside a guest it behaves exactly
    like the default (raises KeyboardInterrupt); inside one it flags the sandbox, the
    monitor stops the guest at its next tick and the call re-raises KeyboardInterrupt.
    A handler someone else installed (the CLI's) is left alone.

    Called on every call, so it asks ``_signal`` directly: ``signal.getsignal`` turns
    the answer into an enum, about 3 µs a call.
    """
    if _getsignal(_SIGINT) is _DEFAULT_INT and threading.get_ident() == _MAIN_THREAD:
        _signal.signal(_SIGINT, _on_sigint)


_getsignal = _signal.getsignal
_SIGINT: int = _signal.SIGINT
_DEFAULT_INT = _signal.default_int_handler
_MAIN_THREAD = threading.main_thread().ident


def _address(pointer: Any) -> int:
    """The address a non-null ctypes pointer holds (without ``ctypes.cast``, ~1 µs)."""
    return ctypes.addressof(pointer.contents)


def _as_tuple(results: Any, count: int) -> tuple[Any, ...]:
    """wasmtime's return value as a tuple of ``count`` results (a single null reference
    comes back as None, which is a result, not "no results")."""
    if count == 0:
        return ()
    if count > 1 and isinstance(results, list):
        return tuple(results)
    return (results,)


def _coerce_args(function: str, params: tuple[str, ...], args: Sequence[Any]) -> list[Any]:
    if len(args) != len(params):
        raise UsageError(
            f"{function} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), "
            f"got {len(args)}"
        )
    values: list[Any] = []
    for index, (kind, value) in enumerate(zip(params, args, strict=True)):
        if kind in INT_RANGES:
            low, high = INT_RANGES[kind]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UsageError(
                    f"argument {index + 1} of {function} must be an {kind}, got {value!r}"
                )
            bits = 32 if kind == "i32" else 64
            if value >= 2 ** (bits - 1):
                value -= 2**bits
            values.append(value)
        elif kind in ("f32", "f64"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(
                    f"argument {index + 1} of {function} must be an {kind}, got {value!r}"
                )
            values.append(float(value))
        else:
            raise UsageError(f"{function} takes a {kind} parameter, which vudo cannot pass")
    return values


#: Built once: ``X | Y`` in an isinstance call builds the union on every call (~0.2 µs),
#: and every call checks its input.
_BYTES_LIKE = bytes | bytearray | memoryview


def _check_input(data: bytes, limit: int) -> bytes:
    if not isinstance(data, _BYTES_LIKE):
        raise UsageError(f"a call's input must be bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise ResourceLimitExceeded(
            f"input of {len(data)} bytes is over the {limit}-byte input limit",
            hint="give less input, or raise the input limit",
        )
    return bytes(data)


def _capability_of(name: str, custom: Any) -> Any:
    """The capability a logged host call needed: the ABI table's, or for an application
    host function (logged as ``module.name``) its definition's."""
    if name in IMPORT_CAPABILITIES:
        return IMPORT_CAPABILITIES[name]
    if name in WASI_CAPABILITIES:  # WASI calls are logged by their bare preview1 names
        return WASI_CAPABILITIES[name][0]
    module, _, function = name.partition(".")
    defined = custom.get(module, function) if custom is not None else None
    return defined.capability if defined is not None else None


class _Denial(NamedTuple):
    """What :class:`~vudo.engine.grants.Decision` says for a denied capability."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


class _NoGrants:
    """The checker of a sandbox given no grants: every capability is denied.

    It answers exactly as an empty :class:`~vudo.engine.grants.GrantChecker` does, so a
    plain ``vudo run`` (no grants) never imports the grants module.
    """

    __slots__ = ()

    def check(self, capability: Capability, target: str | None = None) -> _Denial:
        return _Denial(False, f"no grant for {capability}")


_NO_GRANTS = _NoGrants()
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _denies_everything(config: SandboxConfig) -> bool:
    """No grants, and no keys a GrantChecker would have to reject (it validates them)."""
    return (
        not config.grants
        and not config.trusted_granters
        and config.grant_refresh is None
        and all(c in _HEX_DIGITS for c in config.identity)
    )


def _make_checker(config: SandboxConfig) -> Any:
    # lazy: engine.grants (~20 ms) only for runs that carry grants
    from vudo.engine.grants import GrantChecker

    kwargs: dict[str, Any] = {
        "grantee": config.identity,
        "trusted_granters": config.trusted_granters,
        "revocations": config.revocations,
    }
    if config.grant_clock is not None:
        kwargs["clock"] = config.grant_clock
    if config.grant_refresh is not None:
        kwargs["refresh"] = config.grant_refresh
    return GrantChecker(config.grants, **kwargs)


def _make_network(config: SandboxConfig, owner: str) -> Any:
    services = config.services
    host = getattr(services, "network", None) if services is not None else None
    if host is None:
        return None
    return host.sandbox(owner)


def _make_ledger(config: SandboxConfig, sandbox_id: str) -> Any:
    """This sandbox's view of the ledger: it spends only from its identity's own account.

    Reservations are owned by this sandbox alone (a fresh owner id per sandbox, so a
    reservation can never be released or consumed by another sandbox, even one with the
    same identity or a reused sandbox id in a later process).
    """
    services = config.services
    ledger = getattr(services, "ledger", None) if services is not None else None
    if ledger is None:
        return None
    import secrets  # lazy: secrets (~9 ms, hashlib) only for runs with a ledger (an owner id)

    # lazy: engine.ledger (~45 ms) only for runs with a ledger
    from vudo.engine.ledger import LedgerView

    owner = f"{sandbox_id}/{secrets.token_hex(8)}"
    return LedgerView(ledger, credit_account(config.identity), owner)
