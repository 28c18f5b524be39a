"""WASI preview1 (``wasi_snapshot_preview1``) as a table: every function's core wasm
signature and the capabilities it may need (DESIGN.md §1 "WASI preview1").

The loader validates a module's WASI imports against :data:`WASI_SIGNATURES` (an unknown
function or a wrong signature is a ModuleError at load), the linker defines exactly these
functions (:mod:`vudo.engine.wasi` implements them) and ``vudo build`` lints them against
the manifest's capabilities with :data:`WASI_CAPABILITIES`. A pure table, cheap to import.
"""

from __future__ import annotations

from vudo.capabilities import Capability

I32 = "i32"
I64 = "i64"

#: Import module name of WASI preview1 (what wasi-libc, Rust's wasm32-wasip1 and Zig emit).
WASI_MODULE = "wasi_snapshot_preview1"

_P1 = (I32,)
_P2 = (I32, I32)
_P3 = (I32, I32, I32)
_R = (I32,)

#: Every WASI preview1 function (WebAssembly/WASI ``witx/wasi_snapshot_preview1.witx``) as
#: the core wasm signature a toolchain imports: pointers, sizes, fds and flags are i32,
#: 64-bit values (timestamps, offsets, rights, file sizes) are i64, results are an errno.
WASI_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "args_get": (_P2, _R),
    "args_sizes_get": (_P2, _R),
    "environ_get": (_P2, _R),
    "environ_sizes_get": (_P2, _R),
    "clock_res_get": (_P2, _R),
    "clock_time_get": ((I32, I64, I32), _R),
    "fd_advise": ((I32, I64, I64, I32), _R),
    "fd_allocate": ((I32, I64, I64), _R),
    "fd_close": (_P1, _R),
    "fd_datasync": (_P1, _R),
    "fd_fdstat_get": (_P2, _R),
    "fd_fdstat_set_flags": (_P2, _R),
    "fd_fdstat_set_rights": ((I32, I64, I64), _R),
    "fd_filestat_get": (_P2, _R),
    "fd_filestat_set_size": ((I32, I64), _R),
    "fd_filestat_set_times": ((I32, I64, I64, I32), _R),
    "fd_pread": ((I32, I32, I32, I64, I32), _R),
    "fd_prestat_get": (_P2, _R),
    "fd_prestat_dir_name": (_P3, _R),
    "fd_pwrite": ((I32, I32, I32, I64, I32), _R),
    "fd_read": ((I32, I32, I32, I32), _R),
    "fd_readdir": ((I32, I32, I32, I64, I32), _R),
    "fd_renumber": (_P2, _R),
    "fd_seek": ((I32, I64, I32, I32), _R),
    "fd_sync": (_P1, _R),
    "fd_tell": (_P2, _R),
    "fd_write": ((I32, I32, I32, I32), _R),
    "path_create_directory": (_P3, _R),
    "path_filestat_get": ((I32, I32, I32, I32, I32), _R),
    "path_filestat_set_times": ((I32, I32, I32, I32, I64, I64, I32), _R),
    "path_link": ((I32, I32, I32, I32, I32, I32, I32), _R),
    "path_open": ((I32, I32, I32, I32, I32, I64, I64, I32, I32), _R),
    "path_readlink": ((I32, I32, I32, I32, I32, I32), _R),
    "path_remove_directory": (_P3, _R),
    "path_rename": ((I32, I32, I32, I32, I32, I32), _R),
    "path_symlink": ((I32, I32, I32, I32, I32), _R),
    "path_unlink_file": (_P3, _R),
    "poll_oneoff": ((I32, I32, I32, I32), _R),
    "proc_exit": (_P1, ()),
    "proc_raise": (_P1, _R),
    "sched_yield": ((), _R),
    "random_get": (_P2, _R),
    "sock_accept": (_P3, _R),
    "sock_recv": ((I32, I32, I32, I32, I32, I32), _R),
    "sock_send": ((I32, I32, I32, I32, I32), _R),
    "sock_shutdown": (_P2, _R),
}


#: The WASI preview1 functions (module ``wasi_snapshot_preview1``) that reach outside the
#: guest, and the capability each may need (DESIGN.md §1 "WASI preview1"); every other
#: preview1 function needs none of its own (stdio, args, fds the guest already holds).
#: ``path_open`` needs storage_read or storage_write depending on how it opens; a path
#: call needs its capability with the scope ``path:<host dir>`` of its preopen.
WASI_CAPABILITIES: dict[str, tuple[Capability, ...]] = {
    "environ_get": (Capability.SENSOR_ENVIRONMENT,),
    "environ_sizes_get": (Capability.SENSOR_ENVIRONMENT,),
    "clock_time_get": (Capability.SENSOR_TIME,),
    "clock_res_get": (Capability.SENSOR_TIME,),
    "random_get": (Capability.SENSOR_RANDOM,),
    "path_open": (Capability.STORAGE_READ, Capability.STORAGE_WRITE),
    "path_filestat_get": (Capability.STORAGE_READ,),
    "path_readlink": (Capability.STORAGE_READ,),
    "fd_readdir": (Capability.STORAGE_READ,),
    "path_create_directory": (Capability.STORAGE_WRITE,),
    "path_filestat_set_times": (Capability.STORAGE_WRITE,),
    "path_link": (Capability.STORAGE_WRITE,),
    "path_symlink": (Capability.STORAGE_WRITE,),
    "path_rename": (Capability.STORAGE_WRITE, Capability.STORAGE_DELETE),
    "path_unlink_file": (Capability.STORAGE_DELETE,),
    "path_remove_directory": (Capability.STORAGE_DELETE,),
    "sock_accept": (Capability.NETWORK_LISTEN,),
}
