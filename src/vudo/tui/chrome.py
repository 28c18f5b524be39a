"""The workbench's frame around the panes: the view tab bar and the key footer.

Both look like Textual's own :class:`~textual.widgets.Tabs` and
:class:`~textual.widgets.Footer` (the snapshots are byte for byte the same) and act like
them for the pointer, but each is one widget that draws its lines as segments. Textual's
are containers of one widget per tab or key: a number key restyled, laid out and drew
each tab and key that changed, and the footer's keys laid the screen out a second time
when their widths changed (issue 14: a number key must reach the screen in under 50 ms
with a Spirit flooding the host-call log). The underline jumps; Textual's slides for
0.3 s, a frame every tick that a key pressed meanwhile queued behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Generic, NamedTuple, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["KeyFooter", "ViewTabs"]


#: A part of a bar the pointer can be on (a tab's key, a footer key).
P = TypeVar("P")
#: A bar's rich styles, worked out from its CSS.
S = TypeVar("S")


class PointerBar(Widget, Generic[P, S], can_focus=False):
    """A bar drawn as segments (the tab bar, the key footer): the part of it under the
    pointer, lit until the pointer leaves, and its rich styles, worked out once per style
    change instead of once per frame. Number keys and tab move between panes, so a bar
    never takes the focus."""

    ALLOW_SELECT = False

    #: The part at column ``x``, if any (each subclass defines it as a method).
    part_at: Callable[[int], P | None]
    #: The bar's styles from its CSS (likewise).
    make_styles: Callable[[], S]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._hover: P | None = None
        self._styles: S | None = None

    def bar_styles(self) -> S:
        if self._styles is None:
            self._styles = self.make_styles()
        return self._styles

    def notify_style_update(self) -> None:
        """The theme or the CSS changed: work the styles out again."""
        self._styles = None
        super().notify_style_update()

    def hover(self, part: P | None) -> None:
        """Light ``part`` (None: nothing) and draw the bar again if that changed."""
        if part != self._hover:
            self._hover = part
            self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self.hover(self.part_at(event.x))

    def on_leave(self, event: events.Leave) -> None:
        self.hover(None)


#: The tab bar's styles: plain, a tab, the active tab, a tab under the pointer, the
#: underline under the active tab, the rest of the underline.
TabStyles = tuple[Style, Style, Style, Style, Style, Style]


class ViewTabs(PointerBar[str, TabStyles]):
    """The view tab bar: the labels in one row and the underline below, in one widget.

    It looks like Textual's :class:`~textual.widgets.Tabs` (the snapshots are the same)
    and acts like it for the pointer: a label under it lights up, a click on it posts
    :class:`ViewTabs.Activated`. Setting :attr:`active` from code posts nothing (the app
    sets it as it switches views). One widget instead of a container, a row of tabs and
    an underline: a view switch restyled the two tabs that changed and drew four widgets.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "viewtabs--tab",
        "viewtabs--active",
        "viewtabs--hover",
        "underline--bar",
    }
    DEFAULT_CSS = """
    ViewTabs {
        width: 100%;
        height: 2;
        .viewtabs--tab { color: $foreground 50%; }
        .viewtabs--active { color: $foreground; }
        .viewtabs--hover { color: $foreground; }
        .underline--bar { color: $block-cursor-background; background: $foreground 10%; }
        &:ansi {
            .viewtabs--tab { text-style: dim; }
            .viewtabs--active { text-style: not dim bold; }
            .underline--bar { color: $block-cursor-background; background: $border-blurred; }
        }
    }
    """

    class Activated(Message):
        """The user clicked the tab of view ``key``."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, views: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.views = tuple(views)  # (key, label), in order
        self._active = views[0][0]
        self.hidden: frozenset[str] = frozenset()

    @property
    def active(self) -> str:
        return self._active

    @active.setter
    def active(self, key: str) -> None:
        if key != self._active:
            self._active = key
            self.refresh()

    def set_hidden(self, keys: Iterable[str]) -> None:
        """Show every tab but those of ``keys``."""
        hidden = frozenset(keys)
        if hidden != self.hidden:
            self.hidden = hidden
            self._hover = None
            self.refresh()

    @property
    def shown(self) -> list[tuple[str, str, int, int]]:
        """``(key, label, start, end)`` of each tab shown, ``end`` past its padding."""
        spans, x = [], 0
        for key, label in self.views:
            if key not in self.hidden:
                spans.append((key, label, x, x + len(label) + 2))
                x += len(label) + 2
        return spans

    def make_styles(self) -> TabStyles:
        plain = self.rich_style
        bar = self.get_component_rich_style("underline--bar")
        return (
            plain,
            plain + self.get_component_rich_style("viewtabs--tab"),
            plain + self.get_component_rich_style("viewtabs--active"),
            plain + self.get_component_rich_style("viewtabs--hover"),
            Style(color=bar.color, bgcolor=plain.bgcolor),
            Style(color=bar.bgcolor, bgcolor=plain.bgcolor),
        )

    def render_line(self, y: int) -> Strip:
        plain, tab, active, hover, lit, dim = self.bar_styles()
        width = self.size.width
        shown = self.shown
        if y == 0:
            pad = Segment(" ", Style(bgcolor=plain.bgcolor))  # a tab's padding, as Tab's
            segments: list[Segment] = []
            for key, label, _start, _end in shown:
                style = active if key == self._active else hover if key == self._hover else tab
                segments += [pad, Segment(label, style), pad]
            return Strip(segments).adjust_cell_length(width, pad.style)
        # The underline, as Textual's Bar draws it: half bars where the highlight starts
        # and ends, under the active tab's label (not its padding).
        span = next(((s + 1, e - 1) for k, _l, s, e in shown if k == self._active), None)
        if span is None:
            return Strip([Segment("━" * width, dim)], width)
        start, end = span
        segments = [Segment("━" * (start - 1), dim)] if start > 1 else []
        segments += [Segment("╸", dim), Segment("━" * (end - start), lit)]
        if end < width:
            segments += [Segment("╺", dim), Segment("━" * (width - end - 1), dim)]
        return Strip([s for s in segments if s.text]).adjust_cell_length(width, plain)

    def part_at(self, x: int) -> str | None:
        return next((k for k, _l, s, e in self.shown if s <= x < e), None)

    def on_click(self, event: events.Click) -> None:
        key = self.part_at(event.x)
        if key is not None and key != self._active:
            self.active = key
            self.post_message(self.Activated(key))


#: A footer key: key, key display, description, disabled, tooltip.
KeySpec = tuple[str, str, str, bool, str]
#: What the footer shows: the keys, and the command palette's key (None: no palette).
FooterKeys = tuple[tuple[KeySpec, ...], KeySpec | None]


class FooterStyles(NamedTuple):
    """The footer's rich styles, worked out once per style change."""

    plain: Style
    key: Style
    description: Style
    hover: Style
    separator: Style


