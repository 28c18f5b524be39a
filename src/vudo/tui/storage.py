"""The storage pane: the running Spirit's keys and values, and its credit balance.

Read-only: the Spirit's bytes are shown escaped (:func:`vudo.tui.lists.one_line`), never
as markup; the app deletes a key only after a confirmation. The rows come from
:mod:`vudo.project.storage` (what ``vudo storage list`` prints).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from vudo.project.storage import StoredEntry, show_key
from vudo.tui.lists import LineList, fit, one_line
from vudo.tui.panes import PaneTitle


def show_value(entry: StoredEntry) -> str:
    """A value as text when it is UTF-8, else hex (first bytes only for a preview)."""
    try:
        text = entry.value.decode("utf-8")
    except UnicodeDecodeError:
        text = "hex:" + entry.value.hex()
    cut = "…" if len(entry.value) < entry.size else ""
    return one_line(text) + cut


class StorageTable(LineList[StoredEntry]):
    COMPONENT_CLASSES: ClassVar[set[str]] = {*LineList.COMPONENT_CLASSES, "storage--muted"}
    DEFAULT_CSS = "StorageTable > .storage--muted { color: $text-muted; }"

    def key(self, item: StoredEntry) -> object:
        return item.key

    def cells(self, item: StoredEntry, width: int) -> list[tuple[str, str]]:
        key_width = min(24, max(width // 3, 8))
        rest = max(width - key_width - 10, 1)
        return [
            (fit(one_line(show_key(item.key)), key_width), ""),
            (" ", ""),
            (fit(f"{item.size:,}B", 8, right=True), "storage--muted"),
            (" ", ""),
            (fit(show_value(item), rest), ""),
        ]


class StoragePane(Vertical, PaneTitle):
    """Keys, sizes and values of the last run's Spirit, with its credit balance."""

    DEFAULT_CSS = """
    StoragePane { height: 1fr; }
    StoragePane #storage-info { height: 1; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.storage_detail", "Value"),
        Binding("delete,D", "app.delete_key", "Delete…"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[StoredEntry] = []
        self.balance: int | None = None
        self.label = ""
        self.border_title = "Storage"

    def compose(self) -> ComposeResult:
        yield Static("run the Spirit to see its storage", id="storage-info")
        yield StorageTable(id="storage-table")

    @property
    def table(self) -> StorageTable:
        return self.query_one(StorageTable)

    @property
    def selected(self) -> StoredEntry | None:
        return self.table.current

    def show(self, label: str, entries: list[StoredEntry], balance: int | None) -> None:
        self.label, self.entries, self.balance = label, list(entries), balance
        credit = "no account yet" if balance is None else f"{balance:,} credits"
        count = f"{len(entries)} key" + ("" if len(entries) == 1 else "s")
        info = f"{label} · {count} · balance {credit}"
        self.query_one("#storage-info", Static).update(Content(info))
        self.table.follow = False
        cursor = self.table.cursor
        self.table.set_items(self.entries)
        self.table.move_to(min(max(cursor, 0), len(self.entries) - 1))
