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
    app.flush_events()
    await pilot.pause()


async def wait_until(pilot: Any, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
        pilot.app.flush_events()
    await pilot.pause()
