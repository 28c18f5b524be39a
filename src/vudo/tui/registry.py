"""The registry browser: search as you type, what is installed, who signed it.

The widget only draws :class:`~vudo.tui.rows.RegistryEntry` values and posts messages;
the app runs the search, install, uninstall and upgrade through :mod:`vudo.tui.session`
(the same core calls as ``vudo search/install/uninstall/upgrade``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from vudo.tui.panes import FocusStyleWhenShown, PaneTitle
from vudo.tui.rows import RegistryEntry


def short_key(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}" if len(key) > 16 else key or "-"


def render_detail(entry: RegistryEntry | None) -> Content:
    if entry is None:
        return Content("no Spirit selected").stylize("$text-muted")
    trust = (
        Content("trusted").stylize("$text-success")
        if entry.trusted
        else Content("untrusted").stylize("$text-warning")
    )
    caps = ", ".join(entry.capabilities) or "none"
    installed = ", ".join(entry.installed) or "not installed"
    return Content("\n").join(
        [
            Content(f"{entry.name} {entry.version}").stylize("bold")
            + Content(f"  {entry.description}"),
            Content(f"signer {short_key(entry.signer)} (") + trust + Content(")"),
            Content(f"installed: {installed}"),
            Content(f"capabilities: {caps}"),
            Content("i install · U upgrade · u uninstall (asks first)").stylize("$text-muted"),
        ]
    )


class RegistryTable(DataTable[str], FocusStyleWhenShown):
    """The results: movement keys only (j/k/g/G as in every list)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "First", show=False),
        Binding("G", "scroll_bottom", "Last", show=False),
    ]


class RegistryBrowser(Vertical, PaneTitle):
    """Search box, results table and the selected Spirit's details."""

    DEFAULT_CSS = """
    RegistryBrowser { height: 1fr; }
    RegistryBrowser #registry-search { height: 1; margin-bottom: 0; }
    RegistryBrowser DataTable { height: 1fr; }
    RegistryBrowser #registry-detail { height: auto; max-height: 6; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "install", "Install"),
        Binding("U", "upgrade", "Upgrade"),
        Binding("u", "uninstall", "Uninstall…"),
    ]

    @dataclass
    class Search(Message):
        query: str

    @dataclass
    class Act(Message):
        """install / uninstall / upgrade was asked for ``entry``."""

        action: str
        entry: RegistryEntry

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[RegistryEntry] = []
        self.border_title = "7 Registry"

    def compose(self) -> ComposeResult:
        search = Input(
            placeholder="search Spirits (name, description)", compact=True, id="registry-search"
        )
        if not getattr(self.app, "cursor_blink", True):
            search.cursor_blink = False
        yield search
        table: DataTable[str] = RegistryTable(cursor_type="row", id="registry-table")
        yield table
        yield Static(render_detail(None), id="registry-detail")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("name", key="name", width=14)
        table.add_column("latest", key="version", width=7)
        table.add_column("installed", key="installed", width=9)
        table.add_column("capabilities", key="caps", width=20)
        table.add_column("signer", key="signer", width=15)

    @property
    def query_text(self) -> str:
        return self.query_one("#registry-search", Input).value

    @property
    def selected(self) -> RegistryEntry | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row < 0 or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def show_results(self, entries: list[RegistryEntry]) -> None:
        """Replace the results (keeps the cursor on the same name when it is still there)."""
        previous = self.selected
        self.entries = list(entries)
        table = self.query_one(DataTable)
        table.clear()
        for e in self.entries:
            table.add_row(
                *(
                    Text(cell, no_wrap=True, end="")
                    for cell in (  # str is markup
                        e.name,
                        e.version,
                        ", ".join(e.installed) or "-",
                        ", ".join(e.capabilities) or "-",
                        short_key(e.signer) + (" ✓" if e.trusted else ""),
                    )
                )
            )
        if previous is not None:
            for i, e in enumerate(self.entries):
                if e.name == previous.name:
                    table.move_cursor(row=i)
                    break
        self._show_detail()

    def _show_detail(self) -> None:
        self.query_one("#registry-detail", Static).update(render_detail(self.selected))

    @on(Input.Changed, "#registry-search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Search(event.value))

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _act(self, action: str) -> None:
        entry = self.selected
        if entry is None:
            self.notify("no Spirit selected", severity="warning")
            return
        self.post_message(self.Act(action, entry))

    def action_install(self) -> None:
        self._act("install")

    def action_uninstall(self) -> None:
        self._act("uninstall")

    def action_upgrade(self) -> None:
        self._act("upgrade")
