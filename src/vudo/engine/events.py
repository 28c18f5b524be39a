"""The sandbox event stream: what a sandbox did, as it happens.

The CLI prints these, the TUI draws them, tests assert on them. Every lifecycle change is a
:class:`StateChanged`, every host call (allowed or denied) a :class:`HostCall`, the live
monitor emits a :class:`FuelSample` about every 10 ms while the guest runs, and each
``host_log`` call a :class:`LogMessage`, each ``host_notify`` a :class:`Notification`, each
write to an output stream an :class:`OutputWritten`.

Callbacks run on the thread that produced the event: the run thread for host calls and
lifecycle changes, the monitor's epoch callback for fuel samples (which is also the run
thread, inside wasm), or the thread that called ``suspend()``/``resume()``/``terminate()``.
Subscribers must therefore be thread-safe and quick. A subscriber that raises breaks
nothing: the exception is counted in :attr:`EventStream.errors` and swallowed, because a
broken observer must never change what the guest sees.

The events are :class:`~typing.NamedTuple` records (immutable, slotted, compared by value):
every ``vudo run`` imports this module, and a NamedTuple is several times cheaper to
define than a frozen dataclass.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each, ~250 fields on a run's path), and this module
# is imported by every ``vudo run``. Annotations naming a later or TYPE_CHECKING-only
# class are quoted.

import threading
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from vudo.capabilities import AnyCapability


class StateChanged(NamedTuple):
    """The sandbox moved from ``old`` to ``new`` (state values, e.g. ``"ready"``)."""

    sandbox_id: str
    old: str
    new: str
    at: float
    reason: str


class HostCall(NamedTuple):
    """One host call: which function, the capability it needed, whether it was allowed.

    ``args`` is a short human summary (never the full payload); ``result`` is what the
    guest received (negative values are :class:`vudo.engine.abi.ErrorCode`); ``fuel`` is
    what the call was charged. ``reason`` says why a call was denied or refused (for a
    scope mismatch it names both the target and the grant's scope, e.g. ``'localhost:80'
    resolved to 127.0.0.1, outside the grant's scope domain:*:*``), "" otherwise; the
    event's ``args`` also ends with it in parentheses, for renderers that show one column.
    ``depth`` is 0 for the sandbox's own calls and n for those of a Spirit it called n
    levels down (``host_spirit_call``; their ``sandbox_id`` is the callee's), which come
    to the top-level sandbox's subscribers right after the call that made them.
    """

    sandbox_id: str
    function: str
    capability: AnyCapability | None
    allowed: bool
    args: str
    result: int
    fuel: int
    at: float
    reason: str = ""
    depth: int = 0


class FuelSample(NamedTuple):
    """A live reading of fuel used so far in the current run, out of ``budget``."""

    sandbox_id: str
    used: int
    budget: int
    at: float


class LogMessage(NamedTuple):
    """A message the guest logged with ``host_log`` (level 0 trace .. 4 error)."""

    sandbox_id: str
    level: int
    message: str
    at: float


class Notification(NamedTuple):
    """A notification for the user the guest sent with ``host_notify`` (level 0 trace ..
    4 error): the TUI shows a toast, the CLI a line on stderr."""

    sandbox_id: str
    level: int
    message: str
    at: float


class OutputWritten(NamedTuple):
    """Bytes the guest wrote to one of its output streams (``"output"`` for
    ``host_output_write``; WASI's ``"stdout"``/``"stderr"``), as written. Only built when
    someone subscribes."""

    sandbox_id: str
    stream: str
    data: bytes
    at: float


Event: TypeAlias = StateChanged | HostCall | FuelSample | LogMessage | Notification | OutputWritten
Subscriber: TypeAlias = Callable[[Event], None]

LEVEL_NAMES: tuple[str, ...] = ("trace", "debug", "info", "warn", "error")


class EventStream:
    """A thread-safe list of subscribers with a cheap "anyone listening?" test.

    The host-call fast path checks :attr:`active` before building an event object, so a
    sandbox nobody watches pays nothing for events.
    """

    __slots__ = ("_lock", "_subscribers", "active", "errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()
        #: Anyone subscribed? A plain attribute (kept with the list), not a property:
        #: every host call reads it.
        self.active = False
        self.errors = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it again (idempotent)."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)
            self.active = True

        def unsubscribe() -> None:
            self.unsubscribe(callback)

        return unsubscribe

    def unsubscribe(self, callback: Subscriber) -> None:
        with self._lock:
            subs = list(self._subscribers)
            if callback in subs:
                subs.remove(callback)
            self._subscribers = tuple(subs)
            self.active = bool(subs)

    def emit(self, event: Event) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                self.errors += 1
