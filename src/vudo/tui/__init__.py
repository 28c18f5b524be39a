"""The Textual workbench (``vudo tui``).

Nothing here is imported by ``import vudo``: the CLI imports :func:`vudo.tui.app.run_tui`
lazily, so textual loads only when the workbench opens. The panes are plain widgets driven
by plain data (:mod:`vudo.tui.rows`); :mod:`vudo.tui.session` is the one place that calls
the core (engine, package store, project workflow).
"""
