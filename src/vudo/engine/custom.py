"""Host functions an application defines in Python, checked like the built-in ones.

An application that embeds vudo gives its Spirits functions of its own::

    from vudo.engine.custom import HostContext, HostFunctions

    host = HostFunctions()

    @host.function("myapp", "lookup", params=("i32", "i32"), capability="x:myapp.lookup")
    def lookup(ctx: HostContext, ptr: int, length: int) -> int:
        key = ctx.read_text(ptr, length)
        return len(key)

    engine = Engine(host_functions=host)   # or vudo.load(..., host_functions=host)

A Spirit then imports ``(import "myapp" "lookup" (func (param i32 i32) (result i32)))``.
Each call goes through the same steps as a built-in host function
(:mod:`vudo.engine.host`): it is charged ``fuel`` (and the byte fuel of what the
function reads or writes through its :class:`HostContext`), its capability is checked
against the sandbox's signed grants (denied: ``CAPABILITY_DENIED``, and the function is
not called), and it is counted in the receipt under its capability (``"custom"`` when it
needs none), logged in the host-call log and sent as a ``HostCall`` event as
``"<module>.<name>"``.

Rules, each checked when the function is defined (a :class:`~vudo.errors.UsageError` to
the embedder otherwise):

* ``module`` is the application's own import module: lower-case letters, digits, ``_``
  and ``-`` (at most 32), not ``vudo`` and not starting with ``wasi`` (those belong to
  the Spirit ABI and WASI); ``name`` is an identifier; a (module, name) pair is defined
  once.
* parameters are ``i32``, ``i64``, ``f32`` or ``f64`` (at most 16); the one result is
  ``i32`` or ``i64``, so an error can reach the guest as an ABI error code.
* ``capability`` is None (anyone may call it), a built-in capability name (not
  ``unrestricted``), or a custom one: ``x:``, the module, then one to three more
  dot-separated lower-case words (:data:`vudo.capabilities.CUSTOM_CAPABILITY`), e.g.
  ``x:myapp.lookup``. No built-in name has a colon, so a custom capability can never
  collide with one, and naming it after its module ties a plugin to its application: a
  Spirit whose manifest declares ``x:myapp.lookup`` may import from module ``myapp``
  (``vudo build`` lets it), and ``vudo install`` shows it at consent. It is granted like
  a built-in (a signed grant naming it; ``vudo.load(grants=[...])``, ``vudo grant``).
* ``fuel`` is the price of one call, a non-negative int.

What the function may do: return an int (the guest's result; it must fit the result
type), raise :class:`vudo.engine.abi.HostCallError` to return that error code, or use its
:class:`HostContext` to read and write guest memory (out of range: ``INVALID_MEMORY``).
Any other exception is a bug of the application, not the guest's fault: the guest gets
``INTERNAL_ERROR``, the host-call log notes the exception, and the host keeps running.

The function runs on the guest's thread, inside the call: the wall-clock timeout and
``terminate()`` take effect when it returns, so it should be quick (do slow work
elsewhere and let the guest poll), and it must not call back into the same sandbox
(that is an IllegalTransition, so the guest would get ``INTERNAL_ERROR``).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from vudo.capabilities import AnyCapability, Capability, parse_any_capability
from vudo.engine.abi import HOST_MODULE, INT_RANGES, ErrorCode, HostCallError
from vudo.errors import InvalidInputError, UsageError

_MODULE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
PARAM_TYPES = ("i32", "i64", "f32", "f64")
RESULT_TYPES = ("i32", "i64")
MAX_PARAMS = 16
#: Receipt key of the calls to custom host functions that need no capability.
NO_CAPABILITY_COUNTER = "custom"


class HostFunction(NamedTuple):
    """One host function defined by the application (see the module doc)."""

    module: str
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    capability: AnyCapability | None
    fuel: int
    func: Callable[..., int]

    @property
    def label(self) -> str:
        """How the host-call log and events name it: ``"<module>.<name>"``."""
        return f"{self.module}.{self.name}"


class HostFunctions:
    """An application's host functions, given to an :class:`~vudo.engine.Engine`.

    Define every function before the engine is created: the engine links them once, and
    the set is closed from then on (defining more raises UsageError).
    """

    def __init__(self) -> None:
        self._functions: dict[tuple[str, str], HostFunction] = {}
        self._closed = False

    def define(
        self,
        module: str,
        name: str,
        func: Callable[..., int],
        *,
        params: tuple[str, ...] | list[str] = (),
        result: str = "i32",
        capability: str | None = None,
        fuel: int = 1_000,
    ) -> HostFunction:
        """Define ``module.name`` as ``func(ctx, *params) -> int``; UsageError if bad."""
        if self._closed:
            raise UsageError(
                f"cannot define {module}.{name}: these host functions are already linked "
                "into an engine",
                hint="define every host function before creating the Engine (or vudo.load)",
            )
        where = f"host function {module!s:.64}.{name!s:.64}"
        if not isinstance(module, str) or not _MODULE.fullmatch(module):
            raise UsageError(
                f"{where}: bad import module name {module!r}",
                hint="lower-case letters, digits, _ and -, starting with a letter (e.g. myapp)",
            )
        if module == HOST_MODULE or module.startswith("wasi"):
            raise UsageError(
                f'{where}: the import module "{module}" is reserved',
                hint='"vudo" is the Spirit ABI and "wasi*" is WASI; use your application\'s '
                "own name",
            )
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(f"{where}: bad function name {name!r}", hint="use an identifier")
        if (module, name) in self._functions:
            raise UsageError(f"{where} is already defined", hint="define each (module, name) once")
        if not callable(func):
            raise UsageError(f"{where}: {func!r} is not callable")
        params = tuple(params)
        bad = [p for p in params if p not in PARAM_TYPES]
        if bad or len(params) > MAX_PARAMS:
            raise UsageError(
                f"{where}: unsupported parameter type(s) {', '.join(map(repr, bad))}"
                if bad
                else f"{where}: more than {MAX_PARAMS} parameters",
                hint=f"parameters are {', '.join(PARAM_TYPES)} (at most {MAX_PARAMS})",
            )
        if result not in RESULT_TYPES:
            raise UsageError(
                f"{where}: unsupported result type {result!r}",
                hint="the result is i32 or i64, so errors can reach the guest as error codes",
            )
        if isinstance(fuel, bool) or not isinstance(fuel, int) or fuel < 0:
            raise UsageError(f"{where}: fuel must be a non-negative int, got {fuel!r}")
        cap: AnyCapability | None = None
        if capability is not None:
            try:
                cap = parse_any_capability(capability)
            except InvalidInputError as exc:
                raise UsageError(f"{where}: {exc.message}", hint=exc.hint) from None
            if cap is Capability.UNRESTRICTED:
                raise UsageError(
                    f"{where}: cannot be guarded by unrestricted",
                    hint=f'name a capability of its own, e.g. "x:{module}.{name.lower()}"',
                )
            if not isinstance(cap, Capability) and not cap.startswith(f"x:{module}."):
                raise UsageError(
                    f'{where}: its custom capability "{cap}" is not named after its module',
                    hint=f'name it "x:{module}.<word>": a plugin\'s manifest that declares '
                    f'it may then import from "{module}"',
                )
        fn = HostFunction(module, name, params, (result,), cap, fuel, func)
        self._functions[(module, name)] = fn
        return fn

    def function(
        self,
        module: str,
        name: str | None = None,
        *,
        params: tuple[str, ...] | list[str] = (),
        result: str = "i32",
        capability: str | None = None,
        fuel: int = 1_000,
    ) -> Callable[[Callable[..., int]], Callable[..., int]]:
        """Decorator form of :meth:`define` (``name`` defaults to the function's name)."""

        def register(func: Callable[..., int]) -> Callable[..., int]:
            self.define(
                module,
                name if name is not None else func.__name__,
                func,
                params=params,
                result=result,
                capability=capability,
                fuel=fuel,
            )
            return func

        return register

    def get(self, module: str, name: str) -> HostFunction | None:
        return self._functions.get((module, name))

    def capabilities(self) -> tuple[AnyCapability, ...]:
        """The capabilities that guard these functions (each once, in definition order)."""
        return tuple(dict.fromkeys(f.capability for f in self if f.capability is not None).keys())

    def close(self) -> None:
        """No more definitions (an engine linked these)."""
        self._closed = True

    def __iter__(self) -> Iterator[HostFunction]:
        return iter(tuple(self._functions.values()))

    def __len__(self) -> int:
        return len(self._functions)


class HostContext:
    """What a Python host function can do with the guest that called it.

    Reads and writes are bounds-checked against the guest's memory
    (``HostCallError(INVALID_MEMORY)`` otherwise, which the guest gets as its result),
    charged ``host_byte_fuel`` per byte and counted in the receipt's bytes in/out.
    """

    __slots__ = ("_bridge", "fuel")

    def __init__(self, bridge: Any) -> None:  # a vudo.engine.host.HostBridge
        self._bridge = bridge
        self.fuel = 0  # byte fuel charged during the current call

    @property
    def sandbox_id(self) -> str:
        return str(self._bridge.sandbox_id)

    @property
    def identity(self) -> str:
        """The 64-hex identity key of the Spirit calling (whose storage, whose grants)."""
        return str(self._bridge.identity)

    def _charge(self, size: int) -> None:
        amount = size * self._bridge.byte_fuel
        self._bridge.charge(amount)
        self.fuel += amount

    def read(self, ptr: int, length: int) -> bytes:
        """Guest memory [ptr, ptr+length)."""
        bridge = self._bridge
        if not 0 <= ptr <= 0xFFFFFFFF or not 0 <= length <= 0xFFFFFFFF:
            raise HostCallError(ErrorCode.INVALID_MEMORY, f"bad range {ptr}+{length}")
        if bridge.writable(ptr, length) is None:
            raise HostCallError(ErrorCode.INVALID_MEMORY, f"{ptr}+{length} is outside memory")
        self._charge(length)
        data: bytes | None = bridge.read(ptr, length)
        if data is None:  # memory never shrinks; kept for safety
            raise HostCallError(ErrorCode.INVALID_MEMORY, f"{ptr}+{length} is outside memory")
        bridge.bytes_out += length
        return data

    def read_text(self, ptr: int, length: int) -> str:
        """Guest memory [ptr, ptr+length) as UTF-8 (INVALID_PARAMETER if it is not)."""
        try:
            return self.read(ptr, length).decode("utf-8")
        except UnicodeDecodeError:
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "not UTF-8") from None

    def write(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` into guest memory at ``ptr``."""
        bridge = self._bridge
        length = len(data)
        address = (
            bridge.writable(ptr, length)
            if 0 <= ptr <= 0xFFFFFFFF and length <= 0xFFFFFFFF
            else None
        )
        if address is None:
            raise HostCallError(ErrorCode.INVALID_MEMORY, f"{ptr}+{length} is outside memory")
        self._charge(length)
        ctypes.memmove(address, bytes(data), length)
        bridge.bytes_in += length


def fits(result: Any, kind: str) -> bool:
    """Whether a Python function's return value is an int the result type can carry."""
    if isinstance(result, bool) or not isinstance(result, int):
        return False
    low, high = INT_RANGES[kind]
    return low <= result <= high
