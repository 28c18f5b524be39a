"""The Spirit's own output: every ``host_log`` message, kept after the run.

One entry type for everything a Spirit says (:data:`Output`): a ``source`` (``log`` for
``host_log``, ``notify`` for ``host_notify``, the stream name for what it writes with
``host_output_write`` or WASI ``stdout``/``stderr``, one entry per line), a
level, the time since its sandbox started, and the text exactly as the Spirit wrote it.
The text is untrusted: it is escaped when drawn (:func:`vudo.tui.lists.one_line`), never
read as markup. Entries are plain tuples (not tracked by the garbage collector), drawn by
the line API, so a Spirit logging ten thousand lines a second costs one redraw per batch.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal

from vudo.tui.lists import LineList, SearchablePane, fit, one_line
from vudo.tui.textline import TextLine

#: (number, source, level, at, text).
Output = tuple[int, str, str, float, str]

LEVEL_CLASSES = {
    "trace": "output--muted",
    "debug": "output--muted",
    "info": "",
    "warn": "output--warn",
    "error": "output--error",
    "stderr": "output--warn",
}


def output_text(entry: Output, *, show_times: bool) -> str:
    """One entry as plain text (what ``y`` copies): ``+0.012s info  text``."""
    _, source, level, at, text = entry
    when = f"+{at:.3f}s" if show_times else "+·"
    tag = level or source
    return f"{when} {tag:<5} {text}"


class OutputTable(LineList[Output]):
    """The entries, one per row: time, level (or source), text."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LineList.COMPONENT_CLASSES,
        "output--muted",
        "output--warn",
        "output--error",
        "output--time",
    }
    DEFAULT_CSS = """
    OutputTable > .output--muted { color: $text-muted; }
    OutputTable > .output--warn { color: $text-warning; }
    OutputTable > .output--error { color: $text-error; text-style: bold; }
    OutputTable > .output--time { color: $text-muted; }
    """

    def __init__(self, *, show_times: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_times = show_times

    def key(self, item: Output) -> object:
        return item[0]

    def cells(self, item: Output, width: int) -> list[tuple[str, str]]:
        _, source, level, at, text = item
        when = f"+{at:8.3f}s" if self.show_times else "+·"
        tag = level or source
        rest = max(width - len(when) - 7, 1)
        return [
            (when, "output--time"),
            (" ", ""),
            (fit(tag, 5), LEVEL_CLASSES.get(tag, "")),
            (" ", ""),
            (fit(one_line(text), rest), ""),
        ]


class OutputLog(SearchablePane):
    """The log pane: the Spirit's output with a search box (``/``)."""

    DEFAULT_CSS = """
    OutputLog { height: 1fr; }
    OutputLog #output-bar { height: 1; }
    OutputLog #output-search { width: 1fr; display: none; }
    OutputLog #output-search.-shown { display: block; }
    OutputLog #output-count { width: 1fr; content-align: right middle; color: $text-muted; }
    OutputLog #output-empty { color: $text-muted; height: 1; }
    """

    MAX_KEPT = 50_000
    SEARCH_ID = "output-search"
    COUNT_ID = "output-count"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.output_detail", "Line"),
        Binding("slash", "app.filter", "Search"),
        Binding("y", "app.copy_output", "Copy"),
        Binding("Y", "app.copy_output(True)", "Copy all", show=False),
    ]

    def __init__(self, *, show_times: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_times = show_times
        self.entries: deque[Output] = deque(maxlen=self.MAX_KEPT)
        self.total = 0
        self.border_title = "Log"

    def compose(self) -> ComposeResult:
        with Horizontal(id="output-bar"):
            yield self.search_box("search the log")
            yield TextLine(id="output-count")
        yield OutputTable(show_times=self.show_times, id="output-table")

    @property
    def table(self) -> OutputTable:
        return self.query_one(OutputTable)

    @property
    def shown(self) -> int:
        return self.table.row_count

    @property
    def selected(self) -> Output | None:
        return self.table.current

    def matches(self, entry: Output) -> bool:
        needle = self.search_text.lower()
        return not needle or needle in entry[4].lower() or needle == (entry[2] or entry[1])

    def clear(self) -> None:
        self.entries.clear()
        self.total = 0
        if self.is_mounted:
            self.table.follow = True
            self.table.set_items([])
            self._update_count()

    def add(self, batch: list[tuple[str, str, float, str]]) -> None:
        """Append ``(source, level, at, text)`` entries; numbers are assigned here."""
        if not batch:
            return
        start = self.total
        numbered: list[Output] = [(start + i + 1, *e) for i, e in enumerate(batch)]
        self.entries.extend(numbered)
        self.total += len(batch)
        if not self.is_mounted:
            return
        shown = [e for e in numbered if self.matches(e)] if self.search_text else numbered
        if shown:
            self.table.extend(shown)
            self.table.trim(self.MAX_KEPT)
        self._update_count()

    def _rebuild(self) -> None:
        self.table.set_items([e for e in self.entries if self.matches(e)])
        self._update_count()

    def count_text(self) -> str:
        if self.search_text:
            return f"{self.shown:,} of {self.total:,} lines"
        if self.total:
            return f"{self.total:,} line" + ("" if self.total == 1 else "s")
        return "no output yet"
