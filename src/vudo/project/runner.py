"""``vudo run``: find what to run, grant it what it may do, run it, report the receipt.

A run target is a project directory (built first when stale), a ``.wasm``/``.wat`` file,
a ``.spirit`` package (verified before anything runs), or the name of an installed
Spirit. What the sandbox may do depends on where the Spirit came from:

* a project: the capabilities its manifest declares (you wrote it);
* an installed Spirit: the grants stored when you consented at install;
* a loose module or package file: nothing unless you ``--grant`` it.

``--grant``/``--deny`` adjust that for one run. Every grant is signed with the user's key
(``~/.vudo/keys``) for the run's identity, so the engine checks real signatures.

Every run has exactly one :class:`~vudo.engine.identity.SpiritIdentity` (DESIGN.md §2), and
its storage namespace, credit account and the grantee of its grants all derive from it: an
installed Spirit or a ``.spirit`` file is (signer, name), a project is its real path, a loose
module is its digest. A name the Spirit chose (manifest name, file stem) decides nothing.

The values here are :class:`~typing.NamedTuple` records rather than frozen dataclasses:
they are just as immutable and slotted, but several times cheaper to define, and this
module is imported by every ``vudo run``.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each), and this module is on every ``vudo run``
# path (see vudo.engine.config). Annotations naming a later or TYPE_CHECKING-only class
# are quoted.

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vudo.capabilities import AnyCapability, Capability, parse_any_capability
from vudo.engine import Engine, Limits, Sandbox, SandboxConfig
from vudo.engine.abi import I64_MAX
from vudo.engine.config import Preopen
from vudo.engine.engine import wasm_bytes
from vudo.errors import (
    InvalidInputError,
    NotFoundError,
    RuntimeFailure,
    UsageError,
    VudoError,
    from_os_error,
)
from vudo.home import cache_dir, data_dir
from vudo.project.compose import DependencyResolver, installed_resolver, project_resolver
from vudo.project.layout import Progress, no_progress, open_project

if TYPE_CHECKING:
    from vudo.engine import SpiritModule
    from vudo.engine.events import Event
    from vudo.engine.grants import Grant
    from vudo.engine.identity import SpiritIdentity
    from vudo.engine.receipt import Receipt
    from vudo.engine.services import HostServices
    from vudo.pkg.manifest import Manifest
    from vudo.pkg.pricing import Pricing

#: Host functions that need the persistent services (storage, ledger, network).
_SERVICE_PREFIXES = ("host_storage_", "host_credit_", "host_network_")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}


def parse_size(text: str) -> int:
    """``64MiB``, ``512k``, ``1GB``, ``65536`` -> bytes (binary for K/M/G and KiB/MiB/GiB)."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(f'invalid size "{text}"', hint="use a number with B, KiB, MiB or GiB")
    exact = float(match.group(1)) * _UNITS[unit]
    if exact != int(exact):
        raise UsageError(
            f'size "{text}" is not a whole number of bytes',
            hint="a size without a unit is in bytes: write e.g. 512MiB or 1GiB",
        )
    size = int(exact)
    if size > I64_MAX:  # wasmtime's limiter takes an i64: 2**64 bytes would become 0
        raise UsageError(
            f'size "{text}" is too large',
            hint="a wasm32 memory holds at most 4GiB; pass that or less",
        )
    return size


class RunTarget(NamedTuple):
    """A resolved, loadable Spirit and what it is entitled to by default."""

    kind: str  # "project" | "module" | "package" | "installed"
    label: str
    name: str
    wasm: bytes
    manifest: "Manifest | None" = None
    default_capabilities: tuple[AnyCapability, ...] = ()
    stored_grants: "tuple[Grant, ...]" = ()
    asked_capabilities: tuple[AnyCapability, ...] = ()
    signer: str | None = None
    built: bool = False
    identity: "SpiritIdentity | None" = None  # None: the module's digest (see run_identity)
    pricing: "Pricing | None" = None  # what a run costs (the manifest's [pricing])
    directories: tuple[str, ...] = ()  # the manifest's WASI data directories


