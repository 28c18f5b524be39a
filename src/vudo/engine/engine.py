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

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every field
# annotation that is a string (~40 us each), and this module is on every ``vudo run``
# path (see vudo.engine.config). Annotations naming a later or TYPE_CHECKING-only class
# are quoted.

import contextlib
import os
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import wasmtime

from vudo.engine import compiler
from vudo.engine.abi import ABI, HOST_MODULE, format_signature
from vudo.engine.binary import ModuleShape, scan
from vudo.engine.compiler import engine_config
from vudo.engine.config import DEFAULT_MAX_MODULE_SIZE, DEFAULT_TIMEOUT
from vudo.engine.custom import HostFunctions
from vudo.engine.traps import parse_wat, translate
from vudo.engine.wasi_abi import WASI_MODULE, WASI_SIGNATURES
from vudo.errors import InvalidInputError, ModuleError, NotFoundError, ResourceLimitExceeded
from vudo.files import write_atomic
from vudo.hashing import sha256


def _wasmtime_version() -> str:
    """The installed wasmtime-py version, part of every cache key.

    Read from the name of its ``.dist-info`` folder: ``importlib.metadata`` would add about
    15 ms to every ``vudo run``.
    """
    site = Path(wasmtime.__file__).resolve().parent.parent
    for info in site.glob("wasmtime-*.dist-info"):
        return info.name.removeprefix("wasmtime-").removesuffix(".dist-info")
    # lazy: importlib.metadata costs ~15-28 ms per `vudo run`
    from importlib.metadata import version

    return version("wasmtime")


WASMTIME_VERSION = _wasmtime_version()
EPOCH_INTERVAL = 0.010
WASM_MAGIC = b"\0asm"
#: A module with at most this many functions and code bytes compiles in-process; a bigger
#: one compiles in a child process within the compile budget (about 0.15 s to start).
#: Compile time is not linear in code size: 2,700 nested loops (8 KiB) took 1.4 s and
#: 40,000 nested blocks (280 KiB) 168 s, so only a module too small to hide such a shape
#: (4 KiB: under 0.4 s measured on a loaded machine) stays in-process.
IN_PROCESS_FUNCTIONS = 1_000
IN_PROCESS_CODE_BYTES = 4 * 1024
#: Address space the compiling child may use.
DEFAULT_COMPILE_MEMORY = 2 * 1024 * 1024 * 1024


