"""The host-call log: every host call, allowed or denied, filterable, keeping up with floods.

Rows arrive in batches (the app drains the event buffer every ~50 ms), so a Spirit making
ten thousand calls a second costs the UI twenty updates a second, not ten thousand. The
rows are drawn with Textual's line API (:class:`CallTable`): each frame renders only the
rows on screen, so the cost of a batch does not grow with the length of the log. The log
keeps the newest :attr:`HostCallLog.MAX_KEPT` calls; the counts cover every call.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Checkbox, Select, Static

from vudo.capabilities import Capability
from vudo.engine.abi import ErrorCode
from vudo.tui.rows import CallRow

ALL = "all"


SHORT_CODES: dict[ErrorCode, str] = {
    ErrorCode.CAPABILITY_DENIED: "denied",
    ErrorCode.INVALID_MEMORY: "bad mem",
    ErrorCode.INVALID_PARAMETER: "bad arg",
    ErrorCode.STORAGE_ERROR: "storage",
    ErrorCode.NETWORK_ERROR: "network",
    ErrorCode.CREDIT_ERROR: "credit",
    ErrorCode.BUFFER_TOO_SMALL: "too small",
    ErrorCode.INTERNAL_ERROR: "internal",
    ErrorCode.NOT_FOUND: "not found",
    ErrorCode.QUOTA_EXCEEDED: "quota",
    ErrorCode.CALL_FAILED: "failed",
}


def nested_function(function: str, depth: int) -> str:
    """The function column of a call made by a Spirit another one called, ``depth``
    levels down: indented under the call that made it (``└ log``)."""
    return "  " * (depth - 1) + "└ " + function.removeprefix("host_")


def result_text(result: int) -> str:
    """The guest's result; error codes get a short name (``-1 denied``)."""
    if result < 0:
        try:
            return f"{result} {SHORT_CODES[ErrorCode(result)]}"
        except (ValueError, KeyError):
            return str(result)
    return str(result)


#: (heading, width, right-aligned) of each column; the widths add up to 75 cells.
COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("#", 6, True),
    ("function", 14, False),
    ("capability", 13, False),
    ("", 6, False),
    ("args", 15, False),
    ("result", 10, False),
    ("fuel", 5, True),
)


def _cell(text: str, width: int, right: bool) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def header_text() -> str:
    return " ".join(_cell(h, w, r) for h, w, r in COLUMNS)


#: One stored call: (number, function, capability, allowed, args, result, fuel). A tuple of
#: plain values, so the garbage collector stops tracking it: a log of 100,000 calls adds
#: nothing to each collection (dataclass rows would make every full collection walk them all,
#: tens of milliseconds of frozen UI during a flood).
Call = tuple[int, str, str, bool, str, int, int]


def as_call(n: int, row: CallRow) -> Call:
    return (n, row.function, row.capability, row.allowed, row.args, row.result, row.fuel)


def as_row(call: Call) -> CallRow:
    _, function, capability, allowed, args, result, fuel = call
    return CallRow(function, capability, allowed, args, result, fuel)


def row_cells(n: int, row: CallRow) -> list[str]:
    return call_cells(as_call(n, row))


def call_cells(call: Call) -> list[str]:
    n, function, capability, allowed, args, result, fuel = call
    values = (
        str(n),
        function.removeprefix("host_"),
        capability or "-",
        "allow" if allowed else "DENIED",
        args,
        result_text(result),
        str(fuel),
    )
    return [_cell(v, w, r) for v, (_, w, r) in zip(values, COLUMNS, strict=True)]


