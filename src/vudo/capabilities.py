"""The capability names every part of vudo shares.

A capability is the right to make one kind of host call. Manifests declare them, grants
carry them, the engine checks them on every host call. This module holds only the names
and what each allows, so the engine and the package core can both import it without
importing each other.
"""

from __future__ import annotations

from enum import StrEnum

from vudo.errors import InvalidInputError


class Capability(StrEnum):
    """The 15 capability types (DESIGN.md §2)."""

    NETWORK_LISTEN = "network_listen"
    NETWORK_CONNECT = "network_connect"
    NETWORK_BROADCAST = "network_broadcast"
    STORAGE_READ = "storage_read"
    STORAGE_WRITE = "storage_write"
    STORAGE_DELETE = "storage_delete"
    SPAWN_SANDBOX = "spawn_sandbox"
    CROSS_SANDBOX_CALL = "cross_sandbox_call"
    SENSOR_TIME = "sensor_time"
    SENSOR_RANDOM = "sensor_random"
    SENSOR_ENVIRONMENT = "sensor_environment"
    ACTUATOR_LOG = "actuator_log"
    ACTUATOR_NOTIFY = "actuator_notify"
    ACTUATOR_CREDIT = "actuator_credit"
    UNRESTRICTED = "unrestricted"

    @property
    def description(self) -> str:
        """One sentence on what holding this capability allows."""
        return DESCRIPTIONS[self]

    @property
    def manifest_grantable(self) -> bool:
        """Whether a manifest may ask for it (``unrestricted`` is for system Spirits only)."""
        return self is not Capability.UNRESTRICTED


DESCRIPTIONS: dict[Capability, str] = {
    Capability.NETWORK_LISTEN: "accept incoming network connections on a port",
    Capability.NETWORK_CONNECT: "open outgoing network connections to allowed hosts",
    Capability.NETWORK_BROADCAST: "send a message to every listening sandbox on this host",
    Capability.STORAGE_READ: "read keys from the Spirit's own key-value storage",
    Capability.STORAGE_WRITE: "write keys to the Spirit's own key-value storage",
    Capability.STORAGE_DELETE: "delete keys from the Spirit's own key-value storage",
    Capability.SPAWN_SANDBOX: "start other sandboxes",
    Capability.CROSS_SANDBOX_CALL: "call functions in other sandboxes",
    Capability.SENSOR_TIME: "read the current time",
    Capability.SENSOR_RANDOM: "read random bytes from the operating system",
    Capability.SENSOR_ENVIRONMENT: "read environment information",
    Capability.ACTUATOR_LOG: "write log messages",
    Capability.ACTUATOR_NOTIFY: "send notifications to the user",
    Capability.ACTUATOR_CREDIT: "read balances and move credit for the account it runs as",
    Capability.UNRESTRICTED: "everything (system Spirits only; never granted by a manifest)",
}

#: Every host import of the Spirit ABI (module "vudo") and the capability it needs
#: (DESIGN.md §1). The handle operations (accept, send, recv, close) need none of their
#: own: only a sandbox granted connect or listen can hold a handle, and a handle works only
#: in the sandbox that opened it. ``host_credit_account`` needs none either: it only tells
#: the Spirit its own account number.
ABI_IMPORTS: dict[str, Capability | None] = {
    "host_time_now": Capability.SENSOR_TIME,
    "host_random_bytes": Capability.SENSOR_RANDOM,
    "host_log": Capability.ACTUATOR_LOG,
    "host_storage_read": Capability.STORAGE_READ,
    "host_storage_write": Capability.STORAGE_WRITE,
    "host_storage_delete": Capability.STORAGE_DELETE,
    "host_network_connect": Capability.NETWORK_CONNECT,
    "host_network_listen": Capability.NETWORK_LISTEN,
    "host_network_accept": None,
    "host_network_send": None,
    "host_network_recv": None,
    "host_network_close": None,
    "host_network_broadcast": Capability.NETWORK_BROADCAST,
    "host_credit_balance": Capability.ACTUATOR_CREDIT,
    "host_credit_transfer": Capability.ACTUATOR_CREDIT,
    "host_credit_reserve": Capability.ACTUATOR_CREDIT,
    "host_credit_release": Capability.ACTUATOR_CREDIT,
    "host_credit_consume": Capability.ACTUATOR_CREDIT,
    "host_credit_available": Capability.ACTUATOR_CREDIT,
    "host_credit_account": None,
}


#: The WASI preview1 functions (module ``wasi_snapshot_preview1``) that reach outside the
#: guest, and the capability each may need (DESIGN.md §1 "WASI preview1"); every other
#: preview1 function needs none of its own (stdio, args, fds the guest already holds).
#: ``path_open`` needs storage_read or storage_write depending on how it opens; a path
#: call needs its capability with the scope ``path:<host dir>`` of its preopen.
WASI_IMPORTS: dict[str, tuple[Capability, ...]] = {
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


def parse_capability(name: str) -> Capability:
    """Parse a capability name, or raise InvalidInputError naming the closest match."""
    try:
        return Capability(name)
    except ValueError:
        import difflib  # lazy: only for the did-you-mean hint

        close = difflib.get_close_matches(name, [c.value for c in Capability], n=1)
        hint = f'did you mean "{close[0]}"?' if close else "`vudo capabilities` lists them"
        shown = name if len(name) <= 80 else f"{name[:64]}... ({len(name)} characters)"
        raise InvalidInputError(f'unknown capability "{shown}"', hint=hint) from None
