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

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.engine.abi import HostCallError
from vudo.engine.config import DEFAULT_FUEL
from vudo.engine.identity import SpiritIdentity
from vudo.engine.services import STORAGE_FILE, HostServices
from vudo.errors import FuelExhausted, InvalidInputError, TestsFailed, VudoError
from vudo.home import cache_dir, data_dir
from vudo.project.layout import open_project
from vudo.project.storage import delete_key, entries, read_value
from vudo.tui.rows import ConsentRow, ReceiptRow, RegistryEntry

if TYPE_CHECKING:
    from vudo.engine import Engine, Sandbox
    from vudo.project.build import BuildResult
    from vudo.project.layout import Project
    from vudo.project.runner import RunHandle, RunResult
    from vudo.tui.dialogs import RunRequest

Progress = Callable[[str], None]
Sink = Callable[[Any], None]
#: Shows the consent screen and blocks until answered: granted capability names, or None.
Consent = Callable[[ConsentRow], "tuple[str, ...] | None"]

WATCH_IGNORED_DIRS = frozenset({"target", "dist", ".git", "__pycache__", ".zig-cache", "zig-cache"})


class ConsentRefused(VudoError):
    """The user cancelled the consent screen: nothing is installed."""

    title = "cancelled"


def _quiet(_line: str) -> None:
    """Progress sink that ignores lines."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a call ended: the receipt, the error to show (if any), and whether the sandbox
    is out of fuel but alive (refuel, then call again)."""

    receipt: ReceiptRow | None
    error: BaseException | None
    suspended: bool


def receipt_row(receipt: Any, balance: int | None = None) -> ReceiptRow:
    """The engine's ``Receipt`` as the plain row the receipt pane draws (with the Spirit's
    credit ``balance`` when known)."""
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
        balance=balance,
        calls=tuple(receipt_row(call) for call in getattr(receipt, "calls", ())),
    )


