"""Every host function on real wasmtime: allowed, denied, bad pointers, error codes.

The fixture module re-exports each host import as ``f_<name>`` with the same signature, so
a test can pass any pointer or length straight through from Python.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_helpers import GRANTER, IDENTITY, OTHER, config, grant

from vudo.capabilities import Capability as C
from vudo.engine import Engine, HostCall, LogMessage, Sandbox, SandboxConfig
from vudo.engine.abi import ABI
from vudo.engine.abi import ErrorCode as E
from vudo.engine.config import Limits
from vudo.engine.identity import credit_account
from vudo.engine.services import HostServices
from vudo.engine.storage import StorageQuota
from vudo.errors import FuelExhausted, ResourceLimitExceeded

Make = Callable[..., Sandbox]
NOW = 1_700_000_000_123_456_789


def _forwarders() -> str:
    parts = []
    for name, row in ABI.items():
        p = " ".join(row.params)
        r = " ".join(row.results)
        parts.append(f'(import "vudo" "{name}" (func ${name} (param {p}) (result {r})))')
    parts.append('(memory (export "memory") 1)')
    for name, row in ABI.items():
        p = " ".join(row.params)
        r = " ".join(row.results)
        gets = " ".join(f"(local.get {i})" for i in range(len(row.params)))
        parts.append(f'(func (export "f_{name}") (param {p}) (result {r}) (call ${name} {gets}))')
    return "(module " + "\n".join(parts) + ")"


ALL = _forwarders()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[HostServices]:
    counter = iter(range(1_000_000))

    def random(n: int) -> bytes:
        return bytes((next(counter) * 7) & 0xFF for _ in range(n))

    with HostServices.open(
        tmp_path / "data",
        clock=lambda: NOW,
        random=random,
        storage_quota=StorageQuota(max_namespace_bytes=4096),
    ) as svc:
        yield svc


@pytest.fixture
def sandbox(make: Make, services: HostServices) -> Callable[..., Sandbox]:
    def build(*caps: object, **kwargs: object) -> Sandbox:
        kwargs.setdefault("services", services)
        return make(ALL, config(*caps, **kwargs))  # type: ignore[arg-type]

    return build


def call(sb: Sandbox, name: str, *args: int) -> int:
    result = sb.call(f"f_{name}", list(args))
    assert len(result) == 1
    return int(result[0])


def last_call(sb: Sandbox) -> HostCall:
    return sb.host_calls()[-1]


# -- time and random -------------------------------------------------------------------


def test_time_allowed_and_denied(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.SENSOR_TIME)
    assert call(sb, "host_time_now") == NOW
    denied = sandbox()
    assert call(denied, "host_time_now") == E.CAPABILITY_DENIED
    assert denied.receipt().host_calls == {"sensor_time": {"allowed": 0, "denied": 1}}
    assert sb.receipt().host_calls == {"sensor_time": {"allowed": 1, "denied": 0}}
    assert last_call(denied).allowed is False


def test_random_fills_memory(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.SENSOR_RANDOM)
    assert call(sb, "host_random_bytes", 100, 16) == 0
    assert sb.read_memory(100, 16) == bytes((i * 7) & 0xFF for i in range(16))
    assert sb.receipt().bytes_in == 16
    assert call(sb, "host_random_bytes", 65530, 16) == E.INVALID_MEMORY
    assert call(sb, "host_random_bytes", -1, 4) == E.INVALID_MEMORY
    assert call(sandbox(), "host_random_bytes", 0, 4) == E.CAPABILITY_DENIED


def test_random_uses_the_os_without_services(make: Make) -> None:
    sb = make(ALL, config(C.SENSOR_RANDOM))
    assert call(sb, "host_random_bytes", 0, 32) == 0
    assert sb.read_memory(0, 32) != bytes(32)


def test_random_payload_limit(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.SENSOR_RANDOM, limits=Limits(max_random_bytes=8))
    with pytest.raises(ResourceLimitExceeded, match="random request of 9 bytes") as info:
        call(sb, "host_random_bytes", 0, 9)
    assert info.value.exit_code == 13
    assert sb.state == "failed"


# -- log -------------------------------------------------------------------------------


def test_log_levels_events_and_stderr(make: Make, engine: Engine) -> None:
    sink = io.StringIO()
    module = engine.load(ALL)
    with Sandbox(
        engine, module, config(C.ACTUATOR_LOG, log_to_stderr=True, min_log_level=1), stderr=sink
    ) as sb:
        sb.instantiate()
        events: list[object] = []
        sb.subscribe(events.append)
        sb.write_memory(0, "héllo".encode())
        for level in range(5):
            assert call(sb, "host_log", level, 0, len("héllo".encode())) == 0
        logs = [e for e in events if isinstance(e, LogMessage)]
        assert [e.level for e in logs] == [1, 2, 3, 4]  # below min_log_level is dropped
        assert logs[0].message == "héllo"
        assert sink.getvalue().splitlines() == [
            "[debug] héllo",
            "[info] héllo",
            "[warn] héllo",
            "[error] héllo",
        ]
        host = [e for e in events if isinstance(e, HostCall)]
        assert host[0].capability is C.ACTUATOR_LOG and host[0].args == "level=0 len=6"


def test_host_calls_from_the_start_function_reach_guest_memory(
    make: Make, services: HostServices
) -> None:
    # The memory export was bound only after instantiation, so a start function's host
    # calls got INVALID_MEMORY: its log lines were lost, its random bytes never written.
    wat = (
        '(import "vudo" "host_log" (func $log (param i32 i32 i32) (result i32)))\n'
        '(import "vudo" "host_random_bytes" (func $random (param i32 i32) (result i32)))\n'
        '(memory (export "memory") 1)\n'
        '(data (i32.const 0) "starting up")\n'
        "(global $rc (mut i32) (i32.const 99))\n"
        "(func $init (global.set $rc (i32.or (call $log (i32.const 2) (i32.const 0) "
        "(i32.const 11)) (call $random (i32.const 64) (i32.const 4)))))\n"
        "(start $init)\n"
        '(func (export "rc") (result i32) (global.get $rc))'
    )
    sb = make(
        f"(module {wat})",
        config(C.ACTUATOR_LOG, C.SENSOR_RANDOM, services=services),
        instantiate=False,
    )
    events: list[object] = []
    sb.subscribe(events.append)
    sb.instantiate()
    assert sb.call("rc") == [0]
    assert [e.message for e in events if isinstance(e, LogMessage)] == ["starting up"]
    assert sb.read_memory(64, 4) == bytes([0, 7, 14, 21])  # the fixture's random bytes
    assert sb.receipt().bytes_in == 4 and sb.receipt().bytes_out == 11


def test_log_bad_input(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.ACTUATOR_LOG)
    sb.write_memory(0, b"ok\xff\xfe")
    assert call(sb, "host_log", 5, 0, 2) == E.INVALID_PARAMETER
    assert call(sb, "host_log", -1, 0, 2) == E.INVALID_PARAMETER
    assert call(sb, "host_log", 2, 0, 4) == E.INVALID_PARAMETER  # invalid UTF-8
    assert call(sb, "host_log", 2, 65535, 2) == E.INVALID_MEMORY
    assert call(sb, "host_log", 2, 0, 2) == 0
    assert call(sandbox(), "host_log", 2, 0, 2) == E.CAPABILITY_DENIED
    assert sb.state == "ready"


def test_huge_log_is_a_limit(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.ACTUATOR_LOG, limits=Limits(max_log_bytes=1024))
    with pytest.raises(ResourceLimitExceeded, match="log message of 60000 bytes"):
        call(sb, "host_log", 2, 0, 60000)


# -- storage ---------------------------------------------------------------------------

RW = (C.STORAGE_READ, C.STORAGE_WRITE, C.STORAGE_DELETE)


def test_storage_round_trip(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(*RW, namespace="alpha")
    sb.write_memory(0, b"key")
    sb.write_memory(16, b"a value")
    assert call(sb, "host_storage_read", 0, 3, 100, 64) == E.NOT_FOUND
    assert call(sb, "host_storage_write", 0, 3, 16, 7) == 0
    assert call(sb, "host_storage_read", 0, 3, 100, 64) == 7
    assert sb.read_memory(100, 7) == b"a value"
    # snprintf style: the full length comes back, only vcap bytes are copied.
    sb.write_memory(200, b"\0" * 8)
    assert call(sb, "host_storage_read", 0, 3, 200, 3) == 7
    assert sb.read_memory(200, 4) == b"a v\0"
    assert call(sb, "host_storage_delete", 0, 3) == 1
    assert call(sb, "host_storage_delete", 0, 3) == 0
    receipt = sb.receipt()
    assert receipt.host_calls["storage_read"] == {"allowed": 3, "denied": 0}
    assert receipt.bytes_out > 0 and receipt.bytes_in == 10


def test_storage_is_namespaced(sandbox: Callable[..., Sandbox], services: HostServices) -> None:
    a = sandbox(*RW, namespace="alpha")
    b = sandbox(*RW, namespace="beta")
    for sb in (a, b):
        sb.write_memory(0, b"k")
        sb.write_memory(8, b"from-" + sb.config.namespace.encode())
    assert call(a, "host_storage_write", 0, 1, 8, 10) == 0
    assert call(b, "host_storage_read", 0, 1, 100, 32) == E.NOT_FOUND
    assert services.storage.read("alpha", b"k") == b"from-alpha"


def test_storage_denied_and_bad_memory(sandbox: Callable[..., Sandbox]) -> None:
    none = sandbox()
    assert call(none, "host_storage_read", 0, 1, 8, 8) == E.CAPABILITY_DENIED
    assert call(none, "host_storage_write", 0, 1, 8, 8) == E.CAPABILITY_DENIED
    assert call(none, "host_storage_delete", 0, 1) == E.CAPABILITY_DENIED
    assert none.receipt().host_calls == {
        "storage_read": {"allowed": 0, "denied": 1},
        "storage_write": {"allowed": 0, "denied": 1},
        "storage_delete": {"allowed": 0, "denied": 1},
    }
    sb = sandbox(*RW)
    assert call(sb, "host_storage_write", 65535, 4, 0, 1) == E.INVALID_MEMORY
    assert call(sb, "host_storage_write", 0, 1, 65000, 1000) == E.INVALID_MEMORY
    assert call(sb, "host_storage_read", 0, 1, 65535, 100) == E.INVALID_MEMORY
    assert call(sb, "host_storage_delete", -5, 1) == E.INVALID_MEMORY


def test_storage_quota_is_a_code(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(*RW)
    assert call(sb, "host_storage_write", 0, 1, 0, 5000) == E.QUOTA_EXCEEDED
    assert sb.state == "ready"


def test_storage_without_service(make: Make) -> None:
    sb = make(ALL, config(*RW))
    assert call(sb, "host_storage_write", 0, 1, 0, 1) == E.STORAGE_ERROR


@pytest.mark.parametrize(
    ("limits", "args", "message"),
    [
        (Limits(max_storage_key=16), (0, 17, 100, 4), "storage key of 17 bytes"),
        (Limits(max_storage_value=1024), (0, 4, 100, 2048), "storage value of 2048 bytes"),
    ],
)
def test_huge_storage_payloads_are_limits(
    sandbox: Callable[..., Sandbox], limits: Limits, args: tuple[int, ...], message: str
) -> None:
    sb = sandbox(*RW, limits=limits)
    with pytest.raises(ResourceLimitExceeded, match=message):
        call(sb, "host_storage_write", *args)
    assert sb.state == "failed"


# -- credit ----------------------------------------------------------------------------

ME = credit_account(IDENTITY)  # the sandbox spends from its identity's own account
THEM = bytes.fromhex(OTHER)


def test_credit_flow(sandbox: Callable[..., Sandbox], services: HostServices) -> None:
    services.ledger.deposit(ME, 1000)
    sb = sandbox(C.ACTUATOR_CREDIT)
    sb.write_memory(0, ME)
    sb.write_memory(32, THEM)
    assert call(sb, "host_credit_balance", 0) == 1000
    assert call(sb, "host_credit_transfer", 0, 32, 300) == 0
    assert call(sb, "host_credit_balance", 32) == 300
    rid = call(sb, "host_credit_reserve", 0, 200)
    assert rid > 0
    assert call(sb, "host_credit_available", 0) == 500
    assert call(sb, "host_credit_consume", rid) == 0
    assert call(sb, "host_credit_balance", 0) == 500
    rid2 = call(sb, "host_credit_reserve", 0, 100)
    assert call(sb, "host_credit_release", rid2) == 0
    assert call(sb, "host_credit_available", 0) == 500
    # never negative, never from someone else's account, never someone else's reservation
    assert call(sb, "host_credit_transfer", 0, 32, 10_000) == E.CREDIT_ERROR
    assert call(sb, "host_credit_transfer", 32, 0, 10) == E.CREDIT_ERROR
    assert call(sb, "host_credit_reserve", 32, 10) == E.CREDIT_ERROR
    other = sandbox(C.ACTUATOR_CREDIT)
    rid3 = call(sb, "host_credit_reserve", 0, 50)
    assert call(other, "host_credit_release", rid3) == E.CREDIT_ERROR
    assert call(other, "host_credit_consume", rid3) == E.CREDIT_ERROR
    assert call(sb, "host_credit_transfer", 0, 32, 0) == E.INVALID_PARAMETER
    assert call(sb, "host_credit_balance", 65530) == E.INVALID_MEMORY
    sb.terminate()  # open reservations are released when the sandbox ends
    assert services.ledger.available(ME) == 500


def test_credit_denied_and_peer_scope(
    sandbox: Callable[..., Sandbox], services: HostServices
) -> None:
    services.ledger.deposit(ME, 100)
    none = sandbox()
    none.write_memory(0, ME)
    for name, args in [
        ("host_credit_balance", (0,)),
        ("host_credit_available", (0,)),
        ("host_credit_transfer", (0, 0, 1)),
        ("host_credit_reserve", (0, 1)),
        ("host_credit_release", (1,)),
        ("host_credit_consume", (1,)),
    ]:
        assert call(none, name, *args) == E.CAPABILITY_DENIED, name
    assert none.receipt().host_calls == {"actuator_credit": {"allowed": 0, "denied": 6}}
    peer = sandbox(grant(C.ACTUATOR_CREDIT, f"peer:{OTHER}"))
    peer.write_memory(0, ME)
    peer.write_memory(32, THEM)
    assert call(peer, "host_credit_transfer", 0, 32, 5) == 0
    assert call(peer, "host_credit_transfer", 0, 0, 5) == E.CAPABILITY_DENIED


def test_credit_account_needs_no_grant_and_is_the_spending_account(
    sandbox: Callable[..., Sandbox], services: HostServices, make: Make
) -> None:
    services.ledger.deposit(ME, 40)
    bare = sandbox()  # no grants at all: it may still learn its own account number
    assert call(bare, "host_credit_account", 64) == 0
    assert bare.read_memory(64, 32) == ME
    assert bare.receipt().host_calls == {"credit": {"allowed": 1, "denied": 0}}
    assert bare.receipt().bytes_in == 32
    assert call(bare, "host_credit_account", 65535 - 31 + 1) == E.INVALID_MEMORY
    assert call(bare, "host_credit_account", -1) == E.INVALID_MEMORY
    assert bare.read_memory(65504, 32) == bytes(32)  # nothing half-written at the edge
    # the account it learns is the one it can spend from
    sb = sandbox(C.ACTUATOR_CREDIT)
    assert call(sb, "host_credit_account", 0) == 0
    sb.write_memory(32, THEM)
    assert call(sb, "host_credit_transfer", 0, 32, 40) == 0
    assert services.ledger.balance(ME) == 0
    # another identity has another account; a sandbox without services still knows its own
    other = make(ALL, SandboxConfig(identity=OTHER, log_to_stderr=False))
    assert call(other, "host_credit_account", 0) == 0
    assert other.read_memory(0, 32) == credit_account(OTHER) != ME


# -- grants ----------------------------------------------------------------------------


def test_expired_revoked_forged_and_untrusted_grants_are_denied(
    sandbox: Callable[..., Sandbox],
) -> None:
    from vudo.engine.grants import Grant, RevocationList

    expired = grant(C.SENSOR_TIME, issued_at=10, expires_at=20)
    assert call(sandbox(expired), "host_time_now") == E.CAPABILITY_DENIED
    good = grant(C.SENSOR_TIME)
    assert (
        call(sandbox(good, revocations=RevocationList([good])), "host_time_now")
        == E.CAPABILITY_DENIED
    )
    forged = Grant(
        good.capability, good.scope, good.granter, good.grantee, good.issued_at, None, bytes(64)
    )
    assert call(sandbox(forged), "host_time_now") == E.CAPABILITY_DENIED
    from engine_helpers import OTHER_KEY

    untrusted = grant(C.SENSOR_TIME, key=OTHER_KEY)
    assert call(sandbox(untrusted), "host_time_now") == E.CAPABILITY_DENIED
    unrestricted = grant(C.UNRESTRICTED)
    assert call(sandbox(unrestricted), "host_time_now") == NOW
    assert GRANTER is not None


# -- network ---------------------------------------------------------------------------


def test_network_listen_connect_accept_send_recv_close(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.NETWORK_LISTEN, grant(C.NETWORK_CONNECT, "domain:127.0.0.1:*"))
    listener = call(sb, "host_network_listen", 0)
    assert listener > 0
    assert sb.network is not None
    port = sb.network.local_port(listener)
    address = f"127.0.0.1:{port}".encode()
    sb.write_memory(0, address)
    conn = call(sb, "host_network_connect", 0, len(address))
    assert conn > 0
    peer = call(sb, "host_network_accept", listener)
    assert peer > 0
    sb.write_memory(100, b"ping!")
    assert call(sb, "host_network_send", conn, 100, 5) == 5
    assert call(sb, "host_network_recv", peer, 200, 64) == 5
    assert sb.read_memory(200, 5) == b"ping!"
    assert call(sb, "host_network_close", conn) == 0
    assert call(sb, "host_network_recv", peer, 200, 64) == 0  # peer closed
    assert call(sb, "host_network_close", conn) == E.INVALID_PARAMETER
    assert call(sb, "host_network_send", 999_999, 100, 5) == E.INVALID_PARAMETER
    assert call(sb, "host_network_recv", peer, 65530, 64) == E.INVALID_MEMORY
    receipt = sb.receipt()
    assert receipt.host_calls["network_listen"] == {"allowed": 1, "denied": 0}
    # handle calls need no capability of their own: counted under "network", not "none"
    assert receipt.host_calls["network"]["allowed"] >= 6
    assert "none" not in receipt.host_calls
    assert "network" not in {c.value for c in C}  # cannot collide with a capability


def test_network_scope_and_denials(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(grant(C.NETWORK_CONNECT, "domain:example.com:443"))
    address = b"127.0.0.1:9"
    sb.write_memory(0, address)
    assert call(sb, "host_network_connect", 0, len(address)) == E.CAPABILITY_DENIED
    assert call(sb, "host_network_listen", 0) == E.CAPABILITY_DENIED
    assert call(sb, "host_network_connect", 65530, 20) == E.INVALID_MEMORY
    sb.write_memory(0, b"not an address")
    assert call(sb, "host_network_connect", 0, 14) == E.INVALID_PARAMETER
    sb.write_memory(0, b"hi")
    assert call(sb, "host_network_broadcast", 0, 2) == E.CAPABILITY_DENIED
    assert call(sb, "host_network_listen", 70000) == E.INVALID_PARAMETER


@pytest.fixture
def loopback_listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def _connect(sb: Sandbox, address: str) -> int:
    sb.write_memory(0, address.encode())
    return call(sb, "host_network_connect", 0, len(address))


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]"]
)
def test_connect_is_checked_by_the_address_it_becomes(
    sandbox: Callable[..., Sandbox], loopback_listener: socket.socket, spelling: str
) -> None:
    port = loopback_listener.getsockname()[1]
    allowed = sandbox(grant(C.NETWORK_CONNECT, "domain:127.0.0.*:*"))
    assert _connect(allowed, f"{spelling}:{port}") > 0
    denied = sandbox(grant(C.NETWORK_CONNECT, "domain:127.0.0.2:*"))
    events: list[object] = []
    denied.subscribe(events.append)
    assert _connect(denied, f"{spelling}:{port}") == E.CAPABILITY_DENIED
    [event] = [e for e in events if isinstance(e, HostCall)]
    assert event.allowed is False
    assert "127.0.0.1" in event.reason and "domain:127.0.0.2:*" in event.reason
    assert last_call(denied).allowed is False
    assert last_call(denied).reason == event.reason
    assert denied.receipt().host_calls["network_connect"] == {"allowed": 0, "denied": 1}


@pytest.mark.parametrize("spelling", ["localhost", "2130706433", "0x7f.1", "127.0.0.1"])
def test_a_name_grant_never_reaches_this_machine(
    sandbox: Callable[..., Sandbox], loopback_listener: socket.socket, spelling: str
) -> None:
    """`*` (any name) lets a Spirit connect to names on the internet, not to localhost,
    nor to an address dressed up as a name; an address never matches a name pattern."""
    port = loopback_listener.getsockname()[1]
    sb = sandbox(grant(C.NETWORK_CONNECT, "domain:*:*"))
    events: list[object] = []
    sb.subscribe(events.append)
    assert _connect(sb, f"{spelling}:{port}") == E.CAPABILITY_DENIED
    [event] = [e for e in events if isinstance(e, HostCall)]
    assert "domain:*:*" in event.reason
    loopback_listener.settimeout(0.1)
    with pytest.raises(TimeoutError):
        loopback_listener.accept()


def test_a_localhost_grant_reaches_loopback(
    sandbox: Callable[..., Sandbox], loopback_listener: socket.socket
) -> None:
    port = loopback_listener.getsockname()[1]
    sb = sandbox(grant(C.NETWORK_CONNECT, f"domain:localhost:{port}"))
    assert _connect(sb, f"localhost:{port}") > 0
    assert _connect(sb, f"127.0.0.1:{port}") == E.CAPABILITY_DENIED  # an address, not the name
    assert "outside the grant's scope" in last_call(sb).reason
    by_address = sandbox(grant(C.NETWORK_CONNECT, "domain:127.0.0.*:*"))
    assert _connect(by_address, f"localhost:{port}") == E.CAPABILITY_DENIED  # a name


def test_a_denied_name_is_never_looked_up(sandbox: Callable[..., Sandbox]) -> None:
    """No grant covers the name: it is refused before any DNS query (a DNS lookup is
    itself a way out for data)."""
    sb = sandbox(grant(C.NETWORK_CONNECT, "domain:*.example.com:443"))
    assert _connect(sb, "secret-data.attacker.invalid:443") == E.CAPABILITY_DENIED
    assert "outside the grant's scope domain:*.example.com:443" in last_call(sb).reason
    assert _connect(sb, "a.b.example.com:443") == E.CAPABILITY_DENIED


def test_network_without_service(make: Make) -> None:
    sb = make(ALL, config(C.NETWORK_LISTEN))
    assert call(sb, "host_network_listen", 0) == E.NETWORK_ERROR


def test_broadcast_reaches_the_other_listening_sandbox(sandbox: Callable[..., Sandbox]) -> None:
    receiver = sandbox(C.NETWORK_LISTEN)
    sender = sandbox(C.NETWORK_BROADCAST)
    listener = call(receiver, "host_network_listen", 0)
    result: list[int] = []

    def accept() -> None:
        conn = call(receiver, "host_network_accept", listener)
        result.append(call(receiver, "host_network_recv", conn, 300, 64))

    thread = threading.Thread(target=accept)
    thread.start()
    sender.write_memory(0, b"hello all")
    assert call(sender, "host_network_broadcast", 0, 9) == 1
    thread.join(5)
    assert result == [9]
    assert receiver.read_memory(300, 9) == b"hello all"


def test_network_payload_limit(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.NETWORK_BROADCAST, limits=Limits(max_network_payload=100))
    with pytest.raises(ResourceLimitExceeded, match="broadcast message of 200 bytes"):
        call(sb, "host_network_broadcast", 0, 200)
    sb2 = sandbox(limits=Limits(max_network_payload=100))
    with pytest.raises(ResourceLimitExceeded, match="network send of 101 bytes"):
        call(sb2, "host_network_send", 1, 0, 101)


# -- fuel for host calls ---------------------------------------------------------------


def test_host_calls_are_charged_per_call_and_per_byte(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.ACTUATOR_LOG, host_call_fuel=5_000, host_byte_fuel=10)
    sb.write_memory(0, b"x" * 100)
    before = sb.fuel_used
    call(sb, "host_log", 2, 0, 100)
    charged = sb.fuel_used - before
    assert 6_000 <= charged < 6_100
    assert last_call(sb).fuel == 6_000
    before = sb.fuel_used
    assert call(sandbox(), "host_log", 2, 0, 100) == E.CAPABILITY_DENIED


def test_fuel_runs_out_inside_a_host_call(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.SENSOR_TIME, fuel=100_000, host_call_fuel=60_000)
    assert call(sb, "host_time_now") == NOW
    with pytest.raises(FuelExhausted, match="in a host call") as info:
        call(sb, "host_time_now")
    assert not info.value.message.startswith(FuelExhausted.title)  # shown after the title
    assert sb.state == "suspended"
    sb.refuel(100_000)
    assert call(sb, "host_time_now") == NOW


def test_events_carry_the_reason_for_denials_and_errors(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(C.STORAGE_WRITE)
    events: list[object] = []
    sb.subscribe(events.append)
    call(sb, "host_time_now")
    call(sb, "host_storage_write", 0, 1, 0, 5000)
    calls = [e for e in events if isinstance(e, HostCall)]
    assert calls[0].allowed is False and "no grant for sensor_time" in calls[0].args
    assert calls[1].result == E.QUOTA_EXCEEDED and "the limit is 4096" in calls[1].args


def test_network_recv_payload_limit(sandbox: Callable[..., Sandbox]) -> None:
    sb = sandbox(limits=Limits(max_network_payload=100))
    with pytest.raises(ResourceLimitExceeded, match="network receive of 4096 bytes"):
        call(sb, "host_network_recv", 1, 0, 4096)


def test_parallel_sandboxes_keep_their_own_host_state(sandbox: Callable[..., Sandbox]) -> None:
    boxes = [sandbox(C.SENSOR_RANDOM, C.ACTUATOR_LOG) for _ in range(3)]
    errors: list[BaseException] = []

    def work(sb: Sandbox, n: int) -> None:
        try:
            sb.write_memory(0, b"hello")
            for _ in range(n):
                assert call(sb, "host_log", 1, 0, 5) == 0
                assert call(sb, "host_random_bytes", 64, 8) == 0
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(sb, 100 * (i + 1))) for i, sb in enumerate(boxes)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    for i, sb in enumerate(boxes):
        receipt = sb.receipt()
        assert receipt.host_calls["actuator_log"]["allowed"] == 100 * (i + 1)
        assert receipt.bytes_in == 8 * 100 * (i + 1)


def test_a_failing_service_is_internal_error_not_a_crash(make: Make, tmp_path: Path) -> None:
    def broken_random(n: int) -> bytes:
        raise RuntimeError("entropy pool on fire")

    with HostServices.open(tmp_path / "d", random=broken_random) as svc:
        sb = make(ALL, config(C.SENSOR_RANDOM, services=svc))
        events: list[object] = []
        sb.subscribe(events.append)
        assert call(sb, "host_random_bytes", 0, 8) == E.INTERNAL_ERROR
        assert sb.state == "ready"
        calls = [e for e in events if isinstance(e, HostCall)]
        assert calls[-1].result == E.INTERNAL_ERROR
        assert "entropy pool on fire" in calls[-1].args
        sb.close()


def test_keyboard_interrupt_inside_a_host_call(make: Make, tmp_path: Path) -> None:
    def interrupted_clock() -> int:
        raise KeyboardInterrupt

    with HostServices.open(tmp_path / "d", clock=interrupted_clock) as svc:
        sb = make(ALL, config(C.SENSOR_TIME, services=svc))
        with pytest.raises(KeyboardInterrupt):
            call(sb, "host_time_now")
        assert sb.state == "failed"
        assert sb.receipt().outcome == "terminated"
        sb.close()
