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
    "host_spirit_call": ((I32, I32, I32, I32, I32, I32, I32, I32), (I64,)),
    "host_sandbox_spawn": ((I32, I32), (I64,)),
    "host_sandbox_call": ((I64, I32, I32, I32, I32, I32, I32), (I64,)),
    "host_sandbox_close": ((I64,), (I32,)),
}


def format_signature(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"
