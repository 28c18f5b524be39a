"""Engine benchmarks against raw wasmtime-py, measured in one process on the same module.

Run: ``python benches/engine.py``. Prints, each as "vudo vs raw" with the ratio:

(a) warm start: module already compiled (cache), create sandbox, instantiate, first call
    vs raw wasmtime-py Store + Linker + instantiate + call;
(b) host-call round trip (host_log with capability check, fuel charge, bounds check,
    UTF-8 check and host-call log) vs a bare wasmtime-py Python host function;
(c) compute with fuel metering on vs off;
(d) cold start (empty disk cache: compile) vs warm start (disk cache hit), fresh engine.
    The module has more than 4 KiB of code, so the cold start compiles in a child process
    (the compile budget, about 0.15 s of process start-up); the warm start does not;
(e) bytes round trip, 1 KiB and 1 MiB: ``Sandbox.call(input=...)`` + ``output()``, the
    guest reading its input with host_input_len/host_input_read and writing it back with
    host_output_write (three checked, logged, fuel-charged host calls), vs copying the
    same bytes into guest memory with wasmtime-py's ``Memory.write``, calling an export
    with (ptr, len) and copying them out with ``Memory.read`` (target: at most 1.5x);
(f) an application host function (vudo.HostFunctions: fuel charge, custom capability
    check against a signed grant, host-call log, receipt count) called 20,000 times from
    the guest vs the same Python function given to wasmtime-py's ``define_func``.

(f) a Python -> guest call with no payload: ``Sandbox.call`` vs wasmtime-py's
    ``Func.__call__`` on the same export (target: at most 1.0x);
(g) the checked, logged host_log round trip vs the floor: the same import defined with
    wasmtime's unchecked API (``wasmtime_linker_define_func_unchecked``, raw arguments)
    doing the same work, reading and decoding the message from guest memory (target: at
    most 4x);
(h) live calls (``SandboxConfig.live``, the workbench's runs: fuel samples during pure
    compute, refuel-and-continue) vs plain calls: a compute loop and a host-call loop.

No assertions: the numbers are for the report.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing
import wasmtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import sized
from vudo.capabilities import Capability
from vudo.engine import Engine, Sandbox, SandboxConfig
from vudo.engine.engine import SpiritModule
from vudo.engine.grants import Scope, issue_grant

WAT = """
(module
  (import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from the guest")
  (func (export "main") (result i32) (i32.const 42))
  (func (export "logmany") (param $n i32) (result i32) (local $r i32)
    (block $b (loop $l
      (br_if $b (i32.eqz (local.get $n)))
      (local.set $r (call $log (i32.const 2) (i32.const 0) (i32.const 20)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $r))
  (func (export "compute") (param $n i32) (result i32) (local $acc i32)
    (block $b (loop $l
      (br_if $b (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $acc))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $b (loop $l
      (br_if $b (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store (i32.and (i32.mul (local.get $i) (i32.const 4)) (i32.const 65532))
                 (local.get $i))
      (local.set $acc (i32.add (local.get $acc)
        (i32.load (i32.and (i32.mul (local.get $i) (i32.const 8)) (i32.const 65532)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $acc))
  %s
)
"""
#: Rounds each paired measurement takes (the median is reported).
REPEAT = sized(7, 1)
# Extra functions so compilation takes measurable time (for the cache comparison).
FILLER = "\n".join(
    f'(func (export "f{i}") (param i32) (result i32) '
    f"(i32.add (i32.mul (local.get 0) (i32.const {i})) (i32.const {i * 7})))"
    for i in range(300)
)
WASM = bytes(wasmtime.wat2wasm(WAT % ""))
BIG_WASM = bytes(wasmtime.wat2wasm(WAT % FILLER))

KEY = nacl.signing.SigningKey(bytes([9]) * 32)
ME = nacl.signing.SigningKey(bytes([8]) * 32)
ME_HEX = bytes(ME.verify_key).hex()
GRANTS = (issue_grant(KEY, Capability.ACTUATOR_LOG, Scope.global_(), ME_HEX, issued_at=1),)
CONFIG = SandboxConfig(
    grants=GRANTS,
    trusted_granters=(bytes(KEY.verify_key).hex(),),
    identity=ME_HEX,
    log_to_stderr=False,
)
LOG_TYPE = wasmtime.FuncType([wasmtime.ValType.i32()] * 3, [wasmtime.ValType.i32()])


ECHO_WAT = """
(module
  (import "vudo" "host_input_len" (func $len (result i64)))
  (import "vudo" "host_input_read" (func $read (param i32 i32 i64) (result i32)))
  (import "vudo" "host_output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 20)
  (func (export "echo") (result i32) (local $n i32)
    (local.set $n (call $read (i32.const 1024) (i32.wrap_i64 (call $len)) (i64.const 0)))
    (call $write (i32.const 1024) (local.get $n)))
  (func (export "raw_echo") (param $ptr i32) (param $len i32) (result i32) (local.get $len)))
"""


def bytes_round_trip(engine: Engine) -> None:
    """(e): see the module doc."""
    wasm = bytes(wasmtime.wat2wasm(ECHO_WAT))
    module = engine.load(wasm, name="echo")
    sb = Sandbox(engine, module, CONFIG._replace(fuel=10**15))
    sb.instantiate()
    raw_engine = wasmtime.Engine()
    store = wasmtime.Store(raw_engine)
    linker = wasmtime.Linker(raw_engine)
    i64 = wasmtime.FuncType([], [wasmtime.ValType.i64()])
    read = wasmtime.FuncType(
        [wasmtime.ValType.i32()] * 2 + [wasmtime.ValType.i64()], [wasmtime.ValType.i32()]
    )
    write = wasmtime.FuncType([wasmtime.ValType.i32()] * 2, [wasmtime.ValType.i32()])
    linker.define_func("vudo", "host_input_len", i64, lambda: 0)
    linker.define_func("vudo", "host_input_read", read, lambda p, n, o: 0)
    linker.define_func("vudo", "host_output_write", write, lambda p, n: 0)
    inst = linker.instantiate(store, wasmtime.Module(raw_engine, wasm))
    memory = inst.exports(store)["memory"]
    raw_echo = inst.exports(store)["raw_echo"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(raw_echo, wasmtime.Func)
    for size, number in ((1024, sized(2_000, 2)), (1024 * 1024, sized(20, 1))):
        data = bytes(range(256)) * (size // 256)

        def ours(data: bytes = data) -> bytes:
            sb.call("echo", input=data)
            return sb.output()

        def raw(data: bytes = data) -> bytes:
            memory.write(store, data, 1024)
            length = raw_echo(store, 1024, len(data))
            return memory.read(store, 1024, 1024 + length)

        assert ours() == data and raw() == data
        label = f"(e) bytes round trip, {size // 1024 if size < 1024 * 1024 else 1} "
        label += "KiB" if size < 1024 * 1024 else "MiB"
        report(label, *paired(ours, raw, sized(15, 1), number), names=("vudo", "by hand"))
    sb.close()


CUSTOM_WAT = """
(module
  (import "myapp" "add" (func $add (param i32 i32) (result i32)))
  (func (export "many") (param $n i32) (result i32) (local $r i32)
    (block $b (loop $l
      (br_if $b (i32.eqz (local.get $n)))
      (local.set $r (call $add (local.get $n) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $r)))
"""


def application_host_function() -> None:
    """(f): see the module doc."""
    from vudo.capabilities import CustomCapability
    from vudo.engine.custom import HostFunctions

    host = HostFunctions()
    host.define(
        "myapp", "add", lambda ctx, a, b: a + b, params=("i32", "i32"), capability="x:myapp.add"
    )
    wasm = bytes(wasmtime.wat2wasm(CUSTOM_WAT))
    grant = issue_grant(KEY, CustomCapability("x:myapp.add"), Scope.global_(), ME_HEX, issued_at=1)
    n = sized(20_000, 100)
    with Engine(host_functions=host) as engine:
        sb = Sandbox(engine, engine.load(wasm), CONFIG._replace(grants=(grant,), fuel=10**15))
        sb.instantiate()
        raw_engine = wasmtime.Engine()
        store = wasmtime.Store(raw_engine)
        linker = wasmtime.Linker(raw_engine)
        add_type = wasmtime.FuncType([wasmtime.ValType.i32()] * 2, [wasmtime.ValType.i32()])
        linker.define_func("myapp", "add", add_type, lambda a, b: a + b)
        many = linker.instantiate(store, wasmtime.Module(raw_engine, wasm)).exports(store)["many"]
        assert isinstance(many, wasmtime.Func)
        assert sb.call("many", [3]) == [2] and many(store, 3) == 2
        ours, raw = paired(lambda: sb.call("many", [n]), lambda: many(store, n), REPEAT, 1)
        assert sb.receipt().host_calls["x:myapp.add"]["denied"] == 0
        report(
            "(f) application host function round trip", ours / n, raw / n, names=("vudo", "bare fn")
        )
        sb.close()


def best(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Median over ``repeat`` rounds of the mean time of ``number`` calls, in seconds."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def paired(
    ours: Callable[[], object], raw: Callable[[], object], repeat: int, number: int
) -> tuple[float, float]:
    """Like :func:`best` for two contenders, alternating rounds so load spikes on a shared
    machine hit both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, out in ((ours, a), (raw, b)):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - start) / number)
    return statistics.median(a), statistics.median(b)


def report(
    label: str, ours: float, raw: float, unit: str = "us", names: tuple[str, str] = ("vudo", "raw")
) -> None:
    scale = 1e6 if unit == "us" else 1e3
    print(
        f"{label:<44} {names[0]} {ours * scale:10.1f} {unit}   {names[1]} "
        f"{raw * scale:10.1f} {unit}   ratio {ours / raw:5.2f}x"
    )


def main() -> None:
    engine = Engine()
    module = engine.load(WASM, name="bench")
    raw_engine = wasmtime.Engine()
    raw_module = wasmtime.Module(raw_engine, WASM)

    # (a) warm start
    def ours_start() -> None:
        mod = engine.load(WASM, name="bench")
        with Sandbox(engine, mod, CONFIG) as sb:
            sb.instantiate()
            sb.call("main")

    def raw_start() -> None:
        store = wasmtime.Store(raw_engine)
        linker = wasmtime.Linker(raw_engine)
        linker.define_func("vudo", "host_log", LOG_TYPE, lambda level, p, n: 0)
        inst = linker.instantiate(store, raw_module)
        func = inst.exports(store)["main"]
        assert isinstance(func, wasmtime.Func)
        func(store)

    for fn in (ours_start, raw_start):
        fn()
    report("(a) warm start + first call", *paired(ours_start, raw_start, REPEAT * 3, sized(100, 2)))

    # (b) host-call round trip
    n = sized(20_000, 200)
    sb = Sandbox(engine, module, CONFIG._replace(fuel=10**15))
    sb.instantiate()

    store = wasmtime.Store(raw_engine)
    linker = wasmtime.Linker(raw_engine)
    linker.define_func("vudo", "host_log", LOG_TYPE, lambda level, p, length: 0)
    inst = linker.instantiate(store, raw_module)
    logmany = inst.exports(store)["logmany"]
    assert isinstance(logmany, wasmtime.Func)

    store2 = wasmtime.Store(raw_engine)
    linker2 = wasmtime.Linker(raw_engine)

    def reading(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        memory.read(caller, ptr, ptr + length).decode()
        return 0

    linker2.define_func("vudo", "host_log", LOG_TYPE, reading, access_caller=True)
    inst2 = linker2.instantiate(store2, raw_module)
    logmany2 = inst2.exports(store2)["logmany"]
    assert isinstance(logmany2, wasmtime.Func)
    ours_calls, bare = paired(lambda: sb.call("logmany", [n]), lambda: logmany(store, n), REPEAT, 1)
    assert sb.receipt().host_calls["actuator_log"]["allowed"] >= n
    ours_calls2, bare_read = paired(
        lambda: sb.call("logmany", [n]), lambda: logmany2(store2, n), REPEAT, 1
    )
    ours_calls, bare, ours_calls2, bare_read = (
        x / n for x in (ours_calls, bare, ours_calls2, bare_read)
    )
    report("(b) host call: host_log round trip", ours_calls, bare, names=("vudo", "bare fn"))
    report(
        "    vs bare fn that reads the message", ours_calls2, bare_read, names=("vudo", "bare+mem")
    )

    # (c) compute, fuel on vs off
    iters = sized(5_000_000, 1_000)
    compute = inst.exports(store)["compute"]
    assert isinstance(compute, wasmtime.Func)
    on, off = paired(lambda: sb.call("compute", [iters]), lambda: compute(store, iters), REPEAT, 1)
    report(
        f"(c) compute: mul chain, {iters:,} iters",
        on,
        off,
        unit="ms",
        names=("fuel on", "fuel off"),
    )
    for label, name, arg in (
        ("(c) compute: recursive fib(27)", "fib", sized(27, 5)),
        ("(c) compute: load/store loop, 5M iters", "sum", iters),
    ):
        raw_func = inst.exports(store)[name]
        assert isinstance(raw_func, wasmtime.Func)
        on, off = paired(
            lambda name=name, arg=arg: sb.call(name, [arg]),
            lambda raw_func=raw_func, arg=arg: raw_func(store, arg),
            REPEAT,
            1,
        )
        report(label, on, off, unit="ms", names=("fuel on", "fuel off"))
    sb.close()

    # (d) cold vs warm start with the disk cache, fresh engine each time
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def cold() -> None:
            with Engine(cache_dir=Path(tmp) / f"c{next(counter)}") as eng:
                mod = eng.load(BIG_WASM, name="bench")
                assert mod.cache == "miss"
                with Sandbox(eng, mod, CONFIG) as box:
                    box.instantiate()
                    box.call("main")

        warm_dir = Path(tmp) / "warm"
        with Engine(cache_dir=warm_dir) as eng:
            eng.load(BIG_WASM)

        def warm() -> None:
            with Engine(cache_dir=warm_dir) as eng:
                mod = eng.load(BIG_WASM, name="bench")
                assert mod.cache == "hit"
                with Sandbox(eng, mod, CONFIG) as box:
                    box.instantiate()
                    box.call("main")

        report(
            "(d) new engine + load + run (304 funcs)",
            *paired(cold, warm, sized(5, 1), sized(2, 1)),
            unit="ms",
            names=("cold", "warm"),
        )

    bytes_round_trip(engine)
    call_and_host_floor(engine, module, raw_engine, raw_module)
    live_vs_plain(engine, module)
    engine.close()
    application_host_function()


def call_and_host_floor(
    engine: Engine, module: SpiritModule, raw_engine: wasmtime.Engine, raw_module: wasmtime.Module
) -> None:
    """(f) and (g)."""
    import ctypes

    from wasmtime import _bindings as ffi

    sb = Sandbox(engine, module, CONFIG._replace(fuel=10**15))
    sb.instantiate()
    store = wasmtime.Store(raw_engine)
    linker = wasmtime.Linker(raw_engine)

    memory_box: list[int] = [0]  # the memory is never grown here: its base stays put

    def floor(env: int, caller: int, args: Any, nargs: int) -> int:
        # the same work as host_log's: read the message out of guest memory, decode it
        ptr, length = args[1].i32, args[2].i32
        ctypes.string_at(memory_box[0] + ptr, length).decode()
        args[0].i64 = 0
        return 0

    callback = ffi.wasmtime_func_unchecked_callback_t(floor)
    ty = LOG_TYPE
    err = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), b"vudo", 4, b"host_log", 8, ty.ptr(), callback, None,
        ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
    )  # fmt: skip
    assert not err
    inst = linker.instantiate(store, raw_module)
    memory = inst.exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    memory_box[0] = ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value or 0
    main = inst.exports(store)["main"]
    logmany = inst.exports(store)["logmany"]
    assert isinstance(main, wasmtime.Func) and isinstance(logmany, wasmtime.Func)

    ours, raw = paired(lambda: sb.call("main"), lambda: main(store), REPEAT * 3, sized(5000, 5))
    report("(f) call, no payload", ours, raw, names=("vudo", "Func()"))

    n = sized(20_000, 200)
    ours, raw = paired(lambda: sb.call("logmany", [n]), lambda: logmany(store, n), REPEAT, 1)
    report(
        "(g) host call vs unchecked floor, same work", ours / n, raw / n, names=("vudo", "floor")
    )
    sb.close()
    callback.keep = True  # type: ignore[attr-defined]


def live_vs_plain(engine: Engine, module: SpiritModule) -> None:
    """(h): what a live call costs over a plain one."""
    plain = Sandbox(engine, module, CONFIG._replace(fuel=10**15))
    live = Sandbox(engine, module, CONFIG._replace(fuel=10**15, live=True))
    plain.instantiate()
    live.instantiate()
    iters = sized(5_000_000, 1_000)
    report(
        f"(h) compute: mul chain, {iters:,} iters",
        *paired(
            lambda: live.call("compute", [iters]), lambda: plain.call("compute", [iters]), REPEAT, 1
        ),
        unit="ms",
        names=("live", "plain"),
    )
    n = sized(20_000, 200)
    ours, raw = paired(
        lambda: live.call("logmany", [n]), lambda: plain.call("logmany", [n]), REPEAT, 1
    )
    report("(h) host call: host_log round trip", ours / n, raw / n, names=("live", "plain"))
    ours, raw = paired(
        lambda: live.call("main"), lambda: plain.call("main"), REPEAT * 3, sized(2000, 5)
    )
    report("(h) call, no payload", ours, raw, names=("live", "plain"))
    live.close()
    plain.close()


if __name__ == "__main__":
    main()