class ExportedFunc(NamedTuple):
    """A function the module exports, with its wasm parameter and result types."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]


WASI_PREFIX = WASI_MODULE + "."


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

    @property
    def uses_wasi(self) -> bool:
        """Whether the module imports WASI preview1 (a WASI command or reactor)."""
        return any(name.startswith(WASI_PREFIX) for name in self.imports)

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


class CacheUsage(NamedTuple):
    """What the disk cache holds: entries, their bytes, where, and the size bound."""

    entries: int
    bytes: int
    location: Path
    bound: int

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "bytes": self.bytes,
            "location": str(self.location),
            "bound": self.bound,
        }


#: The disk cache's default size bound; least recently used entries go first beyond it.
DEFAULT_CACHE_BOUND = 256 * 1024 * 1024
#: A leftover temporary file (a writer that was killed) older than this is removed.
_STALE_TMP_SECONDS = 3600.0
#: The names of the cache's own files: an entry's code and checksum, and their temp files.
#: Temp files are :func:`vudo.files.write_atomic`'s ``.<name>.<pid>.<hex>.partial``.
_CACHE_FILE = re.compile(
    r"[0-9a-f]{64}\.(cwasm|sha256)|\.[0-9a-f]{64}\.(cwasm|sha256)\.\d+\.[0-9a-f]+\.partial"
)


class ModuleCache:
    """Compiled modules on disk: ``<key>.cwasm`` plus ``<key>.sha256`` beside it.

    The cache holds at most ``bound`` bytes: each hit refreshes its entry's modification
    time, and each store evicts the least recently used entries beyond the bound (an entry
    bigger than the bound is not stored at all). Several processes may share the
    directory; eviction tolerates entries vanishing under it.
    """

    def __init__(self, directory: Path, fingerprint: str, bound: int = DEFAULT_CACHE_BOUND) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self.bound = bound
        self.hits = 0
        self.misses = 0
        self.recompiled = 0

    def key(self, digest: str) -> str:
        material = f"{digest}|wasmtime-{WASMTIME_VERSION}|{self.fingerprint}"
        return sha256(material.encode()).hexdigest()

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
        if sha256(code).hexdigest() != expected:
            return None, True
        try:
            module = wasmtime.Module.deserialize(engine, code)
        except (wasmtime.WasmtimeError, wasmtime.Trap):
            return None, True
        with contextlib.suppress(OSError):
            os.utime(code_path)  # most recently used: evicted last
        return module, False

    def put(self, digest: str, code: bytes) -> None:
        """Store serialized code atomically (temp file + rename), then evict beyond the
        bound; a failing disk only loses the cache."""
        if len(code) > self.bound:
            return
        code_path, sum_path = self.paths(digest)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(sum_path, sha256(code).hexdigest().encode())
            write_atomic(code_path, code)
            self.evict(keep=code_path)
        except (OSError, InvalidInputError):  # a full disk, or not a file at the path
            return

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes of the pair, .cwasm path) of each entry; temporary files of
        killed writers and checksums without code are removed once they are stale. Only
        the cache's own files count: the directory may hold others (``git/``)."""
        entries: list[tuple[float, int, Path]] = []
        try:
            listing = [e for e in os.scandir(self.directory) if _CACHE_FILE.fullmatch(e.name)]
        except OSError:
            return entries
        sums = {e.name[:64]: e for e in listing if e.name.endswith(".sha256")}

        now = time.time()
        for entry in listing:
            with contextlib.suppress(OSError):
                stat = entry.stat(follow_symlinks=False)
                if entry.name.endswith(".partial"):
                    if now - stat.st_mtime > _STALE_TMP_SECONDS:
                        os.unlink(entry.path)
                elif entry.name.endswith(".cwasm") and entry.is_file(follow_symlinks=False):
                    found = sums.pop(entry.name[:64], None)
                    size = stat.st_size + (found.stat().st_size if found else 0)
                    entries.append((stat.st_mtime, size, Path(entry.path)))
        for orphan in sums.values():
            with contextlib.suppress(OSError):
                if now - orphan.stat().st_mtime > _STALE_TMP_SECONDS:
                    os.unlink(orphan.path)
        return entries

    def evict(self, keep: Path | None = None) -> int:
        """Remove least recently used entries until the cache fits its bound; how many."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total <= self.bound:
                break
            if path == keep:
                continue
            self._remove(path)
            total -= size
            removed += 1
        return removed

    @staticmethod
    def _remove(code_path: Path) -> None:
        code_path.unlink(missing_ok=True)
        code_path.with_suffix(".sha256").unlink(missing_ok=True)

    def usage(self) -> CacheUsage:
        """How many entries and bytes the cache holds, where, and its bound."""
        entries = self._entries()
        return CacheUsage(
            len(entries), sum(size for _, size, _ in entries), self.directory, self.bound
        )

    def clear(self) -> int:
        """Remove every entry (and leftover temporary file); how many entries."""
        count = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if _CACHE_FILE.fullmatch(entry.name):
                    count += entry.name.endswith(".cwasm")
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
        return count

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
        compile_timeout: float = DEFAULT_TIMEOUT,
        compile_memory: int = DEFAULT_COMPILE_MEMORY,
        cache_bound: int = DEFAULT_CACHE_BOUND,
        host_functions: HostFunctions | None = None,
    ) -> None:
        self.max_wasm_stack = max_wasm_stack
        #: the application's own host functions (closed to new definitions from now on)
        self.host_functions = host_functions
        if host_functions is not None:
            host_functions.close()
        self._custom_callbacks: list[Any] = []
        self.fingerprint = f"fuel=1;epoch=1;move=0;stack={max_wasm_stack}"
        self.wasm_engine = wasmtime.Engine(engine_config(max_wasm_stack))
        self.max_module_size = max_module_size
        self.epoch_interval = epoch_interval
        self.compile_timeout = compile_timeout
        self.compile_memory = compile_memory
        self.cache: ModuleCache | None = (
            ModuleCache(Path(cache_dir), self.fingerprint, cache_bound)
            if cache_dir is not None
            else None
        )
        self._compiled: dict[str, wasmtime.Module] = {}
        # digest -> (module, imports, exports) of modules that passed validation
        self._validated: dict[
            str, tuple[wasmtime.Module, tuple[str, ...], tuple[ExportedFunc, ...]]
        ] = {}
        self._lock = threading.Lock()
        #: One linker per import set: with WASI preview1 (for modules that import it) and
        #: without (a plain Spirit's run does not load the WASI module).
        self._linkers: dict[bool, wasmtime.Linker] = {}
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

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -----------------------------------------------------------------------

    def load(
        self,
        source: bytes | str | Path,
        *,
        name: str = "spirit",
        compile_timeout: float | None = None,
    ) -> SpiritModule:
        """Compile and validate a Spirit: ``.wasm`` bytes, WAT text, or a path to either.

        A ``str`` is WAT source text (pass a :class:`~pathlib.Path` for a file). Loading
        the same bytes again is a dictionary lookup; with ``cache_dir`` a fresh engine
        deserializes instead of compiling (``module.cache`` says which happened).

        Compiling is bounded: a module with more than :data:`IN_PROCESS_FUNCTIONS`
        functions or :data:`IN_PROCESS_CODE_BYTES` of code is compiled in a child process
        with ``compile_memory`` bytes of address space and ``compile_timeout`` seconds
        (default: the engine's, itself defaulting to the run timeout's default).

        Raises ModuleError naming the problem (not wasm, bad import, a boundary type the
        engine cannot describe, an encoding it does not understand), ResourceLimitExceeded
        if it is bigger than ``max_module_size`` or compiling it exceeds the budget,
        NotFoundError for a missing file.
        """
        wasm = self._wasm_bytes(source)
        if len(wasm) > self.max_module_size:
            raise ResourceLimitExceeded(
                f"module is {len(wasm)} bytes, over the {self.max_module_size}-byte limit",
                hint="raise the module size limit or strip the module",
            )
        digest = sha256(wasm).hexdigest()
        known = self._validated.get(digest)
        if known is not None:
            module, imports, exports = known
            cache = "memory"
        else:
            timeout = self.compile_timeout if compile_timeout is None else compile_timeout
            module, cache, shape = self._compile(wasm, digest, name, timeout)
            if shape is None:
                shape = scan(wasm, name)
            imports = _validate_imports(shape, name, self.host_functions)
            exports = _validate_exports(shape)
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
        return wasm_bytes(source, max_module_size=self.max_module_size)

    def _compile(
        self, wasm: bytes, digest: str, name: str, timeout: float
    ) -> tuple[wasmtime.Module, str, ModuleShape | None]:
        """The compiled module, where it came from, and its shape when it was read here.

        A module is validated and scanned (:func:`vudo.engine.binary.scan`) before it is
        compiled; one from the memory or disk cache passed both when it was compiled.
        """
        module = self._compiled.get(digest)
        if module is not None:
            return module, "memory", None
        status = "off"
        if self.cache is not None:
            module, corrupt = self.cache.get(self.wasm_engine, digest)
            if module is not None:
                self.cache.hits += 1
                self._compiled[digest] = module
                _bound(self._compiled)
                return module, "hit", None
            status = "recompiled" if corrupt else "miss"
            if corrupt:
                self.cache.recompiled += 1
            else:
                self.cache.misses += 1
        shape = describe(wasm, name)
        small = (
            shape.functions <= IN_PROCESS_FUNCTIONS and shape.code_bytes <= IN_PROCESS_CODE_BYTES
        )
        code: bytes | None = None
        try:
            if small:
                module = wasmtime.Module(self.wasm_engine, wasm)
            else:
                code = self._compile_in_child(wasm, name, timeout)
                module = wasmtime.Module.deserialize(self.wasm_engine, code)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise translate(exc, during="compile") from None
        if self.cache is not None:
            self.cache.put(digest, code if code is not None else bytes(module.serialize()))
        self._compiled[digest] = module
        _bound(self._compiled)
        return module, status, shape

    def _compile_in_child(self, wasm: bytes, name: str, timeout: float) -> bytes:
        """Serialized code compiled by a child process within the compile budget."""
        import subprocess  # lazy: subprocess (~6 ms) only when a cache miss compiles in a child

        argv = [
            sys.executable,
            "-I",
            compiler.__file__,
            str(self.max_wasm_stack),
            str(self.compile_memory),
        ]
        try:
            # a day is "no limit" (--timeout 1e308 would overflow the wait)
            child = subprocess.run(
                argv, input=wasm, capture_output=True, timeout=min(timeout, 86_400.0), check=False
            )
        except subprocess.TimeoutExpired:
            raise ResourceLimitExceeded(
                f"{name}: compiling took longer than {timeout:g} s",
                hint="the module is too big to compile in time; raise --timeout (it also "
                "bounds compiling) or split the Spirit",
            ) from None
        if child.returncode == 0:
            return child.stdout
        if child.returncode == 3:
            raise translate(
                wasmtime.WasmtimeError(child.stderr.decode("utf-8", "replace")), during="compile"
            )
        raise ResourceLimitExceeded(
            f"{name}: compiling needs more than {self.compile_memory} bytes of memory",
            hint="the module is too big to compile; split the Spirit or strip it",
        )

    def instance_pre(self, module: SpiritModule) -> wasmtime.InstancePre:
        """The module linked against the host functions, ready to instantiate cheaply."""
        pre = self._pre.get(module.digest)
        if pre is None:
            with self._lock:
                linker = self._linkers.get(module.uses_wasi)
                if linker is None:
                    linker = self._linkers[module.uses_wasi] = self._link(module.uses_wasi)
                try:
                    pre = linker.instantiate_pre(module.wasm_module)
                except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
                    raise translate(exc, during="instantiate") from None
                self._pre[module.digest] = pre
                _bound(self._pre)
        return pre

    def _link(self, wasi: bool) -> wasmtime.Linker:
        """A linker with the ABI's host functions, the application's, and (``wasi``)
        WASI preview1's."""
        # lazy: engine.host (~25 ms) only to instantiate; load/inspect skip it
        from vudo.engine.host import define_custom, define_imports

        linker = wasmtime.Linker(self.wasm_engine)
        define_imports(linker)
        if wasi:
            from vudo.engine.wasi import define_wasi  # lazy: only WASI programs need it

            define_wasi(linker)
        if self.host_functions is not None:
            self._custom_callbacks.extend(define_custom(linker, self.host_functions))
        return linker

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


