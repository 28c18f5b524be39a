"""A thread-safe hand-off from the run thread to the UI thread.

The engine calls subscribers on the run thread (and the monitor's callback), thousands of
times a second. Widgets may only be touched from the UI thread, and redrawing per event
would drown the screen, so subscribers only append to this buffer and the app drains it on
a timer (about every 50 ms), updating each pane once per batch.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class EventBuffer(Generic[T]):
    """An unbounded-until-``limit`` FIFO: ``push`` from any thread, ``drain`` from the UI.

    When a Spirit floods faster than the UI drains, the oldest undrained items are dropped
    (and counted in :attr:`dropped`) rather than growing memory without bound.
    """

    __slots__ = ("_items", "_lock", "dropped", "limit", "pushed")

    def __init__(self, limit: int = 200_000) -> None:
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self.limit = limit
        self.dropped = 0
        self.pushed = 0

    def push(self, item: T) -> None:
        """Append one item; safe and cheap from any thread."""
        with self._lock:
            self._items.append(item)
            self.pushed += 1
            if len(self._items) > self.limit:
                self._items.popleft()
                self.dropped += 1

    def drain(self) -> list[T]:
        """Take everything buffered so far, oldest first."""
        with self._lock:
            if not self._items:
                return []
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        return len(self._items)
