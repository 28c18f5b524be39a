"""The workbench's one door to the core: project workflow, engine, package store.

Everything the TUI does is a call here, and every call here is a core function a CLI
command also calls (``vudo.project`` for build/test/pack/sign/check and the run setup,
``vudo.engine`` for sandboxes, ``vudo.pkg`` for the store). This module has no textual
import: it is plain Python, used from the app's worker threads.

Thread model: ``run``/``call_again`` block on a worker thread; ``toggle_pause``,
``terminate`` and ``refuel`` are called from the UI thread while a run is going, which the
engine's sandbox supports (suspend/resume/terminate are safe from another thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.errors import FuelExhausted, RuntimeFailure, VudoError
from vudo.tui.rows import ConsentRequest, ReceiptRow, RegistryEntry

if TYPE_CHECKING:
    from vudo.engine import Engine, Sandbox
    from vudo.engine.engine import SpiritModule
    from vudo.project.build import BuildResult
    from vudo.project.layout import Project
    from vudo.tui.dialogs import RunRequest

Progress = Callable[[str], None]
Sink = Callable[[Any], None]

DEFAULT_FUEL = 1_000_000_000
WATCH_IGNORED_DIRS = frozenset({"target", "dist", ".git", "__pycache__", ".zig-cache", "zig-cache"})


def _quiet(_line: str) -> None:
    """Progress sink that ignores lines."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a call ended: the receipt, the error to show (if any), and whether the sandbox
    is out of fuel but alive (refuel, then call again)."""

    receipt: ReceiptRow | None
    error: BaseException | None
    suspended: bool


def receipt_row(receipt: Any) -> ReceiptRow:
    """The engine's ``Receipt`` as the plain row the receipt pane draws."""
    calls = tuple(
        (str(cap), int(c.get("allowed", 0)), int(c.get("denied", 0)))
        for cap, c in sorted(receipt.host_calls.items())
    )
    return ReceiptRow(
        module=receipt.module,
        digest=receipt.digest,
        function=receipt.function,
        outcome=receipt.outcome,
        error=receipt.error,
        results=tuple(receipt.results),
        fuel_budget=receipt.fuel_budget,
        fuel_used=receipt.fuel_used,
        wall_time=receipt.wall_time,
        peak_memory=receipt.peak_memory,
        host_calls=calls,
        bytes_in=receipt.bytes_in,
        bytes_out=receipt.bytes_out,
        price=receipt.price,
    )


