"""Texts the workbench shows on demand: the keymap (``?``), a host call's details, and what
would allow a denied call."""

from __future__ import annotations

import json
from typing import Any

from textual.app import App
from textual.content import Content
from textual.screen import Screen

from vudo.errors import printable
from vudo.tui.hostlog import Call, result_text
from vudo.tui.panes import PANES, Pane

#: Keys the help lists in their own line rather than one by one.
_GROUPED = frozenset({"1", "2", "3", "4", "5", "6", "7", "tab", "shift+tab"})
#: Inherited scrolling keys every scrollable widget has (not worth a line each).
_NOISE = frozenset({"left", "right", "ctrl+pageup", "ctrl+pagedown", "super+c"})


def help_text(app: Any, pane: Pane | None) -> Content:
    """Every binding of the focused pane (and the widgets inside it) and of the app, one
    line per action (``↑ k  Up``)."""
    pane_keys: dict[str, list[str]] = {}
    app_keys: dict[str, list[str]] = {}
    for key, active in app.screen.active_bindings.items():
        binding = active.binding
        if key in _GROUPED or key in _NOISE or not binding.description:
            continue
        target = app_keys if isinstance(active.node, App | Screen) else pane_keys
        shown = binding.key_display or app.get_key_display(binding)
        keys = target.setdefault(binding.description, [])
        if shown not in keys:
            keys.append(shown)

    def section(title: str, rows: dict[str, list[str]]) -> list[Content]:
        out = [Content(title).stylize("bold $accent")]
        pairs = [(" ".join(keys), what) for what, keys in rows.items()]
        width = max((len(k) for k, _ in pairs), default=0)
        out += [Content(f"  {k:<{width}}  ").stylize("bold") + Content(d) for k, d in pairs]
        return out

    lines: list[Content] = []
    title = f"{pane.number} {pane.title}" if pane is not None else "no pane focused"
    lines += section(f"Focused pane: {title}", pane_keys or {"(no keys of its own)": [""]})
    lines.append(Content(""))
    lines += section("Workbench", app_keys)
    lines.append(Content(""))
    lines.append(Content("Panes").stylize("bold $accent"))
    lines.append(Content("  " + " · ".join(f"{p.number} {p.title}" for p in PANES)))
    lines.append(Content("  tab / shift+tab: next / previous pane on screen"))
    lines.append(Content("  in lists: j/k or ↓/↑ move, g/G first/last; keys never act on a row"))
    lines.append(Content("  ctrl+p: command palette (every action by name)"))
    return Content("\n").join(lines)


def allow_line(capability: str, reason: str, granted: tuple[str, ...] | None) -> str:
    """What would allow a call denied for ``capability`` in a project run (``granted``:
    what its manifest declares, None when unreadable)."""
    if reason:
        return f"{reason}: widen the grant in the run dialog's grant field ({capability}=SCOPE)"
    if granted is not None and capability not in granted:
        return f"declare it in spirit.toml: capabilities = {json.dumps([*granted, capability])}"
    return f"grant {capability} in the run dialog's grant field (r)"


def call_detail(call: Call, allow: str | None) -> Content:
    """A host call's every field, and for a denied one what would allow it."""
    n, function, capability, allowed, args, result, fuel, reason = call
    rows = [
        ("call", f"#{n}"),
        ("function", function),
        ("capability", capability or "-"),
        ("verdict", "allowed" if allowed else "DENIED"),
        ("arguments", args or "-"),
        ("result", result_text(result)),
        ("fuel", f"{fuel:,}"),
        ("reason", reason or "-"),
    ]
    lines = [
        Content(f"{label:>10}  ").stylize("$text-muted") + Content(printable(value))
        for label, value in rows
    ]
    if allow is not None:
        lines.append(Content(""))
        lines.append(Content("to allow it: ").stylize("bold $text-warning") + Content(allow))
    return Content("\n").join(lines)
