"""The run receipt and the error banner: the end of a run, and what went wrong.

Errors show the same title, message and hint as the CLI's ``error: ...`` line (they come
from the same :class:`vudo.errors.VudoError`), so what a user reads does not depend on
which face of vudo they use.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from vudo.display import digest, human_bytes
from vudo.errors import (
    FuelExhausted,
    ResourceLimitExceeded,
    TimeoutExceeded,
    VudoError,
    printable,
)
from vudo.tui.panes import PaneTitle
from vudo.tui.rows import ProblemRow, ReceiptRow

#: Hints written for the workbench, by error class: the CLI's say "--fuel" and "--path",
#: which mean nothing here.
WORKBENCH_HINTS: dict[type[VudoError], str] = {
    FuelExhausted: "refuel (f) to continue this call, or raise the fuel in the run dialog (r)",
    TimeoutExceeded: "raise the timeout in the run dialog (r), or make the Spirit finish sooner",
}

#: CLI advice inside a hint, and what the workbench says instead.
_CLI_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"raise (the memory limit )?\(?--memory\)?"),
        "raise the memory in the run dialog (r)",
    ),
    (re.compile(r"raise --timeout"), "raise the timeout in the run dialog (r)"),
    (re.compile(r"raise --fuel|pass --fuel \S+"), "raise the fuel in the run dialog (r)"),
    (re.compile(r"run `vudo build[^`]*`( again)?"), "build again (b)"),
    (re.compile(r"pass --path DIR"), "open a Spirit project with `vudo tui DIR`"),
    (re.compile(r"--deny \S+"), "the run dialog's deny field"),
    (re.compile(r"--grant \S+"), "the run dialog's grant field"),
)

_LOCATION = re.compile(r"^(?P<path>[^\s:][^:\n]*):(?P<line>\d+):(?P<col>\d+):")


def workbench_hint(error: VudoError) -> str | None:
    """``error``'s hint, with advice for the command line rewritten for the workbench."""
    for cls, hint in WORKBENCH_HINTS.items():
        if isinstance(error, cls):
            return hint
    if error.hint is None:
        return None
    hint = error.hint
    for pattern, instead in _CLI_ADVICE:
        hint = pattern.sub(instead, hint)
    return hint


def problem_from_error(error: BaseException) -> ProblemRow:
    """The title, message and hint to show for any exception (in the workbench's words:
    the message does not repeat the title, the hint names keys, not flags)."""
    if not isinstance(error, VudoError):
        return ProblemRow("internal error", f"{type(error).__name__}: {error}", None)
    title = type(error).title
    message = error.message
    if message.lower().startswith(f"{title.lower()}: "):
        message = message[len(title) + 2 :]
    if isinstance(error, ResourceLimitExceeded) and message.lower().startswith(
        "resource limit exceeded: "
    ):
        message = message[len("resource limit exceeded: ") :]
    detail = getattr(error, "output", None)
    match = _LOCATION.match(message)
    location = (match["path"], int(match["line"]), int(match["col"])) if match is not None else None
    return ProblemRow(
        title,
        message,
        workbench_hint(error),
        detail=detail if isinstance(detail, str) and detail.strip() else None,
        location=location,
    )


def receipt_json(r: ReceiptRow) -> str:
    """The receipt as JSON, with the module's full digest (``y`` copies it, ctrl+s saves it)."""
    return json.dumps(receipt_dict(r), indent=2, ensure_ascii=True)


def receipt_dict(r: ReceiptRow) -> dict[str, object]:
    return {
        "module": r.module,
        "digest": r.digest,
        "function": r.function,
        "outcome": r.outcome,
        "error": r.error,
        "results": [v if isinstance(v, int | float | str) else repr(v) for v in r.results],
        "fuel_budget": r.fuel_budget,
        "fuel_used": r.fuel_used,
        "wall_time": r.wall_time,
        "peak_memory": r.peak_memory,
        "host_calls": {cap: {"allowed": a, "denied": d} for cap, a, d in r.host_calls},
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "price": r.price,
        "balance": r.balance,
        "calls": [receipt_dict(call) for call in r.calls],
    }


