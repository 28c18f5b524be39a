"""The wasmtime engine, module loading and validation, and the compiled-module cache.

One :class:`Engine` per process is the normal case: it owns a wasmtime engine configured
for fuel metering and epoch interruption, the epoch ticker thread the live monitor runs
on (one per engine, ticking every ~10 ms while it exists), an in-memory table of compiled
modules, and an optional on-disk cache of compiled code.

The disk cache is keyed by the module's SHA-256, the wasmtime version and the engine's
configuration, so a wasmtime upgrade or a config change never loads stale code. Each entry
has a SHA-256 of the compiled bytes stored beside it; an entry whose checksum does not
match (a torn write, a flipped bit) is recompiled and rewritten, never deserialized. The
checksum protects against corruption, not against an attacker who can write to the cache
directory: the cache directory must be as trusted as the vudo installation itself.

The module values (:class:`SpiritModule`, :class:`ExportedFunc`, :class:`CacheStats`) are
:class:`~typing.NamedTuple` records, immutable and slotted: every ``vudo run`` imports this
module, and a NamedTuple is several times cheaper to define than a frozen dataclass.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import wasmtime

from vudo.capabilities import ABI_IMPORTS
from vudo.engine.abi import HOST_MODULE
from vudo.engine.config import DEFAULT_MAX_MODULE_SIZE
from vudo.engine.signatures import IMPORT_SIGNATURES, format_signature
from vudo.engine.traps import translate
from vudo.errors import InvalidInputError, ModuleError, NotFoundError, ResourceLimitExceeded
from vudo.files import write_atomic


def _wasmtime_version() -> str:
    """The installed wasmtime-py version, part of every cache key.

    Read from the name of its ``.dist-info`` folder: ``importlib.metadata`` would add about
    15 ms to every ``vudo run``.
    """
    site = Path(wasmtime.__file__).resolve().parent.parent
    for info in site.glob("wasmtime-*.dist-info"):
        return info.name.removeprefix("wasmtime-").removesuffix(".dist-info")
    from importlib.metadata import version

    return version("wasmtime")


WASMTIME_VERSION = _wasmtime_version()
EPOCH_INTERVAL = 0.010
WASM_MAGIC = b"\0asm"


class ExportedFunc(NamedTuple):
    """A function the module exports, with its wasm parameter and result types."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]


class SpiritModule(NamedTuple):
    """A compiled, validated Spirit module, ready to run in any number of sandboxes.

    ``cache`` says where the compiled code came from: ``"memory"`` (this engine had it),
    ``"hit"`` (disk cache), ``"miss"`` (compiled, then stored), ``"recompiled"`` (the disk
    entry was corrupt and was replaced) or ``"off"`` (no disk cache).
    """

    name: str
    digest: str
    size: int
    imports: tuple[str, ...]
    exports: tuple[ExportedFunc, ...]
    cache: str
    wasm_module: wasmtime.Module

    def export(self, name: str) -> ExportedFunc:
        """The exported function ``name``, or NotFoundError listing what is exported."""
        for func in self.exports:
            if func.name == name:
                return func
        names = ", ".join(f.name for f in self.exports) or "none"
        raise NotFoundError(
            f'{self.name} exports no function "{name}"', hint=f"exported functions: {names}"
        )

    def entry_point(self) -> str:
        """The function ``vudo run`` calls by default: ``main``, else ``_start``."""
        names = {f.name for f in self.exports}
        for candidate in ("main", "_start"):
            if candidate in names:
                return candidate
        raise NotFoundError(
            f"{self.name} exports neither main nor _start",
            hint="pass --function NAME, or export main",
        )


class CacheStats(NamedTuple):
    hits: int
    misses: int
    recompiled: int


class ModuleCache:
    """Compiled modules on disk: ``<key>.cwasm`` plus ``<key>.sha256`` beside it."""

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.hits = 0
        self.misses = 0
        self.recompiled = 0

    def key(self, digest: str) -> str:
        material = f"{digest}|wasmtime-{WASMTIME_VERSION}|{self.fingerprint}"
        return hashlib.sha256(material.encode()).hexdigest()

    def paths(self, digest: str) -> tuple[Path, Path]:
        key = self.key(digest)
        return self.directory / f"{key}.cwasm", self.directory / f"{key}.sha256"

    def get(self, engine: wasmtime.Engine, digest: str) -> tuple[wasmtime.Module | None, bool]:
        """The cached module, or None; the flag says an entry existed but was corrupt."""
        code_path, sum_path = self.paths(digest)
        try:
            code = code_path.read_bytes()
            expected = sum_path.read_text().strip()
        except OSError:
            return None, False
        if hashlib.sha256(code).hexdigest() != expected:
            return None, True
        try:
            return wasmtime.Module.deserialize(engine, code), False
        except (wasmtime.WasmtimeError, wasmtime.Trap):
            return None, True

    def put(self, digest: str, module: wasmtime.Module) -> None:
        """Store atomically (temp file + rename); a failing disk only loses the cache."""
        code = bytes(module.serialize())
        code_path, sum_path = self.paths(digest)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(code_path, code)
            write_atomic(sum_path, hashlib.sha256(code).hexdigest().encode())
        except (OSError, InvalidInputError):  # InvalidInputError: a directory in the way
            return

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.recompiled)


