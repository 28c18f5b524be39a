"""The fuel gauge: used / budget as a bar, and the burn rate as a sparkline.

Fed with ``(used, budget, at)`` readings (the engine's fuel samples). The burn rate is the
fuel used per second between two readings; with ``show_rate=False`` the sparkline is left
out of the picture so screenshots do not depend on the machine's speed.
"""

from __future__ import annotations

import time
from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Sparkline, Static


def human(n: float) -> str:
    """1234567 -> '1.23M': short enough for an 80-column gauge."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


class FuelBar(Widget):
    """A plain used/budget bar: no animation, so a screenshot shows exactly the value."""

    DEFAULT_CSS = "FuelBar { height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.used = 0
        self.budget = 0

    def set(self, used: int, budget: int) -> None:
        self.used, self.budget = used, budget
        self.refresh()

    def render(self) -> Content:
        width = max(self.size.width - 5, 1)
        fraction = min(self.used / self.budget, 1.0) if self.budget else 0.0
        filled = round(fraction * width)
        style = "$error" if fraction >= 0.9 else "$warning" if fraction >= 0.6 else "$success"
        return (
            Content("█" * filled).stylize(style)
            + Content("░" * (width - filled)).stylize("$text-muted")
            + Content(f"{fraction * 100:4.0f}%")
        )


class FuelGauge(Vertical):
    """Fuel used out of the budget, updating live while the Spirit runs."""

    DEFAULT_CSS = """
    FuelGauge { height: 1fr; border: round $primary-muted; }
    FuelGauge #fuel-text { height: 1; }
    FuelGauge #rate-text { height: 1; color: $text-muted; }
    FuelGauge Sparkline { height: 1fr; min-height: 1; max-height: 4; }
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
        self.border_title = "Fuel"

    def compose(self) -> ComposeResult:
        yield Static("no run yet", id="fuel-text")
        yield FuelBar(id="fuel-bar")
        yield Static("", id="rate-text")
        yield Sparkline([], id="rate")

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

    def _refresh(self, *, final: bool = False) -> None:
        if not self.is_mounted:
            return
        budget = max(self.budget, 1)
        text = f"{self.used:,} / {self.budget:,}" if self.budget else "no run yet"
        self.query_one("#fuel-text", Static).update(text, layout=False)
        self.query_one(FuelBar).set(min(self.used, budget), self.budget)
        spark = self.query_one(Sparkline)
        now = time.monotonic()
        if not final and self.show_rate and self.rates and now - self._drawn_rates < 0.2:
            return  # the sparkline moves at most 5 times a second
        self._drawn_rates = now
        if self.show_rate and self.rates:
            self.query_one("#rate-text", Static).update(
                f"burn {human(self.rates[-1])}/s  peak {human(max(self.rates))}/s", layout=False
            )
            spark.data = list(self.rates)
        else:
            self.query_one("#rate-text", Static).update("", layout=False)
            spark.data = []
