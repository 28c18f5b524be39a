"""Behaviour of the workbench through the Pilot, on real projects, the real engine and
real files in a temp dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Static
from tui_helpers import (
    KV_WAT,
    choose_run,
    make_app,
    publish_project,
    settle,
    stocked_registry,
    wait_until,
    write_project,
)

from vudo.pkg.keys import KeyPair
from vudo.tui.dialogs import ConfirmDialog, ConsentScreen, RefuelDialog, RunDialog
from vudo.tui.files import FileViewer
from vudo.tui.fuel import FuelGauge
from vudo.tui.hostlog import HostCallLog
from vudo.tui.lifecycle import LifecyclePane
from vudo.tui.receipt import ErrorBanner, ReceiptView
from vudo.tui.registry import RegistryBrowser


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_opens_project_and_shows_source(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            viewer = app.query_one(FileViewer)
            assert viewer.path == project / "src" / "main.wat"
            assert viewer.text is not None and "hello from the workbench" in viewer.text
            assert app.problem is None
            assert app.sub_title == "hello-spirit"

    run(scenario())


def test_build_then_run_main_shows_receipt_and_calls(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("b")
            await settle(pilot)
            assert (project / "target" / "hello-spirit.wasm").is_file()
            assert "built target/hello-spirit.wasm" in app.status_text
            await choose_run(pilot, "main")
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None
            assert receipt.outcome == "ok" and receipt.results == (42,)
            log = app.query_one(HostCallLog)
            assert log.total == 1 and log.denied == 0
            assert [log.row(i).function for i in range(len(log.rows))] == ["host_log"]
            lifecycle = app.query_one(LifecyclePane)
            assert lifecycle.state == "ready"
            assert [t.new for t in lifecycle.history][-2:] == ["running", "ready"]
            assert app.query_one(FuelGauge).used == receipt.fuel_used > 0

    run(scenario())


def test_run_with_arguments(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "add", "2 40")
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (42,)
            # wrong arguments: the CLI's usage error, shown in the dialog, which stays open
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunDialog))
            await pilot.press("backspace", "backspace", "backspace", "enter")
            await pilot.pause()
            assert isinstance(app.screen, RunDialog)
            problem = str(app.screen.query_one("#run-problem", Static).render())
            assert "takes 2 arguments" in problem, problem
            await pilot.press("escape")
            assert not isinstance(app.screen, RunDialog) and app.problem is None

    run(scenario())


def test_denied_capability_shows_in_log(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main", deny="actuator_log")
            await settle(pilot)
            log = app.query_one(HostCallLog)
            assert log.total == 1 and log.denied == 1
            row = log.row(0)
            assert not row.allowed and row.capability == "actuator_log" and row.result == -1
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None
            assert ("actuator_log", 0, 1) in receipt.host_calls
            # the denied-only filter keeps it; the capability filter hides other ones
            await pilot.press("d")
            await pilot.pause()
            assert log.denied_only and log.shown == 1
            log.set_filter("storage_read")
            await pilot.pause()
            assert log.shown == 0

    run(scenario())


@pytest.mark.slow
def test_stop_interrupts_an_infinite_loop(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "spin", fuel=10**15)
            await wait_until(pilot, lambda: app.session.live)
            await asyncio.sleep(0.1)
            await pilot.press("x")
            await wait_until(pilot, lambda: app.busy is None, timeout=5)
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.outcome == "terminated"
            assert app.query_one(LifecyclePane).state == "terminated"
            # a stop the user asked for is not an error
            assert app.problem is None and "stopped" in app.status_text

    run(scenario())


@pytest.mark.slow
def test_suspend_and_resume_a_live_run(project: Path, home: Path) -> None:
    """chatty makes a host call per iteration, so progress is visible in the log."""

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "chatty", "2000000000", fuel=10**15)
            log = app.query_one(HostCallLog)
            await wait_until(pilot, lambda: app.session.live and log.total > 100)
            await pilot.press("p")
            await wait_until(pilot, lambda: app.query_one(LifecyclePane).state == "suspended")
            await asyncio.sleep(0.1)
            app.flush_events()
            paused_at = log.total
            await asyncio.sleep(0.2)
            app.flush_events()
            assert log.total == paused_at  # really paused: no host calls
            await pilot.press("p")
            await wait_until(pilot, lambda: app.query_one(LifecyclePane).state == "running")
            await wait_until(pilot, lambda: log.total > paused_at + 100)
            assert app.query_one(FuelGauge).used > 0
            await pilot.press("x")
            await wait_until(pilot, lambda: app.busy is None, timeout=5)
            states = [t.new for t in app.query_one(LifecyclePane).history]
            assert states[-4:] == ["running", "suspended", "running", "terminated"], app.query_one(
                LifecyclePane
            ).history
            assert app.query_one(ReceiptView).receipt.outcome == "terminated"  # type: ignore[union-attr]

    run(scenario())


def test_out_of_fuel_then_refuel_continues(project: Path, home: Path) -> None:
    """The workbench's runs are live: out of fuel, the call waits where it stopped, and
    the refuel continues it, so each of chatty's 50 host calls happens exactly once."""

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, skip=("watch", "run"))
            await choose_run(pilot, "chatty", "50", fuel=20_000)
            await wait_until(pilot, lambda: app.session.out_of_fuel)
            await pilot.pause()
            assert app.session.live  # suspended in the middle of the call
            assert app.problem is None
            assert "out of fuel" in app.status_text
            assert app.query_one(LifecyclePane).state == "suspended"
            done = app.query_one(HostCallLog).total
            assert 0 < done < 50
            await pilot.press("f")
            await wait_until(pilot, lambda: isinstance(app.screen, RefuelDialog))
            app.screen.query_one(Input).value = "10000000"
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.busy is None and not app.session.out_of_fuel)
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.outcome == "ok"
            assert receipt.results == (50,)
            assert dict((c, a) for c, a, _ in receipt.host_calls)["actuator_log"] == 50
            assert app.query_one(HostCallLog).total == 50
            assert app.query_one(LifecyclePane).state == "ready"

    run(scenario())


