"""The wasmtime configuration every vudo engine uses, and the child process that compiles
modules too big to compile in the engine's own process.

Compiling cannot be interrupted inside a process, and its time and memory grow with the
module, faster than linearly for some shapes (200,000 tiny functions: minutes and
gigabytes; 40,000 nested blocks in 280 KiB: 168 s). So the engine compiles a big
module by running this file as a script in a child process, with ``RLIMIT_AS`` as the
memory budget and a wall-clock deadline; the child writes the serialized artifact to
stdout and the engine deserializes it (and stores it in the module cache). The script
imports only the standard library and wasmtime: it starts in about 0.15 s.

Protocol: argv is ``MAX_WASM_STACK MEMORY_BYTES``, stdin the (already validated) wasm.
Exit 0 with the artifact on stdout; exit 3 with wasmtime's message on stderr when it
refuses the module. Running out of memory kills the child (Rust aborts on a failed
allocation), which the engine reports as the memory budget.
"""

from __future__ import annotations

import sys

import wasmtime
from wasmtime import _bindings as ffi

ASYNC_STACK_SIZE = 16 * 1024 * 1024


def engine_config(max_wasm_stack: int) -> wasmtime.Config:
    """The one wasmtime configuration: fuel metering and epoch interruption on, memory
    that does not move."""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = max_wasm_stack
    # Linear memory stays where it was first mapped (it grows in place, within the 4 GiB
    # reservation of a 32-bit memory): host functions keep one view of it for the life
    # of the instance instead of asking wasmtime for its address on every call.
    config.memory_may_move = False
    # Live calls (SandboxConfig.live) run on a fiber of this size: the guest's wasm stack
    # plus the Python frames of host functions and of callees' sandboxes it reaches.
    # Reserved, not committed, and no part of the compiled code (the cache key is unchanged).
    ffi.wasmtime_config_async_stack_size_set(config.ptr(), ASYNC_STACK_SIZE)
    return config


def main(argv: list[str]) -> int:
    import resource  # lazy: only the compile child sets limits, and resource is Unix-only

    max_wasm_stack, memory = int(argv[0]), int(argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    wasm = sys.stdin.buffer.read()
    try:
        engine = wasmtime.Engine(engine_config(max_wasm_stack))
        artifact = wasmtime.Module(engine, wasm).serialize()
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        sys.stderr.write(str(exc))
        return 3
    except MemoryError:
        return 13
    sys.stdout.buffer.write(bytes(artifact))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
