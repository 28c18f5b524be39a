"""The workbench as a daily driver (issue 14), driven by keys only: focus and panes, help,
lists that move and never act, the Spirit's log, the run dialog's limits and checks, host
call details, storage, build errors and the editor. Real projects, engine and files."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

from textual.widgets import Input, Static
from tui_helpers import KV_WAT, make_app, settle, wait_until, write_project

from vudo.pkg.keys import KeyPair
from vudo.tui.chrome import KeyFooter, ViewTabs
from vudo.tui.dialogs import ConfirmDialog, RunDialog, TextScreen
from vudo.tui.files import FileTree, FileViewer
from vudo.tui.hostlog import CallTable, HostCallLog
from vudo.tui.output import OutputLog, OutputTable
from vudo.tui.panes import PANES, displayed
from vudo.tui.receipt import ReceiptView
from vudo.tui.storage import StoragePane, StorageTable
from vudo.tui.textline import TextLine


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def keys(pilot: Any, *presses: str) -> None:
    for key in presses:
        await pilot.press(key)
        await pilot.pause()


async def type_text(pilot: Any, text: str) -> None:
    await pilot.press(*("space" if c == " " else c for c in text))
    await pilot.pause()


async def run_from_dialog(pilot: Any, *fields: tuple[int, str]) -> None:
    """r, then for each (tabs from the arguments field, text) type the text there, enter."""
    app = pilot.app
    await pilot.press("r")
    await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
    for tabs, text in fields:
        app.screen.query_one("#run-args", Input).focus()
        await keys(pilot, *(["tab"] * tabs))
        await keys(pilot, "ctrl+a", "ctrl+k")  # clear the field (home, delete to the end)
        await type_text(pilot, text)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog))
    await wait_until(pilot, lambda: app.busy is None)
    await settle(pilot)


def border(widget: Any) -> str:
    return str(widget.styles.border_top[0])


def problem_text(app: Any) -> str:
    return str(app.screen.query_one("#run-problem", Static).render())


def test_focus_is_unmistakable_and_keys_move_between_panes(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            tree, viewer = app.query_one(FileTree), app.query_one(FileViewer)
            assert app.focused is tree
            assert border(tree) == "heavy" and border(viewer) == "round"
            assert str(tree.border_title) == "1 Files"
            await keys(pilot, "tab")
            assert app.focused is viewer and border(viewer) == "heavy" and border(tree) == "round"
            await keys(pilot, "tab")  # only two panes on the project view: back to the first
            assert app.focused is tree
            await keys(pilot, "shift+tab")
            assert app.focused is viewer
            # number keys jump to any pane, switching the view to show it
            for pane in PANES:
                await keys(pilot, str(pane.number))
                widget = app.query_one(f"#{pane.id}")
                assert app.current_pane() == pane, pane
                assert border(widget) == "heavy", pane
                assert str(widget.border_title).startswith(f"{pane.number} "), pane
            # / filters the focused list; esc leaves the input for the list
            await keys(pilot, "3", "slash")
            assert isinstance(app.focused, Input) and app.focused.id == "log-search"
            await keys(pilot, "escape")
            assert isinstance(app.focused, CallTable)
            await keys(pilot, "7", "slash")
            assert isinstance(app.focused, Input) and app.focused.id == "registry-search"
            await keys(pilot, "escape")
            assert app.focused is not None and app.focused.id == "registry-table"
            # q quits at once
            await keys(pilot, "q")
            assert app.return_code == 0

    run(scenario())


def test_moving_the_focus_redraws_the_panes_frames_not_what_is_inside(
    project: Path, home: Path
) -> None:
    """In the wide layout the host-call log and the log pane are both on screen: moving
    the focus from one to the other changes their borders and titles (the focused one's
    title reversed in its border's colour) and redraws nothing inside them."""

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await keys(pilot, "3")
            await settle(pilot)
            calls, output = app.query_one(HostCallLog), app.query_one(OutputLog)
            header = app.query_one("#calls-header")
            drawn: list[int] = []
            draw = header.render_line

            def counting(y: int) -> Any:
                drawn.append(y)
                return draw(y)

            header.render_line = counting
            title = calls._get_title_style_information(calls.background_colors[1])
            assert title[2].reverse and title[0] == calls.styles.border_top[1]
            await keys(pilot, "4")
            await settle(pilot)
            assert border(output) == "heavy" and border(calls) == "round"
            title = calls._get_title_style_information(calls.background_colors[1])
            assert not title[2].reverse
            assert drawn == []  # the header inside the pane that lost the focus: not redrawn

    run(scenario())


def test_help_lists_the_focused_panes_keys_and_the_apps(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await keys(pilot, "7", "question_mark")
            assert isinstance(app.screen, TextScreen)
            text = app.screen.body.plain
            assert "Focused pane: 7 Registry" in text
            for words in ("Install", "Upgrade", "Uninstall", "Build", "Run", "Quit", "Pack"):
                assert words in text, words
            await keys(pilot, "escape")
            assert not isinstance(app.screen, TextScreen)
            await keys(pilot, "3", "f1")
            text = app.screen.body.plain
            assert "Focused pane: 3 Host calls" in text
            assert "Export (JSON lines)" in text and "Denied only" in text
            await keys(pilot, "escape")

    run(scenario())


def test_list_keys_move_and_never_act(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            tree = app.query_one(FileTree)
            status = app.status_text
            await keys(pilot, "G")
            assert tree.cursor_line == tree.last_line > 0
            await keys(pilot, "k", "k", "g")
            assert tree.cursor_line == 0
            await keys(pilot, "j")
            assert tree.cursor_line == 1
            await settle(pilot)
            # k and g used to pack and sign: now nothing but the cursor moved
            assert not (project / "dist").exists()
            assert app.status_text == status and app.busy is None
            assert not isinstance(app.screen, ConfirmDialog)

    run(scenario())


def test_footer_fits_80_columns_on_every_pane(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            for pane in PANES:
                await keys(pilot, str(pane.number))
                await settle(pilot)
                shown = app.screen.query_one(KeyFooter).items
                assert shown, pane
                assert max(k.end for k in shown) <= 80, pane
                labels = {k.description for k in shown}
                assert {"Run", "Help", "Quit"} <= labels, (pane, labels)

    run(scenario())


def test_footer_keys_follow_the_focus_and_act_on_a_click(project: Path, home: Path) -> None:
    """The footer is one widget drawn like Textual's: its keys change with the focused
    pane, a click on a key presses it, and a key under the pointer is highlighted and
    shows its tooltip."""

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            footer = app.screen.query_one(KeyFooter)
            on_files = [k.description for k in footer.items]
            assert on_files[0] == "Edit" and on_files[-1] == "palette"  # e: the file tree's
            await keys(pilot, "3")
            await settle(pilot)
            on_calls = [k.description for k in footer.items]
            assert "Edit" not in on_calls and {"Run", "Help", "Quit"} <= set(on_calls)
            help_key = next(k for k in footer.items if k.description == "Help")
            await pilot.hover(KeyFooter, offset=(help_key.start + 1, 0))
            await settle(pilot)
            assert footer._hover == help_key
            line, first = footer.render_line(0), footer.items[0]

            def background(x: int) -> object:
                return next(iter(line.crop(x, x + 1))).style.bgcolor

            # highlighted: the other keys keep the footer's background
            assert background(help_key.start) != background(first.start)
            await pilot.click(KeyFooter, offset=(help_key.start + 1, 0))
            await settle(pilot)
            assert isinstance(app.screen, TextScreen)  # the help screen, as `?` opens it
            await keys(pilot, "escape")
            dark = footer.render_line(0)
            app.theme = "textual-light"  # the footer's styles follow the theme
            await settle(pilot)
            assert list(footer.render_line(0)) != list(dark)

    run(scenario())


def test_the_tab_bar_switches_views_on_a_click_and_lights_the_tab_under_the_pointer(
    project: Path, home: Path
) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            tabs = app.query_one(ViewTabs)
            spans = {key: (start, end) for key, _label, start, end in tabs.shown}
            assert list(spans) == ["project", "run", "log", "receipt", "storage", "registry"]
            assert tabs.active == "project"

            def color(x: int) -> object:
                return next(iter(tabs.render_line(0).crop(x, x + 1))).style.color

            label = spans["registry"][0] + 1
            idle = color(label)
            await pilot.hover(ViewTabs, offset=(label, 0))
            await settle(pilot)
            assert color(label) != idle and color(label) == color(spans["project"][0] + 1)
            await pilot.click(ViewTabs, offset=(label, 1))  # the underline row counts too
            await settle(pilot)
            assert app.view == "registry" and tabs.active == "registry"
            assert app.current_pane() == PANES[6]
            await keys(pilot, "1")  # a view switched by key moves the bar without a message
            await settle(pilot)
            assert tabs.active == "project" and app.view == "project"
            dark = tabs.render_line(1)
            app.theme = "textual-light"  # the bar's styles follow the theme
            await settle(pilot)
            assert list(tabs.render_line(1)) != list(dark)

    run(scenario())


def test_log_pane_keeps_every_message_searchable_and_copyable(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await run_from_dialog(pilot)  # main: logs one line at level info
            await keys(pilot, "4")
            log = app.query_one(OutputLog)
            assert isinstance(app.focused, OutputTable)
            assert [(e[1], e[2], e[4]) for e in log.entries] == [
                ("log", "info", "hello from the workbench")
            ]
            await keys(pilot, "y")
            assert app.clipboard == "hello from the workbench"
            # a chatty run: 300 lines, all kept after the run, newest selected
            await keys(pilot, "r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            await keys(pilot, "shift+tab", "enter", "down", "down", "down", "enter")
            app.screen.query_one("#run-args", Input).focus()
            await type_text(pilot, "300")
            await keys(pilot, "enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog))
            await wait_until(pilot, lambda: app.busy is None)
            await settle(pilot)
            assert log.total == 300 and log.shown == 300
            assert log.table.cursor == 299
            await keys(pilot, "4", "g")
            assert log.table.cursor == 0
            await keys(pilot, "Y")
            assert app.clipboard.count("\n") == 300
            await keys(pilot, "slash")
            await type_text(pilot, "zzz")
            assert log.shown == 0
            await keys(pilot, "escape")
            assert isinstance(app.focused, OutputTable)

    run(scenario())


def test_run_dialog_limits_and_checks_before_closing(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await keys(pilot, "r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            dialog = app.screen
            args = dialog.query_one("#run-args", Input)
            await type_text(pilot, "2 40")
            # choose "add" with the keyboard: the arguments typed for main are cleared
            await keys(pilot, "shift+tab", "enter", "down", "enter")
            assert args.value == ""
            args.focus()
            await type_text(pilot, "2")
            await keys(pilot, "enter")
            assert isinstance(app.screen, RunDialog)
            assert "takes 2 arguments" in problem_text(app)
            await type_text(pilot, " 40")
            await keys(pilot, "tab", "tab", "ctrl+a", "ctrl+k")  # timeout
            await type_text(pilot, "0")
            await keys(pilot, "enter")
            assert "timeout must be a positive number" in problem_text(app)
            await keys(pilot, "ctrl+a", "ctrl+k")
            await type_text(pilot, "5")
            await keys(pilot, "tab")  # memory
            await type_text(pilot, "lots")
            await keys(pilot, "enter")
            assert 'invalid size "lots"' in problem_text(app)
            await keys(pilot, "ctrl+a", "ctrl+k")
            await type_text(pilot, "1MiB")
            await keys(pilot, "tab", "tab")  # deny
            await type_text(pilot, "actuator_lgo")
            await keys(pilot, "enter")
            assert 'unknown capability "actuator_lgo"' in problem_text(app)
            assert 'did you mean "actuator_log"' in problem_text(app)
            await keys(pilot, "backspace", "backspace", "backspace")
            await type_text(pilot, "log")
            await keys(pilot, "enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog))
            await wait_until(pilot, lambda: app.busy is None)
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (42,)
            request = app.last_request
            assert request is not None
            assert (request.timeout, request.memory) == (5.0, 1024 * 1024)
            assert request.deny == ("actuator_log",)
            # the dialog opens with the last run's limits, for the same function
            await keys(pilot, "r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            assert app.screen.query_one("#run-args", Input).value == "2 40"
            assert app.screen.query_one("#run-timeout", Input).value == "5"
            assert app.screen.query_one("#run-memory", Input).value == "1MiB"
            await keys(pilot, "escape")

    run(scenario())


def test_host_call_detail_says_what_would_allow_a_denied_call(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await run_from_dialog(pilot, (5, "actuator_log"))  # the deny field
            await keys(pilot, "3", "enter")
            assert isinstance(app.screen, TextScreen)
            text = app.screen.body.plain
            assert "DENIED" in text and "host_log" in text and "-1 denied" in text
            assert "remove actuator_log from its deny field" in text
            await keys(pilot, "y")
            copied = json.loads(app.clipboard)
            assert copied["allowed"] is False and copied["capability"] == "actuator_log"
            await keys(pilot, "escape", "ctrl+s")
            exported = (project / "target" / "host-calls.jsonl").read_text().splitlines()
            assert [json.loads(line)["function"] for line in exported] == ["host_log"]
            # the count follows the filter
            log = app.query_one(HostCallLog)
            await keys(pilot, "slash")
            await type_text(pilot, "nothing-like-this")
            assert log.shown == 0
            assert "0 of 1" in str(log.query_one("#log-count", TextLine).render())

    run(scenario())


def test_storage_pane_shows_keys_and_deletes_only_after_asking(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    kv = write_project(
        tmp_path / "kv",
        author=keypair.public_hex,
        wat=KV_WAT,
        name="kv",
        capabilities=("storage_read", "storage_write"),
    )

    async def scenario() -> None:
        app = make_app(kv, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await run_from_dialog(pilot)
            await run_from_dialog(pilot)
            await keys(pilot, "6")
            await settle(pilot)
            pane = app.query_one(StoragePane)
            assert isinstance(app.focused, StorageTable)
            assert [(e.key, e.value) for e in pane.entries] == [(b"count", b"\x02\0\0\0")]
            assert pane.balance == 0
            info = str(pane.query_one("#storage-info", Static).render())
            assert "1 key" in info and "balance 0 credits" in info
            await keys(pilot, "enter")
            assert isinstance(app.screen, TextScreen)
            assert "\\x02\\x00\\x00\\x00" in app.screen.body.plain  # escaped, not raw
            await keys(pilot, "escape", "D")
            assert isinstance(app.screen, ConfirmDialog)
            await keys(pilot, "n")
            await settle(pilot)
            assert len(pane.entries) == 1
            await keys(pilot, "D", "y")
            await settle(pilot)
            assert pane.entries == []
            assert app.status_text == "deleted count"

    run(scenario())


def test_build_error_shows_the_diagnostic_jumps_to_the_line_and_opens_the_editor(
    project: Path, home: Path, tmp_path: Path
) -> None:
    src = project / "src" / "main.wat"
    src.write_text('(module\n  (func (export "main") (result i32)\n    (i32.ad (i32.const 1))))\n')
    record = tmp_path / "editor-args"
    editor = tmp_path / "fake-editor"
    editor.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    os.environ["EDITOR"] = str(editor)
    os.environ.pop("VISUAL", None)

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await keys(pilot, "b")
            await settle(pilot)
            problem = app.problem
            assert problem is not None and problem.title == "build failed"
            assert problem.location == ("src/main.wat", 3, 6)
            assert problem.detail is not None and "^" in problem.detail
            assert "(i32.ad (i32.const 1))))" in problem.detail
            assert "vudo build" not in (problem.hint or "")
            await keys(pilot, "o")
            viewer = app.query_one(FileViewer)
            assert app.focused is viewer and viewer.mark == 3
            await keys(pilot, "e")
            await settle(pilot)
            assert record.read_text().splitlines() == ["+3", str(src)]
            assert app.status_text.startswith("back from")

    try:
        run(scenario())
    finally:
        os.environ.pop("EDITOR", None)


def test_layout_follows_each_resize_and_the_call_table_always_has_rows(
    project: Path, home: Path
) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await run_from_dialog(pilot)
            tabs = app.query_one(ViewTabs)
            for size, wide in (((160, 48), True), ((100, 30), False), ((140, 40), True)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                assert app.wide is wide, size  # at once, not one resize late
                shown = [key for key, *_ in tabs.shown]
                assert ("run" not in shown) is wide, size  # no idle tabs
            for size in ((80, 24), (100, 30), (140, 40), (160, 48), (200, 60)):
                await pilot.resize_terminal(*size)
                await keys(pilot, "3")
                await settle(pilot)
                table = app.query_one(CallTable)
                assert table.size.height >= 4, size
                assert table.size.width >= 60, size

    run(scenario())


CLOCK_WAT = """\
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "main") (result i32)
    (call $clock (i32.const 0) (i64.const 1) (i32.const 8))))
"""


def test_the_run_dialogs_grant_field_grants_for_that_run(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    """The manifest asks for nothing; the grant field gives sensor_time to one run only."""
    project = write_project(
        tmp_path / "clock",
        author=keypair.public_hex,
        wat=CLOCK_WAT,
        capabilities=(),
        name="clock",
    )

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await run_from_dialog(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (2,)  # EACCES
            assert app.query_one(HostCallLog).denied == 1
            await run_from_dialog(pilot, (4, "sensor_time"))
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (0,)
            assert app.last_request is not None
            assert app.last_request.grant == ("sensor_time",)
            # the field is kept for the next run; a typo is named in the dialog
            await keys(pilot, "r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            grant = app.screen.query_one("#run-grant", Input)
            assert grant.value == "sensor_time"
            grant.focus()
            await keys(pilot, "ctrl+a", "ctrl+k")
            await type_text(pilot, "sensor_tme")
            await keys(pilot, "enter")
            assert isinstance(app.screen, RunDialog)
            assert 'did you mean "sensor_time"' in problem_text(app)
            await keys(pilot, "escape")

    run(scenario())


def test_messages_are_for_the_workbench(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await keys(pilot, "r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            await keys(pilot, "shift+tab", "enter", "down", "down", "down", "enter")
            app.screen.query_one("#run-args", Input).focus()
            await type_text(pilot, "50")
            await keys(pilot, "tab", "ctrl+a", "ctrl+k")
            await type_text(pilot, "20000")
            await keys(pilot, "enter")
            # out of fuel, the run waits where it stopped; the advice names keys, not flags
            await wait_until(pilot, lambda: app.session.out_of_fuel)
            await pilot.pause()
            assert app.problem is None  # suspended is not an error
            assert "f refuels" in app.status_text and "x stops" in app.status_text
            assert "--" not in app.status_text
            await keys(pilot, "x")
            await wait_until(pilot, lambda: app.busy is None)
            await settle(pilot)
            assert "stopped" in app.status_text
            # the receipt: copied with its full digest, saved as JSON
            await keys(pilot, "5", "y")
            copied = json.loads(app.clipboard)
            assert len(copied["digest"].split(":")[-1]) == 64
            await keys(pilot, "ctrl+s")
            saved = json.loads((project / "target" / "receipt.json").read_text())
            assert saved == copied

    run(scenario())


def test_vudo_tui_watch_starts_with_hot_reload_on(project: Path, home: Path) -> None:
    from vudo.cli.app import build_parser

    args = build_parser("tui").parse_args(["tui", str(project), "--watch"])
    assert args.watch is True
    assert build_parser("tui").parse_args(["tui"]).watch is False

    async def scenario() -> None:
        app = make_app(project, home, hot_reload=True)  # what run_tui(watch=True) builds
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.hot_reload and "hot reload on" in str(
                app.query_one("#status", Static).render()
            )
            await keys(pilot, "h")
            assert not app.hot_reload

    run(scenario())


def test_a_widget_the_key_hides_is_restyled_for_its_blur_when_shown_again(
    project: Path, home: Path
) -> None:
    """A number key hides the file tree as it moves the focus away: Textual would restyle
    the hidden tree for its blur in that key's time (2-3 ms, of about 25). It is restyled
    as its view comes back, before that frame, whether the focus comes with it (key 1)
    or not (the wide layout shows it beside the run panes). So is a pane's border."""

    def current(tree: FileTree) -> Any:
        """The tree's cursor style now; the same after a fresh restyle if not stale."""
        before = tree.get_component_rich_style("tree--cursor")
        tree.update_node_styles()
        assert tree.get_component_rich_style("tree--cursor") == before
        return before

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await keys(pilot, "1")
            await settle(pilot)
            tree = app.query_one(FileTree)
            focused = current(tree)
            restyles: list[bool] = []
            restyle = tree.update_node_styles
            tree.update_node_styles = lambda *a: restyles.append(tree.has_focus) or restyle(*a)
            await keys(pilot, "3")
            await settle(pilot)
            assert restyles == [] and not displayed(tree)
            await pilot.resize_terminal(160, 48)  # the wide layout shows the tree again
            await settle(pilot)
            assert restyles == [False] and app.focused is app.query_one(CallTable)
            assert current(tree) != focused  # the blurred cursor colour
            await keys(pilot, "1")
            await settle(pilot)
            assert restyles[-1] is True and current(tree) == focused
            # A pane the focus leaves as its view hides keeps its heavy border until shown.
            await pilot.resize_terminal(100, 30)
            await keys(pilot, "3", "1")
            await settle(pilot)
            calls = app.query_one(HostCallLog)
            assert not displayed(calls) and border(calls) == "heavy"
            await pilot.resize_terminal(160, 48)
            await settle(pilot)
            assert border(calls) == "round" and app.focused is tree

    run(scenario())