class RunOptions(NamedTuple):
    """Per-run settings (all optional): the CLI's flags and the TUI's run form."""

    function: str | None = None
    args: tuple[str, ...] = ()
    fuel: int | None = None
    timeout: float | None = None
    memory: int | None = None
    grant: tuple[str, ...] = ()  # "CAP" or "CAP=SCOPE"
    deny: tuple[str, ...] = ()
    input: bytes = b""  # the call's input bytes (--input)
    #: variables the run may read (--env K=V): giving any is the user's grant of
    #: sensor_environment for this run, as --grant would be (--deny still withholds it)
    env: tuple[tuple[str, str], ...] = ()
    limits: Limits | None = None  # the limits to start from (--memory then replaces one)
    #: WASI preopens (--dir/--ro-dir, see :func:`parse_dir_spec`): each is the user's
    #: grant of storage_read (and, unless read-only, storage_write and storage_delete)
    #: with scope ``path:<host dir>`` for this run
    dirs: tuple[Preopen, ...] = ()
    stdin_fd: int | None = None  # --stdin: a WASI program's stdin streams from this fd
    interactive: bool = False  # stdio is a terminal (wasi-libc line-buffers stdout)
    #: live fuel and refuel-and-continue (the workbench; see SandboxConfig.live)
    live: bool = False


_NO_OPTIONS = RunOptions()


class RunResult(NamedTuple):
    """The outcome: results (when it returned), the receipt, and what was granted."""

    target: RunTarget
    function: str
    args: tuple[Any, ...]
    results: tuple[Any, ...]
    receipt: "Receipt"
    granted: tuple[tuple[str, str], ...]  # (capability, scope)
    not_granted: tuple[str, ...]  # asked for by the manifest but not granted this run
    error: RuntimeFailure | None = None
    output: bytes = b""  # what the call wrote with host_output_write (unless streamed)
    wasi: bool = False  # a WASI program (its stdout/stderr, exit status)
    stdout: bytes = b""  # what a WASI program wrote to its stdout (unless streamed)
    stderr: bytes = b""

    @property
    def identity(self) -> "SpiritIdentity":
        """Who the run was: its storage, account and grants all belong to this identity."""
        return run_identity(self.target)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """``vudo run --json``: what ran, as whom, its results and output (text, or base64
        per ``output_encoding``), the grants, the receipt and the failure, if any; a WASI
        program adds its streams and exit status."""
        receipt = self.receipt.to_dict()
        text, encoding = _output_json(self.output)
        doc: dict[str, Any] = {
            "spirit": self.target.label,
            "kind": self.target.kind,
            "identity": {"kind": self.identity.kind, "key": self.identity.key},
            "function": self.function,
            "args": list(self.args),
            "results": receipt["results"],
            "output": text,
            "output_encoding": encoding,
            "granted": [{"capability": c, "scope": s} for c, s in self.granted],
            "not_granted": list(self.not_granted),
            "receipt": receipt,
            "error": None if self.error is None else self.error.to_json(),
        }
        if self.wasi:
            out_text, out_encoding = _output_json(self.stdout)
            err_text, err_encoding = _output_json(self.stderr)
            doc.update(
                stdout=out_text,
                stdout_encoding=out_encoding,
                stderr=err_text,
                stderr_encoding=err_encoding,
                exit_code=self.receipt.exit_code,
            )
        return doc


def _output_json(data: bytes) -> tuple[str, str]:
    """Bytes for JSON: (text, "utf-8") when they decode, else (base64, "base64")."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        import base64  # lazy: base64 (~1 ms) only for output that is not UTF-8

        return base64.b64encode(data).decode("ascii"), "base64"


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or spec in (".", "..") or spec.endswith((".wasm", ".wat", ".spirit"))


def resolve_target(
    spec: str,
    *,
    cwd: Path,
    home: Path,
    progress: Progress = no_progress,
    build: bool = True,
    trust: Callable[[Path], None] | None = None,
) -> RunTarget:
    """Turn the ``SPIRIT`` argument into a :class:`RunTarget` (building a stale project).

    A bare name (no ``/``, not ``.``/``..``, no .wasm/.wat/.spirit suffix) is an installed
    Spirit; anything else is a path (DESIGN.md §2). ``trust`` is called with a project's
    root before it is built or run (:mod:`vudo.project.workspace`); it raises to refuse.
    """
    path = (cwd / spec) if not Path(spec).is_absolute() else Path(spec)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as exc:  # ENAMETOOLONG and the like: no such path can exist
        from vudo.pkg.manifest import shown_name, validate_name  # lazy: error path only

        if not _looks_like_path(spec):
            validate_name(spec, what="Spirit name")
        raise InvalidInputError(
            f'"{shown_name(spec)}" is not a usable path: {exc.strerror}', hint="pass a shorter path"
        ) from None
    if not _looks_like_path(spec):
        # A bare name means the installed Spirit, never a folder that happens to be here
        # (a `wallet/` checkout must not stand in for the installed `wallet`).
        try:
            return installed_target(spec, home=home)
        except NotFoundError:
            if not (is_dir or is_file):
                raise
        what = "project" if is_dir and _has_manifest(path) else "folder" if is_dir else "file"
        raise NotFoundError(
            f'no Spirit named "{spec}" is installed',
            hint=f"to run the {what} {spec} here, name it as a path: `vudo run ./{spec}`",
        )
    if is_dir:
        return project_target(path, progress=progress, build=build, trust=trust)
    if is_file:
        if path.suffix == ".spirit":
            return package_target(path)
        if path.name in ("spirit.toml", "manifest.toml", "manifest.json"):
            # The manifest names its project (it is not WAT, as the module reader says).
            return project_target(path.parent, progress=progress, build=build, trust=trust)
        wasm = wasm_bytes(path)
        return RunTarget(
            kind="module",
            label=str(spec),
            name=_module_name(path),
            wasm=wasm,
            identity=_identity().module(wasm),
        )
    raise NotFoundError(
        f"no Spirit at {spec}",
        hint="pass a project directory, a .wasm/.wat file, a .spirit package, "
        "or the name of an installed Spirit (`vudo list`)",
    )


def _identity() -> "type[SpiritIdentity]":
    from vudo.engine.identity import SpiritIdentity  # lazy: nacl only when one is made

    return SpiritIdentity


def run_identity(target: RunTarget) -> "SpiritIdentity":
    """The identity ``target`` runs as: its own, else (a hand-made target) its module's."""
    return target.identity if target.identity is not None else _identity().module(target.wasm)


