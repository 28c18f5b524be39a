"""The host-call log: every host call, allowed or denied, filterable, keeping up with floods.

Rows arrive in batches (the app drains the event buffer every ~50 ms), so a Spirit making
ten thousand calls a second costs the UI twenty updates a second, not ten thousand. The
rows are drawn with Textual's line API (:class:`CallTable`): each frame renders only the
rows on screen, so the cost of a batch does not grow with the length of the log. The log
keeps the newest :attr:`HostCallLog.MAX_KEPT` calls; the counts cover every call.
"""

from __future__ import annotations

import json
from collections import deque
from functools import cache
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Checkbox, Select

from vudo.capabilities import Capability
from vudo.engine.abi import ErrorCode
from vudo.tui.lists import LineList, SearchablePane, fit, one_line
from vudo.tui.rows import CallRow
from vudo.tui.textline import TextLine

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


#: (heading, width, right-aligned) of each column; ``args`` (width 0) takes what is left
#: of the terminal's width, at least :data:`MIN_ARGS` cells.
COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("#", 6, True),
    ("function", 14, False),
    ("capability", 13, False),
    ("", 6, False),
    ("args", 0, False),
    ("result", 10, False),
    ("fuel", 6, True),
)
#: The same columns squeezed, for a table narrower than :data:`COMPACT_BELOW` cells.
COMPACT = (5, 9, 12, 6, 0, 9, 5)
COMPACT_BELOW = 80
MIN_ARGS = 8


@cache
def column_widths(width: int) -> tuple[int, ...]:
    """Each column's width for a table ``width`` cells wide (args take the rest)."""
    widths = [w for _, w, _ in COLUMNS] if width >= COMPACT_BELOW else list(COMPACT)
    fixed = sum(widths) + len(widths) - 1
    return tuple(w if w else max(width - fixed, MIN_ARGS) for w in widths)


def header_text(width: int) -> str:
    return " ".join(
        fit(h, w, right=r) for (h, _, r), w in zip(COLUMNS, column_widths(width), strict=True)
    )


#: One stored call: (number, function, capability, allowed, args, result, fuel, reason). A
#: tuple of plain values, so the garbage collector stops tracking it: a log of 100,000 calls
#: adds nothing to each collection (dataclass rows would make every full collection walk
#: them all, tens of milliseconds of frozen UI during a flood).
Call = tuple[int, str, str, bool, str, int, int, str]


def as_call(n: int, row: CallRow) -> Call:
    return (
        n,
        row.function,
        row.capability,
        row.allowed,
        row.args,
        row.result,
        row.fuel,
        row.reason,
    )


def as_row(call: Call) -> CallRow:
    _, function, capability, allowed, args, result, fuel, reason = call
    return CallRow(function, capability, allowed, args, result, fuel, reason)


def call_values(call: Call) -> tuple[str, ...]:
    n, function, capability, allowed, args, result, fuel, _ = call
    return (
        str(n),
        function.removeprefix("host_"),
        capability or "-",
        "allow" if allowed else "DENIED",
        one_line(args),
        result_text(result),
        str(fuel),
    )


def call_cells(call: Call, width: int) -> list[str]:
    values = call_values(call)
    widths = column_widths(width)
    return [fit(v, w, right=r) for v, w, (_, _, r) in zip(values, widths, COLUMNS, strict=True)]


def call_json(call: Call) -> str:
    """One call as a JSON line (the export and copy format)."""
    n, function, capability, allowed, args, result, fuel, reason = call
    return json.dumps(
        {
            "n": n,
            "function": function,
            "capability": capability or None,
            "allowed": allowed,
            "args": args,
            "result": result,
            "result_name": result_text(result),
            "fuel": fuel,
            "reason": reason,
        },
        ensure_ascii=True,
    )


