"""How values are shown to people, one formatter each, for the CLI and the TUI alike.

A digest is ``sha256:`` and the full hex, or ``sha256:`` and its first 12 hex digits where
space is short; a size is in binary units (B, KiB, MiB, GiB); a time in JSON is ISO 8601
in UTC. Kept free of imports so the run path can use it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class JsonResult(Protocol):
        """A result the CLI prints with ``--json``: it knows its own JSON form (JSON-ready
        values: str, int, float, bool, None, lists and dicts of them; times ISO 8601,
        paths as strings). ``vudo.cli.render.emit_json`` calls it; commands build no
        dicts."""

        def to_json(self) -> Any: ...


#: Hex digits a shortened digest keeps (48 bits: enough to tell packages apart by eye).
SHORT_DIGEST = 12


def digest(hex_digest: str, *, short: bool = False) -> str:
    """``sha256:<hex>`` (``short``: the first 12 hex digits); an already prefixed digest
    is not prefixed twice."""
    _, _, hexpart = hex_digest.rpartition(":")
    return "sha256:" + (hexpart[:SHORT_DIGEST] if short else hexpart)


def human_bytes(n: int) -> str:
    """``512 B``, ``64.0 KiB``, ``1.5 MiB``: binary units, one decimal above bytes."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def iso_time(seconds: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC (``2026-12-02T13:22:46Z``); None stays None, and a
    time no calendar can show is given as its number."""
    if seconds is None:
        return None
    from datetime import UTC, datetime  # lazy: datetime (~3 ms) stays off the plain `vudo run` path

    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return str(seconds)