def wasm_bytes(
    source: bytes | str | Path, *, max_module_size: int = DEFAULT_MAX_MODULE_SIZE
) -> bytes:
    """A wasm binary from a binary, WAT text, or a ``.wasm``/``.wat`` file: the one reader
    of module files (``Engine.load``, ``vudo run FILE``, a module's identity). A file is
    refused before it is read when it is over 4x ``max_module_size`` (WAT may be ~4x its
    binary); a ``.wasm`` without the header is not taken for WAT; WAT goes through
    :func:`vudo.engine.traps.parse_wat`. NotFoundError, ResourceLimitExceeded or
    ModuleError otherwise."""
    if isinstance(source, Path):
        try:
            size = source.stat().st_size
        except OSError:
            raise NotFoundError(f"no such module file: {source}", hint="check the path") from None
        if size > 4 * max_module_size:
            raise ResourceLimitExceeded(
                f"{source} is {size} bytes, over the {4 * max_module_size}-byte limit for a "
                "module file",
                hint="raise the module size limit, strip the module, or split the Spirit",
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
        where = f"{source}: " if isinstance(source, Path) else ""
        raise ModuleError(
            f"{where}not a WebAssembly module: neither wasm binary nor UTF-8 WAT text",
            hint="pass a .wasm file or .wat source",
        ) from None
    return parse_wat(text, str(source) if isinstance(source, Path) else None)


def validate(wasm: bytes) -> None:
    """wasmtime's validation of a wasm binary (linear time, no code generation);
    ModuleError naming what is wrong."""
    try:
        wasmtime.Module.validate(_validator(), wasm)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        raise translate(exc, during="compile") from None


def describe(wasm: bytes, name: str = "spirit") -> ModuleShape:
    """Validate a wasm binary and read its shape, without compiling it.

    The one guard every loader path goes through (``Engine.load``; ``vudo build``,
    ``vudo check`` and ``vudo doc`` through ``vudo.project.build.inspect_module``):
    :func:`validate`, then :func:`vudo.engine.binary.scan` reads the imports and exports,
    failing closed on anything the engine could not describe safely. Raises ModuleError.
    """
    validate(wasm)
    return scan(wasm, name)


def check_module(
    wasm: bytes, name: str = "spirit", *, foreign: frozenset[str] = frozenset()
) -> tuple[ModuleShape, tuple[str, ...], tuple[ExportedFunc, ...]]:
    """Everything ``Engine.load`` checks short of compiling: :func:`describe`, then the
    host imports against the ABI table (names and signatures). For ``vudo build`` and
    ``vudo check``, so a module they pass is one ``vudo run`` loads. Raises ModuleError.

    ``foreign`` names import modules of the application a plugin is built for (its
    manifest's ``x:APP.NAME`` capabilities): their functions are defined only when that
    application embeds vudo (:mod:`vudo.engine.custom`), so here any plain function
    import from them passes (named ``"APP.name"``); the engine that runs the Spirit checks
    each against the application's definition.
    """
    shape = describe(wasm, name)
    return shape, _validate_imports(shape, name, foreign=foreign), _validate_exports(shape)


_VALIDATOR: list[wasmtime.Engine] = []


def _validator() -> wasmtime.Engine:
    """An engine with vudo's configuration, shared by every validation in this process."""
    if not _VALIDATOR:
        _VALIDATOR.append(wasmtime.Engine(engine_config(512 * 1024)))
    return _VALIDATOR[0]


def _validate_imports(
    shape: ModuleShape,
    name: str,
    custom: HostFunctions | None = None,
    *,
    foreign: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """The module's host imports, after checking each (name and signature) against the ABI
    table, WASI preview1's (named ``wasi_snapshot_preview1.<name>``) or ``custom`` (the
    application's own, named ``"<module>.<name>"``); ModuleError otherwise."""
    names: list[str] = []
    for imp in shape.imports:
        where = f'import "{imp.module}" "{imp.name}"'
        defined = custom.get(imp.module, imp.name) if custom is not None else None
        if defined is not None:
            _check_import_type(imp, name, where, (defined.params, defined.results))
            names.append(defined.label)
            continue
        if imp.module in foreign and imp.module not in (HOST_MODULE, WASI_MODULE):
            _check_import_type(imp, name, where, (imp.params, imp.results))
            names.append(f"{imp.module}.{imp.name}")
            continue
        if imp.module == WASI_MODULE:
            expected = WASI_SIGNATURES.get(imp.name)
            if expected is None:
                raise ModuleError(
                    f"{name}: {where} is not a WASI preview1 function",
                    hint="vudo implements wasi_snapshot_preview1 as its witx defines it; "
                    "see docs/wasi.md",
                )
            _check_import_type(imp, name, where, expected)
            names.append(f"{WASI_MODULE}.{imp.name}")
            continue
        if imp.module != HOST_MODULE:
            raise ModuleError(
                f'{name}: {where} is not from module "{HOST_MODULE}" or "{WASI_MODULE}"',
                hint=f'Spirits import host functions only from "{HOST_MODULE}" '
                f'(or WASI preview1, "{WASI_MODULE}"); a plugin of an application runs '
                "inside it, which defines its host functions (vudo.HostFunctions)",
            )
        row = ABI.get(imp.name)
        if row is None:
            raise ModuleError(
                f"{name}: unknown host function {where}",
                hint="see DESIGN.md §1 for the host functions a Spirit may import",
            )
        _check_import_type(imp, name, where, (row.params, row.results))
        names.append(imp.name)
    return tuple(names)


def _check_import_type(
    imp: Any, name: str, where: str, expected: tuple[tuple[str, ...], tuple[str, ...]]
) -> None:
    """ModuleError unless the import is a plain function of the ``expected`` type."""
    if imp.kind != "func":
        raise ModuleError(
            f"{name}: {where} must be a function {format_signature(*expected)}",
            hint="import it as a function",
        )
    got = (imp.params, imp.results)
    if not imp.plain:
        raise ModuleError(
            f"{name}: {where} is declared with a non-final or recursive (rec group) "
            "type, which no host function has",
            hint=f"declare it as a plain function type {format_signature(*expected)}",
        )
    if got != expected:
        raise ModuleError(
            f"{name}: {where} has signature {format_signature(*got)}, "
            f"expected {format_signature(*expected)}",
            hint="fix the import's declared type",
        )


def _validate_exports(shape: ModuleShape) -> tuple[ExportedFunc, ...]:
    """The exported functions. A module need not export memory (DESIGN.md §1): pure
    compute needs none, and a host call given a pointer then returns INVALID_MEMORY."""
    return tuple(
        ExportedFunc(exp.name, exp.params, exp.results)
        for exp in shape.exports
        if exp.kind == "func"
    )
