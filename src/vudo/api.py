"""Spirits as plugins: call a Spirit from Python with bytes in and bytes out.

::

    import vudo

    with vudo.load("examples/upper") as spirit:
        print(spirit.call("main", "hello").decode())    # HELLO
        print(spirit.receipt().fuel_used)

:func:`load` takes what ``vudo run`` takes, resolved the same way
(:func:`vudo.project.runner.resolve_target`): a ``.wasm``/``.wat`` file, a project
directory (built first when stale), a ``.spirit`` package (verified), or the name of an
installed Spirit (it runs with the grants stored when the user consented). A
:class:`pathlib.Path` is always a path; a bare string without ``/`` or a suffix is an
installed name, as on the command line.

What the Spirit may do is what ``vudo run`` would let it, plus ``grants`` (``"CAP"`` or
``"CAP=SCOPE"``, signed with the user's key in the vudo home, as ``--grant`` is), minus
``deny``. ``env`` is the variables it may read (giving any grants
``sensor_environment``, as ``--env`` does). ``host_functions`` are the application's own
(:class:`vudo.engine.custom.HostFunctions`); their custom capabilities (``x:app.name``)
are granted through ``grants`` like built-in ones, and :attr:`Spirit.requested` lists
every capability the module's imports need, for the application to show when it asks its
user.

:meth:`Spirit.call` gives a call its input (``bytes``, or ``str`` as UTF-8) and returns
the bytes the Spirit wrote with ``host_output_write``; :meth:`Spirit.call_json` sends
and receives JSON. The sandbox lives until :meth:`Spirit.close` (a context manager), so
repeated calls reuse the instance. Failures raise :class:`vudo.errors.VudoError`: a trap
(GuestTrap), fuel (FuelExhausted: :meth:`Spirit.refuel`, then call again), timeout or a
limit, each with its exit code; bad arguments UsageError.

Importing this module loads the engine and the runner; ``import vudo`` does not (its
``vudo.load`` imports this module on first use).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vudo.capabilities import AnyCapability, parse_any_capability
from vudo.engine import Engine, Limits
from vudo.engine.config import check_env
from vudo.engine.custom import HostFunctions
from vudo.engine.events import Event
from vudo.engine.receipt import Receipt
from vudo.errors import InvalidInputError, UsageError
from vudo.home import cache_dir, vudo_home
from vudo.project.runner import (
    RunHandle,
    RunOptions,
    RunTarget,
    parse_dir_spec,
    resolve_target,
)

__all__ = ["Spirit", "load"]


class Spirit:
    """A loaded, instantiated Spirit (see :func:`load`). Close it, or use ``with``."""

    def __init__(self, handle: RunHandle, engine: Engine | None) -> None:
        self._handle = handle
        self._engine = engine  # ours to close (None: the caller's)
        self.sandbox = handle.sandbox
        self.results: tuple[Any, ...] = ()

    # -- calling -------------------------------------------------------------------

    def call(
        self, function: str = "main", input: bytes | str | None = None, *args: int | float
    ) -> bytes:
        """Call ``function`` with ``input`` (and numeric ``args`` for its parameters);
        returns what it wrote with ``host_output_write``. Its return values are
        :attr:`results`."""
        if isinstance(input, str):
            data = input.encode("utf-8")
        elif input is None:
            data = b""
        elif isinstance(input, bytes | bytearray | memoryview):
            data = bytes(input)
        else:
            raise UsageError(
                f"a call's input is bytes or str, got {type(input).__name__}",
                hint="use call_json for other values",
            )
        self.results = tuple(self.sandbox.call(function, list(args), input=data))
        return self.sandbox.output()

    def run(self, input: bytes | str | None = None) -> bytes:
        """Run a WASI command (``_start``) with ``input`` as its stdin; returns what it
        wrote to stdout (:attr:`stderr` and :attr:`exit_code` say the rest). A non-zero
        ``proc_exit`` status is :class:`vudo.engine.traps.ProcessExit` (``.code``)."""
        self.call("_start", input)
        return self.stdout

    @property
    def stdout(self) -> bytes:
        """What a WASI program wrote to its stdout in the last call."""
        return self.sandbox.output("stdout")

    @property
    def stderr(self) -> bytes:
        return self.sandbox.output("stderr")

    @property
    def exit_code(self) -> int | None:
        """A WASI program's ``proc_exit`` status (None: it has not called it)."""
        return self.sandbox.exit_code

    def call_json(self, function: str = "main", value: Any = None, *args: int | float) -> Any:
        """:meth:`call` with ``value`` as JSON input; the output parsed as JSON (None when
        the Spirit wrote nothing). Output that is not JSON is an InvalidInputError."""
        output = self.call(function, json.dumps(value, allow_nan=False), *args)
        if not output:
            return None
        try:
            return json.loads(output)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
            raise InvalidInputError(
                f"{function} wrote output that is not JSON: {exc}",
                hint="use call() for the raw bytes",
            ) from None

    def refuel(self, amount: int) -> None:
        """Add fuel after FuelExhausted; then call again."""
        self.sandbox.refuel(amount)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Receive the sandbox's events (host calls, logs, notifications, output);
        returns the function that unsubscribes."""
        return self.sandbox.subscribe(callback)

    # -- what it is and may do -------------------------------------------------------

    @property
    def target(self) -> RunTarget:
        return self._handle.target

    @property
    def identity(self) -> str:
        """The 64-hex key it runs as (its storage, its credit account, its grants)."""
        return self.sandbox.config.identity

    @property
    def granted(self) -> tuple[tuple[str, str], ...]:
        """(capability, scope) pairs this Spirit holds."""
        return self._handle.prepared.granted

    @property
    def requested(self) -> tuple[AnyCapability, ...]:
        """Every capability its imports need (built-in and the application's own)."""
        from vudo.engine.abi import IMPORT_CAPABILITIES  # lazy: only when asked

        custom = self._handle.engine.host_functions
        caps: dict[AnyCapability, None] = {}
        for name in self.sandbox.module.imports:
            cap: AnyCapability | None = IMPORT_CAPABILITIES.get(name)
            if cap is None and custom is not None:
                module, _, function = name.partition(".")
                defined = custom.get(module, function)
                cap = defined.capability if defined is not None else None
            if cap is not None:
                caps[cap] = None
        return tuple(caps)

    @property
    def limits(self) -> Limits:
        """The limits it runs under (input and output sizes among them)."""
        return self.sandbox.config.limits

    @property
    def exports(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.sandbox.module.exports)

    def receipt(self) -> Receipt:
        """The receipt so far (all calls), priced under the manifest's [pricing]."""
        return self._handle.receipt()

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        self._handle.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Spirit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Spirit {self.target.label} {self.sandbox.state.value}>"


def load(
    source: str | os.PathLike[str],
    *,
    grants: Iterable[str] = (),
    deny: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    fuel: int | None = None,
    timeout: float | None = None,
    limits: Limits | None = None,
    host_functions: HostFunctions | None = None,
    engine: Engine | None = None,
    home: Path | None = None,
    log_to_stderr: bool = False,
    cwd: Path | None = None,
    args: Sequence[str] = (),
    dirs: Iterable[str] = (),
    ro_dirs: Iterable[str] = (),
) -> Spirit:
    """Load and instantiate a Spirit (see the module doc); the caller closes it.

    ``engine``: share one across many Spirits (its ``host_functions`` then apply and
    ``host_functions`` here must be None); otherwise one is made (and closed with the
    Spirit) on the home's module cache. ``limits`` replaces the default limits.
    For a WASI program: ``args`` are its argv after its name, ``dirs``/``ro_dirs`` the
    directories it may use (``HOST[::GUEST]``, as ``vudo run --dir``/``--ro-dir``:
    each the grant of storage on ``path:HOST``); :meth:`Spirit.run` runs it.
    ``log_to_stderr`` copies the guest's logs and notifications to stderr (off: they are
    events only).
    """
    home = Path(home) if home is not None else vudo_home()
    spec = str(Path(source).absolute()) if isinstance(source, os.PathLike) else str(source)
    if engine is not None and host_functions is not None:
        raise UsageError(
            "pass host_functions or an engine, not both",
            hint="create the engine with Engine(host_functions=...)",
        )
    try:
        variables = check_env(env or {})
    except ValueError as exc:
        raise UsageError(str(exc), hint="pass env as a mapping of names to strings") from None
    options = RunOptions(
        args=tuple(args),
        fuel=fuel,
        timeout=timeout,
        grant=tuple(grants),
        deny=tuple(deny),
        env=tuple(variables.items()),
        limits=limits,
        dirs=tuple(parse_dir_spec(d) for d in dirs)
        + tuple(parse_dir_spec(d, read_only=True) for d in ro_dirs),
    )
    _check_words(options.grant, options.deny)
    own = None
    if engine is None:
        own = engine = Engine(cache_dir=cache_dir(home), host_functions=host_functions)
    try:
        target = resolve_target(spec, cwd=cwd or Path.cwd(), home=home)
        handle = RunHandle(
            target, options, home=home, engine=engine, log_to_stderr=log_to_stderr, entry=False
        )
    except BaseException:
        if own is not None:
            own.close()
        raise
    spirit = Spirit(handle, own)
    try:
        handle.sandbox.instantiate()
    except BaseException:
        spirit.close()
        raise
    return spirit


def _check_words(grant: Sequence[str], deny: Sequence[str]) -> None:
    """Every grant and deny word parses before anything is loaded (InvalidInputError)."""
    # lazy: engine.grants (~20 ms) on open(), not on `import vudo.api`
    from vudo.engine.grants import parse_grant_spec

    for word in grant:
        parse_grant_spec(word)
    for word in deny:
        parse_any_capability(word.strip())
