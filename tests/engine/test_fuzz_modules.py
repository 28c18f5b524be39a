"""Generated-module fuzz, a small seeded batch: random valid modules (binaryen's
``wasm-opt -ttf``, many features) through ``vudo run``, each in its own child process.

No child may die by a signal, print a traceback or exit with an undocumented code. The
generator and a longer run live in benches/fuzz_modules.py (``--count N --seed S``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "benches" / "fuzz_modules.py"


def _fuzz_tool() -> ModuleType:
    if str(BENCH.parent) not in sys.path:  # the bench imports its sibling benches/_common.py
        sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("fuzz_modules", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_never_kill_vudo(tmp_path: Path) -> None:
    assert shutil.which("wasm-opt"), "needs binaryen's wasm-opt: bash .ci/run installs it"
    tool = _fuzz_tool()
    outcomes = list(tool.fuzz(30, 7, tmp_path))
    histogram = Counter(o.code for o in outcomes)
    failures = [(o.index, o.code, o.stderr[-300:]) for o in outcomes if tool.bad(o)]
    assert not failures, failures
    assert len(outcomes) >= 25, histogram  # wasm-opt made (nearly) all of them
    assert histogram[0] + histogram[10] + histogram[11] + histogram[12] > 0, histogram
    assert histogram[3] > 0, histogram  # and some were refused cleanly


def test_stubbed_imports_keep_function_indices() -> None:
    import wasmtime

    tool = _fuzz_tool()
    wasm = wasmtime.wat2wasm(
        '(module (import "fuzzing-support" "log-i32" (func $log (param i32)))'
        '(import "x" "get" (func $get (result i64 f32)))'
        '(func (export "main") (result i32) (call $log (i32.const 1)) (drop (call $get)) '
        "(drop) (i32.const 5)) (elem declare func $log))"
    )
    stubbed = tool.stub_imports(bytes(wasm))
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, stubbed)
    assert [i.name for i in module.imports] == []
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, module, [])
    assert instance.exports(store)["main"](store) == 5
