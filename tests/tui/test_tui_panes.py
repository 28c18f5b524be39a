"""Each pane driven by plain data, in a one-widget app: no engine, no project."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.highlight import highlight
from textual.widget import Widget

from vudo.errors import BuildError
from vudo.tui.buffer import EventBuffer
from vudo.tui.files import FileTree, FileViewer, language_for, numbered, read_for_view
from vudo.tui.fuel import FuelGauge, human
from vudo.tui.hostlog import (
    HostCallLog,
    as_call,
    call_cells,
    column_widths,
    header_text,
    result_text,
)
from vudo.tui.lifecycle import LifecyclePane, format_transition, render_diagram
from vudo.tui.receipt import ErrorBanner, ReceiptView, problem_from_error, render_receipt
from vudo.tui.registry import RegistryBrowser, short_key
from vudo.tui.rows import CallRow, ReceiptRow, RegistryEntry, Transition


class Host(App[None]):
    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def with_widget(widget: Widget, body: Any) -> None:
    async def scenario() -> None:
        async with Host(widget).run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await body(pilot)

    asyncio.run(scenario())


def call(n: int, *, allowed: bool = True, cap: str = "actuator_log") -> CallRow:
    return CallRow("host_log", cap, allowed, f"len={n}", 0 if allowed else -1, 1000)


def test_event_buffer_is_thread_safe_and_bounded() -> None:
    buf: EventBuffer[int] = EventBuffer(limit=50_000)

    def producer(base: int) -> None:
        for i in range(20_000):
            buf.push(base + i)

    threads = [threading.Thread(target=producer, args=(k * 100_000,)) for k in range(4)]
    for t in threads:
        t.start()
    drained: list[int] = []
    while any(t.is_alive() for t in threads):
        drained.extend(buf.drain())
    for t in threads:
        t.join()
    drained.extend(buf.drain())
    assert buf.pushed == 80_000
    assert len(drained) + buf.dropped == 80_000
    small: EventBuffer[int] = EventBuffer(limit=3)
    for i in range(5):
        small.push(i)
    assert small.drain() == [2, 3, 4] and small.dropped == 2


def test_host_call_log_counts_filters_and_trims() -> None:
    log = HostCallLog()

    async def body(pilot: Any) -> None:
        log.add([call(i, allowed=i % 3 != 0) for i in range(30)])
        log.add([call(1, cap="storage_read")])
        await pilot.pause()
        assert log.total == 31 and log.denied == 10 and log.shown == 31
        log.set_filter("storage_read")
        assert log.shown == 1
        log.set_filter("all", denied_only=True)
        assert log.shown == 10
        log.add([call(99, allowed=False), call(100)])
        assert log.shown == 11  # new rows obey the filter
        count = str(log.query_one("#log-count").render())
        assert count == "11 of 33 · 11 denied", count  # the count follows the filter
        log.clear()
        assert log.total == 0 and log.shown == 0

    with_widget(log, body)
    assert result_text(-1) == "-1 denied" and result_text(-99) == "-99" and result_text(5) == "5"
    cells = call_cells(as_call(7, call(3, allowed=False)), 100)
    assert [c.strip() for c in cells] == [
        "7",
        "log",
        "actuator_log",
        "DENIED",
        "len=3",
        "-1 denied",
        "1000",
    ]
    # the columns fill the width they are given: the arguments take the rest
    for width in (76, 100, 158):
        assert len(header_text(width)) == width
        assert sum(column_widths(width)) + 6 == width
        assert len(" ".join(call_cells(as_call(7, call(3)), width))) == width
    assert column_widths(66)[4] >= 12  # squeezed columns leave the arguments room


def test_lifecycle_lights_the_current_state() -> None:
    pane = LifecyclePane(show_times=True)

    async def body(pilot: Any) -> None:
        pane.add(
            [
                Transition("created", "initializing", 0.001, "instantiate"),
                Transition("initializing", "ready", 0.0042, "instantiated"),
            ]
        )
        assert pane.state == "ready" and len(pane.history) == 2
        pane.reset()
        assert pane.state is None and pane.history == []

    with_widget(pane, body)
    plain = render_diagram("running").plain
    for name in (
        "Created",
        "Initializing",
        "Ready",
        "Running",
        "Suspended",
        "Failed",
        "Terminated",
    ):
        assert name in plain
    lit = [s for s in render_diagram("running").spans if "on" in str(s.style)]
    assert len(lit) == 1
    t = Transition("ready", "running", 1.23456, "call main")
    assert format_transition(t, show_times=True) == "+1.235s Running (call main)"
    assert format_transition(t, show_times=False) == "+· Running (call main)"


def test_lifecycle_history_shows_the_newest_batch() -> None:
    """A history taller than its pane ends in view after the batch that grew it lands,
    at the layout, not at a deferred scroll; a short one stays top-aligned."""
    from textual.containers import VerticalScroll

    pane = LifecyclePane(show_times=True)

    def batch(start: int, count: int) -> list[Transition]:
        return [
            Transition("running", "suspended", i / 1000, f"step {i}")
            for i in range(start, start + count)
        ]

    async def body(pilot: Any) -> None:
        history = pane.query_one("#history", VerticalScroll)
        pane.add(batch(0, 2))
        await pilot.pause()
        assert history.scroll_y == 0 and not history.is_anchored
        pane.add(batch(2, 30))
        pane.add(batch(32, 8))  # a second batch before any layout
        await pilot.pause()
        assert history.max_scroll_y > 0
        assert history.scroll_y == history.max_scroll_y
        pane.reset()
        pane.add(batch(0, 1))
        await pilot.pause()
        assert history.scroll_y == 0 and not history.is_anchored

    with_widget(pane, body)


def test_fuel_gauge_rates_from_samples() -> None:
    gauge = FuelGauge(show_rate=True)

    async def body(pilot: Any) -> None:
        gauge.reset(1_000_000)
        gauge.sample([(0, 1_000_000, 0.0), (10_000, 1_000_000, 0.01), (30_000, 1_000_000, 0.02)])
        assert gauge.used == 30_000
        assert [round(r) for r in gauge.rates] == [1_000_000, 2_000_000]
        gauge.set_used(500_000, 2_000_000)
        assert (gauge.used, gauge.budget) == (500_000, 2_000_000)

    with_widget(gauge, body)
    assert human(1_234_567) == "1.23M" and human(999) == "999" and human(2e9) == "2.00G"


def test_receipt_and_error_rendering() -> None:
    receipt = ReceiptRow(
        "hello",
        "ab" * 32,
        "main",
        "trap",
        "unreachable",
        (),
        1000,
        250,
        0.0123,
        65536,
        (("actuator_log", 2, 1),),
        4,
        5,
        12,
    )
    text = render_receipt(receipt, show_times=True).plain
    assert "trap" in text and "unreachable" in text and "12.3 ms" in text
    assert "2 allowed, 1 denied" in text and "12 credits" in text
    assert "12.3 ms" not in render_receipt(receipt, show_times=False).plain
    problem = problem_from_error(BuildError("it broke", hint="fix it"))
    assert (problem.title, problem.message, problem.hint) == ("build failed", "it broke", "fix it")
    assert problem_from_error(ValueError("x")).title == "internal error"
    view, banner = ReceiptView(show_times=False), ErrorBanner()

    async def body(pilot: Any) -> None:
        view.show(receipt)
        banner.show_problem(problem)
        assert banner.has_class("-shown")
        banner.show_problem(None)
        assert not banner.has_class("-shown")

    with_widget(view, body)
    with_widget(banner, body)


def test_registry_browser_keeps_selection_and_posts_actions() -> None:
    browser = RegistryBrowser()
    seen: list[tuple[str, str]] = []

    class RegistryHost(Host):
        def on_registry_browser_act(self, event: RegistryBrowser.Act) -> None:
            seen.append((event.action, event.entry.name))

    entries = [
        RegistryEntry("alpha", "1.0.0", signer="c" * 64, trusted=True),
        RegistryEntry(
            "beta", "0.2.0", installed=("0.1.0",), capabilities=("sensor_time",), signer="d" * 64
        ),
    ]

    async def scenario() -> None:
        async with RegistryHost(browser).run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            browser.show_results(entries)
            table = browser.query_one("#registry-table")
            table.focus()
            await pilot.press("down")
            assert browser.selected is not None and browser.selected.name == "beta"
            browser.show_results(list(reversed(entries)))
            assert browser.selected is not None and browser.selected.name == "beta"
            await pilot.press("i", "u", "U")
            await pilot.pause()

    asyncio.run(scenario())
    assert seen == [("install", "beta"), ("uninstall", "beta"), ("upgrade", "beta")]
    assert short_key("e" * 64) == "eeeeeeee…eeee" and short_key("") == "-"


def test_files_tree_and_viewer(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src" / "main.zig").write_text("pub fn main() void {}\n")
    (root / "spirit.toml").write_text('name = "x"\n')
    (root / "big.wat").write_bytes(b"x" * (600 * 1024))
    assert language_for(root / "src" / "main.zig") == "zig"
    assert language_for(Path("a.rs")) == "rust" and language_for(Path("a.c")) == "c"
    assert language_for(Path("a.wat")) == "wat" and language_for(Path("x.toml")) == "toml"
    _title, text, notice = read_for_view(root / "big.wat", root)
    assert text is None and notice is not None and "too large" in notice
    samples = {
        "wat": '(module (func (export "main") (result i32) (i32.const 1)))',
        "c": "int main(void) { return 0; }",
        "zig": "pub fn main() void {}",
        "rust": "fn main() { let x = 1; }",
        "toml": 'name = "x"\nversion = 1',
    }
    for language, code in samples.items():
        content = numbered(highlight(code, language=language))
        assert content.plain.startswith("1 ")
        assert len(content.spans) > 2, language  # line number plus highlighted tokens
    tree, viewer = FileTree(root), FileViewer(root)

    class Both(App[None]):
        def compose(self) -> ComposeResult:
            yield tree
            yield viewer

    async def scenario() -> None:
        async with Both().run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            labels = [str(n.label) for n in tree.root.children]
            assert labels == ["src/", "big.wat", "spirit.toml"]  # dirs first, .git hidden
            viewer.show(root / "src" / "main.zig")
            assert viewer.text == "pub fn main() void {}\n"
            assert viewer.border_title == "2 src/main.zig"

    asyncio.run(scenario())


def test_stored_calls_are_not_tracked_by_the_garbage_collector() -> None:
    import gc

    log = HostCallLog()

    async def body(pilot: Any) -> None:
        log.add([call(i) for i in range(100)])
        gc.collect()
        assert not any(gc.is_tracked(c) for c in log.rows)
        assert log.row(-1) == call(99)

    with_widget(log, body)


def test_nested_receipts_render_indented_under_their_caller() -> None:
    from vudo.tui.hostlog import nested_function
    from vudo.tui.receipt import render_calls

    def row(module: str, outcome: str, calls: tuple[ReceiptRow, ...] = ()) -> ReceiptRow:
        return ReceiptRow(
            module, "ab" * 32, "main", outcome, None, (), 100, 10, 0.0, 0,
            (("actuator_log", 1, 2),), 0, 0, None, None, calls,
        )  # fmt: skip

    leaf = row("leaf", "trap")
    top = row("top", "ok", (row("middle", "ok", (leaf,)),))
    lines = [line.plain for line in render_calls(top)]
    assert lines == [
        "      called  middle.main ok  fuel 10  actuator_log 1/2 denied",
        "                leaf.main trap  fuel 10  actuator_log 1/2 denied",
    ]
    assert "called  middle.main" in render_receipt(top, show_times=False).plain
    assert nested_function("host_log", 1) == "└ log"
    assert nested_function("host_time_now", 2) == "  └ time_now"


def test_workbench_hints_name_keys_not_flags_and_denied_calls_say_what_allows_them() -> None:
    from vudo.errors import FuelExhausted, NotFoundError, ResourceLimitExceeded, TimeoutExceeded
    from vudo.project.storage import parse_key, show_key
    from vudo.tui.help import allow_line
    from vudo.tui.receipt import workbench_hint

    assert "refuel (f)" in (workbench_hint(FuelExhausted("all fuel used", hint="--fuel")) or "")
    assert "run dialog" in (workbench_hint(TimeoutExceeded("late", hint="raise --timeout")) or "")
    limit = ResourceLimitExceeded("memory", hint="raise the memory limit (--memory) or less")
    assert workbench_hint(limit) == "raise the memory in the run dialog (r) or less"
    missing = NotFoundError("x", hint="pass --path DIR, or create one with `vudo new NAME`")
    assert "--" not in (workbench_hint(missing) or "")
    problem = problem_from_error(TimeoutExceeded("timeout: interrupted"))
    assert problem.message == "interrupted"  # the title is not repeated
    assert allow_line("sensor_time", "", ("actuator_log",)) == (
        'declare it in spirit.toml: capabilities = ["actuator_log", "sensor_time"]'
    )
    assert "domain:*:*" in allow_line("network_connect", "outside domain:*:*", ("network_connect",))
    for key in (b"count", b"\x01\xff", b"hex:tricky", b"tab\there"):
        assert parse_key(show_key(key)) == key


def test_a_call_table_shown_again_never_grows_a_sideways_scrollbar(
    project: Path, home: Path
) -> None:
    """Rows are cut to the table's width: the table scrolls up and down only. (It used to
    show a horizontal scrollbar each time its view came back, the rows' width counting
    the vertical scrollbar's cells, and lay the screen out a second time for it.)"""
    from tui_helpers import make_app, settle

    from vudo.tui.hostlog import CallTable

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            log, table = app.query_one(HostCallLog), app.query_one(CallTable)
            for batch in range(3):
                await pilot.press("1")  # the project view: the table is hidden
                await settle(pilot)
                log.add([call(batch * 100 + i) for i in range(100)])
                await pilot.press("3")
                await settle(pilot)
                assert table.show_vertical_scrollbar
                assert not table.show_horizontal_scrollbar, batch
                assert table.virtual_size.height == (batch + 1) * 100

    asyncio.run(scenario())


def test_the_fuel_gauge_draws_readings_that_came_while_hidden_as_it_is_shown(
    project: Path, home: Path
) -> None:
    """A widget redrawn while another view hides it costs the next frame a rebuild of the
    compositor's map: the gauge keeps the readings and draws them as its view returns."""
    from tui_helpers import make_app, settle

    from vudo.tui.textline import TextLine

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            gauge, text = app.query_one(FuelGauge), app.query_one("#fuel-text", TextLine)
            gauge.reset(1_000_000)
            await pilot.press("1")  # the project view: the gauge is hidden
            await settle(pilot)
            drawn = text.text
            gauge.sample([(250_000, 1_000_000, 0.0), (500_000, 1_000_000, 0.5)])
            assert text.text == drawn and gauge.used == 500_000
            await pilot.press("3")  # drawn as the run view shows, before its frame
            assert text.text == "500,000 / 1,000,000"

    asyncio.run(scenario())
