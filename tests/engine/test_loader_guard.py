"""The loader fails closed: a module the engine cannot describe safely is a ModuleError.

wasmtime's C API aborts the whole process when asked for the type of a boundary (import
or export) that holds a ``v128`` or a typed reference, wherever the type is declared (a
plain type, a ``rec`` group, a ``sub`` type). The abort kills the test process, so each
module is loaded in a child process first; the child must exit normally and name the
problem.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

import vudo
from vudo.engine import Engine
from vudo.engine.binary import scan
from vudo.engine.engine import describe
from vudo.errors import ModuleError

SRC = str(Path(vudo.__file__).resolve().parent.parent)
MEM = '(memory (export "memory") 1)'

#: (label, WAT module, text the error names). Each aborted the process before the fix.
ABORTING = [
    (
        "rec export",
        f'(module (rec (type $t (func (param v128)))) {MEM} (func (export "main") (type $t)))',
        'export "main" has a v128 parameter or result',
    ),
    (
        "rec pair",
        f"(module (rec (type $s (struct)) (type $t (func (result v128)))) {MEM} "
        '(func (export "main") (type $t) (v128.const i64x2 0 0)))',
        'export "main" has a v128',
    ),
    (
        "sub export",
        f'(module (type $t (sub (func (param v128)))) {MEM} (func (export "main") (type $t)))',
        'export "main" has a v128',
    ),
    (
        "sub final",
        f"(module (type $t (sub final (func (param i32 v128)))) {MEM} "
        '(func (export "main") (type $t)))',
        'export "main" has a v128',
    ),
    (
        "rec import",
        "(module (rec (type $t (func (param v128) (result i32)))) "
        f'(import "vudo" "host_log" (func (type $t))) {MEM})',
        'import "vudo" "host_log" has a v128',
    ),
    (
        "anyref param",
        f'(module {MEM} (func (export "main") (param anyref)))',
        'export "main" has a (ref null any) parameter',
    ),
    (
        "typed ref",
        f"(module (type $s (struct (field i32))) {MEM} "
        '(func (export "main") (param (ref null $s))))',
        'export "main" has a (ref null $0)',
    ),
    (
        "v128 global",
        f'(module {MEM} (global (export "g") v128 (v128.const i32x4 0 0 0 0)))',
        'export "g" has a v128 value',
    ),
    (
        "typed table",
        f'(module (type $t (func)) {MEM} (table (export "t") 1 (ref null $t)))',
        'export "t" has a (ref null $0) element type',
    ),
    (
        "v128 tag",
        f'(module {MEM} (tag (export "e") (param v128)))',
        'export "e" has a v128 parameter',
    ),
]

CHILD = textwrap.dedent("""
    import sys
    from vudo.engine import Engine
    from vudo.errors import VudoError
    try:
        Engine().load(sys.stdin.read(), name="m")
    except VudoError as exc:
        print(type(exc).__name__, exc.exit_code, exc.one_line())
    else:
        print("loaded")
