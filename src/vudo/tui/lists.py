"""One list widget for every long, fast-growing list in the workbench (host calls, Spirit output).

:class:`LineList` draws with Textual's line API: each frame renders only the rows on
screen, so a batch of a thousand new rows costs the same as one. It owns the cursor
(``j``/``k``/``g``/``G``, arrows, page keys; movement never triggers an action), following
the tail until the user moves up, and an optional text filter (``/``). Subclasses say how
an item becomes cells (:meth:`LineList.cells`) and what text a filter searches
(:meth:`LineList.haystack`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from operator import itemgetter
from typing import ClassVar, Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from vudo.errors import printable
from vudo.tui.panes import FocusStyleWhenShown, PaneTitle, displayed
from vudo.tui.textline import TextLine

T = TypeVar("T")

#: Bindings every list shares: movement only (vim keys as in lazygit and k9s).
MOVE_BINDINGS: list[BindingType] = [
    Binding("down,j", "cursor_down", "Down", show=False),
    Binding("up,k", "cursor_up", "Up", show=False),
    Binding("home,g", "first", "First", show=False),
    Binding("end,G", "last", "Last (follow)", show=False),
    Binding("pagedown", "page_down_rows", "Page down", show=False),
    Binding("pageup", "page_up_rows", "Page up", show=False),
]


class LineList(ScrollView, FocusStyleWhenShown, Generic[T], can_focus=True):
    """A cursor over ``items`` (the rows the current filter lets through).

    Rows are cut to the list's width, so it never scrolls sideways (``overflow-x:
    hidden``): with a horizontal scrollbar allowed, the rows' width counted the vertical
    scrollbar's cells, and the list laid the screen out twice each time its view showed.
    """

    BINDINGS: ClassVar[list[BindingType]] = MOVE_BINDINGS
    COMPONENT_CLASSES: ClassVar[set[str]] = {"linelist--odd", "linelist--cursor"}
    DEFAULT_CSS = """
    LineList { height: 1fr; overflow-x: hidden; }
    LineList > .linelist--odd { background: $boost; }
    LineList > .linelist--cursor { background: $block-cursor-blurred-background; }
    LineList:focus > .linelist--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[T] = []
        self.cursor = -1  # -1: no rows
        self.follow = True  # the cursor sits on the newest row as rows arrive
        self._styles: tuple[Style, Style, Style] | None = None
        self._lines: dict[object, Strip] = {}
        self._components: dict[str, Style] = {}
        self._width = 0
        self._drawn_size = Size(0, 0)  # the size the last Resize event gave
        self._stale = False  # rows came while hidden: not yet laid out or drawn

    # -- what subclasses say -------------------------------------------------------------

    #: ``(text, component class or "")`` pieces of one row, ``width`` cells wide: each
    #: subclass defines it as a method (``cells(self, item, width)``).
    cells: Callable[[T, int], list[tuple[str, str]]]

    def key(self, item: T) -> object:
        """A stable key of ``item`` for the drawn-line cache."""
        return id(item)

    # -- rows ------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.items)

    @property
    def current(self) -> T | None:
        if 0 <= self.cursor < len(self.items):
            return self.items[self.cursor]
        return None

    def set_items(self, items: list[T]) -> None:
        self.items = items
        self._lines.clear()
        self.cursor = len(items) - 1 if self.follow or self.cursor >= len(items) else self.cursor
        self._resize()

    def extend(self, items: Sequence[T]) -> None:
        self.items.extend(items)
        if self.follow:
            self.cursor = len(self.items) - 1
        self._resize()

    def trim(self, keep: int) -> None:
        """Drop the oldest rows beyond ``keep``."""
        extra = len(self.items) - keep
        if extra > 0:
            del self.items[:extra]
            self.cursor = max(self.cursor - extra, 0 if self.items else -1)
            self._lines.clear()
            self._resize()

    def _resize(self) -> None:
        """Grow the scrollable area. Once the scrollbar shows, growing it needs no layout
        of the screen (a full layout per 50 ms batch would cost more than the rows).

        A list another view hides is not touched at all (its rows are kept): laying out,
        scrolling or repainting a hidden widget still costs a layout or a rebuild of the
        compositor's map every batch (a Spirit's output filling the hidden log pane laid
        out the whole screen 20 times a second). :meth:`catch_up` brings it up to date
        when its view is shown, before the frame that shows it."""
        if not displayed(self):
            self._stale = True
            return
        self._stale = False
        size = Size(max(self.size.width, 1), len(self.items))
        overflowing = self.virtual_size.height > self.size.height
        if overflowing and size.height > self.size.height and self.show_vertical_scrollbar:
            self.set_reactive(ScrollView.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def catch_up(self) -> None:
        """Lay out and draw the rows that came while the list was hidden (the app calls
        this as it shows the list's view; showing it by other means catches up on the
        Show event, a frame later)."""
        if self._stale and displayed(self):
            self._resize()

    def on_show(self) -> None:
        self.catch_up()

    # -- cursor ----------------------------------------------------------------------------

    def move_to(self, index: int) -> None:
        if not self.items:
            self.cursor = -1
            return
        self.cursor = max(0, min(index, len(self.items) - 1))
        self.follow = self.cursor == len(self.items) - 1
        self.scroll_to_region(
            Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True
        )
        self.refresh()

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.items) - 1)

    def action_page_down_rows(self) -> None:
        self.move_to(self.cursor + max(self.size.height - 1, 1))

    def action_page_up_rows(self) -> None:
        self.move_to(self.cursor - max(self.size.height - 1, 1))

    # -- drawing ---------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """The theme or CSS changed: recompute the row styles and drawn lines."""
        super().notify_style_update()
        self._styles = None
        self._components.clear()
        self._lines.clear()

    def on_resize(self) -> None:
        # A list shown again gets a Resize of the size it had: its drawn lines still fit.
        if self.size != self._drawn_size:
            self._drawn_size = self.size
            self._lines.clear()
            self._resize()

    def _component(self, name: str) -> Style:
        style = self._components.get(name)
        if style is None:
            style = self._components[name] = self.get_component_rich_style(name, partial=True)
        return style

    def _row_styles(self) -> tuple[Style, Style, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("linelist--odd"),
                base + self.get_component_rich_style("linelist--cursor"),
            )
        return self._styles

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.size.width
        base, odd, cursor = self._row_styles()
        if index >= len(self.items):
            return Strip.blank(width, base)
        item = self.items[index]
        # Rows are drawn exactly ``width`` cells wide and the list never scrolls sideways,
        # so the drawn strip is the line (no second strip per row and frame).
        if index == self.cursor:
            return self._draw(item, width, cursor, cache=False)
        return self._draw(item, width, odd if index % 2 else base, cache=True)

    def _draw(self, item: T, width: int, style: Style, *, cache: bool) -> Strip:
        """``item``'s row, exactly ``width`` cells wide. Neighbouring pieces of the same
        class become one segment: fewer segments make every later step of the frame
        (Textual's line filters, the terminal's escape codes) cheaper."""
        key = (self.key(item), style is self._row_styles()[1])
        if cache and width == self._width and (strip := self._lines.get(key)) is not None:
            return strip
        if width != self._width:
            self._lines.clear()
            self._width = width
        strip = Strip(
            Segment("".join(text for text, _ in run), style + self._component(c) if c else style)
            for c, run in groupby(self.cells(item, width), key=itemgetter(1))
        )
        if strip.cell_length != width:  # cut or padded (a row of wide characters)
            strip = strip.crop_extend(0, width, style)
        if cache:
            if len(self._lines) > 512:
                self._lines.clear()
            self._lines[key] = strip
        return strip


