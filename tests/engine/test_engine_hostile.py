"""Hostile modules against the engine itself: a clear vudo error, and the process lives."""

from __future__ import annotations

import pytest
from engine_helpers import spirit

from vudo.engine import Engine
from vudo.errors import ModuleError


@pytest.mark.parametrize(("body", "imports", "where"), [
    ('(func (export "f") (param i32 v128))', "", 'export "f"'),
    ('(func (export "f") (result v128) (v128.const i32x4 0 0 0 0))', "", 'export "f"'),
    ("", '(import "vudo" "host_time_now" (func (result v128)))', 'import "vudo" "host_time_now"'),
])
def test_v128_in_a_boundary_signature_is_a_module_error(
    engine: Engine, body: str, imports: str, where: str
) -> None:
    with pytest.raises(ModuleError, match=f"{where} has a v128 parameter or result") as info:
        engine.load(spirit(body, imports))
    assert info.value.hint


def test_v128_and_references_inside_the_module_load(engine: Engine) -> None:
    module = engine.load(spirit(
        '(func $i (param v128)) (table 1 funcref) '
        '(func (export "main") (param externref) (result funcref) ref.null func)'))
    assert module.export("main").params == ("anyref",)
