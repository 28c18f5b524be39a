"""The Textual workbench (``vudo tui``).

Nothing here is imported by ``import vudo``: the CLI imports :func:`vudo.tui.app.run_tui`
lazily, so textual loads only when the workbench opens. The panes are plain widgets driven
by plain data (:mod:`vudo.tui.rows`); :mod:`vudo.tui.session` is the one place that calls
the core (engine, package store, project workflow).

Keys: ``?``/F1 lists them for the focused pane; ``docs/tui.md`` is the keymap. Seven
numbered panes (1 files, 2 source, 3 host calls, 4 log, 5 receipt, 6 storage, 7 registry),
tab/shift+tab cycle them; j/k/g/G move in lists and never act; actions that change files,
the store or the registry ask first or sit behind a modifier.
"""
