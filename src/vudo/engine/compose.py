"""Spirits calling Spirits: ``host_spirit_call`` and the ``host_sandbox_*`` handle calls.

A Spirit calls an export of one of its *dependencies* (DESIGN.md §1): a name from its own
manifest's ``[dependencies]``, pinned by its lock. The engine never looks a name up
itself: the sandbox's :attr:`~vudo.engine.config.SandboxConfig.dependencies` callback
(built by the project layer, :mod:`vudo.project.compose`) turns a name into a
:class:`Callee` (the verified module, the callee's own identity, grants and storage)
or raises ``HostCallError(NOT_FOUND)``. A name the guest passes that is not in its
manifest is therefore NOT_FOUND, never a store lookup by a name the guest chose.

The callee runs in a sandbox of its own (a *child* of the caller's sandbox):

* its own identity, grants, storage namespace and credit account (its config comes from
  the resolver); the caller's grants never reach it, and its grants never reach the caller;
* the caller's limits, log settings and deadline (a callee cannot outlive its caller's
  timeout; pausing or terminating the caller pauses or stops the callee too);
* fuel drawn from the caller's budget: each call gives the callee what the caller has left
  and charges the caller what the callee used, so a chain of calls can never burn more
  than the top-level budget;
* its host calls go to the caller's event stream (``HostCall.depth`` says how deep), and
  its receipt is nested in the caller's (``Receipt.calls``).

Callee export shape: no parameters, and no result or one ``i32`` (``() -> ()`` or
``() -> i32``). The call's input bytes are read with ``host_input_len``/``host_input_read``
and its output written with ``host_output_write``, exactly as when an application calls the
Spirit with bytes (``vudo.load(...).call``; a WASI callee's stdout is not its output). A
negative ``i32`` result is the callee's own error code and is passed to the caller as the
call's result; any other result value is ignored.

Results of ``host_spirit_call`` and ``host_sandbox_call``: the full length of the callee's
output (``min(len, ocap)`` bytes are copied to ``optr``, snprintf style), or a negative code:

========================  ===========================================================
CAPABILITY_DENIED (-1)    no ``cross_sandbox_call`` grant covering the callee's signer
                          (``peer:<key>`` scopes name the signer), or no
                          ``spawn_sandbox`` grant for ``host_sandbox_spawn``
INVALID_MEMORY (-2)       a pointer/length outside the caller's memory
INVALID_PARAMETER (-3)    a malformed name, an export of the wrong shape, a handle
                          not open in this sandbox
NOT_FOUND (-9)            not a dependency of the caller, not installed/locked, or no
                          such export
QUOTA_EXCEEDED (-10)      the call depth (``Limits.max_call_depth``), the number of
                          callee sandboxes (``Limits.max_callees``) or a cycle (a Spirit
                          already on the call chain called again) was refused
CALL_FAILED (-11)         the callee trapped, hit one of its limits, or its module
                          could not be loaded; the caller keeps running
========================  ===========================================================

The input is bounded by ``Limits.max_input_bytes`` (more stops the caller, like the other
payload limits); the callee's output by ``Limits.max_output_bytes`` (a write past it is
QUOTA_EXCEEDED to the callee, as in any call).

Running out of fuel or time inside the callee is the caller's budget running out: the
caller stops too (FuelExhausted / TimeoutExceeded), as it would have on its own.

Callee sandboxes are kept for the life of the caller's sandbox: ``host_spirit_call`` keeps
one per dependency (so a second call to the same dependency costs no instantiation, and
sees the state the first left; one that failed is replaced by a fresh one on the next
call); ``host_sandbox_spawn`` opens a new one per handle, called by handle until
``host_sandbox_close`` or until the caller closes. Handles are numbered process-wide, so a
handle from another sandbox is recognisably not open here.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Protocol

from vudo.engine.abi import ErrorCode, HostCallError, StopGuest
from vudo.engine.config import Callee, Resolver, SandboxConfig, SandboxState
from vudo.engine.traps import Terminated
from vudo.errors import FuelExhausted, TimeoutExceeded, VudoError

if TYPE_CHECKING:
    from vudo.engine.receipt import Receipt

#: A dependency name as manifests spell them (vudo.pkg.manifest's name rule; the engine
#: does not import pkg), checked whole.
DEPENDENCY_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
#: An export name a guest may ask for (ASCII, bounded; anything else cannot be exported
#: by a module the engine accepted anyway).
EXPORT_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$-]{0,127}")


class _Export(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> tuple[str, ...]: ...
    @property
    def results(self) -> tuple[str, ...]: ...


class _Module(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def exports(self) -> tuple[_Export, ...]: ...


class _Bridge(Protocol):
    def fuel_left(self) -> int: ...
    def charge(self, amount: int) -> None: ...


class Node(Protocol):
    """What :class:`Calls` uses of a sandbox (:class:`vudo.engine.sandbox.Sandbox`; a
    protocol, so this module does not import the sandbox, which imports it)."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> SandboxConfig: ...
    @property
    def bridge(self) -> _Bridge: ...
    @property
    def module(self) -> _Module: ...

    @property
    def state(self) -> SandboxState: ...
    @property
    def fuel_used(self) -> int: ...
    def child(self, dep: Callee, config: SandboxConfig, sandbox_id: str) -> Node: ...
    def instantiate(self) -> None: ...
    @property
    def call_fuel(self) -> int: ...
    def call_bytes(
        self, function: str, data: bytes, fuel: int
    ) -> tuple[tuple[object, ...], bytes, int]: ...
    def receipt(self) -> Receipt: ...
    def close(self) -> None: ...
    def lineage_stopped(self) -> bool: ...