def render_receipt(r: ReceiptRow, *, show_times: bool) -> Content:
    def line(label: str, value: str, style: str = "") -> Content:
        key = Content(f"{label:>12}  ").stylize("$text-muted")
        val = Content(value).stylize(style) if style else Content(value)
        return key + val

    outcome_style = "bold $text-success" if r.outcome == "ok" else "bold $text-error"
    lines = [
        line("outcome", r.outcome, outcome_style),
        line("function", f"{r.module}.{r.function}"),
        line("results", ", ".join(str(v) for v in r.results) or "(none)"),
    ]
    if r.error:
        lines.append(line("error", r.error, "$text-error"))
    pct = 100.0 * r.fuel_used / r.fuel_budget if r.fuel_budget else 0.0
    lines.append(line("fuel", f"{r.fuel_used:,} of {r.fuel_budget:,} ({pct:.2f}%)"))
    lines.append(line("wall time", f"{r.wall_time * 1000:.1f} ms" if show_times else "·"))
    lines.append(line("peak memory", human_bytes(r.peak_memory)))
    lines.append(line("bytes in/out", f"{r.bytes_in:,} / {r.bytes_out:,}"))
    lines.append(line("price", "-" if r.price is None else f"{r.price:,} credits"))
    if r.balance is not None:
        lines.append(line("balance", f"{r.balance:,} credits (its own account)"))
    if r.host_calls:
        for cap, allowed, denied in r.host_calls:
            lines.append(line(cap, f"{allowed} allowed, {denied} denied"))
    else:
        lines.append(line("host calls", "none"))
    lines.append(line("digest", digest(r.digest, short=True)))
    lines.extend(render_calls(r))
    return Content("\n").join(lines)


def render_calls(r: ReceiptRow, depth: int = 1) -> list[Content]:
    """The Spirits ``r``'s run called, one line each, indented under their caller (and
    their own callees under them): outcome, fuel and host calls of each."""
    lines: list[Content] = []
    for call in r.calls:
        style = "$text-success" if call.outcome == "ok" else "$text-error"
        counts = ", ".join(
            f"{cap} {allowed}" + (f"/{denied} denied" if denied else "")
            for cap, allowed, denied in call.host_calls
        )
        label = Content(f"{'called':>12}  " if depth == 1 else " " * 14).stylize("$text-muted")
        lines.append(
            label
            + Content("  " * (depth - 1) + f"{call.module}.{call.function} ")
            + Content(call.outcome).stylize(style)
            + Content(f"  fuel {call.fuel_used:,}" + (f"  {counts}" if counts else "")).stylize(
                "$text-muted"
            )
        )
        lines.extend(render_calls(call, depth + 1))
    return lines


class ReceiptView(VerticalScroll, PaneTitle):
    """The receipt of the last finished run."""

    DEFAULT_CSS = """
    ReceiptView { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "app.copy_receipt", "Copy"),
        Binding("ctrl+s", "app.save_receipt", "Save"),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, *, show_times: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_times = show_times
        self.receipt: ReceiptRow | None = None
        self.border_title = "5 Receipt"
        self._body = Static("no receipt yet: run the Spirit (r)", id="receipt-body")

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def show_tests(self, cases: list[tuple[str, bool, str]]) -> None:
        """Show test results (so far) in place of the receipt."""
        self.border_title = "5 Tests"
        self._body.update(render_tests(cases))

    def show(self, receipt: ReceiptRow | None) -> None:
        self.border_title = "5 Receipt"
        self.receipt = receipt
        if receipt is None:
            self._body.update("no receipt yet: run the Spirit (r)")
        else:
            self._body.update(render_receipt(receipt, show_times=self.show_times))


def render_tests(cases: list[tuple[str, bool, str]]) -> Content:
    """One line per Spirit test, as ``vudo test`` prints them."""
    lines = [Content("tests").stylize("bold")]
    for name, passed, detail in cases:
        mark = (
            Content("  PASS ").stylize("bold $text-success")
            if passed
            else Content("  FAIL ").stylize("bold $text-error")
        )
        lines.append(mark + Content(name) + Content(f"  {detail}").stylize("$text-muted"))
    return Content("\n").join(lines)


class ErrorBanner(Static):
    """The last error, above the footer; hidden when there is none."""

    DEFAULT_CSS = """
    ErrorBanner {
        height: auto; max-height: 12; display: none;
        background: $error-muted; color: $text; padding: 0 1;
        border-top: tall $error;
    }
    ErrorBanner.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.problem: ProblemRow | None = None

    def show_problem(self, problem: ProblemRow | None) -> None:
        self.problem = problem
        if problem is None:
            self.remove_class("-shown")
            self.update("")
            return
        text = Content(f"error: {problem.title}").stylize("bold") + Content(
            f" — {printable(problem.message)}"
        )
        if problem.detail:
            text += Content("\n" + printable(problem.detail.rstrip("\n"))).stylize("$text-muted")
        if problem.hint:
            text += Content(f"\nhint: {problem.hint}").stylize("italic")
        keys = "o shows the line · esc dismisses" if problem.location else "esc dismisses"
        text += Content(f"  ({keys})").stylize("$text-muted")
        self.update(text)
        self.add_class("-shown")