def _has_manifest(path: Path) -> bool:
    return any((path / n).is_file() for n in ("spirit.toml", "manifest.toml", "manifest.json"))


def _module_name(path: Path) -> str:
    stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-")
    return stem or "spirit"


def project_target(
    root: Path, *, progress: Progress, build: bool, trust: Callable[[Path], None] | None = None
) -> RunTarget:
    """A project, built first when its inputs changed since the last build; ``trust``
    (the workspace-trust gate) sees the folder before anything of it is built or run.

    What the build checked (the manifest's name, capabilities and pricing) comes from its
    stamp, so an up-to-date project runs without parsing its manifest: that parse (and
    tomlkit) would cost more than the run itself.
    """
    from vudo.project.layout import current_build  # lazy: only for project runs

    if trust is not None:
        trust(Path(root).resolve())
    stamp = current_build(root)
    built = False
    if stamp is None:
        project = open_project(root)
        if not build:
            raise NotFoundError(
                f"{project.name} is not built", hint=f"run `vudo build --path {root}`"
            )
        from vudo.project.build import build_project  # lazy: only when it must build

        progress(f"building {project.name}")
        build_project(root, progress=progress)
        built = True
        stamp = current_build(root)
        if stamp is None:  # changed again while it built
            raise NotFoundError(
                f"{project.name} changed while it was built", hint="run the command again"
            )
    caps = tuple(parse_any_capability(c) for c in stamp.capabilities)
    pricing = None
    if stamp.pricing is not None:
        from vudo.pkg.pricing import Pricing  # lazy: only with [pricing]

        pricing = Pricing(**stamp.pricing)
    return RunTarget(
        kind="project",
        label=str(root),
        name=stamp.name,
        wasm=stamp.data,
        default_capabilities=caps,
        asked_capabilities=caps,
        built=built,
        pricing=pricing,
        identity=_identity().project(root),
        directories=stamp.directories,
    )


def package_target(path: Path) -> RunTarget:
    """A ``.spirit`` file, verified; it runs with no capabilities unless granted."""
    from vudo.pkg.signing import verify_package  # lazy: nacl only for .spirit runs

    verified = verify_package(path)
    manifest = verified.manifest
    return RunTarget(
        kind="package",
        label=str(path),
        name=manifest.name,
        wasm=verified.module,
        manifest=manifest,
        asked_capabilities=tuple(manifest.capabilities),
        signer=verified.signer,
        pricing=manifest.pricing,
        identity=_identity().installed(verified.signer, manifest.name),
        directories=manifest.directories,
    )


def installed_target(spec: str, *, home: Path) -> RunTarget:
    """An installed Spirit by ``name[@requirement]``, with the grants stored at install."""
    from vudo.project.installed import installed_spirit  # lazy: sqlite3 only for NAME runs

    spirit = installed_spirit(spec, home=home)
    return RunTarget(
        kind="installed",
        label=spec,
        name=spirit.manifest.name,
        wasm=spirit.module,
        manifest=spirit.manifest,
        stored_grants=spirit.grants,
        asked_capabilities=tuple(spirit.manifest.capabilities),
        signer=spirit.signer,
        pricing=spirit.manifest.pricing,
        identity=_identity().installed(spirit.signer, spirit.manifest.name),
        directories=spirit.manifest.directories,
    )


# --------------------------------------------------------------------------- arguments

_INT_RANGES = {"i32": 32, "i64": 64}