_handles = itertools.count(1)


def dependency_name(raw: bytes) -> str:
    """The guest's name bytes as a dependency name; INVALID_PARAMETER if malformed."""
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, "dependency name is not ASCII") from None
    if DEPENDENCY_NAME.fullmatch(name) is None:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"{name[:64]!r} is not a dependency name")
    return name


def export_name(raw: bytes) -> str:
    """The guest's export-name bytes; INVALID_PARAMETER if malformed."""
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, "export name is not ASCII") from None
    if EXPORT_NAME.fullmatch(name) is None:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"{name[:64]!r} is not an export name")
    return name


class Calls:
    """One sandbox's callees: its dependency sandboxes and spawned handles.

    Created by the sandbox when its config has a ``dependencies`` resolver; the host
    functions in :mod:`vudo.engine.host` call :meth:`dependency`, :meth:`child_for`,
    :meth:`spawn`, :meth:`handle`, :meth:`invoke` and :meth:`close_handle`; the sandbox
    calls :meth:`receipts` and :meth:`close`.
    """

    def __init__(self, owner: Node, resolve: Resolver | None, chain: tuple[str, ...]) -> None:
        self.owner = owner
        self.resolve = resolve
        #: identities on the call chain from the top-level sandbox down to this one
        self.chain: tuple[str, ...] = (*chain, owner.config.identity)
        self._resolved: dict[str, Callee] = {}
        self._by_name: dict[str, Node] = {}
        self._handles: dict[int, Node] = {}
        self._children: list[Node] = []
        #: (module, export) -> () when callable, else the (code, detail) to refuse with
        self._shapes: dict[tuple[int, str], tuple[ErrorCode, str] | tuple[()]] = {}

    # -- resolving and opening -----------------------------------------------------------

    def dependency(self, name: str) -> Callee:
        """The resolved dependency ``name`` (cached); HostCallError(NOT_FOUND) if none."""
        found = self._resolved.get(name)
        if found is None:
            if self.resolve is None:
                raise HostCallError(
                    ErrorCode.NOT_FOUND, f"{name!r}: this Spirit has no dependencies"
                )
            found = self.resolve(name)
            if found.name != name:
                raise HostCallError(
                    ErrorCode.INTERNAL_ERROR, f"resolver answered {found.name!r} for {name!r}"
                )
            self._resolved[name] = found
        return found

    def _open(self, dep: Callee, sandbox_id: str) -> Node:
        """A new, instantiated child sandbox for ``dep``, or HostCallError (quota, failure)."""
        owner = self.owner
        limits = owner.config.limits
        if len(self.chain) > limits.max_call_depth:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"call depth {len(self.chain)} is over the limit of {limits.max_call_depth}",
            )
        identity = dep.config.identity
        if identity in self.chain:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"cycle: {dep.name} is already on the call chain",
            )
        if len(self._children) >= limits.max_callees:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"this sandbox already opened {limits.max_callees} callee sandboxes (the limit)",
            )
        config = dep.config._replace(
            fuel=max(1, owner.bridge.fuel_left()),
            limits=limits,
            timeout=owner.config.timeout,
            log_to_stderr=owner.config.log_to_stderr,
            min_log_level=owner.config.min_log_level,
            host_call_fuel=owner.config.host_call_fuel,
            host_byte_fuel=owner.config.host_byte_fuel,
        )
        try:
            child = owner.child(dep, config, sandbox_id)
        except VudoError as exc:  # the resolver's module does not load, or is too big
            raise HostCallError(_CALL_FAILED, f"{dep.name} cannot run: {exc.message}") from None
        self._children.append(child)
        try:
            child.instantiate()
        except Exception as exc:
            self._settle(child, child.fuel_used)
            raise _failed(child, exc) from None
        self._settle(child, child.fuel_used)
        return child

    def _settle(self, child: Node, used: int) -> None:
        """Charge the caller what the child used (the caller stops if that is too much)."""
        if used > 0:
            self.owner.bridge.charge(used)

    # -- calling -------------------------------------------------------------------------

    def child_for(self, name: str) -> Node:
        """The sandbox ``host_spirit_call`` uses for dependency ``name``: the one opened by
        an earlier call, unless that one failed; else a new one."""
        child = self._by_name.get(name)
        if child is not None and child.state not in _CALLABLE:
            del self._by_name[name]
            child.close()  # its receipt stays nested
            child = None
        if child is None:
            child = self._by_name[name] = self._open(
                self.dependency(name), f"{self.owner.id}/{name}"
            )
        return child

    def spawn(self, name: str) -> int:
        """``host_sandbox_spawn``: a new sandbox of dependency ``name``; its handle."""
        dep = self.dependency(name)
        handle = next(_handles)
        self._handles[handle] = self._open(dep, f"{self.owner.id}/{name}#{handle}")
        return handle

    def handle(self, handle: int) -> Node:
        """The spawned sandbox ``handle``: INVALID_PARAMETER when it is not open in this
        sandbox (never opened, closed, or another sandbox's), CALL_FAILED when it failed
        in an earlier call (close it)."""
        child = self._handles.get(handle)
        if child is None:
            raise HostCallError(
                ErrorCode.INVALID_PARAMETER, f"handle {handle} is not open in this sandbox"
            )
        if child.state not in _CALLABLE:
            raise HostCallError(
                _CALL_FAILED, f"sandbox {handle} failed earlier ({child.receipt().outcome})"
            )
        return child

    def close_handle(self, handle: int) -> None:
        """``host_sandbox_close``: close the spawned sandbox (its receipt stays nested)."""
        child = self._handles.pop(handle, None)
        if child is None:
            raise HostCallError(
                ErrorCode.INVALID_PARAMETER, f"handle {handle} is not open in this sandbox"
            )
        child.close()

    def invoke(
        self, child: Node, function: str, data: bytes, budget: int
    ) -> tuple[int, bytes, int]:
        """Call ``function`` of ``child`` with ``data`` and ``budget`` fuel (what the
        caller has left): (the callee's code, its output, the fuel it used), which the
        caller then charges. HostCallError for a refused or failed call; StopGuest when
        the caller must stop too (its fuel or time ran out in the callee)."""
        key = (id(child.module), function)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _shape(child.module, function)
        if shape:
            raise HostCallError(*shape)
        try:
            results, output, used = child.call_bytes(function, data, max(1, budget))
        except Exception as exc:
            self.owner.bridge.charge(child.call_fuel)
            raise _failed(child, exc) from None
        if results and isinstance(results[0], int) and results[0] < 0:
            return int(results[0]), output, used
        return 0, output, used

    # -- reporting and closing -----------------------------------------------------------

    def receipts(self) -> tuple[Receipt, ...]:
        """The receipts of every callee sandbox this one opened, in order."""
        return tuple(child.receipt() for child in self._children)

    def close(self) -> None:
        """Close every callee sandbox (their receipts stay readable)."""
        self._handles.clear()
        self._by_name.clear()
        for child in self._children:
            child.close()


