"""One row of plain text that changes often (a count, the fuel figures), and the base of
the widgets drawn from lines made once per change (:class:`CachedLines`).

Textual's :class:`~textual.widgets.Static` parses markup and lays its text out through
the content pipeline on every change: 0.3 to 1 ms to draw each time, and the counts and
fuel figures change with each batch of host calls (twenty times a second during a run)
and all at once when the run view is shown again (issue 14). :class:`TextLine` draws the
same cells from one segment, made once per change of text, size or style. The text is
never markup: what a Spirit wrote can be shown as is (escape it for the terminal first,
as everywhere).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from textual.content import Content
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

__all__ = ["CachedLines", "TextLine"]


class CachedLines(Widget):
    """A widget drawn from lines made once per change of what it shows (:meth:`redraw`),
    of its size or of its style; Textual asks for each line on every repaint."""

    #: The widget's lines for its size, in its style (each subclass defines it as a
    #: method, ``draw_lines(self, style)``).
    draw_lines: Callable[[Style], list[Strip]]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Strip] = []
        self._drawn: tuple[object, ...] | None = None  # the size and style drawn for

    def redraw(self) -> None:
        """What the widget shows changed: make its lines again at the next repaint."""
        self._drawn = None
        self.refresh()

    def notify_style_update(self) -> None:
        self._drawn = None
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        style = self.visual_style
        if self._drawn != (self.size, style):
            self._drawn = (self.size, style)
            self._lines = self.draw_lines(style)
        return self._lines[y] if 0 <= y < len(self._lines) else Strip([])


class TextLine(CachedLines):
    """A row of plain text, placed as its ``content-align`` says; cut at the widget's
    width (a Static would wrap it onto rows a one-row widget does not show)."""

    DEFAULT_CSS = "TextLine { height: 1; }"

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text

    def update(self, text: str) -> None:
        """Show ``text`` (plain text; its width never changes the layout)."""
        if text != self.text:
            self.text = text
            self.redraw()

    def render(self) -> Content:
        """The text as content (what Textual measures for ``width: auto``)."""
        return Content(self.text)

    def draw_lines(self, style: Style) -> list[Strip]:
        width, height = self.size
        if not width:
            return []
        line = Strip([Segment(self.text, style.rich_style)]).crop(0, width)
        horizontal, vertical = self.styles.content_align
        if (horizontal, vertical) == ("left", "top"):
            return [line]
        pad = (style + Style(reverse=False)).rich_style  # as Textual pads aligned content
        return list(Strip.align([line], pad, width, height, horizontal, vertical))
