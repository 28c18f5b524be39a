"""WASI benchmarks: vudo's preview1 (Python, every call checked, charged and logged)
against raw wasmtime-py's own WASI (``Linker.define_wasi``), same module, same process.

Run: ``python benches/wasi.py``. Builds ``benches/wasi_bench.c`` with the ziglang wheel
(``wasm32-wasi``, cached under ~/.cache/vudo-tests), then prints, each as "vudo vs raw"
with the ratio:

(a) 100,000 ``fd_write`` calls of 6 bytes to stdout (wasmtime: to a file; vudo: the
    stdout stream, buffered by RunIO);
(b) 10,000 small file reads in a preopened directory (open + read + close each; vudo with
    a ``path:`` grant for storage_read).

(c) 100,000 ``printf`` lines through wasi-libc's stdio (buffered: a few hundred
    ``fd_write`` calls), what most programs do.

Each line gives wall time and CPU time (``time.process_time``: every thread of the
process, so wasmtime's own WASI is charged for the worker threads it does file I/O on;
on a shared machine CPU time moves much less than wall time), the best of three runs
each, and raw wasmtime-py with fuel metering on, to separate the cost of metering from
the cost of the Python host functions.
No assertions: the numbers are for the report (target: at most 2x).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "engine"))

from engine_helpers import config, grant  # noqa: E402  (test helpers: keys and grants)

from _common import sized  # noqa: E402
from vudo.capabilities import Capability  # noqa: E402
from vudo.engine import Engine, Limits, Sandbox  # noqa: E402
from vudo.engine.config import Preopen  # noqa: E402

WRITES = sized(100_000, 100)
READS = sized(10_000, 10)


def build() -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "engine"))
    from wasi_helpers import build_c

    return build_c(Path(__file__).with_name("wasi_bench.c"))


Timing = tuple[float, float, bytes]


def raw(wasm: Path, argv: list[str], data: Path, *, fuel: bool = False) -> Timing:
    """wasmtime's own WASI: (wall seconds, CPU seconds, what the program wrote to stdout)."""
    cfg = wasmtime.Config()
    if fuel:
        cfg.consume_fuel = True
    engine = wasmtime.Engine(cfg)
    module = wasmtime.Module.from_file(engine, str(wasm))
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        if fuel:
            store.set_fuel(10**12)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = str(Path(tmp) / "out")
        wasi.preopen_dir(str(data), "/data")
        store.set_wasi(wasi)
        start = linker.instantiate(store, module).exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as exc:
            assert exc.code == 0
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
        return elapsed, used, (Path(tmp) / "out").read_bytes()


def ours(engine: Engine, wasm: Path, argv: list[str], data: Path) -> Timing:
    """vudo's WASI: (wall seconds, CPU seconds, what the program wrote to stdout)."""
    module = engine.load(wasm)
    cfg = config(
        grant(Capability.STORAGE_READ, f"path:{data}"),
        argv=tuple(argv),
        preopens=(Preopen(str(data), "/data"),),
        fuel=10**12,
        timeout=600.0,
        limits=Limits(max_output_bytes=64 << 20),
    )
    started, cpu = time.perf_counter(), time.process_time()
    with Sandbox(engine, module, cfg) as sandbox:
        sandbox.instantiate()
        sandbox.call("_start")
        assert sandbox.exit_code in (None, 0)
        out = sandbox.output("stdout")
    return time.perf_counter() - started, time.process_time() - cpu, out


def best(run: Callable[[], Timing], repeat: int = sized(3, 1)) -> Timing:
    """The least wall and the least CPU time of ``repeat`` runs, and the output (the
    same every time)."""
    runs = [run() for _ in range(repeat)]
    assert len({out for _, _, out in runs}) == 1
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main() -> None:
    wasm = build()
    with tempfile.TemporaryDirectory() as tmp, Engine() as engine:
        data = Path(tmp)
        (data / "small.txt").write_text("a small file of a few dozen bytes, read again\n")
        engine.load(wasm)  # compile once: the comparison is of running, not compiling
        for label, argv in (
            (f"(a) {WRITES:,} fd_write to stdout", ["b", "write", str(WRITES)]),
            (f"(b) {READS:,} small file reads", ["b", "read", str(READS)]),
            (f"(c) {WRITES:,} printf lines (stdio)", ["b", "printf", str(WRITES)]),
        ):
            base, base_cpu, expected = best(lambda a=argv: raw(wasm, a, data))
            metered, metered_cpu, _ = best(lambda a=argv: raw(wasm, a, data, fuel=True))
            mine, mine_cpu, out = best(lambda a=argv: ours(engine, wasm, a, data))
            # the same work on both sides: the same bytes on stdout
            assert out == expected, (label, len(out), len(expected))
            print(
                f"{label}: wall: vudo {mine * 1000:.0f} ms vs raw {base * 1000:.0f} ms "
                f"= {mine / base:.2f}x; CPU: vudo {mine_cpu * 1000:.0f} ms vs raw "
                f"{base_cpu * 1000:.0f} ms = {mine_cpu / base_cpu:.2f}x  (raw with fuel "
                f"metering: {metered * 1000:.0f} ms wall, {metered_cpu * 1000:.0f} ms CPU)"
            )


if __name__ == "__main__":
    main()
