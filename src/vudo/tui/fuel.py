"""The fuel gauge: used / budget as a bar, and the burn rate as a sparkline.

Fed with ``(used, budget, at)`` readings (the engine's fuel samples). The burn rate is the
fuel used per second between two readings; with ``show_rate=False`` the sparkline is left
out of the picture so screenshots do not depend on the machine's speed.

The sparkline (:class:`RateGraph`) draws what Textual's ``Sparkline`` draws, as lines made
once per change: Textual's goes through Rich's renderable pipeline, 3 to 4 ms each time
the run view is shown during a run (issue 14).
"""

from __future__ import annotations

import time
from collections import deque
from itertools import groupby
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.widget import Widget

from vudo.tui.panes import displayed
from vudo.tui.textline import CachedLines, TextLine


def human(n: float) -> str:
    """1234567 -> '1.23M': short enough for an 80-column gauge."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


class FuelBar(Widget):
    """A plain used/budget bar: no animation, so a screenshot shows exactly the value.
    Drawn again only when what it shows changes (the cells filled, the percentage): most
    batches of a run move neither."""

    DEFAULT_CSS = "FuelBar { height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.used = 0
        self.budget = 0

    def set(self, used: int, budget: int) -> None:
        shown = self._shown()
        self.used, self.budget = used, budget
        if self._shown() != shown:
            self.refresh()

    def _shown(self) -> tuple[int, int, str, str]:
        """The cells filled, the cells in all, their colour, the percentage."""
        width = max(self.size.width - 5, 1)
        fraction = min(self.used / self.budget, 1.0) if self.budget else 0.0
        style = "$error" if fraction >= 0.9 else "$warning" if fraction >= 0.6 else "$success"
        return round(fraction * width), width, style, f"{fraction * 100:4.0f}%"

    def render(self) -> Content:
        filled, width, style, percent = self._shown()
        return (
            Content("█" * filled).stylize(style)
            + Content("░" * (width - filled)).stylize("$text-muted")
            + Content(percent)
        )


class RateGraph(CachedLines):
    """Readings as bars (``▁▂▃▄▅▆▇█``, as many rows high as the widget), coloured by
    height from the lowest reading's colour to the highest's. Each column is the highest
    reading of its share of the data, as in Textual's ``Sparkline``; no data draws a flat
    line."""

    BARS = "▁▂▃▄▅▆▇█"
    COMPONENT_CLASSES: ClassVar[set[str]] = {"rategraph--min", "rategraph--max"}
    DEFAULT_CSS = """
    RateGraph { height: 1; }
    RateGraph > .rategraph--max { color: $primary; }
    RateGraph > .rategraph--min { color: $primary 30%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: list[float] = []

    def set_data(self, data: list[float]) -> None:
        self.data = data
        self.redraw()

    @classmethod
    def _bar(cls, above: int) -> str:
        """The glyph of a column ``above`` levels above the bottom of its row."""
        return " " if above < 0 else "█" if above >= len(cls.BARS) else cls.BARS[above]

    def draw_lines(self, style: VisualStyle) -> list[Strip]:
        width, height = self.size
        base = style.rich_style
        _, background = self.background_colors
        low = background + self.get_component_styles("rategraph--min").color
        high = background + self.get_component_styles("rategraph--max").color
        data = self.data
        if len(data) < 2:  # nothing to compare: a flat line, or one full bar
            glyph, color = ("▁", low) if not data else ("█", high)
            bar = Strip([Segment(glyph * width, base + Style.from_color(color.rich_color))])
            return [Strip([])] * (height - 1) + [bar] if not data else [bar] * height
        lowest, highest = min(data), max(data)
        extent = highest - lowest or 1
        n = len(data)
        shares = [data[n * i // width : n * (i + 1) // width] for i in range(width)]
        shares = [share for share in shares if share]  # fewer readings than columns
        peaks = [max(shares[i * len(shares) // width]) for i in range(width)]
        levels = len(self.BARS) * height - 1
        heights = [int((peak - lowest) / extent * levels) for peak in peaks]
        # One style per bar height (a column's colour follows its height, as Textual's
        # follows its value), and one segment per run of equal columns.
        styles = {
            level: base + Style.from_color(low.blend(high, level / levels).rich_color)
            for level in set(heights)
        }
        lines: list[Strip] = []
        for row in reversed(range(height)):
            floor = row * len(self.BARS)
            segments = [
                Segment(self._bar(level - floor) * len(list(run)), styles.get(level, base))
                for level, run in groupby(h if h >= floor else -1 for h in heights)
            ]
            lines.append(Strip(segments, width))
        return lines


class FuelGauge(Vertical):
    """Fuel used out of the budget, updating live while the Spirit runs."""

    DEFAULT_CSS = """
    FuelGauge { height: 1fr; border: round $primary-muted; }
    FuelGauge #fuel-text { height: 1; }
    FuelGauge #rate-text { height: 1; color: $text-muted; }
    FuelGauge RateGraph { height: 1fr; min-height: 1; max-height: 4; }
    """

    RATE_POINTS = 120

    def __init__(self, *, show_rate: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_rate = show_rate
        self.used = 0
        self.budget = 0
        self.rates: deque[float] = deque(maxlen=self.RATE_POINTS)
        self._last: tuple[int, float] | None = None
        self._drawn_rates = 0.0
        self._stale = False  # readings came while hidden: not yet drawn
        self.border_title = "Fuel"

    def compose(self) -> ComposeResult:
        yield TextLine("no run yet", id="fuel-text")
        yield FuelBar(id="fuel-bar")
        yield TextLine(id="rate-text")
        yield RateGraph(id="rate")

    def reset(self, budget: int) -> None:
        """A new run with ``budget`` fuel starts."""
        self.used = 0
        self.budget = budget
        self.rates.clear()
        self._last = None
        self._refresh()

    def sample(self, readings: list[tuple[int, int, float]]) -> None:
        """Take a batch of ``(used, budget, at)`` readings, oldest first."""
        if not readings:
            return
        for used, budget, at in readings:
            if self._last is not None:
                last_used, last_at = self._last
                dt = at - last_at
                if dt > 0 and used >= last_used:
                    self.rates.append((used - last_used) / dt)
            self._last = (used, at)
            self.used = used
            self.budget = budget
        self._refresh()

    def set_used(self, used: int, budget: int) -> None:
        """The exact final figures (from the receipt), without a rate reading.

        Drawn in full, sparkline included: the throttle must not leave the last readings
        of a run off the screen (what is shown after a run would depend on timing)."""
        self.used = used
        self.budget = budget
        self._refresh(final=True)

    def catch_up(self) -> None:
        """Draw the readings that came while another view hid the gauge (the app calls
        this as it shows the gauge, before that frame; the Show event does it a frame
        later)."""
        if self._stale and displayed(self):
            self._refresh(final=True)

    def on_show(self) -> None:
        self.catch_up()

    def _refresh(self, *, final: bool = False) -> None:
        if not self.is_mounted:
            return
        if not displayed(self):  # a hidden widget redrawn costs the frame a map rebuild
            self._stale = True
            return
        self._stale = False
        budget = max(self.budget, 1)
        text = f"{self.used:,} / {self.budget:,}" if self.budget else "no run yet"
        self.query_one("#fuel-text", TextLine).update(text)
        self.query_one(FuelBar).set(min(self.used, budget), self.budget)
        now = time.monotonic()
        if not final and self.show_rate and self.rates and now - self._drawn_rates < 0.2:
            return  # the sparkline moves at most 5 times a second
        self._drawn_rates = now
        graph = self.query_one(RateGraph)
        rate = self.query_one("#rate-text", TextLine)
        if self.show_rate and self.rates:
            rate.update(f"burn {human(self.rates[-1])}/s  peak {human(max(self.rates))}/s")
            graph.set_data(list(self.rates))
        else:
            rate.update("")
            graph.set_data([])