class SearchablePane(Vertical, PaneTitle):
    """A pane over one :class:`LineList` with a search box (``/``) and a count line.

    While another view hides the pane, rows still arrive but the count is not redrawn:
    :meth:`catch_up` does that as the pane is shown. Subclasses name the two widgets
    (``SEARCH_ID``, ``COUNT_ID``), say what the count reads (:meth:`count_text`) and
    refill the list from what they keep (:meth:`_rebuild`)."""

    SEARCH_ID: ClassVar[str]
    COUNT_ID: ClassVar[str]
    #: What the count line says now (a method of each subclass).
    count_text: Callable[[], str]
    #: Refill the list with the kept rows the filters let through (likewise).
    _rebuild: Callable[[], None]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.search_text = ""
        self._count_stale = False

    def _list(self) -> LineList[object]:
        return self.query_one(LineList)

    def search_box(self, placeholder: str) -> Input:
        """The search box, hidden until ``/`` (it keeps still when the app asks for no
        cursor blink, as the snapshots do)."""
        box = Input(placeholder=placeholder, compact=True, id=self.SEARCH_ID)
        if not getattr(self.app, "cursor_blink", True):
            box.cursor_blink = False
        return box

    def on_mount(self) -> None:
        self._update_count()

    def catch_up(self) -> None:
        """Show what changed while another view hid this pane (the app calls this as it
        shows the pane, before that frame; the Show event does it a frame later)."""
        if self._count_stale and displayed(self):
            self._update_count()
        self._list().catch_up()

    def on_show(self) -> None:
        self.catch_up()

    def _update_count(self) -> None:
        if not displayed(self):
            self._count_stale = True  # see catch_up
            return
        self._count_stale = False
        self.query_one(f"#{self.COUNT_ID}", TextLine).update(self.count_text())

    def open_search(self) -> None:
        """Show the search box and focus it (``/``)."""
        box = self.query_one(f"#{self.SEARCH_ID}", Input)
        box.add_class("-shown")
        box.focus()

    def close_search(self) -> None:
        """Leave the search box (Esc): the filter stays while it has text."""
        box = self.query_one(f"#{self.SEARCH_ID}", Input)
        box.set_class(bool(box.value), "-shown")
        self._list().focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.SEARCH_ID:
            event.stop()
            self.search_text = event.value
            self._rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.SEARCH_ID:
            event.stop()
            self.close_search()


def one_line(text: str) -> str:
    """Untrusted ``text`` escaped for the terminal and kept on one row."""
    return printable(text).replace("\n", "↵").replace("\t", " ")


def fit(text: str, width: int, *, right: bool = False) -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if width <= 0:
        return ""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)
