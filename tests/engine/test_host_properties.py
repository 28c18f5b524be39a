"""Property: every ``vudo`` host function, called from a guest with arbitrary pointers,
lengths and values, returns a documented result and never raises into Python.

A documented result is a non-negative value (a length, handle, count, balance or time) or
one of the error codes of DESIGN.md §1. The only way a call may end the run instead is the
documented one: an in-bounds payload over its per-call limit stops the guest with
ResourceLimitExceeded. A Python exception escaping a host function would surface as a
guest trap, which fails the property.

Each example runs in a fresh sandbox (with and without grants) on real wasmtime, real
SQLite storage and ledger, and a loopback-only network scope. Examples are derandomized,
so the suite is deterministic; the counts keep the file to a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import config, grant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vudo.capabilities import Capability
from vudo.engine import Engine, Sandbox
from vudo.engine.abi import ABI, ErrorCode
from vudo.engine.config import Limits
from vudo.engine.services import HostServices
from vudo.errors import ResourceLimitExceeded

CODES = frozenset(int(code) for code in ErrorCode)
PAGE = 65536

# Pointers and lengths near the edges of one page of memory, and anything at all.
I32 = st.one_of(
    st.sampled_from(
        [0, 1, 8, 32, 64, PAGE - 32, PAGE - 1, PAGE, PAGE + 1, 2**31 - 1, -1, -(2**31)]
    ),
    st.integers(0, PAGE),
    st.integers(-(2**31), 2**31 - 1),
)
I64 = st.one_of(
    st.sampled_from([0, 1, 2, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1)
)
STRATEGY = {"i32": I32, "i64": I64}


def _forwarder(name: str) -> str:
    params, results = ABI[name].params, ABI[name].results
    p, r = " ".join(params), " ".join(results)
    gets = " ".join(f"(local.get {i})" for i in range(len(params)))
    # Memory holds some plausible inputs: a loopback address, a 32-byte account, UTF-8.
    return (
        f'(module (import "vudo" "{name}" (func $h (param {p}) (result {r}))) '
        '(memory (export "memory") 1) '
        '(data (i32.const 0) "127.0.0.1:9\\00hello\\ff\\fe") '
        '(data (i32.const 64) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d'
        '\\0e\\0f\\10\\11\\12\\13\\14\\15\\16\\17\\18\\19\\1a\\1b\\1c\\1d\\1e\\1f\\20") '
        f'(func (export "call") (param {p}) (result {r}) {gets} call $h))'
    )


def _grants() -> tuple[object, ...]:
    scoped = {Capability.NETWORK_CONNECT, Capability.NETWORK_LISTEN, Capability.NETWORK_BROADCAST}
    return tuple(
        grant(c, "domain:127.0.0.1:*") if c in scoped else grant(c)
        for c in Capability
        if c is not Capability.UNRESTRICTED
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostServices]:
    with HostServices.open(tmp_path_factory.mktemp("data")) as svc:
        yield svc


# Small limits so that hypothesis reaches the payload limits too.
LIMITS = Limits(
    max_log_bytes=256,
    max_random_bytes=256,
    max_storage_key=64,
    max_storage_value=1024,
    max_network_payload=1024,
)


@pytest.mark.parametrize("granted", [True, False], ids=["granted", "denied"])
@pytest.mark.parametrize("name", sorted(ABI))
def test_host_function_returns_only_documented_results(
    engine: Engine, services: HostServices, name: str, granted: bool
) -> None:
    params = ABI[name].params
    module = engine.load(_forwarder(name), name=name)
    cfg = config(
        *_grants() if granted else (),
        services=services,  # type: ignore[arg-type]
        limits=LIMITS,
        timeout=5.0,
    )

    @settings(
        max_examples=10,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.tuples(*(STRATEGY[p] for p in params)))
    def check(args: tuple[int, ...]) -> None:
        with Sandbox(engine, module, cfg) as sb:
            sb.instantiate()
            try:
                (result,) = sb.call("call", list(args))
            except ResourceLimitExceeded as exc:  # the documented way to end the run
                assert "-byte limit" in exc.message, exc.message
                return
            assert result >= 0 or result in CODES, (name, args, result)
            if not granted and not _needs_no_grant(name):  # denied never succeeds
                assert result < 0, result
            calls = sb.host_calls()
            assert calls and calls[-1].function == name

    check()


def _needs_no_grant(name: str) -> bool:
    return ABI[name].capability is None


def test_the_property_covers_every_host_import(tmp_path: Path) -> None:
    """Every row of the ABI table has its HostBridge method, linked under its name."""
    from vudo.engine.host import TRAMPOLINES, HostBridge

    assert set(TRAMPOLINES) == set(ABI)
    assert all(callable(getattr(HostBridge, name, None)) for name in ABI)
