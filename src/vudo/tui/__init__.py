"""The Textual workbench (``vudo tui``).

Nothing here is imported by ``import vudo``: the CLI imports :func:`vudo.tui.app.run_tui`
lazily, so textual loads only when the workbench opens. The panes are plain widgets driven
by plain data (:mod:`vudo.tui.rows`); :mod:`vudo.tui.session` is the one place that calls
the core (engine, package store, project workflow).

Keys (also in the footer and the command palette, ctrl+p): b build, r run (choose the
function, arguments, fuel and capabilities to deny), p pause/resume, x stop, f refuel,
t test, k pack, g sign, c check, h hot reload on/off, d denied-only log filter, / search
the registry (i install, u uninstall, U upgrade), 1-4 switch views, q quit.
"""
