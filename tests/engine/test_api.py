"""The public surface: light import, event stream, engine lifecycle."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import config, spirit

import vudo.engine
from vudo.engine import Engine, Event, Sandbox, StateChanged
from vudo.engine.events import EventStream

SRC = Path(__file__).resolve().parents[2] / "src"


def test_import_is_light() -> None:
    code = (
        "import sys, vudo.engine; from vudo.engine import Receipt, SandboxConfig, Limits; "
        "print('wasmtime' in sys.modules, 'textual' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC)},
    ).stdout.split()
    assert out == ["False", "False"]


def test_public_names_resolve() -> None:
    for name in vudo.engine.__all__:
        assert getattr(vudo.engine, name) is not None
    with pytest.raises(AttributeError):
        vudo.engine.NoSuchThing  # noqa: B018


def test_event_stream_subscribe_unsubscribe() -> None:
    stream = EventStream()
    seen: list[Event] = []
    assert not stream.active
    unsubscribe = stream.subscribe(seen.append)
    assert stream.active
    event = StateChanged("x", "created", "initializing", 0.0, "test")
    stream.emit(event)
    unsubscribe()
    unsubscribe()  # idempotent
    stream.emit(event)
    assert seen == [event]
    assert not stream.active


def test_event_stream_is_thread_safe() -> None:
    stream = EventStream()
    counts: list[int] = []
    lock = threading.Lock()

    def sub(_: Event) -> None:
        with lock:
            counts.append(1)

    def churn() -> None:
        for _ in range(200):
            off = stream.subscribe(lambda e: None)
            stream.emit(StateChanged("x", "a", "b", 0.0, ""))
            off()

    stream.subscribe(sub)
    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(counts) == 800


def test_engine_ticker_starts_lazily_and_stops_on_close() -> None:
    with Engine() as engine:
        assert engine._ticker is None
        module = engine.load(spirit('(func (export "main"))'))
        with Sandbox(engine, module, config()) as sb:
            sb.instantiate()
            sb.call("main")
        ticker = engine._ticker
        assert ticker is not None
    assert not ticker._thread.is_alive()


def test_unsubscribe_stops_sandbox_events(make: Callable[..., Sandbox]) -> None:
    sb = make(spirit('(func (export "main"))'), instantiate=False)
    seen: list[Event] = []
    off = sb.subscribe(seen.append)
    sb.instantiate()
    off()
    sb.call("main")
    assert len(seen) == 2
    assert sb.suspend_reason == ""
