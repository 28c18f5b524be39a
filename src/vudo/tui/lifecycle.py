"""The sandbox lifecycle pane: the state machine with the current state lit, and history.

States and transitions are DESIGN.md §2. Times in the history are relative to the start of
the run (the event's ``at``); the app can hide them (``show_times=False``) so screenshots
are the same on every machine.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from vudo.tui.rows import Transition

# The diagram, one template per line; {state} marks are replaced by styled names.
_DIAGRAM: tuple[str, ...] = (
    "{created} ─▶ {initializing} ─▶ {ready}",
    "                             ▲   │",
    "                             │   ▼",
    "            {suspended} ◀─▶ {running}",
    "      {failed}        {terminated}",
)

_LIT_STYLE = {
    "failed": "bold $text on $error",
    "terminated": "bold $text on $warning-darken-2",
    "suspended": "bold $text on $warning-darken-1",
}


def _label(state: str) -> str:
    return state.capitalize()


def render_diagram(current: str | None) -> Content:
    """The state machine as styled text with ``current`` lit."""
    lines: list[Content] = []
    for template in _DIAGRAM:
        parts: list[Content] = []
        rest = template
        while "{" in rest:
            before, _, tail = rest.partition("{")
            name, _, rest = tail.partition("}")
            parts.append(Content(before).stylize("$text-muted"))
            if name == current:
                style = _LIT_STYLE.get(name, "bold $text on $success-darken-1")
            else:
                style = "$text-muted"
            parts.append(Content(_label(name)).stylize(style))
        parts.append(Content(rest).stylize("$text-muted"))
        lines.append(Content("").join(parts))
    return Content("\n").join(lines)


def format_transition(t: Transition, *, show_times: bool) -> str:
    when = f"+{t.at:.3f}s" if show_times else "+·"
    reason = f" ({t.reason})" if t.reason else ""
    return f"{when} {_label(t.new)}{reason}"


class LifecyclePane(Vertical):
    """State diagram on top, transition history (newest last) below."""

    DEFAULT_CSS = """
    LifecyclePane { height: 1fr; border: round $primary-muted; border-title-color: $text; }
    LifecyclePane #diagram { height: 5; }
    LifecyclePane #history { height: 1fr; min-height: 1; }
    LifecyclePane #history-text { color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    LifecyclePane #history { scrollbar-size-vertical: 1; }
    """

    MAX_HISTORY = 500

    def __init__(self, *, show_times: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_times = show_times
        self.state: str | None = None
        self.history: list[Transition] = []
        self.border_title = "Lifecycle"

    def compose(self) -> ComposeResult:
        yield Static(render_diagram(None), id="diagram")
        with VerticalScroll(id="history"):
            yield Static("no run yet", id="history-text")

    def reset(self) -> None:
        """Forget the previous run (a new sandbox starts)."""
        self.state = None
        self.history.clear()
        self._refresh()

    def add(self, transitions: list[Transition]) -> None:
        """Append transitions (from one batch) and light the newest state."""
        if not transitions:
            return
        self.history.extend(transitions)
        del self.history[: -self.MAX_HISTORY]
        self.state = transitions[-1].new
        self._refresh()

    def _refresh(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#diagram", Static).update(render_diagram(self.state))
        text = "\n".join(format_transition(t, show_times=self.show_times) for t in self.history)
        self.query_one("#history-text", Static).update(text or "no run yet")
        self._follow()

    def _follow(self) -> None:
        """Keep the newest transition in view, decided at layout time.

        A history taller than its pane is anchored: the compositor scrolls it to the end
        whenever it lays it out, so the last batch is always in view (a deferred
        ``scroll_end()`` could land before the layout that grew the text and leave it
        below the fold, a flaky after-run screen). A shorter one is not anchored, since
        textual would align it to the bottom.
        """
        history = self.query_one("#history", VerticalScroll)
        height = history.size.height
        if height and len(self.history) > height:
            if not history.is_anchored:
                history.anchor()
        elif history.is_anchored:
            history.anchor(False)
            history.scroll_home(animate=False, immediate=True)

    def on_resize(self) -> None:
        self._follow()
