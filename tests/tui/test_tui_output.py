"""The Spirit's own output in the workbench: ``host_output_write`` bytes, a WASI program's
stdout and stderr, and ``host_notify`` (a line in the log pane and a toast), and the fuel
gauge during a pure-compute loop (it moves before the guest makes any host call)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui_helpers import choose_run, make_app, settle, wait_until, write_project

from vudo.pkg.keys import KeyPair
from vudo.tui.fuel import FuelGauge
from vudo.tui.output import OutputLog

OUTPUT_WAT = """\
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "vudo" "host_output_write" (func $out (param i32 i32) (result i32)))
  (import "vudo" "host_notify" (func $notify (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "to stdout\\n")
  (data (i32.const 16) "to stderr\\n")
  (data (i32.const 32) "output bytes")
  (data (i32.const 48) "[b]heads up[/b]")
  ;; iovecs: (ptr, len) at 64 for stdout, at 72 for stderr
  (data (i32.const 64) "\\00\\00\\00\\00\\0a\\00\\00\\00\\10\\00\\00\\00\\0a\\00\\00\\00")
  (func (export "main") (result i32)
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 80)))
    (drop (call $fd_write (i32.const 2) (i32.const 72) (i32.const 1) (i32.const 80)))
    (drop (call $out (i32.const 32) (i32.const 12)))
    (drop (call $notify (i32.const 3) (i32.const 48) (i32.const 15)))
    (i32.const 0))
  (func (export "crunch") (param $n i64) (result i64)
    (local $acc i64)
    (block $done
      (loop $again
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $acc (i64.add (local.get $acc) (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $again)))
    (local.get $acc)))
"""


def test_stdout_stderr_output_and_notify_reach_the_log_pane(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    project = write_project(
        tmp_path / "talker",
        author=keypair.public_hex,
        wat=OUTPUT_WAT,
        capabilities=("actuator_notify",),
        name="talker",
    )

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await wait_until(pilot, lambda: app.busy is None)
            await settle(pilot)
            log = app.query_one(OutputLog)
            rows = [(source, text) for _, source, _, _, text in log.entries]
            assert ("stdout", "to stdout") in rows, rows
            assert ("stderr", "to stderr") in rows, rows
            assert ("output", "output bytes") in rows, rows
            assert ("notify", "[b]heads up[/b]") in rows, rows  # kept as text, not markup
            toasts = [n for n in app._notifications if n.title == "the Spirit says"]
            assert [t.message for t in toasts] == ["[b]heads up[/b]"]
            assert toasts[0].markup is False and toasts[0].severity == "warning"

    asyncio.run(scenario())


def test_the_fuel_gauge_moves_during_pure_compute(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    project = write_project(
        tmp_path / "cruncher",
        author=keypair.public_hex,
        wat=OUTPUT_WAT,
        capabilities=("actuator_notify",),
        name="cruncher",
    )

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "crunch", "100000000000000", fuel=10**15)
            gauge = app.query_one(FuelGauge)
            # no host call is ever made: the gauge reads the store's fuel as it runs
            await wait_until(pilot, lambda: app.session.live and gauge.used > 0)
            first = gauge.used
            await wait_until(pilot, lambda: gauge.used > first)
            await pilot.press("x")
            await wait_until(pilot, lambda: app.busy is None)
            await settle(pilot)

    asyncio.run(scenario())