def convert_args(function: str, params: Sequence[str], words: Sequence[str]) -> list[Any]:
    """Convert the words after ``--`` to the function's wasm parameter types.

    Integers accept decimal or 0x-hex and the signed or unsigned range (stored two's
    complement); floats accept anything ``float()`` does. UsageError (exit 2) otherwise.
    """
    sig = f"{function}({', '.join(params)})"
    for ty in params:
        if ty not in _INT_RANGES and ty not in ("f32", "f64"):
            raise UsageError(
                f"{sig} takes a parameter of type {ty}, which `vudo run` cannot pass",
                hint="call a function with i32, i64, f32 or f64 parameters",
            )
    if len(words) != len(params):
        example = " ".join("1" if p.startswith("i") else "1.5" for p in params)
        raise UsageError(
            f"{sig} takes {len(params)} argument{'s' if len(params) != 1 else ''}, "
            f"got {len(words)}",
            hint=f"pass them after --, e.g. `vudo run -f {function} -- {example}`".replace(
                " -- `", "`"
            ),
        )
    values: list[Any] = []
    for index, (ty, word) in enumerate(zip(params, words, strict=True), start=1):
        if ty in _INT_RANGES:
            bits = _INT_RANGES[ty]
            try:
                value = int(word, 0)
            except ValueError:
                raise UsageError(
                    f'argument {index} of {sig} must be an integer ({ty}), got "{word}"',
                    hint="pass a whole number like 42 or 0x2a",
                ) from None
            if not -(1 << (bits - 1)) <= value < (1 << bits):
                raise UsageError(
                    f"argument {index} of {sig} is out of range for {ty}: {word}",
                    hint=f"{ty} holds -{1 << (bits - 1)} .. {(1 << bits) - 1}",
                )
            if value >= 1 << (bits - 1):
                value -= 1 << bits
            values.append(value)
        else:
            try:
                values.append(float(word))
            except ValueError:
                raise UsageError(
                    f'argument {index} of {sig} must be a number ({ty}), got "{word}"',
                    hint="pass a number like 1.5",
                ) from None
    return values


# --------------------------------------------------------------------------- grants


def parse_dir_spec(word: str, *, read_only: bool = False) -> Preopen:
    """``HOST[::GUEST]`` (the wasmtime CLI's ``--dir`` syntax) as a preopen: HOST must be
    an existing directory (UsageError otherwise: the user typed it); GUEST, the name the
    program sees, defaults to HOST as written (``--dir .`` is "." in the guest too)."""
    host, sep, guest = word.partition("::")
    if not host or (sep and not guest) or "\0" in word:
        raise UsageError(
            f"--dir {word!r}: expected HOST[::GUEST]",
            hint="e.g. --dir ./data or --dir ./data::/data",
        )
    path = Path(host)
    if not path.exists():
        raise UsageError(f"--dir {host}: no such directory", hint="pass an existing directory")
    if not path.is_dir():
        raise UsageError(f"--dir {host}: not a directory", hint="pass a directory, not a file")
    return Preopen(os.path.realpath(path), guest if sep else host, read_only)


def _dir_grants(options: RunOptions, denied: set[Any]) -> list[tuple[Any, str]]:
    """The path-scoped storage grants ``--dir``/``--ro-dir`` stand for (less --deny)."""
    wanted: list[tuple[Any, str]] = []
    for opened in options.dirs:
        caps = [Capability.STORAGE_READ]
        if not opened.read_only:
            caps += [Capability.STORAGE_WRITE, Capability.STORAGE_DELETE]
        wanted += [(c, f"path:{opened.host}") for c in caps if c not in denied]
    return wanted


_STORAGE = ("storage_read", "storage_write", "storage_delete")


def _own_dirs(target: RunTarget, identity: str, home: Path) -> tuple[Preopen, ...]:
    """The manifest's ``directories``: each a directory of the Spirit's own identity under
    ``<home>/data/wasi/<identity>/``, made on first use, preopened as ``/<name>``. Using
    it still needs the Spirit's storage grants (the manifest declares them; the user
    consented at install)."""
    made: list[Preopen] = []
    for name in target.directories:
        path = data_dir(home) / "wasi" / identity / name
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise from_os_error(err, f"cannot create {path}") from err
        made.append(Preopen(str(path), "/" + name))
    return tuple(made)


