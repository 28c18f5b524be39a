"""Fixtures for the engine tests: one real wasmtime engine per test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from engine_helpers import config

from vudo.engine import Engine, Sandbox, SandboxConfig


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine() as eng:
        yield eng


@pytest.fixture
def make(engine: Engine) -> Iterator[Callable[..., Sandbox]]:
    """make(wat, config=None, instantiate=True) -> Sandbox, closed after the test."""
    made: list[Sandbox] = []

    def factory(
        wat: str, cfg: SandboxConfig | None = None, *, instantiate: bool = True, name: str = "t"
    ) -> Sandbox:
        module = engine.load(wat, name=name)
        sb = Sandbox(engine, module, cfg if cfg is not None else config())
        made.append(sb)
        if instantiate:
            sb.instantiate()
        return sb

    yield factory
    for sb in made:
        sb.close()