def test_failing_build_is_shown_not_raised(project: Path, home: Path) -> None:
    (project / "src" / "main.wat").write_text("(module (func $broken (i32.add))")

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("b")
            await settle(pilot)
            assert app.problem is not None and app.problem.title == "build failed"
            banner = app.query_one(ErrorBanner)
            assert banner.has_class("-shown")
            # the app keeps working: fix the source and build again
            write_project(project, author="ab" * 32)
            await pilot.press("escape")
            await pilot.press("b")
            await settle(pilot)
            assert app.problem is None and not banner.has_class("-shown")

    run(scenario())


def test_not_a_project_is_shown(tmp_path: Path, home: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    async def scenario() -> None:
        app = make_app(empty, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.problem is not None and app.problem.title == "not found"
            assert app.problem.hint
            await pilot.press("r")
            await settle(pilot)
            assert app.problem is not None and app.busy is None

    run(scenario())


def test_trap_is_shown_with_receipt(project: Path, home: Path) -> None:
    wat = '(module (memory (export "memory") 1) (func (export "main") unreachable))'
    (project / "src" / "main.wat").write_text(wat)
    (project / "spirit.toml").write_text(
        (project / "spirit.toml").read_text().replace('["actuator_log"]', "[]")
    )

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await settle(pilot)
            assert app.problem is not None and app.problem.title == "guest trapped"
            assert not app.problem.message.startswith("guest trapped")  # said once
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.outcome == "trap"
            assert app.query_one(LifecyclePane).state == "failed"

    run(scenario())


def test_unreadable_and_binary_files_are_notices(project: Path, home: Path) -> None:
    (project / "blob.bin").write_bytes(b"\0\1\2" * 10)
    secret = project / "secret.toml"
    secret.write_text("x = 1")
    secret.chmod(0)

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            viewer = app.query_one(FileViewer)
            viewer.show(project / "blob.bin")
            assert viewer.text is None
            viewer.show(secret)
            assert viewer.text is None or viewer.text == "x = 1"  # root can read anything
            viewer.show(project / "missing.c")
            assert viewer.text is None

    run(scenario())


def test_test_pack_sign_check_actions(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("t")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert app.status_text == "1 passed, 0 failed"
            assert app.test_cases == [("test_add", True, "ok")]
            assert app.query_one(ReceiptView).border_title == "5 Tests"
            # pack and sign write files: each asks first, and n leaves everything as it was
            await pilot.press("P")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("n")
            await settle(pilot)
            assert not (project / "dist").exists() and app.status_text == "cancelled"
            await pilot.press("P")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert (project / "dist" / "hello-spirit-0.1.0.spirit").is_file()
            assert app.status_text.startswith("packed dist/hello-spirit-0.1.0.spirit")
            await pilot.press("S")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("enter")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert app.status_text.startswith("signed dist/hello-spirit-0.1.0.spirit")
            await pilot.press("c")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert app.status_text.startswith("check:")

    run(scenario())


def test_failing_spirit_test_is_an_error(project: Path, home: Path) -> None:
    src = project / "src" / "main.wat"
    src.write_text(src.read_text().replace("(i32.const 5))))", "(i32.const 6))))"))

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("t")
            await settle(pilot)
            assert app.problem is not None and app.problem.title == "tests failed"
            assert "test_add" in (app.problem.hint or "")
            assert [(n, ok) for n, ok, _ in app.test_cases] == [("test_add", False)]

    run(scenario())


def test_hot_reload_rebuilds_and_reruns_after_edit(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (42,)
            await pilot.press("h")
            assert app.hot_reload
            await asyncio.sleep(0.5)  # let the watcher start
            src = project / "src" / "main.wat"
            src.write_text(src.read_text().replace("(i32.const 42)", "(i32.const 7)"))

            def rerun_done() -> bool:
                r = app.query_one(ReceiptView).receipt
                return r is not None and r.results == (7,) and app.busy is None

            await wait_until(pilot, rerun_done, timeout=15)
            assert app.reloads >= 1
            viewer = app.query_one(FileViewer)  # the viewer shows the new source
            assert viewer.text is not None and "(i32.const 7)" in viewer.text
            await pilot.press("h")
            assert not app.hot_reload

    run(scenario())


def test_palette_lists_every_action(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            for name in (
                "Build",
                "Run",
                "Pause",
                "Stop",
                "Refuel",
                "Test",
                "Pack",
                "Sign",
                "Check",
                "Reload",
            ):
                assert name in titles

    run(scenario())


async def open_registry_on(pilot: Any, name: str) -> RegistryBrowser:
    app = pilot.app
    await pilot.press("7")
    await settle(pilot)
    browser = app.query_one(RegistryBrowser)
    table = browser.query_one("#registry-table")
    table.focus()
    names = [e.name for e in browser.entries]
    table.move_cursor(row=names.index(name))  # type: ignore[attr-defined]
    await pilot.pause()
    return browser


def test_registry_install_with_consent_then_uninstall(
    tmp_path: Path, project: Path, home: Path, keypair: KeyPair
) -> None:
    stocked_registry(tmp_path, home, keypair.public_hex)

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            browser = await open_registry_on(pilot, "kv-counter")
            # cancel first: nothing is installed
            await pilot.press("i")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsentScreen))
            assert app.screen.request.capabilities == ("storage_read", "storage_write")
            await pilot.press("escape")
            await settle(pilot)
            assert app.problem is not None and app.problem.title == "cancelled"
            assert list_installed(home) == [("hello-spirit", "0.1.0")]
            # accept, denying storage_write
            await pilot.press("i")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsentScreen))
            app.screen.query_one("#cap-storage_write", Checkbox).value = False
            await pilot.press("y")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert app.status_text == "installed kv-counter 0.1.0"
            assert ("kv-counter", "0.1.0") in list_installed(home)
            grants = stored_grants(home, "kv-counter")
            assert grants == ["storage_read"]
            kv = next(e for e in browser.entries if e.name == "kv-counter")
            assert kv.installed == ("0.1.0",)
            # uninstall asks first: esc keeps it, y removes it
            await pilot.press("u")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("escape")
            await settle(pilot)
            assert ("kv-counter", "0.1.0") in list_installed(home)
            await pilot.press("u")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await settle(pilot)
            assert app.status_text.startswith("uninstalled kv-counter")
            assert list_installed(home) == [("hello-spirit", "0.1.0")]

    run(scenario())


def test_registry_search_as_you_type(
    tmp_path: Path, project: Path, home: Path, keypair: KeyPair
) -> None:
    stocked_registry(tmp_path, home, keypair.public_hex)

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("slash")
            for key in "kv":
                await pilot.press(key)
            await settle(pilot)
            browser = app.query_one(RegistryBrowser)
            assert [e.name for e in browser.entries] == ["kv-counter"]
            entry = browser.entries[0]
            assert entry.trusted and entry.signer == keypair.public_hex
            assert entry.capabilities == ("storage_read", "storage_write")

    run(scenario())


def test_flooding_spirit_keeps_the_ui_responsive(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "chatty", "30000", fuel=10**12)
            await wait_until(pilot, lambda: app.busy is None, timeout=30)
            await settle(pilot)
            log = app.query_one(HostCallLog)
            assert log.total == 30000
            assert log.shown == 30000
            assert app.flushes < 30000 / 10  # batched, not one update per call
            assert app.query_one(ReceiptView).receipt.results == (30000,)  # type: ignore[union-attr]

    run(scenario())


def test_hot_reload_keeps_storage_and_rechecks_capabilities(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    kv = write_project(
        tmp_path / "kv-counter",
        author=keypair.public_hex,
        wat=KV_WAT,
        name="kv-counter",
        capabilities=("storage_read", "storage_write"),
    )

    async def scenario() -> None:
        app = make_app(kv, home, hot_reload=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await settle(pilot)
            assert app.query_one(ReceiptView).receipt.results == (1,)  # type: ignore[union-attr]
            await asyncio.sleep(0.5)
            src = kv / "src" / "main.wat"
            # a real change: count by 10 now; storage still holds 1 from the first run
            src.write_text(src.read_text().replace("(i32.const 1)))", "(i32.const 10)))"))

            def result_is(value: int) -> Callable[[], bool]:
                def check() -> bool:
                    r = app.query_one(ReceiptView).receipt
                    return r is not None and r.results == (value,) and app.busy is None

                return check

            await wait_until(pilot, result_is(11), timeout=15)
            # now import a host function whose capability the manifest does not declare
            src.write_text(
                src.read_text().replace(
                    '(import "vudo" "host_storage_read"',
                    '(import "vudo" "host_storage_delete" (func $del (param i32 i32) (result i32)))'
                    '\n  (import "vudo" "host_storage_read"',
                )
            )
            await wait_until(
                pilot, lambda: app.problem is not None and app.busy is None, timeout=15
            )
            assert app.problem is not None
            assert app.problem.title == "build failed"
            assert "storage_delete" in app.problem.message

    run(scenario())


def list_installed(home: Path) -> list[tuple[str, str]]:
    from vudo.project.installed import list_installed as installed

    return sorted((s.name, str(s.version)) for s in installed(home))


def stored_grants(home: Path, name: str) -> list[str]:
    from vudo.pkg.store import open_store

    with open_store(home) as store:
        return sorted(g["capability"] for g in store.grants_for(name))


@pytest.mark.slow
def test_hot_reload_stops_a_live_run_and_starts_again(project: Path, home: Path) -> None:
    async def scenario() -> None:
        app = make_app(project, home, hot_reload=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "chatty", "2000000000", fuel=10**15)
            log = app.query_one(HostCallLog)
            await wait_until(pilot, lambda: app.session.live and log.total > 100)
            first = app.session._sandbox
            src = project / "src" / "main.wat"
            src.write_text(src.read_text().replace("(i32.const 42)", "(i32.const 43)"))
            await wait_until(
                pilot,
                lambda: app.session._sandbox is not first and app.session.live,
                timeout=15,
            )
            assert str(first.state) == "terminated"
            assert app.reloads >= 1
            await pilot.press("x")
            await wait_until(pilot, lambda: app.busy is None, timeout=5)

    run(scenario())


def test_registry_upgrade_asks_again_when_capabilities_widen(
    tmp_path: Path, project: Path, home: Path, keypair: KeyPair
) -> None:
    stocked_registry(tmp_path, home, keypair.public_hex)
    newer = write_project(
        tmp_path / "pub2" / "hello-spirit",
        author=keypair.public_hex,
        capabilities=("actuator_log", "sensor_time"),
    )
    manifest = newer / "spirit.toml"
    manifest.write_text(manifest.read_text().replace("minor = 1", "minor = 2"))
    publish_project(newer, home)

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            browser = await open_registry_on(pilot, "hello-spirit")
            assert browser.selected is not None and browser.selected.version == "0.2.0"
            await pilot.press("U")
            await wait_until(pilot, lambda: isinstance(app.screen, ConsentScreen))
            request = app.screen.request
            assert request.action == "upgrade" and request.previous == ("actuator_log",)
            assert "sensor_time" in request.capabilities
            await pilot.press("y")
            await settle(pilot)
            assert app.problem is None, app.problem
            assert app.status_text == "upgraded hello-spirit 0.1.0 → 0.2.0"
            assert ("hello-spirit", "0.2.0") in list_installed(home)

    run(scenario())


def test_missing_path_and_bad_manifest_are_shown(tmp_path: Path, home: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "src").mkdir(parents=True)
    (broken / "src" / "main.wat").write_text("(module)")
    (broken / "spirit.toml").write_text('name = "x"\ncapabilites = []\n')

    async def scenario(path: Path, title: str) -> None:
        app = make_app(path, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert app.problem is not None and app.problem.title == title
            for key in ("b", "t", "k", "c"):
                await pilot.press(key)
                await settle(pilot)
                assert app.problem is not None and app.busy is None

    run(scenario(tmp_path / "does-not-exist", "not found"))
    run(scenario(broken, "invalid manifest"))


CREDIT_WAT = """\
(module
  (import "vudo" "host_credit_account" (func $acct (param i32) (result i32)))
  (import "vudo" "host_credit_balance" (func $balance (param i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "main") (result i64)
    (drop (call $acct (i32.const 0)))
    (call $balance (i32.const 0))))
"""


def test_receipt_shows_the_running_spirits_own_balance(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    from vudo.engine.identity import SpiritIdentity
    from vudo.engine.ledger import CreditLedger
    from vudo.home import data_dir
    from vudo.tui.receipt import render_receipt

    wallet = write_project(
        tmp_path / "wallet",
        author=keypair.public_hex,
        wat=CREDIT_WAT,
        name="wallet",
        capabilities=("actuator_credit",),
    )
    data_dir(home).mkdir(parents=True, exist_ok=True)
    with CreditLedger(data_dir(home) / "ledger.sqlite") as ledger:
        ledger.deposit(SpiritIdentity.project(wallet).account, 1234)
        ledger.deposit(SpiritIdentity.of_key(keypair.public_hex).account, 99)  # not its own

    async def scenario() -> None:
        app = make_app(wallet, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (1234,)
            assert receipt.balance == 1234
            assert (
                "1,234 credits (its own account)" in render_receipt(receipt, show_times=False).plain
            )

    run(scenario())


CALLEE_WAT = """(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "from the callee")
  (func (export "main") (result i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 15)))
    (i32.const 0)))
"""

CALLER_WAT = """(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (import "vudo" "host_spirit_call"
    (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echoer")
  (data (i32.const 16) "main")
  (data (i32.const 32) "calling")
  (func (export "main") (result i64)
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 7)))
    (call $call (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 4)
                (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 0))))
"""


def test_nested_calls_show_indented_in_the_log_and_the_receipt(
    tmp_path: Path, home: Path, keypair: KeyPair
) -> None:
    from tui_helpers import summon

    from vudo.project.dependencies import lock_project
    from vudo.tui.receipt import render_receipt

    callee = write_project(
        tmp_path / "echoer", author=keypair.public_hex, wat=CALLEE_WAT, name="echoer"
    )
    summon(callee, home)
    caller = write_project(
        tmp_path / "caller",
        author=keypair.public_hex,
        wat=CALLER_WAT,
        name="caller",
        capabilities=("actuator_log", "cross_sandbox_call"),
    )
    with (caller / "spirit.toml").open("a") as fh:
        fh.write('\n[dependencies]\nechoer = "^0.1"\n')
    assert lock_project(caller, home=home) is not None

    async def scenario() -> None:
        app = make_app(caller, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "main")
            await settle(pilot)
            receipt = app.query_one(ReceiptView).receipt
            assert receipt is not None and receipt.results == (0,)
            (called,) = receipt.calls
            assert (called.module, called.outcome) == ("echoer", "ok")
            assert called.host_calls == (("actuator_log", 1, 0),)
            text = render_receipt(receipt, show_times=False).plain
            assert "called  echoer.main ok" in text
            log = app.query_one(HostCallLog)
            # the callee's log call comes right before the call that made it, indented
            assert [log.row(i).function for i in range(len(log.rows))] == [
                "host_log",
                "└ log",
                "host_spirit_call",
            ]


def test_q_quits_at_once_during_a_compute_bound_run(project: Path, home: Path) -> None:
    """q stops the spinning Spirit as the app shuts down, so the run worker (which the
    process waits for at exit) returns at once; it used to spin on for ~15 s."""
    import time

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await choose_run(pilot, "spin", fuel=10**15)
            await wait_until(pilot, lambda: app.session.live)
            sandbox = app.session._sandbox
            assert sandbox is not None
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await pilot.press("q")
        while sandbox.in_call:
            assert time.monotonic() - started < 2.0, "the guest kept running after q"
            await asyncio.sleep(0.01)
        assert sandbox.state.value == "terminated"

    run(scenario())


HEADLESS_CHILD = """
import sys, time
from pathlib import Path
from vudo.tui.app import WorkbenchApp

async def pilot_main(pilot):
    await pilot.pause(0.5)
    while any(w.is_running for w in pilot.app.workers):  # start-up searches done
        await pilot.pause(0.01)
    import gc, wasmtime, vudo.project.runner
    tracked = {id(o) for o in gc.get_objects()}  # a frozen object is not listed
    frozen = id(wasmtime.Store) not in tracked and id(vudo.project.runner.RunHandle) not in tracked
    print("frozen" if frozen else "tracked", flush=True)
    for key in "3517":  # pane switches: the footer and tabs follow the focus in place
        await pilot.press(key)
        await pilot.pause(0.05)
    print("ready", pilot.app.view, flush=True)
    await pilot.press("q")

app = WorkbenchApp(Path(sys.argv[1]), home=Path(sys.argv[2]), freeze_gc=True)
app.run(headless=True, auto_pilot=pilot_main)
"""


def test_the_workbench_starts_switches_panes_and_quits_under_app_run(
    project: Path, home: Path
) -> None:
    """``vudo tui``'s own loop (``App.run``, not ``run_test``): a footer recompose started
    from inside the start-up focus change once kept the screen re-laying itself forever
    here, a hang the ``run_test`` tests did not show. Once started, what a run loads
    (wasmtime, the runner) is out of the collector's reach, as textual is."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", HEADLESS_CHILD, str(project), str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = ["frozen", "ready", "registry"]
    assert done.stdout.split() == expected, (done.stdout, done.stderr[-2000:])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_layout_containers_draw_nothing_and_every_pane_draws(
    project: Path, home: Path, size: tuple[int, int]
) -> None:
    """The containers that arrange the panes are left out of the frame (Textual renders a
    container's every line under its children; the snapshots show the screen is the same),
    while every pane and what is inside it is drawn, in both layouts."""

    from vudo.tui.panes import displayed as on_screen

    async def scenario() -> None:
        app = make_app(project, home)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            for key in "1357":
                await pilot.press(key)
                await settle(pilot)
                drawn = app.screen._compositor.visible_widgets
                layouts = list(app.screen.query(".layout"))
                assert len(layouts) == 8
                assert not any(w in drawn for w in layouts)
                shown = [w for w in app.screen.query(".layout > *") if on_screen(w)]
                assert shown and all(w in drawn for w in shown if "layout" not in w.classes)
                assert isinstance(app.focused, Widget) and app.focused in drawn

    run(scenario())


def test_the_workbench_ticks_at_120_frames_unless_the_user_set_a_rate() -> None:
    """Textual reads TEXTUAL_FPS once, when it is imported: importing vudo.tui first sets
    it, so a key's frame waits at most 8.3 ms for the tick, and a rate the user set wins."""
    code = "import vudo.tui, textual.constants as c; print(c.MAX_FPS)"
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}

    def frame_rate(env: dict[str, str]) -> str:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        return proc.stdout or proc.stderr

    assert (frame_rate(env), frame_rate({**env, "TEXTUAL_FPS": "30"})) == ("120\n", "30\n")
