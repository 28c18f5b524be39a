"""Widgets that draw Textual's picture themselves, as lines made once per change: the
burn-rate graph, one-row texts and the rows of every list. Each must look the same as
what it replaces, cell for cell."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult
from textual.content import Content
from textual.geometry import Region
from textual.renderables.sparkline import Sparkline
from textual.strip import Strip
from textual.widgets import Static

from vudo.tui.fuel import FuelBar, RateGraph
from vudo.tui.hostlog import CallTable, HostCallLog, as_call
from vudo.tui.rows import CallRow
from vudo.tui.textline import TextLine


def sparkline_text(data: list[float], width: int, height: int) -> list[str]:
    console = Console(width=width, height=height)
    spark = Sparkline(data, width=width, height=height)
    lines = console.render_lines(spark, console.options, pad=True)
    return ["".join(segment.text for segment in line) for line in lines]


class Graph(App[None]):
    CSS = "RateGraph { height: 3; width: 37; }"

    def compose(self) -> ComposeResult:
        yield RateGraph()


@pytest.mark.parametrize(
    "data",
    [
        [],
        [5.0],
        [3.0, 3.0, 3.0],
        [float(i) for i in range(12)],
        [float(i % 7) for i in range(120)],
        [random.Random(7).random() * 1e6 for _ in range(90)],
    ],
    ids=["empty", "one", "flat", "rising-few", "saw-many", "random"],
)
def test_the_rate_graph_draws_textuals_sparkline(data: list[float]) -> None:
    """The same bars as Textual's Sparkline for the same readings (more readings than
    columns, fewer, one, none), in as few segments as there are runs of equal columns."""

    async def scenario() -> None:
        app = Graph()
        async with app.run_test(size=(40, 5)) as pilot:
            graph = app.query_one(RateGraph)
            graph.set_data(data)
            await pilot.pause()
            width, height = graph.size
            lines = [graph.render_line(y) for y in range(height)]
            drawn = ["".join(s.text for s in line).ljust(width) for line in lines]
            assert drawn == [t.ljust(width) for t in sparkline_text(data, width, height)]
            for line in lines:
                segments = list(line)
                assert all(a.style != b.style for a, b in itertools.pairwise(segments))

    asyncio.run(scenario())


def test_the_rate_graph_follows_the_theme() -> None:
    async def scenario() -> None:
        app = Graph()
        async with app.run_test(size=(40, 5)) as pilot:
            graph = app.query_one(RateGraph)
            graph.set_data([1.0, 5.0, 2.0])
            await pilot.pause()
            before = list(graph.render_line(2))
            app.theme = "textual-light"
            await pilot.pause()
            after = list(graph.render_line(2))
            assert [s.text for s in before] == [s.text for s in after]
            assert [s.style for s in before] != [s.style for s in after]

    asyncio.run(scenario())


class Calls(App[None]):
    def compose(self) -> ComposeResult:
        yield HostCallLog()


def test_a_list_row_is_one_segment_per_style() -> None:
    """A host-call row: the columns before the verdict, the verdict in its colour, the
    rest; exactly as wide as the table (Textual's filters and the terminal's escape codes
    then work per segment, not per column)."""

    async def scenario() -> None:
        app = Calls()
        async with app.run_test(size=(100, 12)) as pilot:
            log = app.query_one(HostCallLog)
            rows = [CallRow("host_log", "log", i % 2 == 0, "len=3", 0, 9) for i in range(4)]
            log.add_calls([as_call(0, r) for r in rows])
            await pilot.pause()
            table = app.query_one(CallTable)
            for y in range(4):
                line = list(table.render_line(y))
                assert [s.text.strip() for s in line][1] == ("allow" if y % 2 == 0 else "DENIED")
                assert len(line) == 3
                assert sum(len(s.text) for s in line) == table.size.width

    asyncio.run(scenario())


def cells(strips: list[Strip]) -> list[list[str]]:
    """Each cell as the terminal gets it: its character in its style's escape codes."""
    return [
        [(style or Style()).render(char) for text, style, _ in strip for char in text]
        for strip in strips
    ]


class Texts(App[None]):
    CSS = """
    .t { width: 30; height: 1; color: $text-muted; }
    .right { content-align: right middle; }
    .bold { text-style: bold; background: $boost; }
    """

    def compose(self) -> ComposeResult:
        for classes in ("t", "t right", "t bold", "t right bold"):
            yield Static("", classes=classes)
            yield TextLine().set_classes(classes)


def test_a_text_line_draws_what_a_static_draws() -> None:
    """Counts and fuel figures moved from Static to TextLine: the same cells, aligned the
    same way; a text too long for the row is cut (a Static's second row is not shown)."""

    async def scenario() -> None:
        app = Texts()
        async with app.run_test(size=(60, 12)) as pilot:
            statics, lines = list(app.query(Static)), list(app.query(TextLine))
            for text in ("1,234 calls · 5 denied", "", "x" * 30, "[b]not markup[/b]"):
                for static, line in zip(statics, lines, strict=True):
                    static.update(Content(text), layout=False)
                    line.update(text)
                await pilot.pause()
                for static, line in zip(statics, lines, strict=True):
                    region = Region(0, 0, *line.size)
                    assert cells(line.render_lines(region)) == cells(static.render_lines(region))
            lines[0].update("a long text that is cut at the width of the row")
            await pilot.pause()
            (row,) = lines[0].render_lines(Region(0, 0, 30, 1))
            assert row.text == "a long text that is cut at the"
            assert str(lines[0].render()).startswith("a long text")

    asyncio.run(scenario())


class Bar(App[None]):
    CSS = "FuelBar { width: 25; }"

    def compose(self) -> ComposeResult:
        yield FuelBar()


def test_the_fuel_bar_is_drawn_again_only_when_what_it_shows_changes() -> None:
    async def scenario() -> None:
        app = Bar()
        async with app.run_test(size=(40, 5)) as pilot:
            bar = app.query_one(FuelBar)
            drawn: list[str] = []
            render = bar.render
            bar.render = lambda: drawn.append(str(render())) or render()  # type: ignore[method-assign]
            bar.set(0, 1_000_000)
            await pilot.pause()
            for used in range(1_000, 4_000, 1_000):  # under a cell and a percent each
                bar.set(used, 1_000_000)
                await pilot.pause()
            assert drawn == []
            bar.set(600_000, 1_000_000)  # 12 of 20 cells, and the warning colour
            await pilot.pause()
            assert drawn == ["████████████░░░░░░░░  60%"]

    asyncio.run(scenario())
