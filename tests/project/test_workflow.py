"""vudo.project in-process, as the TUI calls it: values back, progress through callbacks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vudo.capabilities import Capability
from vudo.errors import FuelExhausted, NotFoundError, UsageError
from vudo.project.build import build_project
from vudo.project.consent import ConsentRequest, decide_consent
from vudo.project.installed import installed_spirit, list_installed
from vudo.project.installing import install_prepared, prepare_summon
from vudo.project.layout import open_project
from vudo.project.new import new_project
from vudo.project.packaging import pack_project, sign_project_package, verify
from vudo.project.runner import (
    RunControl,
    RunHandle,
    RunOptions,
    RunResult,
    project_target,
    resolve_target,
    run_spirit,
)
from vudo.project.testing import run_tests
from vudo.project.workflow import check_project, doc_project, fmt_project


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path, home: Path) -> Path:
    return new_project("flow", parent=tmp_path, home=home).root


def test_new_open_build_with_progress(project: Path, home: Path) -> None:
    opened = open_project(project)
    assert opened.language == "wat" and opened.is_stale()
    lines: list[str] = []
    result = build_project(project, progress=lines.append)
    assert lines and lines[0].startswith("compiling src/main.wat")
    assert result.wasm_path == opened.wasm_path and result.size > 0
    assert ("vudo", "host_log") in result.info.imports
    assert not open_project(project).is_stale()
    assert result.warnings == ()


def test_run_spirit_returns_results_receipt_and_events(project: Path, home: Path) -> None:
    target = project_target(project, progress=lambda _: None, build=True)
    assert target.kind == "project" and target.built
    events: list[object] = []
    result = run_spirit(
        target,
        RunOptions(function="add", args=("2", "40")),
        home=home,
        on_event=events.append,
        log_to_stderr=False,
    )
    assert result.ok and result.results == (42,)
    assert result.receipt.outcome == "ok" and result.receipt.function == "add"
    assert any(type(e).__name__ == "StateChanged" for e in events)
    main = run_spirit(target, RunOptions(), home=home, log_to_stderr=False)
    assert main.results == (25,) and main.receipt.price is None
    assert ("actuator_log", "global") in main.granted


def test_run_control_terminates_a_running_guest(tmp_path: Path, home: Path) -> None:
    spin = tmp_path / "spin.wat"
    spin.write_text(
        '(module (memory (export "memory") 1) (func (export "main") (loop $l (br $l))))'
    )
    target = resolve_target(str(spin), cwd=tmp_path, home=home)
    control = RunControl()
    timer = threading.Timer(0.3, control.terminate, args=("stop",))
    timer.start()
    started = time.monotonic()
    try:
        result = run_spirit(
            target,
            RunOptions(fuel=10**14, timeout=20),
            home=home,
            control=control,
            log_to_stderr=False,
        )
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert result.receipt.outcome == "terminated" and result.error is not None


def test_run_tests_reports_each_case(project: Path, home: Path) -> None:
    seen: list[str] = []
    report = run_tests(project, home=home, on_case=lambda c: seen.append(c.name))
    assert report.summary == "2 passed, 0 failed"
    assert seen == ["test_greeting_length", "test_add"]


def test_pack_sign_check_doc_fmt(project: Path, home: Path, tmp_path: Path) -> None:
    packed = pack_project(project)
    assert packed.built and packed.path.name == "flow-0.1.0.spirit"
    signed = sign_project_package(None, project_dir=project, home=home)
    assert signed.author_matches
    assert verify(packed.path).manifest.name == "flow"
    report = check_project(project, home=home)
    assert report.ok and report.signer == signed.signer
    assert report.checked == ("manifest", "capabilities", "package")
    doc = doc_project(project, output=tmp_path / "doc")
    assert "main() -> i32" in doc.exports
    assert fmt_project(project, check=True).changed is False


def test_consent_and_install_through_values(project: Path, home: Path) -> None:
    pack_project(project)
    sign_project_package(None, project_dir=project, home=home)
    prepared = prepare_summon(project / "dist" / "flow-0.1.0.spirit", home=home)
    request = prepared.request
    assert request.capabilities == (Capability.SENSOR_TIME, Capability.ACTUATOR_LOG)
    assert decide_consent(request) is None  # must ask
    decision = decide_consent(request, grant=["actuator_log"])
    assert decision is not None and decision.denied == (Capability.SENSOR_TIME,)
    result = install_prepared(prepared, decision, home=home)
    assert result.granted == (("actuator_log", "global"),)
    assert [s.name for s in list_installed(home)] == ["flow"]
    loaded = installed_spirit("flow@^0.1", home=home)
    assert [g.capability for g in loaded.grants] == [Capability.ACTUATOR_LOG]
    with pytest.raises(NotFoundError):
        installed_spirit("nope", home=home)


def test_decide_consent_rules() -> None:
    req = ConsentRequest(
        "x", "1.0.0", "a" * 64, "a" * 64, (Capability.SENSOR_TIME, Capability.ACTUATOR_LOG)
    )
    yes = decide_consent(req, yes=True, deny=["sensor_time"])
    assert yes is not None
    assert yes.granted == ((Capability.ACTUATOR_LOG, "global"),)
    with pytest.raises(UsageError):
        decide_consent(req, grant=["storage_read"])
    nothing = ConsentRequest("x", "1.0.0", "a" * 64, "a" * 64, ())
    assert decide_consent(nothing) is not None
    upgrade = ConsentRequest(
        "x",
        "1.1.0",
        "a" * 64,
        "a" * 64,
        (Capability.SENSOR_TIME, Capability.SENSOR_RANDOM),
        previous=(Capability.SENSOR_TIME, Capability.ACTUATOR_LOG),
    )
    assert upgrade.added == (Capability.SENSOR_RANDOM,) and upgrade.widens
    assert upgrade.removed == (Capability.ACTUATOR_LOG,)


def test_missing_zig_toolchain_is_a_build_error(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from vudo.errors import BuildError

    root = new_project("cee", template="c", parent=tmp_path, home=home).root
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ziglang" else real(name, *a)
    )
    with pytest.raises(BuildError) as info:
        build_project(root)
    assert "ziglang" in info.value.message and "pip install ziglang" in (info.value.hint or "")


COUNT_WAT = """(module (memory (export "memory") 1)
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "spin") (loop $l (br $l))))"""


def test_run_handle_out_of_fuel_suspends_then_refuel_and_call_again(
    tmp_path: Path, home: Path
) -> None:
    path = tmp_path / "count.wat"
    path.write_text(COUNT_WAT)
    target = resolve_target(str(path), cwd=tmp_path, home=home)
    events: list[object] = []
    with RunHandle(
        target,
        RunOptions(function="count", args=("100000",), fuel=1000),
        home=home,
        on_event=events.append,
        log_to_stderr=False,
    ) as handle:
        first = handle.start()
        assert isinstance(first.error, FuelExhausted) and first.results == ()
        assert handle.out_of_fuel and handle.can_refuel and not handle.live
        assert first.receipt.fuel_used > 0
        assert handle.refuel(10**9) is True  # it had run out: call again
        again = handle.call_again()
        assert again.ok and again.results == (100000,)
        assert again.receipt.outcome == "ok"
        assert events  # observed through on_event
        assert handle.stop("done") is True
        assert handle.stop("again") is False  # already terminated


def test_run_handle_pause_resume_and_stop_from_another_thread(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "count.wat"
    path.write_text(COUNT_WAT)
    target = resolve_target(str(path), cwd=tmp_path, home=home)
    with RunHandle(
        target, RunOptions(function="spin", fuel=10**15, timeout=60), home=home, log_to_stderr=False
    ) as handle:
        assert handle.toggle_pause() is None  # nothing running yet
        results: list[object] = []
        worker = threading.Thread(target=lambda: results.append(handle.start()))
        worker.start()
        deadline = time.monotonic() + 30
        while not handle.live:
            assert time.monotonic() < deadline, "the call never started"
            time.sleep(0.01)
        assert handle.toggle_pause() == "suspended"
        assert handle.live  # paused mid-call still counts as live
        assert handle.toggle_pause() == "running"
        assert handle.stop("stopped by the test") is True
        worker.join(timeout=30)
        [result] = results
        assert isinstance(result, RunResult) and not result.ok
        assert result.receipt.outcome == "terminated"


def test_run_handle_bad_function_raises_and_releases(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "count.wat"
    path.write_text(COUNT_WAT)
    target = resolve_target(str(path), cwd=tmp_path, home=home)
    with pytest.raises(NotFoundError):
        RunHandle(target, RunOptions(function="nope"), home=home, log_to_stderr=False)


def test_run_handle_live_refuel_continues_the_same_call(tmp_path: Path, home: Path) -> None:
    """With RunOptions(live=True) (the workbench), out of fuel the call waits in place:
    refuel() says there is nothing to call again, and the one call returns."""
    import threading
    import time

    path = tmp_path / "count.wat"
    path.write_text(COUNT_WAT)
    target = resolve_target(str(path), cwd=tmp_path, home=home)
    with RunHandle(
        target,
        RunOptions(function="count", args=("3000000",), fuel=1_000_000, live=True),
        home=home,
        log_to_stderr=False,
    ) as handle:
        results: list[object] = []
        runner = threading.Thread(target=lambda: results.append(handle.start()), daemon=True)
        runner.start()
        refuels = 0
        while runner.is_alive():
            if handle.out_of_fuel:
                assert handle.live and handle.can_refuel
                assert handle.refuel(5_000_000) is False  # the call continues by itself
                refuels += 1
            time.sleep(0.002)
        (result,) = results
        assert isinstance(result, RunResult) and result.ok
        assert result.results == (3000000,)
        assert refuels >= 1
        assert result.receipt.outcome == "ok"
