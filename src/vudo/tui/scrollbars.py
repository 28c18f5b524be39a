"""Scrollbars that draw Textual's picture from lines worked out once per thumb position.

Textual's :class:`~textual.scrollbar.ScrollBar` draws itself through Rich's renderable
pipeline: 2.5 ms for a 21-row bar, each time its list grows or its view is shown, while
the bar's segments themselves take 0.04 ms to make (issue 14: a view switch under load
must reach the screen in under 50 ms, and it redraws three or four scrollbars).
:class:`LineScrollBar` asks the same renderer for the same segments and turns them into
lines itself, kept until the bar's size, position or style changes; the picture is the
same cell for cell. Scrolling widgets get it from the :class:`LineScrollbars` mixin.
"""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["LineScrollBar", "LineScrollbars", "LineVerticalScroll"]


class LineScrollBar(ScrollBar):
    """A :class:`~textual.scrollbar.ScrollBar` drawn from cached lines."""

    def __init__(self, vertical: bool = True, name: str | None = None, *, thickness: int = 1):
        super().__init__(vertical, name, thickness=thickness)
        self._key: tuple[object, ...] | None = None
        self._lines: list[Strip] = []
        self._base = Style()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._update_lines()  # once a frame: Textual then asks for each line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._key is None:
            self._update_lines()
        return self._lines[y] if 0 <= y < len(self._lines) else Strip.blank(self.size.width)

    def _update_lines(self) -> None:
        bar = self.render()
        assert isinstance(bar, ScrollBarRender)
        width, height = self.size
        base = self.visual_style.rich_style  # what Textual lays the bar over
        key = (width, height, bar.virtual_size, bar.window_size, bar.position, bar.style, base)
        if key == self._key:
            return
        self._key, self._base = key, base
        style = bar.style if isinstance(bar.style, Style) else Style.parse(bar.style)
        segments = bar.render_bar(
            size=height if self.vertical else width,
            virtual_size=bar.virtual_size,
            window_size=bar.window_size,
            position=bar.position,
            thickness=width if self.vertical else height,
            vertical=self.vertical,
            back_color=style.bgcolor or Color.parse("#555555"),  # Textual's defaults
            bar_color=style.color or Color.parse("bright_magenta"),
        ).segments
        if self.vertical:  # one segment a row
            self._lines = [Strip([self._styled(s)], width) for s in segments[:height]]
        else:  # one row of segments (up to a new line), ``thickness`` times
            row = Strip([self._styled(s) for s in segments[:width]], width)
            self._lines = [row] * height

    def _styled(self, segment: Segment) -> Segment:
        text, style, control = segment
        return Segment(text, self._base + style if style else self._base, control)


class LineScrollbars(Widget):
    """A mixin for scrolling widgets: their scrollbars are :class:`LineScrollBar`."""

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        if self._vertical_scrollbar is None:
            self._vertical_scrollbar = self._new_scrollbar(vertical=True)
        return self._vertical_scrollbar

    @property
    def horizontal_scrollbar(self) -> ScrollBar:
        if self._horizontal_scrollbar is None:
            self._horizontal_scrollbar = self._new_scrollbar(vertical=False)
        return self._horizontal_scrollbar

    def _new_scrollbar(self, *, vertical: bool) -> ScrollBar:
        # As Textual's own properties do (textual 8.2.8, pinned), with the other class.
        thickness = self.scrollbar_size_vertical if vertical else self.scrollbar_size_horizontal
        bar = LineScrollBar(
            vertical=vertical, name="vertical" if vertical else "horizontal", thickness=thickness
        )
        bar.display = False
        self.app._start_widget(self, bar)
        return bar


class LineVerticalScroll(VerticalScroll, LineScrollbars):
    """Textual's :class:`~textual.containers.VerticalScroll` with a :class:`LineScrollBar`
    (its CSS type is still ``VerticalScroll``)."""
