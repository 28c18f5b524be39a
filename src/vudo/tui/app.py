"""The workbench app: panes, key bindings, workers, hot reload.

The app reacts and renders; everything it does goes through :class:`vudo.tui.session.Session`
(the same core functions the CLI commands call). Long work runs in thread workers and
reports back with ``call_from_thread``; engine events go through an :class:`EventBuffer`
that a 50 ms timer drains, so no widget is ever touched from the run thread and a Spirit
flooding the host-call log cannot freeze the screen.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.model import RuleSet
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, Input, Static

from vudo.errors import VudoError, printable
from vudo.home import vudo_home
from vudo.project.storage import StoredEntry, show_key
from vudo.tui.buffer import EventBuffer
from vudo.tui.chrome import KeyFooter, ViewTabs
from vudo.tui.dialogs import (
    ConfirmDialog,
    ConsentScreen,
    Export,
    RefuelDialog,
    RunDialog,
    RunRequest,
    TextScreen,
)
from vudo.tui.files import FileTree, FileViewer
from vudo.tui.fuel import FuelGauge
from vudo.tui.help import allow_line, call_detail, help_text
from vudo.tui.hostlog import Call, HostCallLog, call_json, nested_function
from vudo.tui.lifecycle import LifecyclePane
from vudo.tui.lists import LineList, one_line
from vudo.tui.output import OutputLog, output_text
from vudo.tui.panes import PANES, FocusStyleWhenShown, Pane, displayed
from vudo.tui.receipt import ErrorBanner, ReceiptView, problem_from_error, receipt_json
from vudo.tui.registry import RegistryBrowser
from vudo.tui.rows import ConsentRow, ProblemRow, ReceiptRow, RegistryEntry, Transition
from vudo.tui.session import RunOutcome, Session
from vudo.tui.storage import StoragePane, show_value

#: The views the tab bar switches between (one at a time below :data:`WIDE` columns).
VIEWS: tuple[tuple[str, str], ...] = (
    ("project", "Project"),
    ("run", "Run"),
    ("log", "Log"),
    ("receipt", "Receipt"),
    ("storage", "Storage"),
    ("registry", "Registry"),
)
#: Views that take the left half in the wide layout (the run, log and receipt are always
#: on the right there, so their tabs would do nothing and are hidden).
LEFT_VIEWS = ("project", "storage", "registry")
WIDE = 140  # columns from which the run panes sit beside the project or registry
FLUSH_INTERVAL = 0.05
#: The GIL switch interval while a Spirit runs (Python's default is 5 ms). Its host calls
#: take the GIL from the UI thread each time the interval runs out, a hand-over between
#: threads that a busy machine can make last milliseconds; twice the default halves how
#: often a frame is cut, and the run thread's waits stay short. Measured with
#: benches/tui.py: keypress p95 about 20% lower under load than at 5 ms, and 2 ms worse.
RUN_SWITCH_INTERVAL = 0.01
SEVERITY: dict[str, SeverityLevel] = {"warn": "warning", "error": "error"}


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
    ActionSpec("r", "run", "Run", "Choose a function, arguments and limits and run it (vudo run)"),
    ActionSpec("p", "pause", "Pause", "Suspend or resume the running Spirit", show=False),
    ActionSpec("x", "stop", "Stop", "Terminate the running Spirit at once", show=False),
    ActionSpec(
        "f", "refuel", "Refuel", "Add fuel to a Spirit that ran out; it continues", show=False
    ),
    ActionSpec("t", "test", "Test", "Run every test_* export (vudo test)", show=False),
    ActionSpec("c", "check", "Check", "Lint manifest, capabilities and package", show=False),
    ActionSpec("P", "pack", "Pack…", "Write dist/<name>-<version>.spirit (asks first)", show=False),
    ActionSpec(
        "S", "sign", "Sign…", "Sign the newest package with your key (asks first)", show=False
    ),
    ActionSpec(
        "h", "hot_reload", "Reload", "Toggle hot reload: rebuild and rerun on change", show=False
    ),
    ActionSpec(
        "o", "goto_error", "Error line", "Show the line a build error points at", show=False
    ),
    ActionSpec("question_mark,f1", "help", "Help", "Every key of the focused pane and the app"),
)


class Workbench(Screen[None]):
    """The one main screen: tabs on top, views below, error banner above the footer."""

    #: Textual repaints the whole screen when the focus moves, a second full pass in the
    #: frame that lays out a pane switch; the widgets whose look follows the focus (the
    #: focused and blurred ones, their panes' borders) repaint themselves.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.cycle_pane(1)", "Next pane", show=False),
        Binding("shift+tab", "app.cycle_pane(-1)", "Previous pane", show=False),
    ]

    DEFAULT_CSS = """
    Workbench #status { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
    Workbench #body { height: 1fr; }
    Workbench #project, Workbench #registry-view, Workbench #storage-view { width: 1fr; }
    Workbench #runcol { width: 1fr; }
    Workbench #project FileTree { width: 28; }
    Workbench #monitor { height: 10; }
    Workbench #monitor LifecyclePane { width: 2fr; min-width: 38; }
    Workbench #monitor FuelGauge { width: 1fr; }
    Workbench #bottom { height: 1fr; }
    Workbench #bottom OutputLog, Workbench #bottom ReceiptView { width: 1fr; }
    Workbench.-wide #bottom { height: 14; }
    Workbench.-wide #bottom ReceiptView { width: 50; }
    Workbench.-wide #project FileTree { width: 26; }
    Workbench .layout, Workbench .layout > .layout { visibility: hidden; }
    Workbench .layout > * { visibility: visible; }
    Workbench .pane {
        border: round $primary-muted; border-title-color: $text-muted;
    }
    Workbench .pane:focus-within {
        border: heavy $accent;  /* and its title in that colour, reversed: PaneTitle */
    }
    """

    #: The stylesheet's rules when they were last found to style by ``:focus-within``
    #: only the frame of the widget named (see :meth:`_update_focus_styles`).
    _local_rules: list[RuleSet] | None = None

    def set_focus(
        self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False
    ) -> None:
        """Focus ``widget``; the footer shows the new pane's keys in the same frame
        (Textual signals the new bindings after the next frame: one more frame per pane
        switch)."""
        super().set_focus(widget, scroll_visible, from_app_focus)
        for footer in self.query_children(KeyFooter):
            footer.sync_now()

    def _update_focus_styles(
        self, focused: Widget | None = None, blurred: Widget | None = None
    ) -> None:
        """Restyle what a focus change restyles: the panes that gain or lose the focus.

        Textual restyles every widget inside such a pane (a style pass over a few dozen
        widgets, the largest part of a number key's cost before its frame), in case a
        rule styles them by their pane's focus. No rule here does: while every
        ``:focus-within`` rule only draws the border of the widget it names, restyling
        those widgets is the same. A pane that is itself the widget gaining or losing the
        focus (the file tree) is left to its Focus or Blur event, which restyles it anyway
        (the tree's is a 3 ms pass), and a pane the key hides is restyled when it is
        shown again (:class:`FocusStyleWhenShown`). Any other rule gets Textual's full
        restyle."""
        rules = self.app.stylesheet.rules
        if self._local_rules is not rules:  # a new stylesheet (checked once per parse)
            self._local_rules = rules if focus_within_is_local(rules) else None
        if self._local_rules is None:
            super()._update_focus_styles(focused, blurred)
            return
        nodes = set()
        for widget in (focused, blurred):
            if widget is None:
                continue
            for node in widget.ancestors_with_self:
                if not node._has_focus_within or node is widget:
                    continue
                if isinstance(node, FocusStyleWhenShown) and not displayed(node):
                    node.restyle_when_shown()  # a pane the key hid: restyled as it shows
                else:
                    nodes.add(node)
        if nodes:
            self.app.stylesheet.update_nodes(nodes, animate=True)


#: Style properties of a widget that none inside it takes from it.
OWN_STYLES = ("border", "auto_border", "outline")


def focus_within_is_local(rules: Iterable[RuleSet]) -> bool:
    """Whether every ``:focus-within`` rule styles only the widget it names and only its
    frame (border, outline): then a focus change restyles those widgets, not what is in
    them."""
    for rule in rules:
        if "focus-within" not in rule.pseudo_classes:
            continue
        for selectors in rule.selector_set:
            if any("focus-within" in s.pseudo_classes for s in selectors.selectors[:-1]):
                return False
        if not all(name.startswith(OWN_STYLES) for name in rule.styles.get_rules()):
            return False
    return True


class WorkbenchApp(App[int]):
    """``vudo tui``: the Spirit developer's workbench."""

    TITLE = "vudo"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.action, a.label, show=a.show) for a in ACTIONS),
        *(
            Binding(str(p.number), f"pane({p.number})", f"Go to {p.title}", show=False)
            for p in PANES
        ),
        Binding("slash", "filter", "Filter the focused list", show=False),
        Binding("escape", "escape", "Leave the input / dismiss the error", show=False),
        Binding("q", "quit", "Quit"),
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
        self.left = "project"  # what the wide layout shows on the left
        self.wide = False
        self.last_request: RunRequest | None = None
        self.test_cases: list[tuple[str, bool, str]] = []
        self.problem: ProblemRow | None = None
        self.status_text = ""
        self.busy: str | None = None  # name of the running task (build, run, test, ...)
        self._stop_asked = False  # the user pressed x: the run's end is not an error
        self._watch_stop = threading.Event()
        self._exiting = False
        self._reload_pending = False
        self.reloads = 0
        self.flushes = 0

    # -- layout ------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return Workbench()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield ViewTabs(VIEWS, id="views")
        yield Static("", id="status")
        with Horizontal(id="body", classes="layout"):
            with Horizontal(id="project", classes="layout"):
                yield FileTree(self.root_path, id="tree")
                yield FileViewer(self.root_path, id="viewer")
            with Vertical(id="storage-view", classes="layout"):
                yield StoragePane(id="storage")
            with Vertical(id="registry-view", classes="layout"):
                yield RegistryBrowser(id="registry")
            with Vertical(id="runcol", classes="layout"):
                with Vertical(id="run", classes="layout"):
                    with Horizontal(id="monitor", classes="layout"):
                        yield LifecyclePane(show_times=self.show_times, id="lifecycle")
                        yield FuelGauge(show_rate=self.show_times, id="fuel")
                    yield HostCallLog(id="hostlog")
                with Horizontal(id="bottom", classes="layout"):
                    yield OutputLog(show_times=self.show_times, id="output")
                    yield ReceiptView(show_times=self.show_times, id="receipt")
        yield ErrorBanner(id="error")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = self.root_path.name
        for pane in PANES:
            widget = self.query_one(f"#{pane.id}")
            widget.add_class("pane")
            if pane.id != "viewer":  # the viewer's title names its file
                widget.border_title = f"{pane.number} {pane.title}"
        self.set_interval(FLUSH_INTERVAL, self.flush_events, name="flush")
        self._apply_layout(self.size.width)
        self.query_one(FileTree).focus()
        try:
            project = self.session.open_project()
        except Exception as exc:  # a bad project is shown, never a crash
            self.show_error(exc)
        else:
            self.sub_title = project.name
            self.set_status(f"{project.language} project · b builds, r runs, ? lists every key")
            self.query_one(FileViewer).show(project.source)
        self.search_registry("")
        if self.hot_reload:
            self._start_watching()
        if self.freeze_gc:
            self.call_after_refresh(self._freeze_gc)

    @work(thread=True, group="gc", name="gc")
    def _freeze_gc(self) -> None:
        """Move what lives as long as the process out of the collector's reach (the
        ``vudo tui`` process only; tests keep the default): textual, the widgets, and the
        modules that a build, a run and the registry browser load, wasmtime's bindings
        above all. Those are loaded here first, on a worker thread, so that they are
        frozen too: loaded later, by the first run, they were some 20,000 objects that
        every full collection walked during a host-call flood (a UI stall each time)."""
        # lazy: each loaded here, off the UI thread, so that the freeze below covers it
        import vudo.engine.events  # lazy: as above (the events a run sends)
        import vudo.project.build  # lazy: as above (a build)
        import vudo.project.registries  # lazy: as above (the registry browser)
        import vudo.project.runner  # noqa: F401  # lazy: as above (a run)

        gc.collect()
        gc.freeze()

    def on_resize(self, event: events.Resize) -> None:
        # The event's size is the new one (``self.size`` can still be the old one here,
        # which made the layout follow one resize late).
        with contextlib.suppress(NoMatches):  # a resize while the app closes: nothing to lay out
            self._apply_layout(event.size.width)

    def _apply_layout(self, width: int) -> None:
        self.wide = width >= WIDE
        self.default_screen.set_class(self.wide, "-wide")
        tabs = self.query_one(ViewTabs)
        if self.view in LEFT_VIEWS:
            self.left = self.view
        if self.wide:
            show = {self.left, "runcol", "run", "bottom", "output", "receipt"}
        elif self.view == "run":
            show = {"runcol", "run"}
        elif self.view in ("log", "receipt"):
            show = {"runcol", "bottom", "output" if self.view == "log" else "receipt"}
        else:
            show = {self.view}
        tabs.active = self.left if self.wide else self.view
        tabs.set_hidden(("run", "log", "receipt") if self.wide else ())
        changed = False
        for widget, key in self._view_parts:
            if widget.display != (key in show):
                widget.display = key in show
                changed = True
        if changed:  # what changed while hidden: into the frame that shows it
            for pane in self._catching_up:
                pane.catch_up()
            for widget in self._focus_widgets:
                widget.restyle_if_stale()

    @cached_property
    def _view_parts(self) -> list[tuple[Widget, str]]:
        """The containers the views show and hide, each with the key that shows it
        (found once: a lookup walks the whole DOM, and each key press lays out)."""
        keys = ("project", "storage", "registry", "runcol", "run", "bottom", "output", "receipt")
        ids = {"storage": "storage-view", "registry": "registry-view"}
        return [(self.query_one(f"#{ids.get(key, key)}"), key) for key in keys]

    @cached_property
    def _catching_up(self) -> list[HostCallLog | OutputLog | FuelGauge | LineList[Any]]:
        """What keeps what came while it was hidden for when it is shown."""
        return [
            self.query_one(HostCallLog),
            self.query_one(OutputLog),
            self.query_one(FuelGauge),
            *self.query(LineList),
        ]

    @cached_property
    def _focus_widgets(self) -> list[FocusStyleWhenShown]:
        """The widgets that take the panes' focus (restyled late if hidden meanwhile)."""
        return list(self.query(FocusStyleWhenShown))

    @on(ViewTabs.Activated)
    def _tab_activated(self, event: ViewTabs.Activated) -> None:
        if not self._exiting:
            self.action_view(event.key)

    def action_view(self, key: str) -> None:
        """Show view ``key`` and focus its first pane."""
        self.view = key
        self._apply_layout(self.size.width)
        if key == "storage":
            self.refresh_storage()
        pane = next((p for p in PANES if p.view == key), None)
        if pane is not None and self.screen is self.default_screen:
            self.query_one(pane.focus).focus()

    def visible_panes(self) -> list[Pane]:
        return [p for p in PANES if displayed(self.query_one(f"#{p.id}"))]

    def current_pane(self) -> Pane | None:
        """The pane holding the focus, if any."""
        focused = self.focused
        if focused is None:
            return None
        ids = {p.id: p for p in PANES}
        for node in (focused, *focused.ancestors):
            pane = ids.get(getattr(node, "id", None) or "")
            if pane is not None:
                return pane
        return None

    def action_pane(self, number: int) -> None:
        """Jump to pane ``number`` (showing its view first)."""
        pane = next(p for p in PANES if p.number == number)
        if not displayed(self.query_one(f"#{pane.id}")):
            self.view = pane.view
            self._apply_layout(self.size.width)
        if pane.view == "storage":
            self.refresh_storage()
        self.query_one(pane.focus).focus()

    def action_cycle_pane(self, step: int) -> None:
        """Tab / shift+tab: the next (previous) pane on screen."""
        visible = self.visible_panes()
        if not visible:
            return
        current = self.current_pane()
        index = visible.index(current) if current in visible else -step if step > 0 else 0
        self.query_one(visible[(index + step) % len(visible)].focus).focus()

    def action_filter(self) -> None:
        """``/``: filter the focused list (the registry search when none is focused)."""
        pane = self.current_pane()
        if pane is not None and pane.id == "hostlog":
            self.query_one(HostCallLog).open_search()
        elif pane is not None and pane.id == "output":
            self.query_one(OutputLog).open_search()
        else:
            self.action_pane(7)
            self.query_one("#registry-search").focus()

    def action_escape(self) -> None:
        """Esc leaves an input for its pane's list; otherwise it dismisses the error."""
        focused = self.focused
        if isinstance(focused, Input):
            pane = self.current_pane()
            if pane is not None and pane.id == "hostlog":
                self.query_one(HostCallLog).close_search()
            elif pane is not None and pane.id == "output":
                self.query_one(OutputLog).close_search()
            elif pane is not None:
                self.query_one(pane.focus).focus()
            else:
                self.set_focus(None)
            return
        self.action_dismiss_error()

    def action_help(self) -> None:
        """``?``/F1: every binding of the focused pane and the app."""
        pane = self.current_pane()
        self.push_screen(TextScreen("Keys", help_text(self, pane)))

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

    def action_goto_error(self) -> None:
        """``o``: show the file and line a build error points at."""
        location = self.problem.location if self.problem is not None else None
        if location is None:
            self.notify("no error with a source line to show", severity="information")
            return
        rel, line, _col = location
        path = (self.root_path / rel).resolve()
        if not path.is_relative_to(self.root_path.resolve()) or not path.is_file():
            self.notify(f"{printable(rel)} is not a file of this project", severity="warning")
            return
        self.action_pane(2)
        self.query_one(FileViewer).show(path, line=line)

    # -- the event pump ----------------------------------------------------------------

    def flush_events(self) -> None:
        """Drain the buffer the run thread fills and update each pane once.

        Runs on a timer: a failure here is shown, never allowed to stop the app. Once
        the app shuts down it does nothing: the panes are gone before the timer stops (a
        run's last state change, sent as the session closes, would find no pane)."""
        if not self.is_running:
            return
        try:
            self._flush_events()
        except Exception as exc:
            self.show_error(exc)

    def engine_event(self, ev: Any) -> None:
        """The sandbox subscriber (run thread): flatten the event into a tuple of plain
        values and buffer it. Nothing else happens on the run thread; flat tuples are not
        tracked by the garbage collector, so a flood waiting for the next flush does not
        make full collections (which would freeze the UI) more frequent."""
        from vudo.engine.events import (  # lazy: engine.events (~3 ms) only once a run sends events
            LEVEL_NAMES,
            FuelSample,
            HostCall,
            LogMessage,
            Notification,
            OutputWritten,
            StateChanged,
        )

        kind = type(ev)
        if kind is HostCall:
            cap = ev.capability.value if ev.capability is not None else ""
            name = ev.function if not ev.depth else nested_function(ev.function, ev.depth)
            self.events.push((0, name, cap, ev.allowed, ev.args, ev.result, ev.fuel, ev.reason))
        elif kind is FuelSample:
            self.events.push(("fuel", ev.used, ev.budget, ev.at))
        elif kind is StateChanged:
            self.events.push(("state", ev.old, ev.new, ev.at, ev.reason))
        elif kind is LogMessage or kind is Notification:
            level = LEVEL_NAMES[ev.level] if 0 <= ev.level < len(LEVEL_NAMES) else str(ev.level)
            source = "log" if kind is LogMessage else "notify"
            self.events.push(("out", source, level, ev.at, ev.message))
        elif kind is OutputWritten:
            text = ev.data.decode("utf-8", errors="replace")
            for line in text.splitlines() or [""]:
                self.events.push(("out", ev.stream, "", ev.at, line))

    def _flush_events(self) -> None:
        items = self.events.drain()
        if not items:
            return
        self.flushes += 1
        transitions: list[Transition] = []
        calls: list[Call] = []
        readings: list[tuple[int, int, float]] = []
        output: list[tuple[str, str, float, str]] = []
        for item in items:
            tag = item[0]
            if tag == 0:
                calls.append(item)
            elif tag == "fuel":
                readings.append(item[1:])
            elif tag == "state":
                transitions.append(Transition(*item[1:]))
            elif tag == "out":
                output.append(item[1:])
        if transitions:
            self.query_one(LifecyclePane).add(transitions)
            last = transitions[-1]
            if last.new == "suspended" and last.reason.startswith("out of fuel"):
                # a live call waits in place for fuel (its worker is still in the call)
                self.set_status("out of fuel: suspended · f refuels and continues, x stops")
                self.refresh_bindings()
        if readings:
            self.query_one(FuelGauge).sample(readings)
        if calls:
            self.query_one(HostCallLog).add_calls(calls)
        if output:
            self.query_one(OutputLog).add(output)
            notes = [o for o in output if o[0] == "notify"]
            if notes:  # one toast per batch: a Spirit notifying in a loop cannot bury the UI
                _, level, _, text = notes[-1]
                more = f" (+{len(notes) - 1} more in the log)" if len(notes) > 1 else ""
                severity = SEVERITY.get(level, "information")
                self.notify(
                    printable(text[:200]) + more,
                    title="the Spirit says",
                    severity=severity,
                    markup=False,
                )

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
        viewer = self.query_one(FileViewer)
        if viewer.mark is not None:
            viewer.mark = None
            viewer.reload()
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

    def _ask_run(self, functions: list[Export], default: str | None) -> None:
        self._end()
        self.set_status("choose what to run")
        last = self.last_request
        if last is not None and any(name == last.function for name, _, _ in functions):
            default = last.function
        dialog = RunDialog(functions, default=default, last=last, fuel=self.session.default_fuel)
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
            self.query_one(OutputLog).clear()
            self.query_one(FuelGauge).reset(request.fuel)
        self._stop_asked = False
        self.refresh_bindings()
        self.action_dismiss_error()
        self.set_status(f"running {request.function}… · p pauses, x stops")
        if not self.wide and self.view not in ("run", "log"):
            self.action_view("run")
        self._run_worker(request, again)

    @work(thread=True, group="run", name="run")
    def _run_worker(self, request: RunRequest, again: bool) -> None:
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(RUN_SWITCH_INTERVAL)
        try:
            if again:
                outcome = self.session.call_again(self.engine_event)
            else:
                outcome = self.session.run(request, self.engine_event)
        except Exception as exc:
            self._post(self._fail, exc)
            return
        finally:
            sys.setswitchinterval(switch_interval)
        self._post(self._ran, outcome)

    def _ran(self, outcome: RunOutcome) -> None:
        self.flush_events()
        self._end()
        self.refresh_bindings()
        receipt = outcome.receipt
        if receipt is not None:
            self.query_one(ReceiptView).show(receipt)
            self.query_one(FuelGauge).set_used(receipt.fuel_used, receipt.fuel_budget)
        stopped = self._stop_asked and receipt is not None and receipt.outcome == "terminated"
        if outcome.error is not None and not stopped:
            self.show_error(outcome.error)
        if outcome.suspended:
            self.set_status("out of fuel: suspended · f refuels and continues, x stops")
        elif stopped and receipt is not None:
            self.set_status(f"{receipt.function} stopped (you pressed x)")
        elif receipt is not None:
            results = ", ".join(str(v) for v in receipt.results) or "no results"
            self.set_status(f"{receipt.function} → {receipt.outcome} ({results})")
        self.refresh_storage()

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
        self._stop_asked = True
        try:
            stopped = self.session.terminate()
        except Exception as exc:
            self.show_error(exc)
            return
        if not stopped:
            self._stop_asked = False
            self.notify("nothing to stop", severity="information")
        else:
            self.set_status("stopping…")
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

    def confirm(self, question: str, detail: str, then: Callable[[], None]) -> None:
        """Ask before an action that changes files, the store or the registry."""

        def answered(yes: bool | None) -> None:
            if yes:
                then()
            else:
                self.set_status("cancelled")

        self.push_screen(ConfirmDialog(question, detail), answered)

    def action_pack(self) -> None:
        self.confirm(
            "Pack the project?",
            "writes dist/<name>-<version>.spirit (replacing one of the same version)",
            lambda: self._simple_task(
                "pack", "packing…", lambda: self.session.pack(self._progress_from_thread)
            ),
        )

    def action_sign(self) -> None:
        self.confirm(
            "Sign the newest package?",
            "writes its signature with your key",
            lambda: self._simple_task(
                "sign", "signing…", lambda: self.session.sign(self._progress_from_thread)
            ),
        )

    def action_check(self) -> None:
        self._simple_task(
            "check", "checking…", lambda: self.session.check(self._progress_from_thread)
        )

    def action_denied(self) -> None:
        log = self.query_one(HostCallLog)
        log.set_filter(log.capability_filter, denied_only=not log.denied_only)

    # host calls, log, receipt: details, copy, export -----------------------------------

    def action_call_detail(self) -> None:
        """Enter on a host call: its arguments, result, reason and fuel, and for a denied
        call what would allow it."""
        call = self.query_one(HostCallLog).selected
        if call is None:
            self.notify("no host call selected", severity="information")
            return
        body = call_detail(call, self.allow_hint(call))
        self.push_screen(TextScreen(f"Host call #{call[0]}", body, copy_text=call_json(call)))

    def allow_hint(self, call: Call) -> str | None:
        """What would allow a denied call, for the project the workbench runs."""
        if call[3]:
            return None
        cap = call[2]
        if not cap:
            return None
        request = self.last_request
        if request is not None and cap in request.deny:
            return f"it was denied in the run dialog: remove {cap} from its deny field (r)"
        return allow_line(cap, call[7], self.session.manifest_capabilities())

    def action_copy_call(self) -> None:
        call = self.query_one(HostCallLog).selected
        if call is None:
            self.notify("no host call selected", severity="information")
            return
        self.copy_to_clipboard(call_json(call))
        self.notify(f"copied host call #{call[0]} (JSON)")

    def action_export_calls(self) -> None:
        """ctrl+s on the host calls: every shown call as JSON lines in target/."""
        log = self.query_one(HostCallLog)
        calls = list(log.table.items)
        if not calls:
            self.notify("no host calls to export", severity="information")
            return
        path = self.root_path / "target" / "host-calls.jsonl"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(call_json(c) + "\n" for c in calls), encoding="utf-8")
        except OSError as exc:
            self.show_error(VudoError(f"cannot write {path.name}: {exc.strerror or exc}"))
            return
        self.set_status(f"exported {len(calls):,} host calls to target/{path.name}")

    def action_output_detail(self) -> None:
        entry = self.query_one(OutputLog).selected
        if entry is None:
            self.notify("no log line selected", severity="information")
            return
        text = output_text(entry, show_times=self.show_times)
        self.push_screen(
            TextScreen(f"Log line {entry[0]}", Content(printable(text)), copy_text=entry[4])
        )

    def action_copy_output(self, all_lines: bool = False) -> None:
        log = self.query_one(OutputLog)
        if all_lines:
            lines = [output_text(e, show_times=self.show_times) for e in log.table.items]
            if not lines:
                self.notify("the log is empty", severity="information")
                return
            self.copy_to_clipboard("\n".join(lines) + "\n")
            self.notify(f"copied {len(lines):,} log lines")
            return
        entry = log.selected
        if entry is None:
            self.notify("no log line selected", severity="information")
            return
        self.copy_to_clipboard(entry[4])
        self.notify(f"copied log line {entry[0]}")

    def _receipt(self) -> ReceiptRow | None:
        receipt = self.query_one(ReceiptView).receipt
        if receipt is None:
            self.notify("no receipt yet: run the Spirit (r)", severity="information")
        return receipt

    def action_copy_receipt(self) -> None:
        receipt = self._receipt()
        if receipt is not None:
            self.copy_to_clipboard(receipt_json(receipt))
            self.notify(f"copied the receipt (digest {receipt.digest})")

    def action_save_receipt(self) -> None:
        receipt = self._receipt()
        if receipt is None:
            return
        path = self.root_path / "target" / "receipt.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(receipt_json(receipt) + "\n", encoding="utf-8")
        except OSError as exc:
            self.show_error(VudoError(f"cannot write {path.name}: {exc.strerror or exc}"))
            return
        self.set_status(f"saved the receipt to target/{path.name}")

    # storage -------------------------------------------------------------------------

    def refresh_storage(self) -> None:
        """Read the project Spirit's storage and balance again (after a run, on showing)."""
        if self.session.has_storage():
            self._storage_worker()

    @work(thread=True, group="storage", exclusive=True, name="storage")
    def _storage_worker(self) -> None:
        try:
            rows, balance = self.session.storage()
        except Exception as exc:
            self._post(self.show_error, exc)
            return
        self._post(self._show_storage, rows, balance)

    def _show_storage(self, rows: list[Any], balance: int | None) -> None:
        self.query_one(StoragePane).show(self.sub_title or "this Spirit", rows, balance)

    def action_storage_detail(self) -> None:
        entry = self.query_one(StoragePane).selected
        if entry is None:
            self.notify("no key selected", severity="information")
            return
        try:
            value = self.session.storage_value(entry.key)
        except Exception as exc:
            self.show_error(exc)
            return
        if value is None:
            self.notify("that key is gone", severity="warning")
            self.refresh_storage()
            return
        full = StoredEntry(entry.key, value, len(value))
        body = Content(f"key   {printable(show_key(entry.key))}\nsize  {len(value):,} bytes\n\n")
        body += Content(printable(show_value(full)))
        self.push_screen(TextScreen("Stored value", body, copy_text=show_value(full)))

    def action_delete_key(self) -> None:
        entry = self.query_one(StoragePane).selected
        if entry is None:
            self.notify("no key selected", severity="information")
            return
        if self.session.live:
            self.notify("a run is going: stop it (x) first", severity="warning")
            return
        shown = one_line(show_key(entry.key))

        def delete() -> None:
            try:
                gone = self.session.delete_key(entry.key)
            except Exception as exc:
                self.show_error(exc)
                return
            self.set_status(f"deleted {shown}" if gone else f"{shown} was already gone")
            self.refresh_storage()

        self.confirm(f"Delete the key {shown}?", "the Spirit's stored value is lost", delete)

    # editor --------------------------------------------------------------------------

    def action_edit(self) -> None:
        """``e``: open the viewed file in $EDITOR (at the marked line), then come back."""
        viewer = self.query_one(FileViewer)
        path = viewer.path
        tree = self.query_one(FileTree)
        if self.focused is tree and tree.cursor_node is not None:
            node_path = tree.cursor_node.data
            if node_path is not None and node_path.is_file():
                path = node_path
        if path is None:
            self.notify("no file to edit: choose one in the file tree", severity="information")
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            command = [*shlex.split(editor)]
        except ValueError:
            self.show_error(VudoError("$EDITOR cannot be read", hint="set EDITOR=vim, or nano"))
            return
        if viewer.mark is not None and path == viewer.path:
            command.append(f"+{viewer.mark}")
        command.append(str(path))
        try:
            with self.suspend():
                code = subprocess.call(command)
        except SuspendNotSupported:  # no terminal to lend (tests, textual-web)
            code = subprocess.call(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            self.show_error(
                VudoError(
                    f"cannot start the editor {command[0]!r}: {exc.strerror or exc}",
                    hint="set EDITOR to an editor on your PATH",
                )
            )
            return
        self.refresh()
        viewer.show(path, line=viewer.mark if path == viewer.path else None)
        self.query_one(FileTree).reload_tree()
        self.set_status(f"back from {command[0]}" + (f" (exit {code})" if code else ""))

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
        action, entry = event.action, event.entry

        def go() -> None:
            if self._begin(action):
                self.set_status(f"{action} {entry.name}…")
                self._registry_worker(action, entry)

        if action == "uninstall":
            versions = ", ".join(entry.installed) or "nothing installed"
            self.confirm(f"Uninstall {entry.name}?", f"removes {versions} and its grants", go)
        else:
            go()  # install and upgrade ask on the consent screen

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
        viewer = self.query_one(FileViewer)
        if viewer.path is not None and self.session._rel(viewer.path) in changed:
            viewer.mark = None
            viewer.reload()
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
            yield SystemCommand(
                spec.label.rstrip("…"), spec.help, getattr(self, f"action_{spec.action}")
            )
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


def run_tui(
    path: Path, *, home: Path | None = None, watch: bool = False, fast_exit: bool = True
) -> int:
    """Open the workbench on the project at ``path`` (with hot reload on when ``watch``);
    returns the process exit code (with ``fast_exit``, exits the process with it)."""
    app = WorkbenchApp(path.resolve(), home=home or vudo_home(), freeze_gc=True, hot_reload=watch)
    result = app.run()
    code = app.return_code or int(result or 0)
    if fast_exit:
        # Everything holding state (the sandbox, storage, the engine) was closed when the
        # app unmounted; skip tearing down a large, GC-frozen interpreter heap (up to ~1 s
        # on a busy machine), so `q` ends the process at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
