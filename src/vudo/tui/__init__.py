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

import os

#: Textual draws what changed at its next frame tick, ``1 / TEXTUAL_FPS`` apart. At its
#: default of 60 a key's frame waited up to 16.7 ms for the tick; at 120, 8.3 ms. Frames
#: are drawn only when something changed, and a Spirit's events reach the panes in
#: batches (``FLUSH_INTERVAL``), so the faster tick adds no frames during a run; only
#: Textual's animations (smooth scrolling) draw more often. Textual reads the variable
#: once, at import, so it is set here, before any textual module loads; a value the user
#: set wins.
FRAME_RATE = 120
os.environ.setdefault("TEXTUAL_FPS", str(FRAME_RATE))
