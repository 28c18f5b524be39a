"""SVG snapshots of the workbench (stored under the top-level ``snapshots/``).

Deterministic by construction (DESIGN.md §5): fixed key and clock, project-relative paths
only, run times and burn rates hidden (``show_times=False``), no cursor blink, theme set
in the app, NO_COLOR dropped, workers finished before the screenshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select
from tui_helpers import make_app, settle, stocked_registry, wait_until

from vudo.pkg.keys import KeyPair
from vudo.tui.dialogs import ConsentScreen, RunDialog
from vudo.tui.panes import PANES
from vudo.tui.registry import RegistryBrowser

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


async def run_function(pilot: Any, function: str, deny: str = "") -> None:
    app = pilot.app
    await pilot.press("r")
    await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
    app.screen.query_one("#run-function", Select).value = function
    await pilot.pause()
    app.screen.query_one("#run-deny", Input).value = deny
    await pilot.pause()
    app.screen.query_one("#run-args", Input).focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog))
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_idle(snap_compare: Any, project: Path, home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_after_run(snap_compare: Any, project: Path, home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await run_function(pilot, "main")
        assert pilot.app.problem is None

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_denied_call(snap_compare: Any, project: Path, home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await run_function(pilot, "main", deny="actuator_log")
        assert pilot.app.query_one("#hostlog").denied == 1

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_registry_browser(
    snap_compare: Any,
    tmp_path: Path,
    project: Path,
    home: Path,
    keypair: KeyPair,
    size: tuple[int, int],
) -> None:
    stocked_registry(tmp_path, home, keypair.public_hex)

    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        browser = pilot.app.query_one(RegistryBrowser)
        assert [e.name for e in browser.entries] == ["hello-spirit", "kv-counter"]

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_consent_screen(
    snap_compare: Any,
    tmp_path: Path,
    project: Path,
    home: Path,
    keypair: KeyPair,
    size: tuple[int, int],
) -> None:
    stocked_registry(tmp_path, home, keypair.public_hex)

    async def before(pilot: Any) -> None:
        app = pilot.app
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        browser = app.query_one(RegistryBrowser)
        table = browser.query_one("#registry-table")
        table.focus()
        await pilot.press("down")  # kv-counter
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsentScreen))
        await settle(pilot, skip=("watch", "task"))

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_error(snap_compare: Any, project: Path, home: Path, size: tuple[int, int]) -> None:
    (project / "src" / "main.wat").write_text('(module (func (export "main") (i32.add)))\n')

    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert pilot.app.problem is not None

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_build_error_with_its_diagnostic(
    snap_compare: Any, project: Path, home: Path, size: tuple[int, int]
) -> None:
    """The compiler's whole diagnostic, caret and all; o has put the viewer on the line."""
    (project / "src" / "main.wat").write_text(
        '(module\n  (func (export "main") (result i32)\n    (i32.ad (i32.const 1))))\n'
    )

    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert pilot.app.problem is not None and pilot.app.problem.detail
        await pilot.press("o")
        await settle(pilot)

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, project: Path, home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("3", "question_mark")
        await settle(pilot)

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_log_pane_after_run(
    snap_compare: Any, project: Path, home: Path, size: tuple[int, int]
) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await run_function(pilot, "main")
        await pilot.press("4")
        await settle(pilot)
        assert pilot.app.query_one("#output").total == 1

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pane", [p.number for p in PANES])
def test_focus_on_each_pane(
    snap_compare: Any, project: Path, home: Path, size: tuple[int, int], pane: int
) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(str(pane))
        await settle(pilot)

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_denied_row_detail(
    snap_compare: Any, project: Path, home: Path, size: tuple[int, int]
) -> None:
    async def before(pilot: Any) -> None:
        await settle(pilot)
        await run_function(pilot, "main", deny="actuator_log")
        await pilot.press("3", "enter")
        await settle(pilot)

    assert snap_compare(make_app(project, home), terminal_size=size, run_before=before)
