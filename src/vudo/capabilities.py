"""The capability names every part of vudo shares.

A capability is the right to make one kind of host call. Manifests declare them, grants
carry them, the engine checks them on every host call. This module holds only the names
and what each allows, so the engine and the package core can both import it without
importing each other. Which host function needs which capability is the ABI table's to
say (:data:`vudo.engine.abi.ABI`).
"""

from __future__ import annotations

import re
from enum import StrEnum

from vudo.errors import InvalidInputError

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import TypeAlias


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
    Capability.SENSOR_ENVIRONMENT: "read the variables given to the run, never the host's own",
    Capability.ACTUATOR_LOG: "write log messages",
    Capability.ACTUATOR_NOTIFY: "send notifications to the user",
    Capability.ACTUATOR_CREDIT: "read balances and move credit for the account it runs as",
    Capability.UNRESTRICTED: "everything (system Spirits only; never granted by a manifest)",
}


#: An application's own capability (guarding a host function it registered from Python,
#: :mod:`vudo.engine.custom`): ``x:`` then two to four dot-separated lower-case words,
#: e.g. ``x:myapp.lookup``. No built-in name has a colon, so the two can never collide.
CUSTOM_CAPABILITY = re.compile(r"x:[a-z][a-z0-9_-]{0,31}(?:\.[a-z][a-z0-9_-]{0,31}){1,3}")
CUSTOM_CAPABILITY_MAX = 64


class CustomCapability(str):
    """A custom capability name (``x:app.name``), checked whole when made.

    It answers ``value``, ``description`` and ``manifest_grantable`` like a
    :class:`Capability`, so grants, checks, logs and receipts treat both alike.
    """

    __slots__ = ()

    def __new__(cls, name: str) -> CustomCapability:
        if (
            not isinstance(name, str)
            or len(name) > CUSTOM_CAPABILITY_MAX
            or not CUSTOM_CAPABILITY.fullmatch(name)
        ):
            shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:64]}..."
            raise InvalidInputError(
                f'"{shown}" is not a custom capability name',
                hint='custom capabilities are "x:" and two to four dot-separated lower-case '
                'words, e.g. "x:myapp.lookup"',
            )
        return super().__new__(cls, name)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def description(self) -> str:
        return "call the application's host functions guarded by this capability"

    @property
    def manifest_grantable(self) -> bool:
        return True


AnyCapability: TypeAlias = Capability | CustomCapability


def parse_any_capability(name: str) -> AnyCapability:
    """A built-in capability, or a custom one (``x:...``); InvalidInputError otherwise."""
    if isinstance(name, str) and name.startswith("x:"):
        return CustomCapability(name)
    return parse_capability(name)


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
