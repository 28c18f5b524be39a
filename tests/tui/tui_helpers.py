"""Shared helpers for the workbench tests (projects, app construction, waiting)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELLO_WAT = """\
(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from the workbench")
  (func (export "main") (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 24)))
    (i32.const 42))
  (func (export "add") (param $a i32) (param $b i32) (result i32)
    (i32.add (local.get $a) (local.get $b)))
  (func (export "spin")
    (loop $forever (br $forever)))
  (func (export "chatty") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (call $log (i32.const 0) (i32.const 0) (i32.const 5)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $i))
  (func (export "test_add") (result i32)
    (i32.sub (i32.add (i32.const 2) (i32.const 3)) (i32.const 5))))
"""


def write_project(
    root: Path,
    *,
    author: str,
    wat: str = HELLO_WAT,
    capabilities: tuple[str, ...] = ("actuator_log",),
    name: str = "hello-spirit",
) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    caps = ", ".join(f'"{c}"' for c in capabilities)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\n'
        "version = { major = 0, minor = 1, patch = 0 }\n"
        f'author = "{author}"\n'
        'description = "A workbench test Spirit"\n'
        'license = "Apache-2.0"\n'
        f"capabilities = [{caps}]\n"
    )
    (root / "src" / "main.wat").write_text(wat)
    return root


def fixed_clock() -> float:
    """A clock that never moves: grants and anything else clock-stamped are repeatable."""
    return 1_700_000_000.0


def make_app(project: Path, home: Path, **kwargs: Any) -> Any:
    from vudo.tui.app import WorkbenchApp

    kwargs.setdefault("show_times", False)
    kwargs.setdefault("cursor_blink", False)
    kwargs.setdefault("clock", fixed_clock)
    return WorkbenchApp(project, home=home, **kwargs)


async def settle(pilot: Any, *, skip: tuple[str, ...] = ("watch",)) -> None:
    """Wait for the app's finished-able workers, then let their callbacks land."""
    app = pilot.app
    for _ in range(3):
        workers = [w for w in app.workers if w.group not in skip]
        if workers:
            await app.workers.wait_for_complete(workers)
        await pilot.pause()
    # Drain until a flush finds nothing left: a batch pushed while one was drawing lands in
    # the next. (The lifecycle history is anchored, so what lands is also in view.)
    while True:
        app.flush_events()
        await pilot.pause()
        if not len(app.events):
            break


async def choose_run(
    pilot: Any, function: str, args: str = "", fuel: int | None = None, deny: str = ""
) -> None:
    """Press r, fill the run dialog, submit."""
    from textual.widgets import Input, Select

    from vudo.tui.dialogs import RunDialog

    app = pilot.app
    await pilot.press("r")
    await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
    dialog = app.screen
    dialog.query_one("#run-function", Select).value = function
    await pilot.pause()  # a new function clears the arguments: fill them in after
    dialog.query_one("#run-args", Input).value = args
    if fuel is not None:
        dialog.query_one("#run-fuel", Input).value = str(fuel)
    dialog.query_one("#run-deny", Input).value = deny
    await pilot.pause()
    dialog.query_one("#run-args", Input).focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, RunDialog))


async def wait_until(pilot: Any, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
        pilot.app.flush_events()
    await pilot.pause()


KV_WAT = """\
(module
  (import "vudo" "host_storage_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "vudo" "host_storage_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (func (export "main") (result i32)
    (drop (call $read (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (drop (call $write (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4)))
    (i32.load (i32.const 16))))
"""


def publish_project(root: Path, home: Path) -> Path:
    """Pack, sign (with the home's key) and publish a project to the home's registry."""
    from vudo.project.packaging import pack_project, publish, sign_project_package

    packed = pack_project(root)
    sign_project_package(packed.path, project_dir=root, home=home)
    publish(packed.path, project_dir=root, home=home)
    return packed.path


def summon(package: Path, home: Path) -> None:
    """Install a package with every capability it asks for (``vudo summon --yes``)."""
    from vudo.project.consent import decide_consent
    from vudo.project.installing import install_prepared, prepare_summon

    prepared = prepare_summon(package, home=home)
    decision = decide_consent(prepared.request, yes=True)
    assert decision is not None
    install_prepared(prepared, decision, home=home, clock=fixed_clock)


def stocked_registry(tmp_path: Path, home: Path, author: str) -> None:
    """Two Spirits published to the home registry; the first one also installed."""
    hello = write_project(tmp_path / "pub" / "hello-spirit", author=author)
    kv = write_project(
        tmp_path / "pub" / "kv-counter",
        author=author,
        wat=KV_WAT,
        name="kv-counter",
        capabilities=("storage_read", "storage_write"),
    )
    summon(publish_project(hello, home), home)
    publish_project(kv, home)
