"""Helpers for the WASI tests: build C programs with the ziglang wheel (cached), and run
a module under raw wasmtime-py WASI, the reference vudo is compared with."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import wasmtime

PROGRAMS = Path(__file__).parent / "wasi_programs"


def _cache_dir() -> Path:
    root = os.environ.get("VUDO_TEST_CACHE") or str(Path.home() / ".cache" / "vudo-tests")
    path = Path(root) / "wasi"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_c(source: Path, *, target: str = "wasm32-wasi", extra: tuple[str, ...] = ()) -> Path:
    """Compile ``source`` with ``python -m ziglang cc`` once; later calls (and later test
    sessions) reuse the output, keyed by the source, the flags and the zig version."""
    import importlib.metadata

    flags = ("-O2", "-s", f"--target={target}", *extra)
    key = hashlib.sha256(
        source.read_bytes() + repr(flags).encode() + importlib.metadata.version("ziglang").encode()
    ).hexdigest()[:20]
    suffix = ".wasm" if target.startswith("wasm") else ""
    out = _cache_dir() / f"{source.stem}-{key}{suffix}"
    if not out.exists():
        tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
        subprocess.run(
            [sys.executable, "-m", "ziglang", "cc", *flags, "-o", str(tmp), str(source)],
            check=True,
            capture_output=True,
            timeout=900,
        )
        tmp.replace(out)
    return out


class Outcome(NamedTuple):
    code: int
    stdout: bytes
    stderr: bytes


def reference(
    wasm: Path,
    argv: tuple[str, ...],
    *,
    env: dict[str, str] | None = None,
    dirs: tuple[tuple[str, str], ...] = (),
    stdin: bytes = b"",
) -> Outcome:
    """Run ``wasm``'s ``_start`` under wasmtime-py's own WASI (the reference)."""
    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(wasm))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory() as tmp:
        out, err, inp = (Path(tmp) / n for n in ("out", "err", "in"))
        inp.write_bytes(stdin)
        config = wasmtime.WasiConfig()
        config.argv = list(argv)
        if env:
            config.env = list(env.items())
        for host, guest in dirs:
            config.preopen_dir(host, guest)
        config.stdout_file = str(out)
        config.stderr_file = str(err)
        config.stdin_file = str(inp)
        store.set_wasi(config)
        instance = linker.instantiate(store, module)
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
            code = 0
        except wasmtime.ExitTrap as exc:
            code = exc.code
        return Outcome(code, out.read_bytes(), err.read_bytes())


class VudoOutcome(NamedTuple):
    code: int
    stdout: bytes
    stderr: bytes
    calls: list[tuple[str, bool, int]]  # (function, allowed, result) from the host-call log
    receipt: object


def run_vudo(
    engine: object, wasm: Path | str, argv: tuple[str, ...], config: object
) -> VudoOutcome:
    """Run ``_start`` of ``wasm`` in a vudo sandbox with ``config`` (argv set here)."""
    from vudo.engine import Sandbox
    from vudo.engine.traps import ProcessExit

    module = engine.load(wasm if isinstance(wasm, str) else Path(wasm))  # type: ignore[attr-defined]
    with Sandbox(engine, module, config._replace(argv=argv)) as sandbox:  # type: ignore[arg-type,attr-defined]
        sandbox.instantiate()
        with contextlib.suppress(ProcessExit):
            sandbox.call("_start")
        code = sandbox.exit_code if sandbox.exit_code is not None else 0
        calls = [(c.function, c.allowed, c.result) for c in sandbox.host_calls()]
        return VudoOutcome(
            code,
            sandbox.output("stdout"),
            sandbox.output("stderr"),
            calls,
            sandbox.receipt(),
        )
