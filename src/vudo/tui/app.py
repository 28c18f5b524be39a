"""The workbench app: panes, key bindings, workers, hot reload.

The app reacts and renders; everything it does goes through :class:`vudo.tui.session.Session`
(the same core functions the CLI commands call). Long work runs in thread workers and
reports back with ``call_from_thread``; engine events go through an :class:`EventBuffer`
that a 50 ms timer drains, so no widget is ever touched from the run thread and a Spirit
flooding the host-call log cannot freeze the screen.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, Tab, Tabs

from vudo.errors import printable
from vudo.tui.buffer import EventBuffer
from vudo.tui.dialogs import ConsentScreen, RefuelDialog, RunDialog, RunRequest
from vudo.tui.files import FileTree, FileViewer
from vudo.tui.fuel import FuelGauge
from vudo.tui.hostlog import Call, HostCallLog
from vudo.tui.lifecycle import LifecyclePane
from vudo.tui.receipt import ErrorBanner, ReceiptView, problem_from_error
from vudo.tui.registry import RegistryBrowser
from vudo.tui.rows import ConsentRow, ProblemRow, RegistryEntry, Transition
from vudo.tui.session import RunOutcome, Session

VIEWS: tuple[tuple[str, str], ...] = (
    ("project", "Project"),
    ("run", "Run"),
    ("receipt", "Receipt"),
    ("registry", "Registry"),
)
WIDE = 140  # columns from which the run panes sit beside the project or registry
FLUSH_INTERVAL = 0.05


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One workbench action: its key, footer label, palette help, and method."""

    key: str
    action: str
    label: str
    help: str
    show: bool = True


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("b", "build", "Build", "Compile the project (vudo build)"),
    ActionSpec("r", "run", "Run", "Choose a function and arguments and run it (vudo run)"),
    ActionSpec("p", "pause", "Pause", "Suspend or resume the running Spirit"),
    ActionSpec("x", "stop", "Stop", "Terminate the running Spirit at once"),
    ActionSpec("f", "refuel", "Refuel", "Add fuel to a suspended Spirit and continue"),
    ActionSpec("t", "test", "Test", "Run every test_* export (vudo test)"),
    ActionSpec("k", "pack", "Pack", "Write dist/<name>-<version>.spirit (vudo pack)"),
    ActionSpec("g", "sign", "Sign", "Sign the newest package with your key (vudo sign)"),
    ActionSpec("c", "check", "Check", "Lint manifest, capabilities and package (vudo check)"),
    ActionSpec("h", "hot_reload", "Reload", "Toggle hot reload: rebuild and rerun on change"),
    ActionSpec("slash", "search", "Search", "Search the registry", show=False),
    ActionSpec("d", "denied", "Denied", "Show only denied host calls (toggle)", show=False),
)


class Workbench(Screen[None]):
    """The one main screen: tabs on top, views below, error banner above the footer."""

    DEFAULT_CSS = """
    Workbench #status { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
    Workbench #body { height: 1fr; }
    Workbench #project, Workbench #registry-view, Workbench #runcol { width: 1fr; }
    Workbench #project FileTree { width: 28; border: round $primary-muted; }
    Workbench #monitor { height: 10; }
    Workbench.-wide #receipt { height: 17; }
    Workbench #monitor LifecyclePane { width: 1fr; }
    Workbench #monitor FuelGauge { width: 1fr; }
    Workbench.-wide #monitor { height: 13; }
    Workbench.-wide #project FileTree { width: 32; }
    """


