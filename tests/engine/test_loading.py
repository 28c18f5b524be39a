"""Loading Spirits: formats, validation against the ABI, size limit, the compiled cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from engine_helpers import IMPORTS, config, spirit

from vudo.engine import Engine, Limits, Sandbox
from vudo.engine.engine import ModuleCache
from vudo.errors import ModuleError, NotFoundError, ResourceLimitExceeded

ADD = spirit(
    '(func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))'
)


def test_load_wat_text_bytes_and_paths(engine: Engine, tmp_path: Path) -> None:
    wasm = wasmtime.wat2wasm(ADD)
    (tmp_path / "a.wat").write_text(ADD)
    (tmp_path / "a.wasm").write_bytes(bytes(wasm))
    loaded = [
        engine.load(ADD),
        engine.load(bytes(wasm)),
        engine.load(tmp_path / "a.wat"),
        engine.load(tmp_path / "a.wasm", name="a"),
    ]
    assert len({m.digest for m in loaded}) == 1
    module = loaded[-1]
    assert module.name == "a"
    assert module.export("add").params == ("i32", "i32")
    assert module.export("add").results == ("i32",)
    assert module.imports == ()
    assert module.size == len(wasm)


def test_exports_and_entry_point(engine: Engine) -> None:
    module = engine.load(
        spirit('(func (export "_start")) (func (export "main") (result i32) (i32.const 7))'),
        name="m",
    )
    assert module.entry_point() == "main"
    assert engine.load(spirit('(func (export "_start"))')).entry_point() == "_start"
    with pytest.raises(NotFoundError, match="neither main nor _start"):
        engine.load(ADD).entry_point()
    with pytest.raises(NotFoundError) as info:
        module.export("nope")
    assert info.value.hint is not None and "main" in info.value.hint


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"\0asm\x01\0\0\0\xff\xff", "not a valid WebAssembly module"),
        (b"\xff\xfe garbage \x00\x01", "neither wasm binary nor UTF-8 WAT"),
        ('(module (func (export "f") (i32.add)))', "not a valid WebAssembly"),
        ("(module", "not a valid WebAssembly text module"),
        ("hello world", "not a valid WebAssembly text module"),
    ],
)
def test_malformed_modules(engine: Engine, source: bytes | str, message: str) -> None:
    with pytest.raises(ModuleError, match=message) as info:
        engine.load(source)
    assert info.value.exit_code == 3
    assert "\n" not in info.value.one_line()


def test_wasm_file_without_header(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "x.wasm"
    path.write_text("(module)")
    with pytest.raises(ModuleError, match="no \\\\0asm header"):
        engine.load(path)
    with pytest.raises(NotFoundError):
        engine.load(tmp_path / "missing.wasm")


def test_unknown_import_is_named(engine: Engine) -> None:
    wat = spirit("", '(import "vudo" "host_teleport" (func (param i32)))')
    with pytest.raises(ModuleError, match='unknown host function import "vudo" "host_teleport"'):
        engine.load(wat)


def test_import_from_other_module_is_named(engine: Engine) -> None:
    wat = spirit("", '(import "env" "fd_write" (func (param i32 i32 i32 i32) (result i32)))')
    with pytest.raises(ModuleError, match='"env" "fd_write" is not from'):
        engine.load(wat)


def test_wrong_import_signature(engine: Engine) -> None:
    wat = spirit("", '(import "vudo" "host_log" (func (param i32 i32) (result i32)))')
    with pytest.raises(
        ModuleError,
        match=r"has signature \(i32, i32\) -> \(i32\), expected "
        r"\(i32, i32, i32\) -> \(i32\)",
    ):
        engine.load(wat)


def test_non_function_import(engine: Engine) -> None:
    wat = spirit("", '(import "vudo" "host_log" (global i32))')
    with pytest.raises(ModuleError, match="must be a function"):
        engine.load(wat)


def test_every_abi_import_links(engine: Engine) -> None:
    from vudo.engine.abi import ABI

    imports = " ".join(
        f'(import "vudo" "{name}" (func (param {" ".join(r.params)}) '
        f"(result {' '.join(r.results)})))"
        for name, r in ABI.items()
    )
    module = engine.load(spirit('(func (export "main"))', imports))
    assert set(module.imports) == set(ABI)
    with Sandbox(engine, module, config()) as sb:
        sb.instantiate()
        assert sb.call("main") == []


def test_module_without_memory_export_loads(engine: Engine) -> None:
    # DESIGN.md §1: pure compute needs no memory (a pointer-taking host call then returns
    # INVALID_MEMORY; see test_vudo_vm_compat.py). It used to be a ModuleError.
    for wat in ('(module (memory 1) (func (export "main")))', '(module (func (export "main")))'):
        assert engine.load(wat).entry_point() == "main"


def test_module_size_limit(tmp_path: Path) -> None:
    with Engine(max_module_size=64) as small:
        big = spirit('(data (i32.const 0) "' + "x" * 200 + '")')
        with pytest.raises(ResourceLimitExceeded, match="over the 64-byte limit") as info:
            small.load(big)
        assert info.value.exit_code == 13


def test_sandbox_module_size_limit(engine: Engine) -> None:
    module = engine.load(ADD)
    with pytest.raises(ResourceLimitExceeded, match="module size limit"):
        Sandbox(engine, module, config(limits=Limits(module_size=10)))


def test_disk_cache_miss_then_hit(tmp_path: Path) -> None:
    with Engine(cache_dir=tmp_path) as first:
        assert first.load(ADD).cache == "miss"
        assert first.load(ADD).cache == "memory"
    assert len(list(tmp_path.glob("*.cwasm"))) == 1
    assert len(list(tmp_path.glob("*.sha256"))) == 1
    with Engine(cache_dir=tmp_path) as second:
        module = second.load(ADD)
        assert module.cache == "hit"
        assert second.cache is not None and second.cache.stats().hits == 1
        with Sandbox(second, module, config()) as sb:
            sb.instantiate()
            assert sb.call("add", [2, 3]) == [5]


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum"])
def test_corrupt_cache_entry_is_recompiled(tmp_path: Path, damage: str) -> None:
    with Engine(cache_dir=tmp_path) as first:
        first.load(ADD)
    code = next(tmp_path.glob("*.cwasm"))
    data = bytearray(code.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        code.write_bytes(bytes(data))
    elif damage == "truncate":
        code.write_bytes(bytes(data[: len(data) // 3]))
    else:
        next(tmp_path.glob("*.sha256")).write_text("0" * 64)
    with Engine(cache_dir=tmp_path) as second:
        module = second.load(ADD)
        assert module.cache == "recompiled"
        with Sandbox(second, module, config()) as sb:
            sb.instantiate()
            assert sb.call("add", [20, 22]) == [42]
    with Engine(cache_dir=tmp_path) as third:
        assert third.load(ADD).cache == "hit"


def test_cache_key_covers_version_and_config(tmp_path: Path) -> None:
    a = ModuleCache(tmp_path, "fuel=1;epoch=1;stack=1")
    b = ModuleCache(tmp_path, "fuel=1;epoch=1;stack=2")
    assert a.key("ab" * 32) != b.key("ab" * 32)
    assert a.key("ab" * 32) != a.key("cd" * 32)
    with Engine(cache_dir=tmp_path, max_wasm_stack=256 * 1024) as one:
        one.load(ADD)
    with Engine(cache_dir=tmp_path) as two:
        assert two.load(ADD).cache == "miss"


def test_imports_are_recorded(engine: Engine) -> None:
    module = engine.load(spirit("", IMPORTS["log"] + IMPORTS["time"]))
    assert module.imports == ("host_log", "host_time_now")


def test_memory_cache_is_bounded() -> None:
    from vudo.engine import engine as engine_module

    with Engine() as eng:
        for i in range(engine_module.MEMORY_CACHE_SIZE + 5):
            eng.load(spirit(f'(func (export "f") (result i32) (i32.const {i}))'))
        assert len(eng._compiled) == engine_module.MEMORY_CACHE_SIZE
        assert len(eng._validated) == engine_module.MEMORY_CACHE_SIZE


def test_unwritable_cache_only_loses_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    with Engine(cache_dir=blocker / "cache") as eng:
        module = eng.load(ADD)
        assert module.cache == "miss"
        with Sandbox(eng, module, config()) as sb:
            sb.instantiate()
            assert sb.call("add", [1, 1]) == [2]
