"""The host-call log: every host call, allowed or denied, filterable, keeping up with floods.

Rows arrive in batches (the app drains the event buffer every ~50 ms), so a Spirit making
ten thousand calls a second costs the UI twenty table updates a second, not ten thousand.
The table shows at most :attr:`HostCallLog.MAX_SHOWN` rows (the newest); counts cover
every call.
"""

from __future__ import annotations

from collections import deque

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Checkbox, DataTable, Select, Static

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
}


def result_text(result: int) -> str:
    """The guest's result; error codes get a short name (``-1 denied``)."""
    if result < 0:
        try:
            return f"{result} {SHORT_CODES[ErrorCode(result)]}"
        except (ValueError, KeyError):
            return str(result)
    return str(result)


class HostCallLog(Vertical):
    """DataTable of host calls with a capability filter and a denied-only switch."""

    DEFAULT_CSS = """
    HostCallLog { height: 1fr; border: round $primary-muted; }
    HostCallLog #log-filters { height: 1; }
    HostCallLog #cap-filter { width: 28; }
    HostCallLog #denied-only { width: auto; }
    HostCallLog #log-count { width: 1fr; content-align: right middle; color: $text-muted; }
    HostCallLog DataTable { height: 1fr; }
    """

    MAX_SHOWN = 2000
    KEEP_ON_TRIM = 1000
    MAX_KEPT = 100_000

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: deque[tuple[int, CallRow]] = deque(maxlen=self.MAX_KEPT)
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
        table: DataTable[str | Content] = DataTable(
            cursor_type="row", zebra_stripes=True, id="calls"
        )
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("#", key="n", width=4)
        table.add_column("function", key="function", width=12)
        table.add_column("capability", key="capability", width=13)
        table.add_column("", key="verdict", width=6)
        table.add_column("args", key="args", width=15)
        table.add_column("result", key="result", width=9)
        table.add_column("fuel", key="fuel", width=5)
        self._update_count()

    def matches(self, row: CallRow) -> bool:
        if self.denied_only and row.allowed:
            return False
        return self.capability_filter == ALL or row.capability == self.capability_filter

    def clear(self) -> None:
        """Start a fresh log (a new run)."""
        self.rows.clear()
        self.total = 0
        self.denied = 0
        if self.is_mounted:
            self.query_one(DataTable).clear()
            self._update_count()

    def add(self, batch: list[CallRow]) -> None:
        """Append one batch of calls; the table is touched once per batch."""
        if not batch:
            return
        start = self.total
        numbered = [(start + i + 1, row) for i, row in enumerate(batch)]
        self.rows.extend(numbered)
        self.total += len(batch)
        self.denied += sum(1 for row in batch if not row.allowed)
        if not self.is_mounted:
            return
        table = self.query_one(DataTable)
        shown = [item for item in numbered if self.matches(item[1])]
        if table.row_count + len(shown) > self.MAX_SHOWN:
            self._rebuild()
        else:
            table.add_rows(self._cells(item) for item in shown)
            if shown:
                table.scroll_end(animate=False, immediate=False)
        self._update_count()

    def _cells(self, item: tuple[int, CallRow]) -> list[str | Content]:
        n, row = item
        verdict = (
            Content("allow").stylize("$text-success")
            if row.allowed
            else Content("DENIED").stylize("bold $text-error")
        )
        return [
            str(n),
            row.function.removeprefix("host_"),
            row.capability or "-",
            verdict,
            row.args,
            result_text(row.result),
            str(row.fuel),
        ]

    def _rebuild(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        shown: list[tuple[int, CallRow]] = []
        for item in reversed(self.rows):
            if self.matches(item[1]):
                shown.append(item)
                if len(shown) >= self.KEEP_ON_TRIM:
                    break
        shown.reverse()
        table.add_rows(self._cells(item) for item in shown)
        table.scroll_end(animate=False, immediate=False)

    def _update_count(self) -> None:
        text = f"{self.total:,} calls · {self.denied:,} denied"
        self.query_one("#log-count", Static).update(text)

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