class CallTable(ScrollView, can_focus=True):
    """Rows of host calls drawn on demand (only the visible ones), following the tail."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "calltable--allowed",
        "calltable--denied",
        "calltable--odd",
    }
    DEFAULT_CSS = """
    CallTable { height: 1fr; }
    CallTable > .calltable--allowed { color: $text-success; }
    CallTable > .calltable--denied { color: $text-error; text-style: bold; }
    CallTable > .calltable--odd { background: $boost; }
    """

    WIDTH = sum(w for _, w, _ in COLUMNS) + len(COLUMNS) - 1

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[Call] = []
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._lines: dict[int, Strip] = {}

    def notify_style_update(self) -> None:
        """The theme or CSS changed: recompute the row styles and drawn lines."""
        super().notify_style_update()
        self._styles = None
        self._lines.clear()

    def _row_styles(self) -> tuple[Style, Style, Style, Style]:
        if self._styles is None:
            base = self.rich_style
            odd = base + self.get_component_rich_style("calltable--odd")
            self._styles = (
                base,
                odd,
                self.get_component_rich_style("calltable--allowed"),
                self.get_component_rich_style("calltable--denied"),
            )
        return self._styles

    @property
    def row_count(self) -> int:
        return len(self.items)

    def set_items(self, items: list[Call]) -> None:
        self.items = items
        self._lines.clear()
        self._resize(follow=True)

    def extend(self, items: list[Call]) -> None:
        follow = self.is_vertical_scroll_end or self.max_scroll_y == 0
        self.items.extend(items)
        self._resize(follow=follow)

    def _resize(self, *, follow: bool) -> None:
        """Grow the scrollable area. Once the scrollbar is showing, growing it needs no
        layout of the screen (a full layout per 50 ms batch would cost more than the rows)."""
        size = Size(self.WIDTH, len(self.items))
        overflowing = self.virtual_size.height > self.size.height
        if overflowing and size.height > self.size.height and self.show_vertical_scrollbar:
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base, odd, allowed, denied = self._row_styles()
        if index >= len(self.items):
            return Strip.blank(width, base)
        call = self.items[index]
        n, allowed_call = call[0], call[3]
        strip = self._lines.get(n)
        style = odd if index % 2 else base
        if strip is None:
            segments: list[Segment] = []
            for i, text in enumerate(call_cells(call)):
                if i:
                    segments.append(Segment(" ", style))
                verdict = allowed if allowed_call else denied
                segments.append(Segment(text, style + verdict if i == 3 else style))
            strip = Strip(segments, self.WIDTH)
            if len(self._lines) > 512:
                self._lines.clear()
            self._lines[n] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style)


class HostCallLog(Vertical):
    """Host calls with a capability filter and a denied-only switch."""

    DEFAULT_CSS = """
    HostCallLog { height: 1fr; border: round $primary-muted; }
    HostCallLog #log-filters { height: 1; }
    HostCallLog #cap-filter { width: 28; }
    HostCallLog #denied-only { width: auto; }
    HostCallLog #log-count { width: 1fr; content-align: right middle; color: $text-muted; }
    HostCallLog #calls-header { height: 1; color: $text-muted; text-style: bold; }
    """

    MAX_KEPT = 100_000

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: deque[Call] = deque(maxlen=self.MAX_KEPT)
        self.total = 0
        self.denied = 0
        self.capability_filter: str = ALL
        self.denied_only = False
        self.border_title = "Host calls"

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-filters"):
            options = [(c.value, c.value) for c in Capability]
            yield Select(
                options,
                prompt="all capabilities",
                allow_blank=True,
                compact=True,
                id="cap-filter",
            )
            yield Checkbox("denied only", compact=True, id="denied-only")
            yield Static("", id="log-count")
        yield Static(header_text(), id="calls-header")
        yield CallTable(id="calls")

    def on_mount(self) -> None:
        self._update_count()

    @property
    def shown(self) -> int:
        """How many rows the table holds under the current filter."""
        return self.query_one(CallTable).row_count

    def matches(self, call: Call) -> bool:
        if self.denied_only and call[3]:
            return False
        return self.capability_filter == ALL or call[2] == self.capability_filter

    def row(self, index: int) -> CallRow:
        """The ``index``-th kept call (negative counts from the newest)."""
        return as_row(self.rows[index])

    def clear(self) -> None:
        """Start a fresh log (a new run)."""
        self.rows.clear()
        self.total = 0
        self.denied = 0
        if self.is_mounted:
            self.query_one(CallTable).set_items([])
            self._update_count()

    def add(self, batch: list[CallRow]) -> None:
        """Append one batch of calls given as rows (see :meth:`add_calls`)."""
        self.add_calls(
            [(0, r.function, r.capability, r.allowed, r.args, r.result, r.fuel) for r in batch]
        )

    def add_calls(self, batch: list[Call]) -> None:
        """Append one batch; numbers are assigned here. The table is touched once."""
        if not batch:
            return
        start = self.total
        numbered: list[Call] = [(start + i + 1, *c[1:]) for i, c in enumerate(batch)]
        self.rows.extend(numbered)
        self.total += len(batch)
        self.denied += sum(1 for c in batch if not c[3])
        if not self.is_mounted:
            return
        table = self.query_one(CallTable)
        shown = [c for c in numbered if self.matches(c)]
        if shown:
            table.extend(shown)
            if table.row_count > self.MAX_KEPT:
                del table.items[: table.row_count - self.MAX_KEPT]
                table.set_items(table.items)
        self._update_count()

    def _rebuild(self) -> None:
        shown = [c for c in self.rows if self.matches(c)]
        self.query_one(CallTable).set_items(shown)

    def _update_count(self) -> None:
        text = f"{self.total:,} calls · {self.denied:,} denied"
        self.query_one("#log-count", Static).update(text, layout=False)

    def set_filter(self, capability: str = ALL, *, denied_only: bool | None = None) -> None:
        """Show only one capability (or ``"all"``), optionally only denied calls."""
        self.capability_filter = capability
        if denied_only is not None:
            self.denied_only = denied_only
        if self.is_mounted:
            select: Select[str] = self.query_one("#cap-filter", Select)
            wanted = Select.NULL if capability == ALL else capability
            if select.value != wanted:
                select.value = wanted
            box = self.query_one("#denied-only", Checkbox)
            if box.value != self.denied_only:
                box.value = self.denied_only
            self._rebuild()

    @on(Select.Changed, "#cap-filter")
    def _cap_changed(self, event: Select.Changed) -> None:
        value = event.value
        capability = ALL if value is Select.NULL else str(value)
        if capability != self.capability_filter:
            self.capability_filter = capability
            self._rebuild()

    @on(Checkbox.Changed, "#denied-only")
    def _denied_changed(self, event: Checkbox.Changed) -> None:
        if event.value != self.denied_only:
            self.denied_only = event.value
            self._rebuild()