def _balance(sandbox: Any) -> int | None:
    """The sandbox's own account balance, if its run has the ledger open (else None)."""
    view = sandbox.ledger
    if view is None:
        return None
    try:
        return int(view.balance(view.account))
    except HostCallError:  # the ledger closed under it: no balance to show
        return None


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
        self._services: HostServices | None = None
        self._handle: RunHandle | None = None
        self._lock = threading.Lock()
        self.not_granted: tuple[str, ...] = ()

    # -- project -----------------------------------------------------------------------

    def open_project(self) -> Project:
        return open_project(self.root)

    def build(self, progress: Progress = _quiet) -> BuildResult:
        from vudo.project.build import build_project  # lazy: project.build (~100 ms) only to build

        return build_project(self.root, progress=progress)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # lazy: engine.engine and wasmtime (~90 ms) only to load a module
            from vudo.engine import Engine

            self._engine = Engine(cache_dir(self.home))
        return self._engine

    def functions(
        self, progress: Progress = _quiet
    ) -> tuple[list[tuple[str, str, tuple[str, ...]]], str | None]:
        """Exported functions as ``(name, signature, parameter types)`` and the default
        entry point (building first when the sources are newer than the module)."""
        # lazy: project.runner (~190 ms) only to list or run functions
        from vudo.project.runner import project_target

        target = project_target(self.root, progress=progress, build=True)
        progress("loading module")
        module = self.engine.load(target.wasm, name=target.name)
        funcs = [
            (f.name, format_signature(f.params, f.results), tuple(f.params)) for f in module.exports
        ]
        names = {name for name, _, _ in funcs}
        default = next((n for n in ("main", "_start") if n in names), None)
        return funcs, default

    # -- running -----------------------------------------------------------------------

    @property
    def _sandbox(self) -> Sandbox | None:
        """The current run's sandbox, if any (the hot-reload test watches it change)."""
        handle = self._handle
        return None if handle is None else handle.sandbox

    @property
    def live(self) -> bool:
        """Whether a call is in progress (running, or paused mid-call)."""
        handle = self._handle
        return handle is not None and handle.live

    @property
    def can_refuel(self) -> bool:
        handle = self._handle
        return handle is not None and handle.can_refuel

    @property
    def out_of_fuel(self) -> bool:
        handle = self._handle
        return handle is not None and handle.out_of_fuel

    def _services_for_run(self) -> HostServices:
        """One HostServices for the whole session, so storage survives reloads and reruns."""
        if self._services is None:
            clock = self.clock
            self._services = HostServices.open(
                data_dir(self.home), clock=lambda: int(clock() * 1_000_000_000)
            )
        return self._services

    def run(self, request: RunRequest, sink: Sink) -> RunOutcome:
        """Build if stale, open a fresh sandbox, call ``request.function``.

        Runs through ``vudo.project.runner.RunHandle`` (what ``vudo run`` uses): the
        manifest's capabilities are granted, minus ``request.deny``, signed with the
        user's key; the session's engine and host services are shared between runs.
        """
        # lazy: project.runner (~190 ms) only to run
        from vudo.project.runner import RunHandle, RunOptions, project_target

        self._close_sandbox()
        target = project_target(self.root, progress=_quiet, build=True)
        options = RunOptions(
            function=request.function,
            args=request.args,
            fuel=request.fuel,
            timeout=request.timeout,
            memory=request.memory,
            grant=request.grant,
            deny=request.deny,
            live=True,  # the fuel gauge moves in pure compute; refuel continues the call
        )
        handle = RunHandle(
            target,
            options,
            home=self.home,
            engine=self.engine,
            services=self._services_for_run,
            on_event=sink,
            log_to_stderr=False,
            clock=self.clock,
        )
        with self._lock:
            self._handle = handle
        self.not_granted = handle.prepared.not_granted
        try:
            return self._outcome(handle.start())
        except VudoError as exc:  # e.g. a call the sandbox's state does not allow
            return RunOutcome(self._row(handle.receipt()), exc, False)

    def call_again(self, sink: Sink) -> RunOutcome:
        """Call the same function again in the same sandbox (after a refuel)."""
        handle = self._handle
        if handle is None:
            raise VudoError("nothing to continue", hint="run the Spirit first (r)")
        try:
            return self._outcome(handle.call_again())
        except VudoError as exc:
            return RunOutcome(self._row(handle.receipt()), exc, False)

    def _outcome(self, result: RunResult) -> RunOutcome:
        # Out of fuel, the sandbox is suspended, not ended: refuel, then call again.
        suspended = isinstance(result.error, FuelExhausted)
        return RunOutcome(self._row(result.receipt), result.error, suspended)

    def _row(self, receipt: Any) -> ReceiptRow:
        """A receipt row with the running Spirit's own credit balance, when known."""
        sb = self._sandbox
        return receipt_row(receipt, None if sb is None else _balance(sb))

    def toggle_pause(self) -> str | None:
        """Suspend a running call or resume a paused one; the new state, or None."""
        handle = self._handle
        return None if handle is None else handle.toggle_pause()

    def terminate(self) -> bool:
        """Stop the current sandbox at once (from the UI thread); False if none is open."""
        handle = self._handle
        return handle is not None and handle.stop("stopped from the workbench")

    def refuel(self, amount: int) -> bool:
        """Add fuel; True when the caller should call the function again (it ran out)."""
        handle = self._handle
        if handle is None:
            raise VudoError("nothing to refuel", hint="run the Spirit first (r)")
        return handle.refuel(amount)

    def manifest_capabilities(self) -> tuple[str, ...] | None:
        """The capabilities the project's manifest declares (None if it cannot be read)."""
        try:
            project = self.open_project()
        except VudoError:
            return None
        return tuple(c.value for c in project.manifest.capabilities)

    # -- storage and credit ------------------------------------------------------------------

    def has_storage(self) -> bool:
        """Whether any Spirit has stored anything (the pane then reads it)."""
        return self._services is not None or (data_dir(self.home) / STORAGE_FILE).is_file()

    def identity(self) -> Any:
        """The identity the project's runs have (their storage namespace and account)."""
        return SpiritIdentity.project(self.root)

    def storage(self) -> tuple[list[Any], int | None]:
        """The project Spirit's stored entries (previews) and its credit balance (None
        when its account has never been used)."""
        services = self._services_for_run()
        identity = self.identity()
        rows = entries(services.storage, identity)

        try:
            balance: int | None = int(services.ledger.balance(identity.account))
        except HostCallError:  # the ledger refused: show no balance
            balance = None
        return rows, balance

    def storage_value(self, key: bytes) -> bytes | None:
        """One whole stored value (the pane shows previews)."""
        stored = read_value(self._services_for_run().storage, self.identity(), key)
        return None if stored is None else stored.value

    def delete_key(self, key: bytes) -> bool:
        return delete_key(self._services_for_run().storage, self.identity(), key).deleted

    def _close_sandbox(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()

    # -- workflow commands ---------------------------------------------------------------

    def test(
        self, progress: Progress = _quiet, on_case: Callable[[str, bool, str], None] | None = None
    ) -> str:
        """``vudo test``: every test_* export in its own sandbox; TestsFailed on failure.

        ``on_case(name, passed, detail)`` is called as each test finishes (worker thread)."""
        from vudo.project.testing import run_tests  # lazy: project.testing (~190 ms) only for `t`

        def case_done(case: Any) -> None:
            if on_case is not None:
                detail = case.outcome if case.passed else f"{case.outcome} {case.detail}".strip()
                on_case(case.name, case.passed, detail)

        report = run_tests(
            self.root, home=self.home, progress=progress, on_case=case_done, clock=self.clock
        )
        if report.failed:
            failed = [c for c in report.cases if not c.passed]
            raise TestsFailed(
                report.summary,
                hint=f"{failed[0].name}: {failed[0].outcome} {failed[0].detail}".strip(),
            )
        return report.summary

    def pack(self, progress: Progress = _quiet) -> str:
        # lazy: project.packaging (~500 ms) only to pack
        from vudo.project.packaging import pack_project

        result = pack_project(self.root, progress=progress)
        return f"packed {self._rel(result.path)} ({result.size:,} bytes)"

    def sign(self, progress: Progress = _quiet) -> str:
        from vudo.pkg.keys import fingerprint  # lazy: pkg.keys and nacl (~20 ms) only to sign
        from vudo.project.packaging import newest_package, sign_project_package  # lazy: ~500 ms

        package = newest_package(self.root)
        result = sign_project_package(package, project_dir=self.root, home=self.home)
        signer = getattr(result, "signer", "")
        by = f" by {fingerprint(signer)}" if signer else ""
        return f"signed {self._rel(package)}{by}"

    def check(self, progress: Progress = _quiet) -> str:
        """``vudo check``: every problem; the first error is raised as InvalidInputError."""
        # lazy: project.workflow (~120 ms) only for check
        from vudo.project.workflow import check_project

        report = check_project(self.root, home=self.home, progress=progress)
        errors = report.errors
        if errors:
            first = errors[0]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            raise InvalidInputError(f"{first.area}: {first.message}{more}", hint=first.hint)
        warnings = [p for p in report.problems if p.severity != "error"]
        note = f", {len(warnings)} warning(s): {warnings[0].message}" if warnings else ""
        return f"check: {', '.join(report.checked)} ok{note}"

    def _rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return Path(path).name

    # -- registry ----------------------------------------------------------------------

    def search(self, query: str) -> list[RegistryEntry]:
        """Registry Spirits matching ``query`` plus installed ones the registry lacks."""
        # lazy: the store and registries (~300 ms) load in the start-up search worker
        from vudo.project.installed import search_installed  # lazy: as above
        from vudo.project.installing import user_policy  # lazy: as above
        from vudo.project.registries import browse  # lazy: as above

        trusted = user_policy(self.home).trusted_keys
        installed: dict[str, list[Any]] = {}
        for spirit in search_installed(query, home=self.home):
            installed.setdefault(spirit.name, []).append(spirit)
        entries: dict[str, RegistryEntry] = {}
        for e in browse(query, home=self.home):
            mine = installed.get(e.name, [])
            entries[e.name] = RegistryEntry(
                name=e.name,
                version=e.version,
                description=e.description,
                installed=tuple(sorted(str(s.version) for s in mine)),
                capabilities=tuple(e.capabilities),
                signer=e.signer,
                trusted=e.signer in trusted,
                source=e.registry,
            )
        for name, spirits in installed.items():
            if name in entries:
                continue
            newest = max(spirits, key=lambda s: s.version)
            entries[name] = RegistryEntry(
                name=name,
                version=str(newest.version),
                description=newest.description,
                installed=tuple(sorted(str(s.version) for s in spirits)),
                capabilities=tuple(c.value for c in newest.capabilities),
                signer=newest.signer,
                trusted=newest.signer in trusted,
                source="",
            )
        return sorted(entries.values(), key=lambda e: e.name)

    def registry_action(self, action: str, entry: RegistryEntry, consent: Consent) -> str:
        """install / uninstall / upgrade ``entry``; ``consent`` answers each request."""
        # lazy: project.installing (~300 ms) only to (un)install
        from vudo.project import installing
        from vudo.project.consent import ConsentDecision  # lazy: as above

        if action == "uninstall":
            removed = installing.uninstall(entry.name, home=self.home).removed
            versions = ", ".join(str(s.version) for s in removed)
            return f"uninstalled {entry.name} {versions}".strip()

        def ask(request: Any, named: bool) -> Any:
            row = ConsentRow(
                name=request.name,
                version=request.version,
                signer=request.signer,
                trusted=request.signer in installing.user_policy(self.home).trusted_keys,
                capabilities=tuple(c.value for c in request.capabilities),
                previous=None
                if request.previous is None
                else tuple(c.value for c in request.previous),
                action=action,
            )
            granted = consent(row)
            if granted is None:
                raise ConsentRefused(
                    f"{action} of {request.name} cancelled", hint="nothing was installed"
                )
            caps = request.capabilities
            return ConsentDecision(
                tuple((c, "global") for c in caps if c.value in granted),
                tuple(c for c in caps if c.value not in granted),
            )

        if action == "install":
            results = installing.install(entry.name, home=self.home, consent=ask, clock=self.clock)
            names = ", ".join(f"{r.spirit.name} {r.spirit.version}" for r in results)
            return f"installed {names}" if names else f"{entry.name} is already installed"
        outcomes = installing.upgrade(entry.name, home=self.home, consent=ask, clock=self.clock)
        done = [o for o in outcomes if o.upgraded]
        if not done:
            return f"{entry.name} is up to date"
        return ", ".join(f"upgraded {o.name} {o.old_version} → {o.new_version}" for o in done)

    # -- hot reload --------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> Iterator[set[str]]:
        """Yield the project-relative paths of changed sources until ``stop`` is set."""
        from watchfiles import watch  # lazy: watchfiles (~5 ms) only with hot reload (--watch)

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