def _granted_dirs(grants: "Iterable[Grant]", given: tuple[Preopen, ...]) -> tuple[Preopen, ...]:
    """Preopens for the ``path:`` storage grants a run holds beyond ``--dir``: how an
    installed Spirit gets a directory (``vudo grant NAME storage_read --scope path:/dir``).
    The guest sees the directory under its host path (as ``--dir HOST`` would show it);
    read-only unless storage_write is granted for it too. A directory that no longer
    exists is left out (its calls then find nothing)."""
    scoped: dict[str, set[str]] = {}
    for g in grants:
        scope = str(g.scope)
        if scope.startswith("path:") and g.capability.value in _STORAGE:
            scoped.setdefault(scope[5:], set()).add(g.capability.value)
    have = {p.host for p in given}
    return tuple(
        Preopen(host, host, "storage_write" not in caps)
        for host, caps in sorted(scoped.items())
        if host not in have and os.path.isdir(host)
    )


def plan_grants(
    target: RunTarget, options: RunOptions
) -> tuple[list[tuple[AnyCapability, str]], list[str]]:
    """Which (capability, scope) pairs this run gets, and which asked-for ones it does not."""
    denied = {parse_any_capability(d.strip()) for d in options.deny}
    wanted: dict[AnyCapability, str] = {c: "global" for c in target.default_capabilities}
    for spec in options.grant:
        from vudo.engine.grants import parse_grant_spec  # lazy: a run without grants skips it

        cap, scope = parse_grant_spec(spec)
        wanted[cap] = scope
    if options.env and Capability.SENSOR_ENVIRONMENT not in wanted:
        wanted[Capability.SENSOR_ENVIRONMENT] = "global"
    for cap in denied:
        wanted.pop(cap, None)
    plan = sorted(wanted.items(), key=lambda kv: kv[0].value)
    stored = {g.capability for g in target.stored_grants if g.capability not in denied}
    missing = [c.value for c in target.asked_capabilities if c not in wanted and c not in stored]
    return plan, missing


# --------------------------------------------------------------------------- running