class CallTable(LineList[Call]):
    """Rows of host calls drawn on demand (only the visible ones), following the tail."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LineList.COMPONENT_CLASSES,
        "calltable--allowed",
        "calltable--denied",
    }
    DEFAULT_CSS = """
    CallTable > .calltable--allowed { color: $text-success; }
    CallTable > .calltable--denied { color: $text-error; text-style: bold; }
    """

    def key(self, item: Call) -> object:
        return item[0]

    def cells(self, item: Call, width: int) -> list[tuple[str, str]]:
        """The columns before the verdict, the verdict in its colour, the rest."""
        columns = call_cells(item, width)
        verdict = "calltable--allowed" if item[3] else "calltable--denied"
        return [
            (" ".join(columns[:3]) + " ", ""),
            (columns[3], verdict),
            (" " + " ".join(columns[4:]), ""),
        ]


class HostCallLog(SearchablePane):
    """Host calls with a capability filter, a denied-only switch and a text search."""

    DEFAULT_CSS = """
    HostCallLog { height: 1fr; }
    HostCallLog #log-filters { height: 1; }
    HostCallLog #cap-filter { width: 24; }
    HostCallLog #denied-only { width: auto; }
    HostCallLog #log-search { width: 1fr; display: none; }
    HostCallLog #log-search.-shown { display: block; }
    HostCallLog #log-count { width: 1fr; content-align: right middle; color: $text-muted; }
    HostCallLog #calls-header { height: 1; color: $text-muted; text-style: bold; }
    """

    MAX_KEPT = 100_000
    SEARCH_ID = "log-search"
    COUNT_ID = "log-count"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.call_detail", "Details"),
        Binding("slash", "app.filter", "Search"),
        Binding("y", "app.copy_call", "Copy"),
        Binding("ctrl+s", "app.export_calls", "Export (JSON lines)", show=False),
        Binding("d", "app.denied", "Denied only", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: deque[Call] = deque(maxlen=self.MAX_KEPT)
        self.total = 0
        self.denied = 0
        self.shown_denied = 0  # denied calls among the rows the filter shows
        self.capability_filter: str = ALL
        self.denied_only = False
        self.border_title = "Host calls"
        self._header = ""

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
            yield self.search_box("search calls")
            yield TextLine(id="log-count")
        yield TextLine(id="calls-header")
        yield CallTable(id="calls")

    def on_resize(self) -> None:
        """Size the column headings to the table. A pane shown again gets a Resize of the
        same size: the headings stay (an update that lays out the screen would cost a
        second frame after every switch to the run view)."""
        header = self.query_one("#calls-header", TextLine)
        text = header_text(self.table.size.width)
        if text != self._header:
            self._header = text
            header.update(text)

    @property
    def table(self) -> CallTable:
        return self.query_one(CallTable)

    @property
    def shown(self) -> int:
        """How many rows the table holds under the current filter."""
        return self.table.row_count

    @property
    def filtered(self) -> bool:
        return self.denied_only or self.capability_filter != ALL or bool(self.search_text)

    def matches(self, call: Call) -> bool:
        if self.denied_only and call[3]:
            return False
        if self.capability_filter != ALL and call[2] != self.capability_filter:
            return False
        if self.search_text:
            needle = self.search_text.lower()
            return any(needle in v.lower() for v in (call[1], call[2], call[4], call[7]))
        return True

    def row(self, index: int) -> CallRow:
        """The ``index``-th kept call (negative counts from the newest)."""
        return as_row(self.rows[index])

    @property
    def selected(self) -> Call | None:
        """The call under the table's cursor."""
        return self.table.current

    def clear(self) -> None:
        """Start a fresh log (a new run)."""
        self.rows.clear()
        self.total = 0
        self.denied = 0
        self.shown_denied = 0
        if self.is_mounted:
            self.table.follow = True
            self.table.set_items([])
            self._update_count()

    def add(self, batch: list[CallRow]) -> None:
        """Append one batch of calls given as rows (see :meth:`add_calls`)."""
        self.add_calls([as_call(0, r) for r in batch])

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
        table = self.table
        shown = [c for c in numbered if self.matches(c)] if self.filtered else numbered
        if shown:
            self.shown_denied += sum(1 for c in shown if not c[3])
            table.extend(shown)
            if table.row_count > self.MAX_KEPT:
                table.trim(self.MAX_KEPT)
                self.shown_denied = sum(1 for c in table.items if not c[3])
        self._update_count()

    def _rebuild(self) -> None:
        shown = [c for c in self.rows if self.matches(c)]
        self.shown_denied = sum(1 for c in shown if not c[3])
        self.table.set_items(shown)
        self._update_count()

    def count_text(self) -> str:
        if self.filtered:
            return f"{self.shown:,} of {self.total:,} · {self.shown_denied:,} denied"
        calls = "call" if self.total == 1 else "calls"
        return f"{self.total:,} {calls} · {self.denied:,} denied"

    def set_filter(
        self, capability: str = ALL, *, denied_only: bool | None = None, search: str | None = None
    ) -> None:
        """Show only one capability (or ``"all"``), optionally only denied calls, optionally
        only calls whose function, capability, arguments or reason contain ``search``."""
        self.capability_filter = capability
        if denied_only is not None:
            self.denied_only = denied_only
        if search is not None:
            self.search_text = search
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