def format_signature(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


class Session:
    """The project, engine, host services and current sandbox of one workbench."""

    default_fuel = DEFAULT_FUEL

    def __init__(self, root: Path, *, home: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.home = Path(home)
        self.clock = clock
        self._engine: Engine | None = None
        self._services: Any = None
        self._sandbox: Sandbox | None = None
        self._function: str | None = None
        self._args: tuple[str, ...] = ()
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._out_of_fuel = False
        self._paused = False

    # -- project -----------------------------------------------------------------------

    def open_project(self) -> Project:
        from vudo.project.layout import open_project

        return open_project(self.root)

    def build(self, progress: Progress = _quiet) -> BuildResult:
        from vudo.project.build import build_project

        return build_project(self.root, progress=progress)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from vudo.engine import Engine
            from vudo.home import cache_dir

            self._engine = Engine(cache_dir(self.home))
        return self._engine

    def module(self, progress: Progress = _quiet) -> SpiritModule:
        """The built module, building first when the sources are newer."""
        project = self.open_project()
        if project.is_stale():
            self.build(progress)
        progress("loading module")
        return self.engine.load(project.wasm_path, name=project.name)

    def functions(self, progress: Progress = _quiet) -> tuple[list[tuple[str, str]], str | None]:
        """Exported functions as ``(name, signature)`` and the default entry point."""
        module = self.module(progress)
        funcs = [(f.name, format_signature(f.params, f.results)) for f in module.exports]
        names = {name for name, _ in funcs}
        default = next((n for n in ("main", "_start") if n in names), None)
        return funcs, default

    # -- running -----------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether a call is in progress (running or paused mid-call)."""
        sb = self._sandbox
        if sb is None or self._out_of_fuel:
            return False
        return str(sb.state) in ("running", "suspended")

    @property
    def can_refuel(self) -> bool:
        sb = self._sandbox
        return sb is not None and str(sb.state) == "suspended"

    def _services_for_run(self) -> Any:
        """One HostServices for the whole session, so storage survives reloads and reruns."""
        if self._services is None:
            from vudo.engine.services import HostServices
            from vudo.home import data_dir

            self._services = HostServices.open(data_dir(self.home))
        return self._services

    def run(self, request: RunRequest, sink: Sink) -> RunOutcome:
        """Build if needed, open a fresh sandbox and call ``request.function``."""
        from vudo.project.run import project_sandbox_config

        self._close_sandbox()
        project = self.open_project()
        module = self.module()
        config = project_sandbox_config(
            project,
            home=self.home,
            fuel=request.fuel,
            services=self._services_for_run(),
            log_to_stderr=False,
        )
        from vudo.engine import Sandbox

        sandbox = Sandbox(self.engine, module, config)
        with self._lock:
            self._sandbox = sandbox
            self._function = request.function
            self._args = request.args
            self._out_of_fuel = False
            self._paused = False
            self._unsubscribe = sandbox.subscribe(sink)
        try:
            sandbox.instantiate()
        except VudoError as exc:
            return RunOutcome(self._receipt(), exc, False)
        return self._call()

    def call_again(self, sink: Sink) -> RunOutcome:
        """Call the same function again in the same sandbox (after a refuel)."""
        if self._sandbox is None or self._function is None:
            raise VudoError("nothing to continue", hint="run the Spirit first (r)")
        return self._call()

    def _call(self) -> RunOutcome:
        from vudo.project.run import convert_args

        sb = self._sandbox
        assert sb is not None and self._function is not None
        self._out_of_fuel = False
        try:
            export = sb.module.export(self._function) if hasattr(sb, "module") else None
            args = list(self._args)
            values = convert_args(export, args) if export is not None else args
            sb.call(self._function, values)
        except FuelExhausted as exc:
            self._out_of_fuel = True
            return RunOutcome(self._receipt(), exc, True)
        except RuntimeFailure as exc:
            return RunOutcome(self._receipt(), exc, False)
        except VudoError as exc:
            return RunOutcome(self._receipt(), exc, False)
        return RunOutcome(self._receipt(), None, False)

    def _receipt(self) -> ReceiptRow | None:
        sb = self._sandbox
        if sb is None:
            return None
        try:
            receipt = sb.receipt()
        except VudoError:
            return None
        project = None
        with contextlib.suppress(VudoError):
            project = self.open_project()
        if project is not None and project.manifest.pricing is not None:
            from vudo.pkg.pricing import price

            calls = sum(sum(c.values()) for c in receipt.host_calls.values())
            receipt = receipt.with_price(
                price(project.manifest.pricing, fuel_used=receipt.fuel_used, host_calls=calls,
                      bytes_in=receipt.bytes_in, bytes_out=receipt.bytes_out)
            )
        return receipt_row(receipt)

    def toggle_pause(self) -> str | None:
        """Suspend a running call or resume a paused one; the new state, or None."""
        sb = self._sandbox
        if sb is None or self._out_of_fuel:
            return None
        state = str(sb.state)
        if state == "running":
            sb.suspend()
            self._paused = True
            return "suspended"
        if state == "suspended":
            sb.resume()
            self._paused = False
            return "running"
        return None

    def terminate(self) -> bool:
        """Stop the current sandbox at once (from the UI thread); False if none is live."""
        sb = self._sandbox
        if sb is None or str(sb.state) == "terminated":
            return False
        sb.terminate()
        self._out_of_fuel = False
        return True

    def refuel(self, amount: int) -> bool:
        """Add fuel; True when the caller should call the function again (it ran out)."""
        sb = self._sandbox
        if sb is None:
            raise VudoError("nothing to refuel", hint="run the Spirit first (r)")
        sb.refuel(amount)
        return self._out_of_fuel

    def _close_sandbox(self) -> None:
        with self._lock:
            sb, self._sandbox = self._sandbox, None
            unsub, self._unsubscribe = self._unsubscribe, None
        if unsub is not None:
            unsub()
        if sb is not None:
            if str(sb.state) not in ("terminated",):
                with contextlib.suppress(VudoError):
                    sb.terminate()
            sb.close()

    # -- workflow commands ---------------------------------------------------------------

    def test(self, progress: Progress = _quiet) -> str:
        from vudo.project.testing import run_tests

        report = run_tests(self.root, home=self.home, progress=progress)
        return f"tests: {report.passed} passed, {report.failed} failed"

    def pack(self) -> str:
        from vudo.project.pack import pack_project

        out = pack_project(self.root, home=self.home)
        return f"packed {self._rel(out)}"

    def sign(self) -> str:
        from vudo.project.pack import sign_newest

        out = sign_newest(self.root, home=self.home)
        return f"signed {self._rel(out)}"

    def check(self) -> str:
        from vudo.project.check import check_project

        problems = check_project(self.root, home=self.home)
        if problems:
            first = problems[0]
            raise VudoError(
                f"{len(problems)} problem(s): {first.message}",
                hint=getattr(first, "hint", None),
            )
        return "check: no problems"

    def _rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return Path(path).name

    # -- registry ----------------------------------------------------------------------

    def search(self, query: str) -> list[RegistryEntry]:
        from vudo.project.registry import registry_entries

        return [RegistryEntry(**e) for e in registry_entries(self.home, query)]

    def consent_request(self, entry: RegistryEntry, action: str) -> ConsentRequest:
        previous = None
        if action == "upgrade" and entry.installed:
            previous = entry.capabilities
        return ConsentRequest(
            name=entry.name,
            version=entry.version,
            signer=entry.signer,
            trusted=entry.trusted,
            capabilities=entry.capabilities,
            previous=previous,
            action=action,
        )

    def registry_action(self, action: str, entry: RegistryEntry, granted: tuple[str, ...]) -> str:
        from vudo.project import registry as reg

        if action == "install":
            reg.install(self.home, entry.source or entry.name, granted=granted)
            return f"installed {entry.name} {entry.version}"
        if action == "uninstall":
            reg.uninstall(self.home, entry.name)
            return f"uninstalled {entry.name}"
        reg.upgrade(self.home, entry.name, granted=granted)
        return f"upgraded {entry.name}"

    # -- hot reload --------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> Iterator[set[str]]:
        """Yield the project-relative paths of changed sources until ``stop`` is set."""
        from watchfiles import watch

        def wanted(_change: object, path: str) -> bool:
            try:
                rel = Path(path).relative_to(self.root)
            except ValueError:
                return False
            return not (set(rel.parts[:-1]) & WATCH_IGNORED_DIRS) and not rel.name.endswith("~")

        for changes in watch(
            self.root,
            watch_filter=wanted,
            stop_event=stop,
            debounce=150,
            step=30,
            rust_timeout=200,
            yield_on_timeout=False,
        ):
            rels = {self._rel(Path(p)) for _, p in changes}
            if rels:
                yield rels

    def close(self) -> None:
        self._close_sandbox()
        if self._services is not None:
            self._services.close()
            self._services = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
