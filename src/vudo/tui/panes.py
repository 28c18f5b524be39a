"""The workbench's focusable panes, in number-key order (one table: the app lays them out
and jumps between them, the help screen lists them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pane:
    """A focusable pane: its number key, its widget, the widget that takes focus, its view."""

    number: int
    id: str
    focus: str  # selector of the widget to focus within the pane
    view: str
    title: str


PANES: tuple[Pane, ...] = (
    Pane(1, "tree", "#tree", "project", "Files"),
    Pane(2, "viewer", "#viewer", "project", "Source"),
    Pane(3, "hostlog", "#calls", "run", "Host calls"),
    Pane(4, "output", "#output-table", "log", "Log"),
    Pane(5, "receipt", "#receipt", "receipt", "Receipt"),
    Pane(6, "storage", "#storage-table", "storage", "Storage"),
    Pane(7, "registry", "#registry-table", "registry", "Registry"),
)
