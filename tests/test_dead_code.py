"""No dead code in ``src/vudo``: vulture finds nothing that nothing uses.

vulture reads names, not calls, so a name counts as used when anything in ``src``,
``tests`` or ``benches`` mentions it: the library's public surface (``Sandbox.read_memory``,
``Store.unpin``, ...) is used by its tests. What the frameworks call by name is listed
below, each family with the reason; anything else vulture reports is code to delete.
"""

from __future__ import annotations

from pathlib import Path

import vulture

ROOT = Path(__file__).resolve().parent.parent

#: Names something other than our code calls or reads.
CALLED_BY_NAME = [
    # the CLI dispatches `vudo NAME` to cmd_NAME (vudo.cli.app.run_cli)
    "cmd_*",
    # the engine links every "vudo" import to the bridge method of the same name
    "host_*",
    # Textual: actions, message handlers, widget hooks and class-level configuration
    "action_*",
    "on_*",
    "_on_*",
    "compose",
    "render_line",
    "get_default_screen",
    "DEFAULT_CSS",
    "BINDINGS",
    "TITLE",
    "ALLOW_SELECT",
    "notify_style_update",
    # Textual widget attributes we set and Textual reads
    "border_title",
    "can_focus",
    "theme",
    "show_root",
    "guide_depth",
    "cursor_line",
    "cursor_location",
    "show_highlight",
    "highlight_start",
    "highlight_end",
    # wasmtime.Config properties we set and wasmtime reads
    "consume_fuel",
    "epoch_interruption",
    "memory_may_move",
    # module-level __getattr__ (PEP 562: lazy attributes of vudo and vudo.engine)
    "__getattr__",
    # parameters a signature must have: context-manager exits, overridden methods, the
    # C callback of wasmtime's unchecked host-function API
    "exc_type",
    "animate",
    "nargs",
    # a reference kept only so the object it names stays alive
    "_caller_memory",
    # WASI preview1's named errno, filetype, rights and clock values, kept as the spec
    # lists them whether or not a function returns them yet
    "E2BIG",
    "EEXIST",
    "ENOTEMPTY",
    "EOVERFLOW",
    "EPERM",
    "FT_DGRAM",
    "R_FD_SYNC",
    "R_FD_ADVISE",
    "CLOCK_THREAD",
]

#: Decorators whose functions Textual calls (message handlers, workers).
DECORATORS = ["@on", "@work"]


def test_no_dead_code_in_src() -> None:
    finder = vulture.Vulture(ignore_names=CALLED_BY_NAME, ignore_decorators=DECORATORS)
    finder.scavenge([str(ROOT / "src" / "vudo"), str(ROOT / "tests"), str(ROOT / "benches")])
    src = ROOT / "src"
    dead = [
        f"{Path(item.filename).relative_to(ROOT)}:{item.first_lineno}: {item.message}"
        for item in finder.get_unused_code(min_confidence=60)
        if Path(item.filename).is_relative_to(src)
    ]
    assert not dead, "dead code (delete it, or list what calls it by name):\n" + "\n".join(dead)


def test_the_finder_finds_dead_code(tmp_path: Path) -> None:
    """The check above can fail: an unused function in a module is reported."""
    module = tmp_path / "module.py"
    module.write_text("def used():\n    return 1\n\n\ndef unused():\n    return 2\n\n\nused()\n")
    finder = vulture.Vulture(ignore_names=CALLED_BY_NAME, ignore_decorators=DECORATORS)
    finder.scavenge([str(module)])
    names = [item.name for item in finder.get_unused_code(min_confidence=60)]
    assert names == ["unused"]
