"""Helpers for the engine tests: keys, grants, configs and WAT snippets."""

from __future__ import annotations

from typing import Any

import nacl.signing

from vudo.capabilities import Capability
from vudo.engine import SandboxConfig
from vudo.engine.grants import Grant, Scope, issue_grant

GRANTER = nacl.signing.SigningKey(bytes([1]) * 32)
GRANTER_HEX = bytes(GRANTER.verify_key).hex()
IDENTITY_KEY = nacl.signing.SigningKey(bytes([2]) * 32)
IDENTITY = bytes(IDENTITY_KEY.verify_key).hex()
OTHER_KEY = nacl.signing.SigningKey(bytes([3]) * 32)
OTHER = bytes(OTHER_KEY.verify_key).hex()


def grant(
    capability: Capability,
    scope: str = "global",
    *,
    expires_at: int | None = None,
    issued_at: int = 1_000,
    grantee: str = IDENTITY,
    key: nacl.signing.SigningKey = GRANTER,
) -> Grant:
    return issue_grant(
        key, capability, Scope.parse(scope), grantee, issued_at=issued_at, expires_at=expires_at
    )


def config(*caps: Capability | Grant, **kwargs: Any) -> SandboxConfig:
    """A quiet config for IDENTITY holding grants for ``caps`` from the trusted GRANTER."""
    grants = tuple(c if isinstance(c, Grant) else grant(c) for c in caps)
    kwargs.setdefault("log_to_stderr", False)
    kwargs.setdefault("timeout", 5.0)
    return SandboxConfig(
        grants=grants, trusted_granters=(GRANTER_HEX,), identity=IDENTITY, **kwargs
    )


def spirit(body: str, imports: str = "", memory: str = '(memory (export "memory") 1)') -> str:
    """A WAT module with the given host imports, an exported memory and ``body``."""
    return f"(module {imports} {memory} {body})"


IMPORTS = {
    "time": '(import "vudo" "host_time_now" (func $now (result i64)))',
    "random": '(import "vudo" "host_random_bytes" (func $random (param i32 i32) (result i32)))',
    "log": '(import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))',
    "read": '(import "vudo" "host_storage_read" (func $read (param i32 i32 i32 i32) (result i32)))',
    "write": '(import "vudo" "host_storage_write" '
    "(func $write (param i32 i32 i32 i32) (result i32)))",
    "delete": '(import "vudo" "host_storage_delete" (func $delete (param i32 i32) (result i32)))',
}
