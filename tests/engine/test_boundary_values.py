"""Reference results cross the boundary as results: a null reference is a result (None),
not "no results", and the receipt's JSON names a reference by its kind, never by a
Python repr with a host address in it."""

from __future__ import annotations

import json

from engine_helpers import config

from vudo.engine import Engine, Sandbox


def _call(engine: Engine, body: str) -> tuple[list[object], list[object]]:
    module = engine.load(f"(module (elem declare func 0) {body})")
    with Sandbox(engine, module, config()) as sb:
        sb.instantiate()
        results = sb.call("main")
        return results, json.loads(sb.receipt().to_json())["results"]


def test_a_null_reference_result_is_a_result(engine: Engine) -> None:
    results, shown = _call(engine, '(func (export "main") (result externref) ref.null extern)')
    assert results == [None] and shown == [None]


def test_a_function_reference_result_is_named_by_kind(engine: Engine) -> None:
    results, shown = _call(
        engine, '(func (export "main") (result funcref i32) ref.func 0 i32.const 7)'
    )
    assert len(results) == 2 and results[1] == 7
    assert shown == ["funcref", 7]