class WorkbenchApp(App[int]):
    """``vudo tui``: the Spirit developer's workbench."""

    TITLE = "vudo"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.action, a.label, show=a.show) for a in ACTIONS),
        Binding("1", "view('project')", "Project", show=False),
        Binding("2", "view('run')", "Run view", show=False),
        Binding("3", "view('receipt')", "Receipt", show=False),
        Binding("4", "view('registry')", "Registry", show=False),
        Binding("escape", "dismiss_error", "Dismiss error", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        path: Path,
        *,
        home: Path,
        clock: Callable[[], float] = time.time,
        show_times: bool = True,
        hot_reload: bool = False,
        cursor_blink: bool = True,
        session: Session | None = None,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.theme = "textual-dark"
        self.root_path = Path(path)
        self.home = home
        self.clock = clock
        self.show_times = show_times
        self.cursor_blink = cursor_blink
        self.freeze_gc = freeze_gc
        self.session = session or Session(self.root_path, home=home, clock=clock)
        self.events: EventBuffer[Any] = EventBuffer()
        self.hot_reload = hot_reload
        self.view = "project"
        self.wide = False
        self.last_request: RunRequest | None = None
        self.test_cases: list[tuple[str, bool, str]] = []
        self.problem: ProblemRow | None = None
        self.status_text = ""
        self.busy: str | None = None  # name of the running task (build, run, test, ...)
        self._watch_stop = threading.Event()
        self._exiting = False
        self._reload_pending = False
        self._last_log_shown = 0.0
        self.reloads = 0
        self.flushes = 0

    # -- layout ------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return Workbench()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Tabs(*(Tab(label, id=f"tab-{key}") for key, label in VIEWS), id="views")
        yield Static("", id="status")
        with Horizontal(id="body"):
            with Horizontal(id="project"):
                yield FileTree(self.root_path, id="tree")
                yield FileViewer(self.root_path, id="viewer")
            with Vertical(id="registry-view"):
                yield RegistryBrowser(id="registry")
            with Vertical(id="runcol"):
                with Vertical(id="run"):
                    with Horizontal(id="monitor"):
                        yield LifecyclePane(show_times=self.show_times, id="lifecycle")
                        yield FuelGauge(show_rate=self.show_times, id="fuel")
                    yield HostCallLog(id="hostlog")
                yield ReceiptView(show_times=self.show_times, id="receipt")
        yield ErrorBanner(id="error")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.root_path.name
        self.set_interval(FLUSH_INTERVAL, self.flush_events, name="flush")
        self._apply_layout()
        self.query_one(FileTree).focus()
        try:
            project = self.session.open_project()
        except Exception as exc:  # a bad project is shown, never a crash
            self.show_error(exc)
        else:
            self.sub_title = project.name
            self.set_status(f"{project.language} project · press b to build, r to run")
            self.query_one(FileViewer).show(project.source)
        self.search_registry("")
        if self.hot_reload:
            self._start_watching()
        if self.freeze_gc:
            self.call_after_refresh(self._freeze_gc)

    def _freeze_gc(self) -> None:
        """Move everything alive after start-up (textual, the widgets, wasmtime, modules)
        out of the collector's reach: they live as long as the process, and leaving them
        in makes every full collection during a host-call flood a long UI stall. For the
        ``vudo tui`` process only (tests keep the default)."""
        import gc

        gc.collect()
        gc.freeze()

    def on_resize(self) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        self.wide = self.size.width >= WIDE
        self.screen.set_class(self.wide, "-wide")
        left = "registry" if self.view == "registry" else "project"
        if self.wide:
            show = {left, "runcol", "run", "receipt"}
        elif self.view in ("run", "receipt"):
            show = {"runcol", self.view}
        else:
            show = {self.view}
        self.query_one("#project").display = "project" in show
        self.query_one("#registry-view").display = "registry" in show
        self.query_one("#runcol").display = "runcol" in show
        self.query_one("#run").display = "run" in show
        self.query_one("#receipt").display = "receipt" in show

    @on(Tabs.TabActivated, "#views")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        key = (event.tab.id or "tab-project").removeprefix("tab-")
        if key != self.view:
            self.view = key
            self._apply_layout()

    def action_view(self, key: str) -> None:
        """Switch views. Focus goes to the tab bar (always visible), so switching does not
        move focus between panes and rebuild the footer on every key."""
        self.view = key
        tabs = self.query_one(Tabs)
        tabs.active = f"tab-{key}"
        self._apply_layout()
        if not isinstance(self.focused, Tabs) and self.screen is self.query_one(Tabs).screen:
            tabs.focus()

    # -- status and errors -------------------------------------------------------------

    def set_status(self, text: str) -> None:
        """Show ``text`` as plain text: it may carry a Spirit's log line or a package's
        words, and a str given to a Static is Textual markup (``[@click=...]`` would
        plant a clickable action, ``[bold red]`` restyle the line)."""
        self.status_text = text
        reload = " · hot reload on" if self.hot_reload else ""
        self.query_one("#status", Static).update(Content(f"{text}{reload}"), layout=False)

    def show_error(self, error: BaseException | ProblemRow) -> None:
        problem = error if isinstance(error, ProblemRow) else problem_from_error(error)
        self.problem = problem
        self.query_one(ErrorBanner).show_problem(problem)

    def action_dismiss_error(self) -> None:
        self.problem = None
        self.query_one(ErrorBanner).show_problem(None)

    # -- the event pump ----------------------------------------------------------------

    def flush_events(self) -> None:
        """Drain the buffer the run thread fills and update each pane once.

        Runs on a timer: a failure here is shown, never allowed to stop the app."""
        try:
            self._flush_events()
        except Exception as exc:
            self.show_error(exc)

    def engine_event(self, ev: Any) -> None:
        """The sandbox subscriber (run thread): flatten the event into a tuple of plain
        values and buffer it. Nothing else happens on the run thread; flat tuples are not
        tracked by the garbage collector, so a flood waiting for the next flush does not
        make full collections (which would freeze the UI) more frequent."""
        from vudo.engine.events import FuelSample, HostCall, LogMessage, StateChanged

        kind = type(ev)
        if kind is HostCall:
            cap = ev.capability.value if ev.capability is not None else ""
            self.events.push((0, ev.function, cap, ev.allowed, ev.args, ev.result, ev.fuel))
        elif kind is FuelSample:
            self.events.push(("fuel", ev.used, ev.budget, ev.at))
        elif kind is StateChanged:
            self.events.push(("state", ev.old, ev.new, ev.at, ev.reason))
        elif kind is LogMessage:
            self.events.push(("log", ev.message))

    def _flush_events(self) -> None:
        items = self.events.drain()
        if not items:
            return
        self.flushes += 1
        transitions: list[Transition] = []
        calls: list[Call] = []
        readings: list[tuple[int, int, float]] = []
        last_log: str | None = None
        for item in items:
            tag = item[0]
            if tag == 0:
                calls.append(item)
            elif tag == "fuel":
                readings.append(item[1:])
            elif tag == "state":
                transitions.append(Transition(*item[1:]))
            elif tag == "log":
                last_log = item[1]
        if transitions:
            self.query_one(LifecyclePane).add(transitions)
        if readings:
            self.query_one(FuelGauge).sample(readings)
        if calls:
            self.query_one(HostCallLog).add_calls(calls)
        now = time.monotonic()
        if last_log is not None and now - self._last_log_shown >= 0.25:
            self._last_log_shown = now  # a flooding Spirit repaints the status 4x a second
            self.set_status(f"spirit says: {printable(' '.join(last_log[:120].split()))}")

    # -- files -------------------------------------------------------------------------

    @on(FileTree.FileSelected)
    def _file_selected(self, event: FileTree.FileSelected) -> None:
        self.query_one(FileViewer).show(event.path)

    # -- tasks -------------------------------------------------------------------------

    def _begin(self, name: str) -> bool:
        if self.busy is not None:
            self.notify(f"busy: {self.busy} is still going", severity="warning")
            return False
        self.busy = name
        return True

    def _end(self) -> None:
        self.busy = None

    def _fail(self, exc: BaseException) -> None:
        self.show_error(exc)
        if self.busy is not None:
            self.set_status(f"{self.busy} failed")
        self._end()

    def action_build(self) -> None:
        if self._begin("build"):
            self.set_status("building…")
            self._build_worker(then_run=False)

    @work(thread=True, group="task", name="build")
    def _build_worker(self, *, then_run: bool) -> None:
        try:
            result = self.session.build(progress=self._progress_from_thread)
        except Exception as exc:
            self._post(self._fail, exc)
            return
        self._post(self._built, result, then_run)

    def _post(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback`` on the UI thread from a worker; dropped once the app is closing
        (a worker finishing during shutdown must not raise)."""
        if self._exiting:
            return
        try:
            self.call_from_thread(callback, *args)
        except RuntimeError:
            if not self._exiting:
                raise

    def _progress_from_thread(self, line: str) -> None:
        self._post(self.set_status, line)

    def _built(self, result: Any, then_run: bool) -> None:
        self.action_dismiss_error()
        self.query_one(FileTree).reload_tree()
        warnings = "".join(f" · warning: {w.message}" for w in result.warnings[:1])
        self.set_status(f"built target/{result.wasm_path.name} ({result.size:,} bytes){warnings}")
        self._end()
        if then_run and self.last_request is not None:
            self._start_run(self.last_request)

    # run -------------------------------------------------------------------------------

    def action_run(self) -> None:
        if self.session.live:
            self.notify("a run is going: stop it (x) first", severity="warning")
            return
        if self._begin("prepare run"):
            self.set_status("loading module…")
            self._prepare_run_worker()

    @work(thread=True, group="task", name="prepare")
    def _prepare_run_worker(self) -> None:
        try:
            functions, default = self.session.functions(progress=self._progress_from_thread)
        except Exception as exc:
            self._post(self._fail, exc)
            return
        self._post(self._ask_run, functions, default)

    def _ask_run(self, functions: list[tuple[str, str]], default: str | None) -> None:
        self._end()
        self.set_status("choose what to run")
        last = self.last_request
        if last is not None and any(name == last.function for name, _ in functions):
            default = last.function
        dialog = RunDialog(
            functions,
            default=default,
            args=" ".join(last.args) if last else "",
            fuel=last.fuel if last else self.session.default_fuel,
            deny=" ".join(last.deny) if last else "",
        )
        self.push_screen(dialog, self._run_chosen)

    def _run_chosen(self, request: RunRequest | None) -> None:
        if request is None:
            self.set_status("run cancelled")
            return
        self.last_request = request
        self._start_run(request)

    def _start_run(self, request: RunRequest, *, again: bool = False) -> None:
        if not self._begin("run"):
            return
        if not again:
            self.query_one(LifecyclePane).reset()
            self.query_one(HostCallLog).clear()
            self.query_one(FuelGauge).reset(request.fuel)
        self.action_dismiss_error()
        self.set_status(f"running {request.function}…")
        if not self.wide and self.view not in ("run",):
            self.action_view("run")
        self._run_worker(request, again)

    @work(thread=True, group="run", name="run")
    def _run_worker(self, request: RunRequest, again: bool) -> None:
        try:
            if again:
                outcome = self.session.call_again(self.engine_event)
            else:
                outcome = self.session.run(request, self.engine_event)
        except Exception as exc:
            self._post(self._fail, exc)
            return
        self._post(self._ran, outcome)

    def _ran(self, outcome: RunOutcome) -> None:
        self.flush_events()
        self._end()
        receipt = outcome.receipt
        if receipt is not None:
            self.query_one(ReceiptView).show(receipt)
            self.query_one(FuelGauge).set_used(receipt.fuel_used, receipt.fuel_budget)
        if outcome.error is not None:
            self.show_error(outcome.error)
        if outcome.suspended:
            self.set_status("out of fuel: suspended · f to refuel and continue, x to stop")
        elif receipt is not None:
            results = ", ".join(str(v) for v in receipt.results) or "no results"
            self.set_status(f"{receipt.function} → {receipt.outcome} ({results})")

    def action_pause(self) -> None:
        try:
            state = self.session.toggle_pause()
        except Exception as exc:
            self.show_error(exc)
            return
        if state is None and self.session.out_of_fuel:
            self.notify("out of fuel: refuel (f) to continue", severity="information")
        elif state is None:
            self.notify("nothing is running", severity="information")
        else:
            self.set_status(f"sandbox {state}")
        self.flush_events()

    def action_stop(self) -> None:
        try:
            stopped = self.session.terminate()
        except Exception as exc:
            self.show_error(exc)
            return
        if not stopped:
            self.notify("nothing to stop", severity="information")
        else:
            self.set_status("terminated")
        self.flush_events()

    def action_refuel(self) -> None:
        if not self.session.can_refuel:
            self.notify("no suspended Spirit to refuel", severity="information")
            return
        amount = self.last_request.fuel if self.last_request else self.session.default_fuel
        self.push_screen(RefuelDialog(amount), self._refuel_chosen)

    def _refuel_chosen(self, amount: int | None) -> None:
        if amount is None:
            return
        try:
            resume_call = self.session.refuel(amount)
        except Exception as exc:
            self.show_error(exc)
            return
        self.set_status(f"refuelled {amount:,}")
        if resume_call and self.last_request is not None:
            self._start_run(self.last_request, again=True)

    # test / pack / sign / check -------------------------------------------------------

    def _simple_task(self, name: str, status: str, fn: Callable[[], str]) -> None:
        if not self._begin(name):
            return
        self.set_status(status)
        self._simple_worker(fn)

    @work(thread=True, group="task", name="task")
    def _simple_worker(self, fn: Callable[[], str]) -> None:
        try:
            summary = fn()
        except Exception as exc:
            self._post(self._fail, exc)
            return
        self._post(self._task_done, summary)

    def _task_done(self, summary: str) -> None:
        self._end()
        self.query_one(FileTree).reload_tree()
        self.action_dismiss_error()
        self.set_status(summary)

    def action_test(self) -> None:
        cases: list[tuple[str, bool, str]] = []
        self.test_cases = cases

        def on_case(name: str, passed: bool, detail: str) -> None:
            cases.append((name, passed, detail))
            self._post(self._show_tests, list(cases))

        if not self.wide and self.busy is None:
            self.action_view("receipt")
        self._simple_task(
            "test", "testing…", lambda: self.session.test(self._progress_from_thread, on_case)
        )

    def _show_tests(self, cases: list[tuple[str, bool, str]]) -> None:
        self.query_one(ReceiptView).show_tests(cases)

    def action_pack(self) -> None:
        self._simple_task("pack", "packing…", lambda: self.session.pack(self._progress_from_thread))

    def action_sign(self) -> None:
        self._simple_task("sign", "signing…", lambda: self.session.sign(self._progress_from_thread))

    def action_check(self) -> None:
        self._simple_task(
            "check", "checking…", lambda: self.session.check(self._progress_from_thread)
        )

    def action_denied(self) -> None:
        log = self.query_one(HostCallLog)
        log.set_filter(log.capability_filter, denied_only=not log.denied_only)

    # registry -------------------------------------------------------------------------

    def action_search(self) -> None:
        self.action_view("registry")
        self.query_one("#registry-search").focus()

    @on(RegistryBrowser.Search)
    def _search(self, event: RegistryBrowser.Search) -> None:
        self.search_registry(event.query)

    @work(thread=True, group="search", exclusive=True, name="search")
    def search_registry(self, query: str) -> None:
        try:
            entries = self.session.search(query)
        except Exception as exc:
            self._post(self.show_error, exc)
            return
        self._post(self._show_results, query, entries)

    def _show_results(self, query: str, entries: list[RegistryEntry]) -> None:
        browser = self.query_one(RegistryBrowser)
        if browser.query_text == query:
            browser.show_results(entries)

    @on(RegistryBrowser.Act)
    def _registry_act(self, event: RegistryBrowser.Act) -> None:
        if self._begin(event.action):
            self.set_status(f"{event.action} {event.entry.name}…")
            self._registry_worker(event.action, event.entry)

    def ask_consent(self, request: ConsentRow) -> tuple[str, ...] | None:
        """From a worker thread: show the consent screen and wait for the answer."""
        answered = threading.Event()
        answer: list[tuple[str, ...] | None] = [None]

        def decided(granted: tuple[str, ...] | None) -> None:
            answer[0] = granted
            answered.set()

        self._post(self.push_screen, ConsentScreen(request), decided)
        while not answered.wait(0.1):
            if self._exiting:
                return None
        return answer[0]

    @work(thread=True, group="task", name="registry")
    def _registry_worker(self, action: str, entry: RegistryEntry) -> None:
        try:
            summary = self.session.registry_action(action, entry, self.ask_consent)
        except Exception as exc:
            self._post(self._fail, exc)
            return
        self._post(self._registry_done, summary)

    def _registry_done(self, summary: str) -> None:
        self._end()
        self.action_dismiss_error()
        self.set_status(summary)
        self.search_registry(self.query_one(RegistryBrowser).query_text)

    # hot reload -----------------------------------------------------------------------

    def action_hot_reload(self) -> None:
        self.hot_reload = not self.hot_reload
        if self.hot_reload:
            self._start_watching()
        else:
            self._watch_stop.set()
        self.set_status(self.status_text)

    def _start_watching(self) -> None:
        self._watch_stop = threading.Event()
        self._watch_worker(self._watch_stop)

    @work(thread=True, group="watch", exclusive=True, name="watch")
    def _watch_worker(self, stop: threading.Event) -> None:
        try:
            for changes in self.session.watch(stop):
                if stop.is_set():
                    return
                self._post(self._source_changed, sorted(changes))
        except Exception as exc:
            self._post(self.show_error, exc)

    def _source_changed(self, changed: list[str]) -> None:
        if not self.hot_reload:
            return
        self.reloads += 1
        self.set_status(f"changed: {', '.join(changed[:3])} · rebuilding")
        self.query_one(FileTree).reload_tree()
        if not self._reload_pending:
            self._reload_pending = True
            self._reload_when_idle()

    def _reload_when_idle(self) -> None:
        """Stop a live run, wait for the current task to end, then rebuild and rerun."""
        if self.session.live:
            self.session.terminate()
        if self.busy is not None:
            self.set_timer(0.1, self._reload_when_idle)
            return
        self._reload_pending = False
        if self._begin("build"):
            self._build_worker(then_run=self.last_request is not None)

    # palette and shutdown --------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for spec in ACTIONS:
            yield SystemCommand(spec.label, spec.help, getattr(self, f"action_{spec.action}"))
        for key, label in VIEWS:
            yield SystemCommand(
                f"Show {label}",
                f"Switch to the {label} view",
                lambda key=key: self.action_view(key),
            )

    async def action_quit(self) -> None:
        """Quit at once: stop a running Spirit first (it stops at its next loop or call),
        so shutting down never waits for a compute-bound guest or a run worker."""
        self._exiting = True
        self._watch_stop.set()
        self.session.terminate()
        self.exit()

    def on_unmount(self) -> None:
        self._exiting = True
        self._watch_stop.set()
        self.session.close()


def run_tui(path: Path, *, home: Path | None = None, fast_exit: bool = True) -> int:
    """Open the workbench on the project at ``path``; returns the process exit code."""
    from vudo.home import vudo_home

    app = WorkbenchApp(path.resolve(), home=home or vudo_home(), freeze_gc=True)
    result = app.run()
    code = app.return_code or int(result or 0)
    if fast_exit:
        # Everything holding state (the sandbox, storage, the engine) was closed when the
        # app unmounted; skip tearing down a large, GC-frozen interpreter heap (up to ~1 s
        # on a busy machine), so `q` ends the process at once.
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
