"""The workbench's focusable panes, in number-key order (one table: the app lays them out
and jumps between them, the help screen lists them)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual.style import Style
from textual.widget import Widget


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


def displayed(widget: Widget) -> bool:
    """Whether ``widget`` and every container around it are displayed (a widget another
    view hides is best left alone: repainting it still costs the next frame a rebuild of
    the compositor's map, laying it out a layout of the screen)."""
    return all(node.display for node in widget.ancestors_with_self)


class FocusStyleWhenShown(Widget):
    """A base of the panes and of the widgets that take a pane's focus. Textual restyles
    a widget whose focus changes (1.5-2.5 ms for a list or the file tree, the rules of
    its component classes included), and the workbench a pane the focus enters or
    leaves. A number key moves the focus out of a view it hides: what it leaves behind is
    restyled when it is shown again (the app catches up as it shows the view, before
    that frame), so a key pays for what it shows only."""

    #: What a focus change left to restyle while the widget was hidden: nothing, the
    #: widget itself ("self": a pane, see Workbench._update_focus_styles), or the widget
    #: and what is inside it ("subtree": as Textual restyles a widget for its own focus).
    _stale_style: str | None = None

    def watch_has_focus(self, has_focus: bool) -> None:
        if displayed(self):
            self._stale_style = None
            super().watch_has_focus(has_focus)
        else:
            self.restyle_when_shown(subtree=True)

    def restyle_when_shown(self, *, subtree: bool = False) -> None:
        """Leave a focus change's restyle until the widget is shown again."""
        self._stale_style = "subtree" if subtree or self._stale_style == "subtree" else "self"

    def restyle_if_stale(self) -> None:
        """Restyle for the focus changes that came while the widget was hidden."""
        if self._stale_style is None or not displayed(self):
            return
        if self._stale_style == "subtree":
            self.update_node_styles()
        else:
            self.app.stylesheet.update_nodes([self], animate=True)
        self._stale_style = None

    def on_show(self) -> None:
        self.restyle_if_stale()


class PaneTitle(FocusStyleWhenShown):
    """A second base of every pane widget (second: Textual takes a widget's CSS type,
    default CSS and component classes from its first base). While the focus is in the
    pane, its title takes its border's colour, bold and reversed (the app's CSS gives the
    focused pane a heavy accent border).

    Not ``border-title-color``/``border-title-style`` rules on ``:focus-within``: when
    either property changes, Textual redraws every widget inside the pane (it refreshes
    the children of a widget whose colours change), so each number key redrew the pane
    it left and the pane it entered whole; a border change redraws the border only.
    """

    FOCUSED_TITLE = Style(bold=True, reverse=True)

    def _get_title_style_information(self, background: Color) -> tuple[Color, Color, Style]:
        color, title_background, style = super()._get_title_style_information(background)
        if self.has_focus_within:
            return self.styles.border_top[1], title_background, style + self.FOCUSED_TITLE
        return color, title_background, style