class _Ticker:
    """Increments the engine's epoch every ``interval`` seconds on a daemon thread."""

    def __init__(self, engine: wasmtime.Engine, interval: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_tick, args=(engine, interval, self._stop), name="vudo-epoch", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def _tick(engine: wasmtime.Engine, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        engine.increment_epoch()


class Engine:
    """A wasmtime engine set up for vudo: fuel, epoch interruption, module cache.

    Create one and share it; sandboxes on one engine share compiled code and one epoch
    ticker. ``cache_dir=None`` keeps compiled modules in memory only. Close it (or use it
    as a context manager) to stop the ticker thread.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        max_module_size: int = DEFAULT_MAX_MODULE_SIZE,
        epoch_interval: float = EPOCH_INTERVAL,
        max_wasm_stack: int = 512 * 1024,
    ) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        config.max_wasm_stack = max_wasm_stack
        self.fingerprint = f"fuel=1;epoch=1;stack={max_wasm_stack}"
        self.wasm_engine = wasmtime.Engine(config)
        self.max_module_size = max_module_size
        self.epoch_interval = epoch_interval
        self.cache: ModuleCache | None = (
            ModuleCache(Path(cache_dir), self.fingerprint) if cache_dir is not None else None
        )
        self._compiled: dict[str, wasmtime.Module] = {}
        # digest -> (module, imports, exports) of modules that passed validation
        self._validated: dict[
            str, tuple[wasmtime.Module, tuple[str, ...], tuple[ExportedFunc, ...]]
        ] = {}
        self._lock = threading.Lock()
        self._linker: wasmtime.Linker | None = None
        self._pre: dict[str, wasmtime.InstancePre] = {}
        self._checkers: dict[tuple[object, ...], object] = {}
        self._ticker: _Ticker | None = None
        self._finalizer: weakref.finalize[[], Engine] | None = None
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def ensure_ticker(self) -> None:
        """Start the epoch ticker (once); sandboxes call this before running a guest."""
        if self._ticker is None:
            with self._lock:
                if self._ticker is None:
                    ticker = _Ticker(self.wasm_engine, self.epoch_interval)
                    self._finalizer = weakref.finalize(self, ticker.stop)
                    self._ticker = ticker

    def close(self) -> None:
        """Stop the epoch ticker. Sandboxes still open on this engine can no longer time out."""
        self.closed = True
        if self._finalizer is not None:
            self._finalizer()
        self._ticker = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------------

    def load(self, source: bytes | str | Path, *, name: str = "spirit") -> SpiritModule:
        """Compile and validate a Spirit: ``.wasm`` bytes, WAT text, or a path to either.

        A ``str`` is WAT source text (pass a :class:`~pathlib.Path` for a file). Loading
        the same bytes again is a dictionary lookup; with ``cache_dir`` a fresh engine
        deserializes instead of compiling (``module.cache`` says which happened).

        Raises ModuleError naming the problem (not wasm, bad import, no ``memory`` export),
        ResourceLimitExceeded if it is bigger than ``max_module_size``, NotFoundError for a
        missing file.
        """
        wasm = self._wasm_bytes(source)
        if len(wasm) > self.max_module_size:
            raise ResourceLimitExceeded(
                f"module is {len(wasm)} bytes, over the {self.max_module_size}-byte limit",
                hint="raise the module size limit or strip the module",
            )
        digest = hashlib.sha256(wasm).hexdigest()
        known = self._validated.get(digest)
        if known is not None:
            module, imports, exports = known
            cache = "memory"
        else:
            module, cache = self._compile(wasm, digest)
            unsupported = _unsupported_signature(wasm)
            if unsupported is not None:
                where, what, valtype = unsupported
                raise ModuleError(
                    f"{name}: {where} {what} has a {valtype} parameter or result, "
                    "which vudo cannot pass across the host boundary",
                    hint="use i32, i64, f32 or f64 in imported and exported functions "
                    "(SIMD and typed references can stay inside the module)",
                )
            imports = _validate_imports(module, name)
            exports = _validate_exports(module, name)
            self._validated[digest] = (module, imports, exports)
            _bound(self._validated)
        return SpiritModule(
            name=name,
            digest=digest,
            size=len(wasm),
            imports=imports,
            exports=exports,
            cache=cache,
            wasm_module=module,
        )

    def _wasm_bytes(self, source: bytes | str | Path) -> bytes:
        if isinstance(source, Path):
            try:
                size = source.stat().st_size
            except OSError:
                raise NotFoundError(
                    f"no such module file: {source}", hint="check the path"
                ) from None
            # Refuse before reading a huge file into memory (WAT may be ~4x its binary).
            if size > 4 * self.max_module_size:
                raise ResourceLimitExceeded(
                    f"{source} is {size} bytes, over the module size limit",
                    hint="raise the module size limit or strip the module",
                )
            data = source.read_bytes()
        elif isinstance(source, str):
            data = source.encode()
        else:
            data = bytes(source)
        if data.startswith(WASM_MAGIC):
            return data
        if isinstance(source, Path) and source.suffix == ".wasm":
            raise ModuleError(
                f"{source} is not a WebAssembly module (no \\0asm header)",
                hint="build the Spirit first, or pass its .wat source",
            )
        try:
            text = data.decode("utf-8-sig")  # an editor's BOM is not WAT
        except UnicodeDecodeError:
            raise ModuleError(
                "not a WebAssembly module: neither wasm binary nor UTF-8 WAT text",
                hint="pass a .wasm file or .wat source",
            ) from None
        try:
            return bytes(wasmtime.wat2wasm(text))
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise translate(exc, during="parse") from None

    def _compile(self, wasm: bytes, digest: str) -> tuple[wasmtime.Module, str]:
        module = self._compiled.get(digest)
        if module is not None:
            return module, "memory"
        status = "off"
        if self.cache is not None:
            module, corrupt = self.cache.get(self.wasm_engine, digest)
            if module is not None:
                self.cache.hits += 1
                self._compiled[digest] = module
                _bound(self._compiled)
                return module, "hit"
            status = "recompiled" if corrupt else "miss"
            if corrupt:
                self.cache.recompiled += 1
            else:
                self.cache.misses += 1
        try:
            module = wasmtime.Module(self.wasm_engine, wasm)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise translate(exc, during="compile") from None
        if self.cache is not None:
            self.cache.put(digest, module)
        self._compiled[digest] = module
        _bound(self._compiled)
        return module, status

    def instance_pre(self, module: SpiritModule) -> wasmtime.InstancePre:
        """The module linked against the host functions, ready to instantiate cheaply."""
        pre = self._pre.get(module.digest)
        if pre is None:
            with self._lock:
                if self._linker is None:
                    from vudo.engine.host import define_imports

                    linker = wasmtime.Linker(self.wasm_engine)
                    define_imports(linker)
                    self._linker = linker
                try:
                    pre = self._linker.instantiate_pre(module.wasm_module)
                except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
                    raise translate(exc, during="instantiate") from None
                self._pre[module.digest] = pre
                _bound(self._pre)
        return pre

    def checker(self, key: tuple[object, ...], build: Callable[[], object]) -> object:
        """A grant checker shared by sandboxes with identical grant inputs.

        Admission (Ed25519 verification of every grant) is the expensive part of a
        checker; the per-call check reads the revocation list and the clock live, so
        sharing one checker between sandboxes with the same grants, grantee, trusted
        granters, revocation list object and clock changes no decision.
        """
        found = self._checkers.get(key)
        if found is None:
            if len(self._checkers) > 256:
                self._checkers.clear()
            found = self._checkers[key] = build()
        return found


#: How many compiled modules an engine keeps in memory (a TUI session rebuilding a Spirit
#: on every edit would otherwise keep every version). Sandboxes hold their own reference.
MEMORY_CACHE_SIZE = 64


def _bound(table: dict[str, Any]) -> None:
    """Drop the oldest entries of an insertion-ordered cache beyond MEMORY_CACHE_SIZE."""
    while len(table) > MEMORY_CACHE_SIZE:
        del table[next(iter(table))]


def _validate_imports(module: wasmtime.Module, name: str) -> tuple[str, ...]:
    names: list[str] = []
    for imp in module.imports:
        where = f'import "{imp.module}" "{imp.name}"'
        if imp.module != HOST_MODULE:
            raise ModuleError(
                f'{name}: {where} is not from module "{HOST_MODULE}"',
                hint=f'Spirits import host functions only from "{HOST_MODULE}"',
            )
        if imp.name is None or imp.name not in ABI_IMPORTS:
            raise ModuleError(
                f"{name}: unknown host function {where}",
                hint="see DESIGN.md §1 for the host functions a Spirit may import",
            )
        ty = imp.type
        expected = IMPORT_SIGNATURES[imp.name]
        if not isinstance(ty, wasmtime.FuncType):
            raise ModuleError(
                f"{name}: {where} must be a function {format_signature(*expected)}",
                hint="import it as a function",
            )
        got = (tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results))
        if got != expected:
            raise ModuleError(
                f"{name}: {where} has signature {format_signature(*got)}, "
                f"expected {format_signature(*expected)}",
                hint="fix the import's declared type",
            )
        names.append(imp.name)
    return tuple(names)


def _validate_exports(module: wasmtime.Module, name: str) -> tuple[ExportedFunc, ...]:
    funcs: list[ExportedFunc] = []
    has_memory = False
    for exp in module.exports:
        ty = exp.type
        if isinstance(ty, wasmtime.FuncType):
            funcs.append(
                ExportedFunc(
                    exp.name,
                    tuple(str(p) for p in ty.params),
                    tuple(str(r) for r in ty.results),
                )
            )
        elif exp.name == "memory" and isinstance(ty, wasmtime.MemoryType):
            has_memory = True
    if not has_memory:
        raise ModuleError(
            f'{name}: does not export its linear memory as "memory"',
            hint='add (export "memory") to the module\'s memory',
        )
    return tuple(funcs)


# Value types the wasmtime C API can describe. Asking it for the type of a function whose
# signature holds anything else (v128, typed references) aborts the whole process, so such
# signatures are found by reading the binary first (_unsupported_signature).
_C_API_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x70: "funcref",
                   0x6F: "externref"}
_VALTYPE_NAMES = {0x7B: "v128", 0x63: "(ref null ...)", 0x64: "(ref ...)"}


class _Reader:
    """Just enough of the wasm binary format to read type, import, function and export
    sections; any surprise raises ValueError (the caller then leaves it to wasmtime)."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError("end of section")
        self.pos += 1
        return self.data[self.pos - 1]

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result
            if shift > 70:
                raise ValueError("LEB128 too long")

    def skip(self, n: int) -> None:
        if n > self.end - self.pos:
            raise ValueError("past the end")
        self.pos += n

    def name(self) -> str:
        n = self.uleb()
        self.skip(n)
        return self.data[self.pos - n : self.pos].decode("utf-8", "replace")

    def valtype(self) -> int:
        b = self.byte()
        if b in (0x63, 0x64):
            self.uleb()  # heap type (s33; its bytes read the same as an unsigned LEB)
        return b

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 0x01:
            self.uleb()
        if flags & 0x08:
            self.uleb()  # custom page size


def _unsupported_signature(wasm: bytes) -> tuple[str, str, str] | None:
    """(``import``/``export``, function name, type) for the first imported or exported
    function whose signature uses a type the wasmtime C API cannot describe, else None."""
    types: list[str | None] = []  # per type index: the unsupported type it uses, or None
    func_types: list[int] = []  # per function index (imports first): its type index
    imported: list[str] = []
    try:
        r = _Reader(wasm, 8)
        while r.pos < len(wasm):
            section, size = r.byte(), r.uleb()
            body = _Reader(wasm, r.pos, r.pos + size)
            r.skip(size)
            if section == 1:
                for _ in range(body.uleb()):
                    if body.byte() != 0x60:
                        raise ValueError("not a plain function type")
                    bad: str | None = None
                    for _ in range(2):
                        for _ in range(body.uleb()):
                            vt = body.valtype()
                            if vt not in _C_API_VALTYPES and bad is None:
                                bad = _VALTYPE_NAMES.get(vt, f"0x{vt:02x}")
                    types.append(bad)
            elif section == 2:
                for _ in range(body.uleb()):
                    module_name, field = body.name(), body.name()
                    kind = body.byte()
                    if kind == 0:
                        func_types.append(body.uleb())
                        imported.append(f'"{module_name}" "{field}"')
                    elif kind == 1:
                        body.valtype()
                        body.limits()
                    elif kind == 2:
                        body.limits()
                    elif kind == 3:
                        body.valtype()
                        body.byte()
                    elif kind == 4:
                        body.byte()
                        body.uleb()
                    else:
                        raise ValueError("unknown import kind")
                for index, field in enumerate(imported):
                    if types[func_types[index]] is not None:
                        return ("import", field, str(types[func_types[index]]))
            elif section == 3:
                func_types.extend(body.uleb() for _ in range(body.uleb()))
            elif section == 7:
                for _ in range(body.uleb()):
                    field = body.name()
                    kind, index = body.byte(), body.uleb()
                    if kind == 0 and types[func_types[index]] is not None:
                        return ("export", f'"{field}"', str(types[func_types[index]]))
                return None
    except (ValueError, IndexError):
        return None
    return None