class FooterItem(NamedTuple):
    """One key the footer shows, and the columns it takes."""

    key: str
    display: str
    description: str
    disabled: bool
    tooltip: str
    start: int
    end: int


class KeyFooter(PointerBar[FooterItem, FooterStyles]):
    """The focused pane's keys, and the command palette's on the right, in one line.

    It looks like Textual's :class:`~textual.widgets.Footer` (the snapshots are the same)
    and acts like it: a click presses the key (a disabled key rings the bell), a key
    under the pointer is highlighted and shows its tooltip. It is one widget instead of
    a container of one widget per key: when the focus moves to another pane, Footer
    restyles and lays out each key whose text changed, and a key whose width changed lays
    the whole screen out again after the frame (a second layout on every number key).
    Keys that do not fit before the palette's are cut off.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "footer-key--key",
        "footer-key--description",
        "footer-key--hover",
        "footer-key--separator",
    }
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .footer-key--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer-key--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .footer-key--hover { color: $footer-key-foreground; background: $block-hover-background; }
        .footer-key--separator { color: $foreground 20%; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.items: tuple[FooterItem, ...] = ()
        self._wanted: FooterKeys | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen:
            self.sync_now()

    def sync_now(self) -> None:
        """Show the keys the focused widget offers now (called on every focus change, so
        the keys change in the frame that shows the new pane)."""
        wanted = self.wanted()
        if wanted != self._wanted:
            self._wanted = wanted
            self._hover = None
            self.refresh()

    def wanted(self) -> FooterKeys:
        """The keys to show (one per action, in binding order) and the palette's."""
        active = self.screen.active_bindings
        firsts: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in active.values():
            if binding.show:
                firsts.setdefault(binding.action, (binding, enabled, tooltip))
        display = self.app.get_key_display
        keys = tuple(
            (b.key, display(b), b.description, not enabled, tooltip or "")
            for b, enabled, tooltip in firsts.values()
        )
        palette: KeySpec | None = None
        if self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, b, enabled, _tooltip = found
                tip = str(b.tooltip or b.description)
                palette = (b.key, display(b), b.description, not enabled, tip)
        return keys, palette

    def make_styles(self) -> FooterStyles:
        return FooterStyles(
            self.rich_style,
            self.get_component_rich_style("footer-key--key"),
            self.get_component_rich_style("footer-key--description"),
            self.get_component_rich_style("footer-key--hover"),
            self.get_component_rich_style("footer-key--separator"),
        )

    def render_line(self, y: int) -> Strip:
        """The footer's one line, built as segments: the same line through Textual's
        ``render`` (text to content to strip) cost ten times as much, on every key."""
        if self._wanted is None:
            self._wanted = self.wanted()
        keys, palette = self._wanted
        width = self.size.width
        plain, key_style, description_style, hover, separator = self.bar_styles()
        lit = Style(bgcolor=hover.bgcolor)  # Textual resolves the parts' transparent
        # backgrounds against the key's, which the pointer changes

        def parts(item: FooterItem, *texts: tuple[str, Style]) -> list[Segment]:
            base, over = (hover, lit) if item == self._hover else (plain, Style())
            if item.disabled:
                over += Style(dim=True)
            return [Segment(text, base + style + over) for text, style in texts]

        tail: list[tuple[str, Style]] = []
        if palette is not None:  # docked right: a separator, the key, its name, a space
            _name, shown, description, _disabled, _tip = palette
            tail = [("▏", separator), (shown, key_style), (" " + description, description_style)]
        room = max(width - sum(len(text) for text, _ in tail) - (palette is not None), 0)
        segments: list[Segment] = []
        items: list[FooterItem] = []
        column = 0
        for name, shown, description, disabled, tip in keys:
            texts = [(f" {shown} ", key_style), (f"{description} ", description_style)]
            end = column + len(shown) + len(description) + 3
            if end > room:
                break
            item = FooterItem(name, shown, description, disabled, tip, column, end)
            segments += parts(item, *texts)
            items.append(item)
            column = end
        blank = Style(bgcolor=plain.bgcolor)  # the footer's, between the keys and the palette's
        if column < room:
            segments.append(Segment(" " * (room - column), blank))
        if palette is not None:
            item = FooterItem(*palette, room, width)
            segments += parts(item, *tail)
            segments.append(Segment(" ", blank))  # its padding
            items.append(item)
        self.items = tuple(items)
        return Strip(segments).adjust_cell_length(width, plain)

    def part_at(self, x: int) -> FooterItem | None:
        return next((i for i in self.items if i.start <= x < i.end), None)

    def hover(self, part: FooterItem | None) -> None:
        """Light ``part`` and show its tooltip."""
        if part != self._hover:
            self.tooltip = part.tooltip if part is not None and part.tooltip else None
        super().hover(part)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        item = self.part_at(event.x)
        if item is None:
            return
        if item.disabled:
            self.app.bell()
        else:
            self.app.simulate_key(item.key)