class RunControl:
    """Stops a run in progress from another thread or a signal handler (Ctrl-C).

    :func:`run_spirit` attaches its sandbox; :meth:`terminate` asks the engine to stop
    the guest at its next epoch tick. The actual call into the sandbox happens on a
    short-lived thread, so calling :meth:`terminate` from a signal handler can never
    deadlock on a lock the interrupted thread holds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sandbox: Any = None
        self.reason: str | None = None

    @property
    def attached(self) -> bool:
        return self._sandbox is not None

    def attach(self, sandbox: Any) -> None:
        with self._lock:
            self._sandbox = sandbox
            pending = self.reason
        if pending is not None:
            self.terminate(pending)

    def detach(self) -> None:
        with self._lock:
            self._sandbox = None

    def terminate(self, reason: str = "terminated") -> None:
        self.reason = reason
        threading.Thread(target=self._stop, args=(reason,), daemon=True).start()

    def _stop(self, reason: str) -> None:
        with self._lock:
            sandbox = self._sandbox
        if sandbox is None:
            return
        # Already finished or terminated: nothing left to stop.
        with contextlib.suppress(VudoError):
            sandbox.terminate(reason)


class PreparedRun(NamedTuple):
    """Everything needed to create the sandbox for one run (see :func:`prepare_run`)."""

    module: "SpiritModule"
    function: str
    args: tuple[Any, ...]
    config: SandboxConfig
    granted: tuple[tuple[str, str], ...]
    not_granted: tuple[str, ...]


def needs_services(module: "SpiritModule") -> bool:
    """Whether the module imports storage, credit or network host functions."""
    return any(name.startswith(_SERVICE_PREFIXES) for name in module.imports)


def prepare_run(
    target: RunTarget,
    options: RunOptions,
    *,
    engine: Engine,
    home: Path,
    services: "HostServices | None" = None,
    log_to_stderr: bool = True,
    clock: Callable[[], float] = time.time,
    notice: Callable[[str], None] = no_progress,
    sinks: Mapping[str, Callable[[bytes], None]] | None = None,
    entry: bool = True,
    open_services: "Callable[[], HostServices | None] | None" = None,
) -> PreparedRun:
    """Load the module, pick the function, convert the arguments and sign the grants.

    The Spirit's dependencies (``host_spirit_call``) resolve through
    :mod:`vudo.project.compose`; ``open_services`` gives a callee that needs storage,
    credit or network the host services (default: ``services``).

    ``notice`` gets one-off messages for the user (storage moved to the run's identity).
    ``sinks`` maps an output stream to a callable given its bytes as the guest writes
    them (:mod:`vudo.engine.runio`; ``vudo run`` streams ``"output"`` and a WASI
    program's ``"stdout"`` to stdout, its ``"stderr"`` to stderr).
    ``entry=False`` picks no function (``function`` is ""): the caller calls what it
    wants (the embedding API, :mod:`vudo.api`).

    For callers that drive the sandbox themselves (the TUI pauses and refuels it):
    ``Sandbox(engine, prepared.module, prepared.config)``, then ``instantiate()`` and
    ``call(prepared.function, list(prepared.args))``. Pass ``services`` (an open
    :class:`HostServices`) when :func:`needs_services` says the module needs them.
    Raises ModuleError, NotFoundError (unknown function) or UsageError (bad arguments).
    """
    module = engine.load(target.wasm, name=target.name)
    function, args = "", []
    argv: tuple[str, ...] = ()
    if module.uses_wasi and not entry:  # the embedding API: Spirit.run calls _start
        argv = (target.name, *options.args)
    if entry:
        function = options.function or module.entry_point()
        exported = module.export(function)
        if module.uses_wasi and function == "_start":
            # a WASI command: the words after -- are its argv (its name first), not
            # parameters
            argv = (target.name, *options.args)
        else:
            args = convert_args(function, exported.params, options.args)
    plan, missing = plan_grants(target, options)
    if options.dirs:
        denied = {parse_any_capability(d.strip()) for d in options.deny}
        plan = plan + _dir_grants(options, denied)
    identity = run_identity(target)
    grants: tuple[Grant, ...] = ()
    trusted: tuple[str, ...] = ()
    refresh: Callable[[], tuple[Grant, ...]] | None = None
    if plan or target.stored_grants:
        from vudo.project.grant_cache import run_grants  # lazy: nacl only with grants

        grants, granter = run_grants(plan, home=home, now=clock(), grantee=identity.key)
        trusted = (granter,)
        denied = {parse_any_capability(d.strip()) for d in options.deny}
        given = grants

        def usable(stored: "Iterable[Grant]") -> "tuple[Grant, ...]":
            kept = tuple(g for g in stored if g.capability not in denied)
            if not kept:
                return given
            from vudo.project.grants import usable_grants  # lazy: the key only for stored grants

            return given + usable_grants(kept, home=home, grantee=identity.key)

        grants = usable(target.stored_grants)
        if target.kind == "installed":  # `vudo revoke` (another process) reaches the run
            from vudo.project.installed import stored_grants  # lazy: sqlite3 only for NAME runs

            def current() -> "tuple[Grant, ...]":
                return usable(stored_grants(target.name, home=home))

            refresh = current
    if services is not None:
        migrate_storage(target, identity, services, home=home, notice=notice)
    limits = options.limits if options.limits is not None else Limits()
    if options.memory is not None:
        limits = limits._replace(memory_bytes=options.memory)
    opener = open_services if open_services is not None else lambda: services

    def callee_services(module: "SpiritModule") -> "HostServices | None":
        return opener() if needs_services(module) else None

    dependencies = _dependencies(target, engine=engine, home=home, services=callee_services)
    kwargs: dict[str, Any] = {
        "dependencies": dependencies,
        "limits": limits,
        "grants": grants,
        "trusted_granters": trusted,
        "identity": identity.key,
        "namespace": identity.namespace,
        "services": services,
        "log_to_stderr": log_to_stderr,
        "grant_refresh": refresh,
        "input": options.input,
        "env": dict(options.env),
        "sinks": sinks,
        "argv": argv,
        "preopens": (
            options.dirs
            + _own_dirs(target, identity.key, home)
            + _granted_dirs(grants, options.dirs)
            if module.uses_wasi
            else options.dirs
        ),
        "stdin_fd": options.stdin_fd,
        "interactive": options.interactive,
    }
    if options.fuel is not None:
        kwargs["fuel"] = options.fuel
    if options.live:
        kwargs["live"] = True
    if options.timeout is not None:
        kwargs["timeout"] = options.timeout
    granted = tuple((c.value, s) for c, s in plan) + tuple(
        (g.capability.value, str(g.scope)) for g in grants[len(plan) :]
    )
    return PreparedRun(
        module, function, tuple(args), SandboxConfig(**kwargs), granted, tuple(missing)
    )


def _dependencies(
    target: RunTarget,
    *,
    engine: Engine,
    home: Path,
    services: "Callable[[SpiritModule], HostServices | None]",
) -> DependencyResolver | None:
    """What ``target``'s ``host_spirit_call`` may reach: its manifest's dependencies (a
    project's pinned by its lock); None for a loose module, which has no manifest."""
    if target.kind == "project":
        return project_resolver(Path(target.label), engine=engine, home=home, services=services)
    if target.manifest is not None:
        return installed_resolver(target.manifest, engine=engine, home=home, services=services)
    return None


def migrate_storage(
    target: RunTarget,
    identity: "SpiritIdentity",
    services: "HostServices",
    *,
    home: Path,
    notice: Callable[[str], None] = no_progress,
) -> int:
    """Move storage an older vudo kept under a Spirit's name to the identity it belonged to.

    Storage used to be namespaced by the manifest name or file stem. The keys under a name
    go to the installed Spirit of that name (its (signer, name) identity) when it runs; to
    a project of that name only when no Spirit of the name is installed. Loose modules get
    nothing (anyone could name a file after a Spirit). Says so once, via ``notice``;
    returns how many keys moved.
    """
    old = target.name
    if target.kind not in ("installed", "project") or old == identity.namespace:
        return 0
    storage = services.storage
    if not storage.keys(old):
        return 0
    if target.kind == "project" and _is_installed(old, home):
        return 0
    moved = storage.move_namespace(old, identity.namespace)
    if moved:
        notice(
            f"note: moved {moved} storage key{'s' if moved != 1 else ''} kept under the "
            f"name {old!r} to {identity.describe()}"
        )
    return moved


def _is_installed(name: str, home: Path) -> bool:
    from vudo.pkg.store import open_store  # lazy: sqlite3 only for NAME runs

    with open_store(home, read_only=True) as store:
        return bool(store.versions(name))


class RunHandle:
    """One Spirit in a fresh sandbox, prepared as ``vudo run`` prepares it, for a face to
    drive: :meth:`start`, :meth:`call_again` (after a refuel), :meth:`toggle_pause`,
    :meth:`refuel`, :meth:`stop`, and observe (``on_event`` gets every engine event).
    ``vudo run`` (:func:`run_spirit`) and the TUI's session both run Spirits through it.

    ``engine``: None opens one on the home's cache (closed with the handle). ``services``:
    None opens the home's host services if the module imports them (closed with the
    handle); a callable is asked for them instead, and the caller keeps them. A trap,
    timeout, exhausted fuel or tripped limit comes back as ``RunResult.error``; bad input
    (unknown function, wrong arguments, invalid module) raises from the constructor.
    A resource: :meth:`close` it, or use it as a context manager.
    """

    def __init__(
        self,
        target: RunTarget,
        options: RunOptions = _NO_OPTIONS,
        *,
        home: Path,
        engine: Engine | None = None,
        services: "Callable[[], HostServices] | None" = None,
        on_event: "Callable[[Event], None] | None" = None,
        log_to_stderr: bool = True,
        clock: Callable[[], float] = time.time,
        notice: Callable[[str], None] = no_progress,
        sinks: Mapping[str, Callable[[bytes], None]] | None = None,
        entry: bool = True,
    ) -> None:
        self.target = target
        self._home = home
        self._own_engine = engine is None
        self.engine = Engine(cache_dir=cache_dir(home)) if engine is None else engine
        self._own_services: HostServices | None = None
        self._unsubscribe: Callable[[], None] | None = None
        try:
            # --timeout also bounds compiling (a cache miss of a big module)
            module = self.engine.load(
                target.wasm, name=target.name, compile_timeout=options.timeout
            )
            opened: HostServices | None = None
            if needs_services(module):
                if services is not None:
                    opened = services()
                else:
                    from vudo.engine import services as host  # lazy: sqlite3 if used

                    opened = self._own_services = host.HostServices.open(data_dir(home))
            self.prepared = prepare_run(
                target,
                options,
                engine=self.engine,
                home=home,
                services=opened,
                log_to_stderr=log_to_stderr,
                clock=clock,
                notice=notice,
                sinks=sinks,
                entry=entry,
                open_services=lambda: self._callee_services(opened, services),
            )
            self.sandbox = Sandbox(self.engine, self.prepared.module, self.prepared.config)
            if on_event is not None:
                self._unsubscribe = self.sandbox.subscribe(on_event)
        except BaseException:
            self._release()
            raise

    def __enter__(self) -> "RunHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        sandbox = getattr(self, "sandbox", None)
        if sandbox is not None:
            sandbox.close()
        self._release()

    def _callee_services(
        self, opened: "HostServices | None", given: "Callable[[], HostServices] | None"
    ) -> "HostServices":
        """The host services for a callee that needs them (opened on first need when the
        caller itself did not; closed with the handle)."""
        if opened is not None:
            return opened
        if self._own_services is None:
            if given is not None:
                return given()
            from vudo.engine import services as host  # lazy: sqlite3 if used

            self._own_services = host.HostServices.open(data_dir(self._home))
        return self._own_services

    def _release(self) -> None:
        if self._own_services is not None:
            self._own_services.close()
            self._own_services = None
        if self._own_engine:
            self._own_engine = False
            self.engine.close()

    # -- running ---------------------------------------------------------------------

    def start(self) -> RunResult:
        """Instantiate the Spirit (its start function runs) and call the function."""
        try:
            self.sandbox.instantiate()
        except RuntimeFailure as err:
            return self._result((), err)
        return self.call_again()

    def call_again(self) -> RunResult:
        """Call the function (again, in the same sandbox: after a refuel, say)."""
        try:
            results = tuple(self.sandbox.call(self.prepared.function, list(self.prepared.args)))
        except RuntimeFailure as err:
            return self._result((), err)
        return self._result(results, None)

    def _result(self, results: tuple[Any, ...], error: RuntimeFailure | None) -> RunResult:
        return RunResult(
            target=self.target,
            function=self.prepared.function,
            args=self.prepared.args,
            results=results,
            receipt=self.receipt(),
            granted=self.prepared.granted,
            not_granted=self.prepared.not_granted,
            error=error,
            output=self.sandbox.output(),
            wasi=self.prepared.module.uses_wasi,
            stdout=self.sandbox.output("stdout"),
            stderr=self.sandbox.output("stderr"),
        )

    def receipt(self) -> "Receipt":
        """The receipt so far, priced under the manifest's [pricing] (and each nested
        receipt under its Spirit's)."""
        resolver = self.prepared.config.dependencies
        prices = resolver.prices if isinstance(resolver, DependencyResolver) else None
        return priced(self.sandbox.receipt(), self.target.pricing, prices)

    # -- control (safe from another thread while a call runs) ------------------------

    @property
    def live(self) -> bool:
        """Whether a call is in progress (running, paused, or a live call waiting for
        fuel mid-call)."""
        return self.sandbox.in_call

    @property
    def out_of_fuel(self) -> bool:
        """Suspended because the fuel ran out: refuel (a live call then continues by
        itself; otherwise :meth:`call_again`)."""
        return self.sandbox.suspend_reason == "out of fuel"

    @property
    def can_refuel(self) -> bool:
        return str(self.sandbox.state) in ("suspended", "ready")

    def toggle_pause(self) -> str | None:
        """Suspend a running call or resume a paused one; the new state, or None."""
        state = str(self.sandbox.state)
        if state == "running":
            self.sandbox.suspend()
            return "suspended"
        if state == "suspended" and self.sandbox.suspend_reason == "paused":
            self.sandbox.resume()
            return "running"
        return None

    def refuel(self, amount: int) -> bool:
        """Add fuel; True when the caller should :meth:`call_again` (it had run out and
        its call ended; a live call waiting for fuel continues by itself)."""
        again = self.out_of_fuel and not self.sandbox.in_call
        self.sandbox.refuel(amount)
        return again

    def stop(self, reason: str = "terminated") -> bool:
        """Stop the sandbox at once; False if it already ended."""
        if str(self.sandbox.state) == "terminated":
            return False
        with contextlib.suppress(VudoError):  # it finished between the check and now
            self.sandbox.terminate(reason)
        return True


def run_spirit(
    target: RunTarget,
    options: RunOptions = _NO_OPTIONS,
    *,
    home: Path,
    on_event: "Callable[[Event], None] | None" = None,
    clock: Callable[[], float] = time.time,
    engine: Engine | None = None,
    log_to_stderr: bool = True,
    control: RunControl | None = None,
    notice: Callable[[str], None] = no_progress,
    sinks: Mapping[str, Callable[[bytes], None]] | None = None,
) -> RunResult:
    """Run one function of ``target`` in a fresh sandbox and return what happened.

    A trap, timeout, exhausted fuel or tripped limit does not raise: it comes back as
    ``RunResult.error`` with the receipt of the run so far. Bad input (unknown function,
    wrong arguments, invalid module) raises before anything runs.
    """
    with RunHandle(
        target,
        options,
        home=home,
        engine=engine,
        on_event=on_event,
        log_to_stderr=log_to_stderr,
        clock=clock,
        notice=notice,
        sinks=sinks,
    ) as handle:
        if control is None:
            return handle.start()
        control.attach(handle.sandbox)
        try:
            return handle.start()
        finally:
            control.detach()


def priced(
    receipt: "Receipt", pricing: "Pricing | None", prices: "Mapping[str, Pricing] | None" = None
) -> "Receipt":
    """The receipt with its price under the manifest's [pricing] (unchanged without one);
    the receipts nested in it (the Spirits it called) under theirs, from ``prices`` by
    module digest."""
    if prices and receipt.calls:
        receipt = receipt._replace(
            calls=tuple(priced(c, prices.get(c.digest), prices) for c in receipt.calls)
        )
    if pricing is None:
        return receipt
    from vudo.pkg.pricing import count_host_calls, price  # lazy: only with [pricing]

    return receipt.with_price(
        price(
            pricing,
            fuel_used=receipt.fuel_used,
            host_calls=count_host_calls(receipt.host_calls),
            bytes_in=receipt.bytes_in,
            bytes_out=receipt.bytes_out,
        )
    )