_CALL_FAILED = ErrorCode.CALL_FAILED
_CALLABLE = (SandboxState.READY, SandboxState.SUSPENDED)


def _shape(module: _Module, function: str) -> tuple[ErrorCode, str] | tuple[()]:
    """() when ``function`` is an export a call can reach, else the code and why not."""
    for export in module.exports:
        if export.name == function:
            if export.params or export.results not in ((), ("i32",)):
                return (
                    ErrorCode.INVALID_PARAMETER,
                    f"{module.name}.{function} has the wrong shape for a call "
                    "(expected () -> () or () -> i32)",
                )
            return ()
    return ErrorCode.NOT_FOUND, f"{module.name} exports no function {function!r}"


def _failed(child: Node, exc: BaseException) -> BaseException:
    """What a failure in ``child`` means for its caller: stop too, or a CALL_FAILED code.

    Fuel and time are the caller's budget: running out of either in the callee stops the
    caller the same way. A callee stopped because its caller was terminated stops the
    caller. Anything else (a trap, a limit of the callee's) is the callee's failure.
    """
    if isinstance(exc, FuelExhausted):
        return StopGuest("fuel", f"fuel ran out in {child.id}")
    if isinstance(exc, TimeoutExceeded):
        return StopGuest("timeout", f"{child.id}: {exc.message}")
    if isinstance(exc, Terminated) and child.lineage_stopped():
        return StopGuest("terminated", f"{child.id}: {exc.message}")
    message = exc.message if isinstance(exc, VudoError) else f"{type(exc).__name__}: {exc}"
    return HostCallError(_CALL_FAILED, f"{child.id} failed: {message}")


__all__ = ["Callee", "Calls", "Node", "Resolver", "dependency_name", "export_name"]
