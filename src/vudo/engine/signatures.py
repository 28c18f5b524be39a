"""The wasm types of every host import in the Spirit ABI (DESIGN.md §1).

Pointers and lengths are i32 (wasm32 guests); handles, amounts, ids and counts are i64.
The network handle calls vudo adds beside the table in DESIGN.md §1:

=====================  ==============================  =======================================
import                 signature                       meaning
=====================  ==============================  =======================================
host_network_accept    (listener i64) -> i64           wait for a connection on a listener
                                                       (until the run's deadline); returns a
                                                       connection handle
host_network_send      (handle i64, ptr, len) -> i64   send bytes; returns how many were sent
host_network_recv      (handle i64, ptr, cap) -> i64   receive up to cap bytes into ptr; returns
                                                       how many (0 = peer closed)
host_network_close     (handle i64) -> i32             close a connection or listener; 0
=====================  ==============================  =======================================

Every call returns a negative :class:`vudo.engine.abi.ErrorCode` on failure.
"""

from __future__ import annotations

I32 = "i32"
I64 = "i64"

#: import name -> (param types, result types)
IMPORT_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "host_time_now": ((), (I64,)),
    "host_random_bytes": ((I32, I32), (I32,)),
    "host_log": ((I32, I32, I32), (I32,)),
    "host_storage_read": ((I32, I32, I32, I32), (I32,)),
    "host_storage_write": ((I32, I32, I32, I32), (I32,)),
    "host_storage_delete": ((I32, I32), (I32,)),
    "host_network_connect": ((I32, I32), (I64,)),
    "host_network_listen": ((I32,), (I64,)),
    "host_network_accept": ((I64,), (I64,)),
    "host_network_send": ((I64, I32, I32), (I64,)),
    "host_network_recv": ((I64, I32, I32), (I64,)),
    "host_network_close": ((I64,), (I32,)),
    "host_network_broadcast": ((I32, I32), (I64,)),
    "host_credit_balance": ((I32,), (I64,)),
    "host_credit_transfer": ((I32, I32, I64), (I32,)),
    "host_credit_reserve": ((I32, I64), (I64,)),
    "host_credit_release": ((I64,), (I32,)),
    "host_credit_consume": ((I64,), (I32,)),
    "host_credit_available": ((I32,), (I64,)),
    "host_credit_account": ((I32,), (I32,)),
}


def format_signature(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


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
