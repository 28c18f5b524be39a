"""Printing for the command line: results on stdout, progress and notes on stderr.

Kept apart from the handlers so every command renders the same way: ``--json`` prints one
JSON document on stdout and nothing else there; human output is short lines; progress goes
to stderr only when stderr is a terminal, so pipes and tests see clean output.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vudo.display import human_bytes
from vudo.errors import VudoError, printable

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import Any

    from vudo.display import JsonResult

__all__ = [
    "ProgressLine",
    "emit_error_json",
    "emit_json",
    "human_bytes",
    "note",
    "out",
    "set_quiet",
    "stderr_is_tty",
    "table",
]

#: Per-process output state: ``-q`` (no notes or progress) and whether a JSON document
#: already went to stdout (a failure after it is carried inside it, not printed twice).
_state = {"quiet": False, "json_written": False}


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def out(line: str = "") -> None:
    sys.stdout.write(printable(line) + "\n")


def note(line: str) -> None:
    """A remark for the human (warnings, what happened); stderr so stdout stays data.

    ``-q`` silences it."""
    if _state["quiet"]:
        return
    sys.stderr.write(printable(line) + "\n")


def emit_json(
    value: JsonResult | Sequence[JsonResult] | dict[str, Any], *, error: VudoError | None = None
) -> None:
    """Print ``value`` as strict JSON: a guest can return NaN or infinity, which JSON has
    no number for (``json`` would print ``NaN``, which jq and browsers reject), so
    non-finite floats are written as the strings "nan", "inf" and "-inf", as receipts
    write them (:meth:`vudo.engine.Receipt.to_dict`)."""
    import json  # lazy: json (~2 ms) stays off a plain run; only --json output needs it

    document = _json_form(value)
    if error is not None:  # a result that is also a failure (tests failed, check found...)
        document = {**document, "error": error.to_json()}
    _state["json_written"] = True
    sys.stdout.write(
        json.dumps(_finite(document), indent=2, sort_keys=False, default=str, allow_nan=False)
        + "\n"
    )


def _json_form(value: Any) -> Any:
    """A result's JSON form (:class:`vudo.display.JsonResult`), lists of them too."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_json_form(v) for v in value]
    return value


def emit_error_json(err: VudoError) -> None:
    """``{"error": {...}}`` on stdout, unless the command's own document carried it."""
    if not _state["json_written"]:
        emit_json({"error": err.to_json()})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value - value != 0:  # nan or +-inf
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressLine:
    """One overwritten status line on a terminal's stderr; silent when not a terminal."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = (stderr_is_tty() and not _state["quiet"]) if enabled is None else enabled
        self._width = 0

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        line = printable(" ".join(text.split()))[:120]
        pad = max(0, self._width - len(line))
        sys.stderr.write("\r" + line + " " * pad)
        sys.stderr.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.enabled and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
            self._width = 0


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    """Left-aligned columns, two spaces apart; a cell is kept to one line."""
    cols = [list(header), *[[" ".join(c.split()) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cols]