""")


def _child_load(wat: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD],
        input=wat,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": SRC},
        check=False,
    )


@pytest.mark.parametrize(
    ("wat", "message"), [(w, m) for _, w, m in ABORTING], ids=[label for label, _, _ in ABORTING]
)
def test_undescribable_boundary_is_a_module_error_not_an_abort(wat: str, message: str) -> None:
    child = _child_load(wat)
    assert child.returncode == 0, f"child died ({child.returncode}): {child.stderr[-500:]}"
    kind, code, line = child.stdout.strip().split(" ", 2)
    assert (kind, code) == ("ModuleError", "3"), child.stdout
    assert message in line and "(hint: " in line, line


def test_the_same_types_inside_the_module_load(engine: Engine) -> None:
    module = engine.load(
        "(module (rec (type $t (func (param v128))) (type $s (struct (field (mut i8)))))"
        "(type $f (sub (func (param i32) (result i32))))"
        "(type $a (array (mut (ref null $s))))"
        f"{MEM} (func $inner (type $t)) (global $g (mut anyref) (ref.null any))"
        '(func (export "main") (type $f) (local.get 0)))'
    )
    assert module.export("main").params == ("i32",)


def test_sub_typed_boundary_with_plain_values_loads(engine: Engine) -> None:
    module = engine.load(
        f"(module (rec (type $t (sub (func (param i64) (result i64))))) {MEM} "
        '(global (export "g") i32 (i32.const 7)) (table (export "t") 1 funcref) '
        '(func (export "id") (type $t) (local.get 0)))'
    )
    assert [(f.name, f.params, f.results) for f in module.exports] == [("id", ("i64",), ("i64",))]


@pytest.mark.parametrize(
    ("wasm", "what"),
    [
        # a section id newer than the scanner (after the tag section, 13)
        (b"\0asm\1\0\0\0" + bytes([14, 0]), "section id 14"),
        # a composite type form it does not know (0x5d: a stack-switching continuation)
        (b"\0asm\1\0\0\0" + bytes([1, 3, 1, 0x5D, 0]), "composite type 0x5d"),
        # an unknown value type in a function signature
        (b"\0asm\1\0\0\0" + bytes([1, 5, 1, 0x60, 1, 0x55, 0]), "value type 0x55"),
    ],
)
def test_scanner_fails_closed_on_what_it_does_not_understand(wasm: bytes, what: str) -> None:
    with pytest.raises(ModuleError, match="encoding vudo cannot inspect") as info:
        scan(wasm, "m")
    assert what in info.value.message and info.value.hint


def test_describe_validates_before_scanning() -> None:
    # invalid, not merely unknown to the scanner: wasmtime's own message
    with pytest.raises(ModuleError, match="not a valid WebAssembly module"):
        describe(b"\0asm\1\0\0\0" + bytes([1, 5, 1, 0x60, 1, 0x55, 0]), "m")


def test_vudo_run_on_a_rec_group_v128_export(tmp_path: Path) -> None:
    path = tmp_path / "rec.wat"
    path.write_text(ABORTING[0][1])
    run = subprocess.run(
        [sys.executable, "-m", "vudo", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": SRC, "VUDO_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)},
    )
    assert run.returncode == 3, run.stderr
    assert 'export "main" has a v128 parameter or result' in run.stderr
    assert "(hint: " in run.stderr


def test_scan_agrees_with_wasmtime_on_describable_modules() -> None:
    wat = (
        f'(module (import "vudo" "host_log" (func (param i32 i32 i32) (result i32))) {MEM} '
        '(global (export "g") (mut f64) (f64.const 1)) (table (export "t") 2 externref) '
        '(func (export "f") (param i32 i64 f32 f64 externref funcref) (result i64) '
        "(i64.const 0)))"
    )
    wasm = wasmtime.wat2wasm(wat)
    shape = scan(wasm)
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    ours = [(e.name, e.params, e.results) for e in shape.exports if e.kind == "func"]
    theirs = [
        (e.name, tuple(map(str, e.type.params)), tuple(map(str, e.type.results)))
        for e in module.exports
        if isinstance(e.type, wasmtime.FuncType)
    ]
    assert ours == theirs
    assert [e.kind for e in shape.exports] == ["memory", "global", "table", "func"]
    assert shape.imports[0][:3] == ("vudo", "host_log", "func")


LOG_SIG = "(param i32 i32 i32) (result i32)"


@pytest.mark.parametrize(
    "types",
    [
        f"(rec (type $t (sub (func {LOG_SIG}))))",  # not final
        f"(rec (type $t (func {LOG_SIG})) (type $s (struct)))",  # shares a rec group
        f"(type $b (sub (func {LOG_SIG}))) (type $t (sub final $b (func {LOG_SIG})))",  # a subtype
    ],
)
def test_import_with_a_distinct_function_type_is_a_module_error(engine: Engine, types: str) -> None:
    # It used to fail at instantiation as "guest trapped" (exit 10): types incompatible.
    with pytest.raises(ModuleError, match="non-final or recursive") as info:
        engine.load(f'(module {types} (import "vudo" "host_log" (func (type $t))) {MEM})')
    assert "(i32, i32, i32) -> (i32)" in (info.value.hint or "")


@pytest.mark.parametrize(
    "types",
    [
        f"(rec (type $t (func {LOG_SIG})))",
        f"(type $t (sub final (func {LOG_SIG})))",
    ],
)
def test_import_with_an_equivalent_plain_type_links(engine: Engine, types: str) -> None:
    from engine_helpers import config

    from vudo.engine import Sandbox

    module = engine.load(
        f'(module {types} (import "vudo" "host_log" (func (type $t))) {MEM} (func (export "main")))'
    )
    with Sandbox(engine, module, config()) as sb:
        sb.instantiate()
        assert sb.call("main") == []


RICH = wasmtime.wat2wasm(
    "(module (rec (type $t (sub (func (param i32) (result i64)))) (type $s (struct (field i8))))"
    "(type $a (array (mut (ref null $s))))"
    '(import "vudo" "host_log" (func (param i32 i32 i32) (result i32)))'
    '(import "x" "g" (global i32)) (import "x" "t" (table 1 funcref)) (import "x" "m" (memory 1))'
    "(tag $e (param i32)) (global $v (mut v128) (v128.const i64x2 1 2))"
    '(global (export "k") i64 (i64.add (i64.const 1) (i64.const 2)))'
    '(table $tt 2 (ref null $t) (ref.null $t)) (func $f (export "f") (type $t) (i64.const 1))'
    '(export "e" (tag $e)) (export "mem" (memory 0)) (elem declare func $f))'
)


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.integers(0, len(RICH) - 1), st.integers(0, 255)), min_size=1, max_size=4)
)
def test_scanner_on_mutated_bytes_raises_only_module_errors(edits: list[tuple[int, int]]) -> None:
    # scan() runs on validated modules; even so, damaged input must never escape as
    # IndexError, RecursionError or a wrong guess: a shape or a ModuleError.
    data = bytearray(RICH)
    for where, value in edits:
        data[where] = value
    try:
        shape = scan(bytes(data), "m")
    except ModuleError:
        return
    assert all(isinstance(e.name, str) for e in (*shape.imports, *shape.exports))


def test_scanner_reads_every_kind_of_import_and_export() -> None:
    shape = scan(RICH, "m")
    assert [(i.module, i.name, i.kind) for i in shape.imports] == [
        ("vudo", "host_log", "func"),
        ("x", "g", "global"),
        ("x", "t", "table"),
        ("x", "m", "memory"),
    ]
    assert [(e.name, e.kind, e.params, e.results) for e in shape.exports] == [
        ("k", "global", (), ("i64",)),
        ("f", "func", ("i32",), ("i64",)),
        ("e", "tag", ("i32",), ()),
        ("mem", "memory", (), ()),
    ]
    assert shape.functions == 1 and shape.code_bytes > 0
    assert not shape.exports[1].plain  # a non-final type in a rec group
