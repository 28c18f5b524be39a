"""`vudo build`, `vudo check` and `vudo doc` read a module through the engine's loader
guard: a boundary type wasmtime's C API cannot describe is invalid input, not an abort."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]

REC_V128 = """(module
  (rec (type $t (func (param v128) (result i32))) (type $s (struct)))
  (memory (export "memory") 1)
  (func (export "main") (type $t) (i32.const 0)))
"""


def test_build_check_and_doc_refuse_a_rec_group_v128_export(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "proj", cwd=tmp_path).code == 0
    project = tmp_path / "proj"
    (project / "src" / "main.wat").write_text(REC_V128)
    build = vudo_cli("build", "--path", str(project))
    assert build.code == 3, build.stderr  # it died with SIGABRT (-6) before
    assert 'export "main" has a v128 parameter or result' in build.error_line
    assert "(hint: " in build.error_line
    # a module built before the guard existed: check and doc inspect it the same way
    target = project / "target"
    target.mkdir(exist_ok=True)
    import wasmtime

    (target / "proj.wasm").write_bytes(wasmtime.wat2wasm(REC_V128))
    check = vudo_cli("check", "--path", str(project))
    assert check.code != 0 and check.code > 0, check.stderr
    assert "v128" in check.stdout + check.stderr
    doc = vudo_cli("doc", "--path", str(project))
    assert doc.code == 3, doc.stderr
    assert "v128" in doc.error_line
