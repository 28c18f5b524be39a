"""Sandbox configuration values: lifecycle states, resource limits, run settings.

These are plain frozen values with no wasmtime import, so the CLI and the TUI can build
and show them without loading the engine.

:class:`Limits` and :class:`SandboxConfig` are :class:`~typing.NamedTuple` records that
check their fields when constructed, not frozen dataclasses: every ``vudo run`` builds
both, and the ``dataclasses`` module alone (it imports ``inspect``) costs more to import
than the guest takes to run.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each, ~250 fields on a run's path), and this module
# is imported by every ``vudo run``. Annotations naming a later or TYPE_CHECKING-only
# class are quoted.

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from vudo.engine.abi import I64_MAX

if TYPE_CHECKING:
    from vudo.engine.grants import Grant, RevocationList
    from vudo.engine.services import HostServices

DEFAULT_FUEL = 1_000_000_000
MAX_FUEL = I64_MAX
DEFAULT_TIMEOUT = 10.0
#: The longest wall-clock timeout (a year). Longer values on the command line mean this
#: (clamped where they are parsed); beyond it a socket timeout derived from the deadline
#: overflows the C timeval and network calls failed with an internal error.
MAX_TIMEOUT = 365 * 24 * 3600.0
MiB = 1024 * 1024
DEFAULT_MAX_MODULE_SIZE = 16 * MiB


def parse_fuel(text: str) -> int:
    """A fuel amount as a user types it (``--fuel``, the TUI's run and refuel forms): a
    whole number from 1 to :data:`MAX_FUEL`, ``_`` separators allowed. ValueError, with a
    message to show, otherwise."""
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    if value > MAX_FUEL:
        raise ValueError(f"expected at most {MAX_FUEL}, got {text!r}")
    return value


class SandboxState(StrEnum):
    """The sandbox lifecycle (DESIGN.md §2). ``Terminated`` is final."""

    CREATED = "created"
    INITIALIZING = "initializing"
    READY = "ready"
    RUNNING = "running"
    SUSPENDED = "suspended"
    FAILED = "failed"
    TERMINATED = "terminated"


S = SandboxState

#: Every legal transition. Anything else raises :class:`IllegalTransition`.
TRANSITIONS: dict[SandboxState, frozenset[SandboxState]] = {
    S.CREATED: frozenset({S.INITIALIZING, S.TERMINATED}),
    S.INITIALIZING: frozenset({S.READY, S.FAILED, S.TERMINATED}),
    S.READY: frozenset({S.RUNNING, S.TERMINATED}),
    S.RUNNING: frozenset({S.READY, S.SUSPENDED, S.FAILED, S.TERMINATED}),
    S.SUSPENDED: frozenset({S.RUNNING, S.TERMINATED}),
    S.FAILED: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}


class Callee(NamedTuple):
    """A callee as a :attr:`SandboxConfig.dependencies` resolver hands it to the engine
    (see :mod:`vudo.engine.compose`).

    ``name`` is the dependency's name in the caller's manifest; ``wasm`` its verified
    module bytes; ``config`` its own sandbox configuration (identity, grants, trusted
    granters, namespace, services and its own ``dependencies``; the engine replaces fuel,
    limits, timeout and log settings with the caller's); ``peer`` the key a
    ``peer:<key>`` scope of the caller's grant must name (the package's signer).
    """

    name: str
    wasm: bytes
    config: "SandboxConfig"
    peer: str


#: A dependency name -> the callee; raises ``HostCallError`` (NOT_FOUND) when there is none.
Resolver: TypeAlias = "Callable[[str], Callee]"


class _LimitFields(NamedTuple):
    memory_bytes: int = 64 * MiB
    table_elements: int = 10_000
    instances: int = 1
    tables: int = 1
    memories: int = 1
    module_size: int = 16 * MiB
    max_log_bytes: int = 64 * 1024
    max_random_bytes: int = 64 * 1024
    max_storage_key: int = 1024
    max_storage_value: int = 1 * MiB
    max_network_payload: int = 1 * MiB
    max_call_depth: int = 4
    max_callees: int = 16
    max_input_bytes: int = 16 * MiB
    max_output_bytes: int = 16 * MiB
    max_notify_bytes: int = 4 * 1024


class Limits(_LimitFields):
    """Resource limits one sandbox runs under. Every one is enforced by the engine.

    The store-level limits (memory, table elements, instances, tables, memories) go to
    wasmtime's store limiter: instantiation fails, or ``memory.grow`` returns -1, and
    either way the run stops with ResourceLimitExceeded. ``module_size`` is checked before
    compiling. The ``max_*`` payload limits bound a single host call: a guest that passes
    more is stopped with ResourceLimitExceeded naming the limit (it is a runaway, not a
    bad argument). ``max_input_bytes`` bounds the bytes a call is given (more is
    ResourceLimitExceeded before anything runs); ``max_output_bytes`` bounds what one call
    writes to all its output streams together: a write past it writes nothing and
    returns QUOTA_EXCEEDED to the guest (see :mod:`vudo.engine.runio`).

    Spirits calling Spirits (:mod:`vudo.engine.compose`): ``max_call_depth`` bounds how
    many callees deep a chain of calls may go (a top-level Spirit is depth 0),
    ``max_callees`` how many callee sandboxes one sandbox may open over its life
    (dependency sandboxes and spawned ones; the fan-out); both are refused with
    QUOTA_EXCEEDED (the guest keeps running). A callee runs under its caller's limits, so
    a call's input is bounded by ``max_input_bytes`` and its output by
    ``max_output_bytes`` as any call's.
    """

    __slots__ = ()

    if not TYPE_CHECKING:  # type checkers see the fields' own typed constructor

        def __new__(cls, *args: Any, **kwargs: Any) -> "Limits":
            limits = super().__new__(cls, *args, **kwargs)
            for name, value in zip(limits._fields, limits, strict=True):
                # wasmtime's store limiter takes i64s: a bigger value wraps (2**64 -> 0).
                if not isinstance(value, int) or not 0 <= value <= I64_MAX:
                    raise ValueError(
                        f"limit {name} must be an int from 0 to {I64_MAX}, got {value!r}"
                    )
            return limits


class Preopen(NamedTuple):
    """A host directory a WASI guest sees as ``guest`` (``--dir HOST[::GUEST]``).

    ``host`` is an absolute, normalised path; every path call under it needs
    storage_read/write/delete with scope ``path:<host>`` (or a global grant).
    ``read_only`` refuses every change under it with EROFS, whatever the grants say.
    """

    host: str
    guest: str
    read_only: bool = False


_NO_ENV: Mapping[str, str] = MappingProxyType({})


class _ConfigFields(NamedTuple):
    fuel: int = DEFAULT_FUEL
    limits: Limits = Limits()
    timeout: float | None = DEFAULT_TIMEOUT
    grants: "tuple[Grant, ...]" = ()
    trusted_granters: tuple[str, ...] = ()
    identity: str = "00" * 32
    namespace: str = ""
    services: "HostServices | None" = None
    revocations: "RevocationList | None" = None
    host_call_fuel: int = 1_000
    host_byte_fuel: int = 1
    log_to_stderr: bool = True
    min_log_level: int = 0
    grant_clock: Callable[[], float] | None = None
    grant_refresh: "Callable[[], Iterable[Grant]] | None" = None
    argv: tuple[str, ...] = ()
    preopens: tuple[Preopen, ...] = ()
    stdin_fd: int | None = None
    interactive: bool = False
    listeners: tuple[Any, ...] = ()
    input: bytes = b""
    env: Mapping[str, str] = _NO_ENV
    sinks: Mapping[str, Callable[[bytes], None]] | None = None
    dependencies: "Resolver | None" = None
    live: bool = False


class SandboxConfig(_ConfigFields):
    """How one sandbox runs: budget, limits, who it is, what it may do.

    ``identity`` is the 64-hex key the sandbox runs as (a
    :class:`vudo.engine.identity.SpiritIdentity`'s key, or an Ed25519 key): the grantee of
    its ``grants`` (signed :class:`vudo.engine.grants.Grant` values; only grants signed by
    one of ``trusted_granters`` count), its credit account
    (:func:`~vudo.engine.identity.credit_account` of it) and, unless ``namespace`` names
    another, its storage namespace. ``services`` bundles storage, ledger, network,
    clock and randomness; without it, time and random use the OS and storage, credit and
    network calls return their service's error code. ``host_call_fuel`` and
    ``host_byte_fuel`` price host calls in fuel (per call and per payload byte).
    ``log_to_stderr`` copies guest logs to stderr (the CLI default; tests and the TUI turn
    it off and subscribe to events instead); messages below ``min_log_level`` are dropped.
    ``revocations`` is read live on every check; ``grant_clock`` (Unix seconds, default
    ``time.time``) decides grant expiry, on every check. ``grant_refresh``, when given,
    returns the sandbox's complete current grants (the project layer reads them from the
    store, so `vudo revoke` in another process reaches a running sandbox): the checker
    polls it at most every half second on the host-call path and swaps the answer in
    (see :class:`vudo.engine.grants.GrantChecker`); ``grants`` is the answer at start.
    ``argv`` is a WASI program's argv (its name first) and ``preopens`` the host
    directories it sees (:mod:`vudo.engine.wasi`); its stdin is the call's ``input``
    unless ``stdin_fd`` names a host file descriptor to stream it from (``vudo run
    --stdin``: reads wait at most until the deadline); ``interactive`` makes its stdio
    look like a terminal (wasi-libc then line-buffers stdout). ``listeners`` are
    listening sockets handed to a WASI program as fds after its preopens (what
    wasmtime's ``--tcplisten`` does); it accepts on them with network_listen.

    ``input`` is the bytes each call is given (``host_input_read``, WASI stdin) unless
    the call passes its own; ``env`` the variables ``host_env_get`` (and WASI's environ)
    may read, with ``sensor_environment``: only these, never the host's environment.
    Names are non-empty and hold no ``=`` or NUL, values no NUL. ``sinks`` maps an
    output stream (``"output"``; WASI adds ``"stdout"``, ``"stderr"``) to a callable
    given its bytes as they are written (see :mod:`vudo.engine.runio`).
    ``dependencies``, when given, resolves the names a Spirit may call with
    ``host_spirit_call`` and ``host_sandbox_spawn`` (its manifest's dependencies, see
    :mod:`vudo.engine.compose`); without it every such call is NOT_FOUND.

    ``live`` (the workbench) runs each call so the run thread gets control back every
    :data:`~vudo.engine.sandbox.FUEL_SLICE` units of fuel: fuel samples then move while
    the guest computes without calling the host, and running out of fuel suspends the
    call in place: :meth:`~vudo.engine.sandbox.Sandbox.refuel` continues the same call
    where it stopped (side effects happen once), instead of raising FuelExhausted for a
    call that restarts. A live call blocks until refuelled or terminated. Without it
    (``vudo run``, embedders) calls are plain wasmtime calls: the fastest path, and
    running out of fuel is wasmtime's exact trap.
    """

    __slots__ = ()

    if not TYPE_CHECKING:  # type checkers see the fields' own typed constructor

        def __new__(cls, *args: Any, **kwargs: Any) -> "SandboxConfig":
            config = super().__new__(cls, *args, **kwargs)
            if not isinstance(config.fuel, int) or not 0 < config.fuel <= MAX_FUEL:
                raise ValueError(
                    f"fuel must be a positive int up to {MAX_FUEL}, got {config.fuel!r}"
                )
            # NaN compares false both ways: it would silently mean "no timeout".
            if config.timeout is not None and not 0 < config.timeout <= MAX_TIMEOUT:
                raise ValueError(
                    f"timeout must be positive, finite seconds up to "
                    f"{MAX_TIMEOUT}, got {config.timeout!r}"
                )
            if not _is_key(config.identity):
                raise ValueError(
                    f"identity must be a 64-hex Ed25519 public key, got {config.identity!r}"
                )
            for name in ("host_call_fuel", "host_byte_fuel"):
                if getattr(config, name) < 0:
                    raise ValueError(f"{name} must not be negative")
            if not isinstance(config.input, bytes):
                raise ValueError(f"input must be bytes, got {type(config.input).__name__}")
            if config.env:
                config = config._replace(env=MappingProxyType(check_env(config.env)))
            return config


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` after checking every name and value (ValueError otherwise)."""
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ValueError(f"environment variable name {name!r} is empty or has = or NUL")
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"environment variable {name} must be a string without NUL")
        checked[name] = value
    return checked


def _is_key(text: str) -> bool:
    if not isinstance(text, str) or len(text) != 64:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
