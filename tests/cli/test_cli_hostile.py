"""Hostile input through the real command line: each gets one ``error:`` line with a
hint and the documented exit code, never a crash, a traceback or a silent misreading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]


def _wat(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.wat"
    path.write_text(f'(module (memory (export "memory") 1) {body})')
    return path


def test_v128_in_an_exported_or_imported_signature_is_invalid_input(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    # wasmtime's C API aborts the process when asked for such a signature's types.
    export = _wat(tmp_path, "simd", '(func (export "main") (param v128))')
    result = _wat(tmp_path, "simdr", '(func (export "main") (result v128) '
                  "(v128.const i32x4 1 2 3 4))")
    imported = tmp_path / "simdi.wat"
    imported.write_text('(module (import "vudo" "host_log" (func (param v128))) '
                        '(memory (export "memory") 1) (func (export "main")))')
    for path, where in ((export, 'export "main"'), (result, 'export "main"'),
                        (imported, 'import "vudo" "host_log"')):
        r = vudo_cli("run", str(path))
        assert r.code == 3, r.stderr
        assert where in r.error_line and "v128" in r.error_line
        assert "(hint: " in r.error_line


def test_v128_inside_the_module_still_runs(vudo_cli: Vudo, tmp_path: Path) -> None:
    path = _wat(tmp_path, "inner", '(func $i (param v128)) (func (export "main") (result i32) '
                "(v128.const i64x2 0 0) call $i i32.const 3)")
    r = vudo_cli("run", str(path), "-q")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "3"


def test_reference_parameter_is_refused_before_counting_arguments(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    path = _wat(tmp_path, "ref", '(func (export "main") (param externref))')
    r = vudo_cli("run", str(path))
    assert r.code == 2
    assert "cannot pass" in r.error_line and "1.5" not in r.error_line
