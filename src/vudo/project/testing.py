"""``vudo test``: every exported ``test_*`` function, each in its own fresh sandbox.

A test passes when it returns without trapping and, if it returns a number, returns 0
(the C convention: non-zero says which check failed). Each runs with a bounded fuel budget
and timeout, so a runaway test fails instead of hanging the suite. The project's declared
capabilities are granted, exactly as ``vudo run`` grants them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.engine import Engine
from vudo.engine.events import Event, LogMessage
from vudo.errors import VudoError
from vudo.home import cache_dir
from vudo.project.build import build_project
from vudo.project.layout import Progress, no_progress
from vudo.project.runner import RunOptions, project_target, run_spirit

DEFAULT_TEST_FUEL = 100_000_000
DEFAULT_TEST_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test's outcome."""

    __test__ = False  # not a pytest class

    name: str
    passed: bool
    outcome: str  # receipt outcome, or "failed" (returned non-zero) / "error"
    detail: str
    results: tuple[Any, ...]
    fuel_used: int
    seconds: float
    logs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "outcome": self.outcome,
            "detail": self.detail,
            "results": list(self.results),
            "fuel_used": self.fuel_used,
            "seconds": round(self.seconds, 6),
            "logs": list(self.logs),
        }


@dataclass(frozen=True, slots=True)
class TestReport:
    """All tests of a project, in export order."""

    __test__ = False

    name: str
    cases: tuple[TestCase, ...]

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed)

    @property
    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "failed": self.failed,
            "tests": [c.to_json() for c in self.cases],
        }


def run_tests(
    path: Path,
    *,
    home: Path,
    filter: str | None = None,
    fuel: int = DEFAULT_TEST_FUEL,
    timeout: float = DEFAULT_TEST_TIMEOUT,
    progress: Progress = no_progress,
    on_case: Callable[[TestCase], None] | None = None,
    clock: Callable[[], float] = time.time,
    options: RunOptions | None = None,
    on_plan: Callable[[list[str]], None] | None = None,
) -> TestReport:
    """Build the project at ``path``, then run its ``test_*`` exports one sandbox each.

    ``options`` carries what ``vudo run`` would take besides the function (memory limit,
    ``--grant``/``--deny``); its fuel and timeout, when set, override ``fuel``/``timeout``.
    ``on_plan`` hears the names of the tests about to run (to lay out columns), ``on_case``
    each outcome as it comes.
    """
    base = options or RunOptions()
    base = base._replace(fuel=base.fuel or fuel, timeout=base.timeout or timeout)

    progress("building")
    build_project(path, progress=progress)
    target = project_target(Path(path), progress=progress, build=False)
    cases: list[TestCase] = []
    with Engine(cache_dir=cache_dir(home)) as engine:
        module = engine.load(target.wasm, name=target.name)
        tests = [f for f in module.exports if f.name.startswith("test_")]
        if filter:
            tests = [f for f in tests if filter in f.name]
        if on_plan is not None:
            on_plan([f.name for f in tests])
        for func in tests:
            progress(f"running {func.name}")
            logs: list[str] = []

            def collect(event: Event, sink: list[str] = logs) -> None:
                if isinstance(event, LogMessage):
                    sink.append(event.message)

            started = time.perf_counter()
            if func.params:
                case = TestCase(
                    func.name,
                    False,
                    "error",
                    f"takes parameters ({', '.join(func.params)}); tests take none",
                    (),
                    0,
                    0.0,
                    (),
                )
            else:
                try:
                    result = run_spirit(
                        target,
                        base._replace(function=func.name, args=()),
                        home=home,
                        on_event=collect,
                        clock=clock,
                        engine=engine,
                        log_to_stderr=False,
                    )
                except VudoError as err:
                    case = TestCase(
                        func.name,
                        False,
                        "error",
                        err.message,
                        (),
                        0,
                        time.perf_counter() - started,
                        tuple(logs),
                    )
                else:
                    receipt = result.receipt
                    if result.error is not None:
                        passed, outcome, detail = False, receipt.outcome, result.error.message
                    elif (
                        result.results
                        and isinstance(result.results[0], int | float)
                        and result.results[0] != 0
                    ):
                        passed, outcome = False, "failed"
                        detail = f"returned {result.results[0]} (0 means pass)"
                    else:
                        passed, outcome, detail = True, "ok", ""
                    case = TestCase(
                        func.name,
                        passed,
                        outcome,
                        detail,
                        result.results,
                        receipt.fuel_used,
                        receipt.wall_time,
                        tuple(logs),
                    )
            cases.append(case)
            if on_case is not None:
                on_case(case)
    return TestReport(target.name, tuple(cases))
