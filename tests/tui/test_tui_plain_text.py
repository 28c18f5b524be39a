"""Guest text is plain text in the workbench: a Spirit's log line or export name given as
Textual markup must neither restyle the screen nor plant a clickable action."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.widgets import Input, Select, Static
from tui_helpers import make_app, settle, wait_until, write_project

from vudo.pkg.keys import KeyPair
from vudo.tui.dialogs import RunDialog
from vudo.tui.output import OutputLog, OutputTable

PAYLOAD = "[@click=app.quit]x[/] [bold red]RED"
EXPORT = "[@click=app.quit]go"

MARKUP_WAT = f"""\
(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{PAYLOAD}")
  (func (export "main")
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const {len(PAYLOAD)})))
    (loop $forever (br $forever)))
  (func (export "{EXPORT}") (result i32) (i32.const 2)))
"""


def _plain(widget: Static) -> tuple[str, list[str]]:
    visual: Any = widget.render()
    return visual.plain, [str(span.style) for span in visual.spans]


def test_a_log_line_and_an_export_name_are_not_markup(tmp_path: Path, keypair: KeyPair) -> None:
    project = write_project(
        tmp_path / "markup", author=keypair.public_hex, wat=MARKUP_WAT, name="markup"
    )

    async def scenario() -> None:
        app = make_app(project, tmp_path / "home")
        async with app.run_test(size=(100, 24)) as pilot:
            await settle(pilot)
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            select = app.screen.query_one("#run-function", Select)
            select.value = EXPORT
            await pilot.pause()
            plain, styles = _plain(select.query_one("SelectCurrent #label", Static))
            assert plain.startswith(EXPORT), plain  # the export's name, not markup
            assert not any("click" in s for s in styles), styles
            select.value = "main"
            # Fuel enough to spin until the test stops it: out of fuel, the status would
            # move on before it is read (an idle machine burns 10^9 units in well under a
            # second).
            app.screen.query_one("#run-fuel", Input).value = str(10**15)
            await pilot.pause()
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog), timeout=30)
            log = app.query_one(OutputLog)
            await wait_until(pilot, lambda: log.total >= 1, timeout=30)
            await pilot.press("4")  # the log pane
            await pilot.pause()
            table = log.table
            line = list(table.render_line(0))
            text = "".join(seg.text for seg in line)
            offset = text.index(PAYLOAD) + 3 if PAYLOAD in text else 0
            await pilot.click(OutputTable, offset=(offset, 0))
            await asyncio.sleep(0.1)
            await pilot.pause()
            running = app.is_running and app.return_code is None
            await pilot.press("x")  # stop the spinning Spirit before any assertion
            await settle(pilot)
            assert running  # no planted quit
            assert PAYLOAD in text, text  # shown as written, brackets and all
            for seg in line:
                style = str(seg.style)
                assert "click" not in str(seg.style.meta if seg.style else ""), seg
                assert "red" not in style, seg

    asyncio.run(scenario())


def test_a_file_name_in_the_viewer_title_is_not_markup(tmp_path: Path, keypair: KeyPair) -> None:
    from vudo.tui.files import FileTree, FileViewer

    project = write_project(tmp_path / "named", author=keypair.public_hex, name="named")
    hostile = project / "[@click=app.quit]x[bold red]y.txt"
    hostile.write_text("text\n")

    async def scenario() -> None:
        app = make_app(project, tmp_path / "home")
        async with app.run_test(size=(100, 24)) as pilot:
            await settle(pilot)
            viewer = app.query_one(FileViewer)
            viewer.show(hostile)
            await pilot.pause()
            tree = app.query_one(FileTree)
            labels = [n.label.plain for n in tree._walk(tree.root)]
            assert hostile.name in labels, labels
            title: Any = viewer._border_title
            assert title.plain == f"2 {hostile.name}", title.plain
            assert not any("click" in str(s.style) for s in title.spans)

    asyncio.run(scenario())
