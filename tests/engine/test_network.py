"""The network service on real loopback sockets: handles, deadlines, quotas, broadcast."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.network import (
    NetworkHost,
    NetworkLimits,
    SandboxNetwork,
    _socket_errors,
    normalize_address,
    parse_address,
)


def soon(seconds: float = 2.0) -> float:
    return time.monotonic() + seconds


def past() -> float:
    return time.monotonic() - 1.0


def fails(code: ErrorCode, call: Callable[[], object]) -> HostCallError:
    with pytest.raises(HostCallError) as info:
        call()
    assert info.value.code is code, info.value
    return info.value


@pytest.fixture
def host() -> Iterator[NetworkHost]:
    with NetworkHost() as h:
        yield h


def pair(a: SandboxNetwork, b: SandboxNetwork) -> tuple[int, int, int]:
    """(b's listener, a's connection to it, b's accepted connection)."""
    listener = b.listen(0)
    conn = a.connect(f"127.0.0.1:{b.local_port(listener)}", soon())
    accepted = b.accept(listener, soon())
    return listener, conn, accepted


# --- addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "normal"),
    [
        ("127.0.0.1:80", "127.0.0.1:80"),
        ("Example.COM:443", "example.com:443"),
        ("example.com.:443", "example.com:443"),
        ("a-b_c.d:1", "a-b_c.d:1"),
        ("[::1]:8080", "[::1]:8080"),
        ("[0:0:0:0:0:0:0:1]:8080", "[::1]:8080"),
        ("localhost:65535", "localhost:65535"),
        ("host:080", "host:80"),
        # every numeric spelling the C library reads is the address it stands for
        ("127.1:80", "127.0.0.1:80"),
        ("2130706433:80", "127.0.0.1:80"),
        ("0x7f.1:80", "127.0.0.1:80"),
        ("0x7f000001:80", "127.0.0.1:80"),
        ("0177.0.0.1:80", "127.0.0.1:80"),
        ("127.0.1:80", "127.0.0.1:80"),
        ("[::ffff:127.0.0.1]:80", "127.0.0.1:80"),
        ("[::ffff:7f00:1]:80", "127.0.0.1:80"),
        ("99999999999:80", "99999999999:80"),  # no address: left a name
    ],
)
def test_normalize_address(address: str, normal: str) -> None:
    assert normalize_address(address) == normal
    host, port = parse_address(address)
    assert f"{host}:{port}" == normal


@pytest.mark.parametrize(
    "address",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:8o",
        "127.0.0.1: 80",
        ":80",
        "::1:80",
        "[::g]:80",
        "[]:80",
        "bad host:80",
        "-bad.com:80",
        "a..b:80",
        "ex/ample:80",
        "exämple.com:80",
        "127.0.0.1:١٢",
        "a" * 300 + ":80",
        "[fe80::1%eth0]:80",
    ],
)
def test_bad_addresses_are_invalid_parameter(address: str) -> None:
    fails(ErrorCode.INVALID_PARAMETER, lambda: normalize_address(address))


def test_non_text_address_is_invalid_parameter() -> None:
    fails(ErrorCode.INVALID_PARAMETER, lambda: parse_address(b"1.2.3.4:5"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (TimeoutError("timed out"), "timed out"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve"),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
        (ConnectionResetError(104, "Connection reset by peer"), "reset"),
        (BrokenPipeError(32, "Broken pipe"), "Broken pipe"),
        (OSError(98, "Address already in use"), "in use"),
        (OSError("no errno"), "no errno"),
    ],
)
def test_every_socket_error_becomes_network_error(exc: OSError, text: str) -> None:
    def boom() -> None:
        with _socket_errors("act"):
            raise exc

    err = fails(ErrorCode.NETWORK_ERROR, boom)
    assert text in err.detail and err.detail.startswith("act")


# --- connections ------------------------------------------------------------------------


def test_connect_accept_send_recv_round_trip(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    listener, conn, accepted = pair(a, b)
    assert len({listener, conn, accepted}) == 3
    assert a.send(conn, b"hello", soon()) == 5
    assert b.recv(accepted, 100, soon()) == b"hello"
    assert b.send(accepted, b"back", soon()) == 4
    assert a.recv(conn, 2, soon()) == b"ba"
    assert a.recv(conn, 2, soon()) == b"ck"
    assert a.send(conn, b"", soon()) == 0
    assert a.bytes_out == 5 and a.bytes_in == 4
    assert b.bytes_out == 4 and b.bytes_in == 5
    assert a.local_port(conn) > 0
    assert b.open_handles == 2 and a.open_handles == 1


def test_recv_returns_empty_on_orderly_close(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    _, conn, accepted = pair(a, b)
    a.send(conn, b"last", soon())
    a.close(conn)
    assert b.recv(accepted, 100, soon()) == b"last"
    assert b.recv(accepted, 100, soon()) == b""


def test_recv_is_bounded_by_the_limit(host: NetworkHost) -> None:
    small = NetworkHost(limits=NetworkLimits(max_recv_bytes=4))
    try:
        a, b = small.sandbox("a"), small.sandbox("b")
        _, conn, accepted = pair(a, b)
        a.send(conn, b"0123456789", soon())
        assert b.recv(accepted, 1000, soon()) == b"0123"
    finally:
        small.close()


def test_connect_to_a_closed_port_is_network_error(host: NetworkHost) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    net = host.sandbox("a")
    err = fails(ErrorCode.NETWORK_ERROR, lambda: net.connect(f"127.0.0.1:{port}", soon()))
    assert "refused" in err.detail.lower()
    assert net.open_handles == 0


class Admit:
    """An admission rule for connect: allows the addresses in ``allowed``, records asks."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = allowed
        self.asked: list[str] = []

    def __call__(self, address: str) -> tuple[bool, str]:
        self.asked.append(address)
        ok = address in self.allowed
        return ok, "" if ok else f"{address} is not allowed"


@pytest.fixture
def raw_listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.settimeout(2)
        yield sock


@pytest.mark.parametrize("host_text", ["localhost", "127.1", "2130706433", "0x7f.1", "127.0.0.1"])
def test_connect_goes_to_exactly_an_admitted_address(
    host: NetworkHost, raw_listener: socket.socket, host_text: str
) -> None:
    port = raw_listener.getsockname()[1]
    net = host.sandbox("a")
    admit = Admit("127.0.0.1")
    handle = net.connect(normalize_address(f"{host_text}:{port}"), soon(), admit=admit)
    conn, peer = raw_listener.accept()
    conn.close()
    assert handle > 0 and peer[0] == "127.0.0.1"
    assert "127.0.0.1" in admit.asked
    assert set(admit.asked) <= {"127.0.0.1", "[::1]"}


@pytest.mark.parametrize("host_text", ["localhost", "127.1", "2130706433", "0x7f.1"])
def test_connect_refuses_when_no_resolved_address_is_admitted(
    host: NetworkHost, raw_listener: socket.socket, host_text: str
) -> None:
    port = raw_listener.getsockname()[1]
    net = host.sandbox("a")
    admit = Admit("127.0.0.2")
    err = fails(
        ErrorCode.CAPABILITY_DENIED,
        lambda: net.connect(normalize_address(f"{host_text}:{port}"), soon(), admit=admit),
    )
    assert "127.0.0.1 is not allowed" in err.detail
    assert net.open_handles == 0
    raw_listener.settimeout(0.1)
    with pytest.raises(TimeoutError):  # nothing ever connected
        raw_listener.accept()


def test_connect_to_an_unresolvable_name_is_network_error(host: NetworkHost) -> None:
    net = host.sandbox("a")
    err = fails(
        ErrorCode.NETWORK_ERROR,
        lambda: net.connect("no-such-host.invalid:80", soon(), admit=Admit()),
    )
    assert "resolve" in err.detail


def test_connect_bad_address_is_invalid_parameter(host: NetworkHost) -> None:
    net = host.sandbox("a")
    fails(ErrorCode.INVALID_PARAMETER, lambda: net.connect("nowhere", soon()))


def test_connect_times_out_at_the_deadline(host: NetworkHost) -> None:
    # A listener whose accept queue is full drops new SYNs: connect hangs until timeout.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        net = host.sandbox("a")
        started = time.monotonic()
        err = fails(ErrorCode.NETWORK_ERROR, lambda: net.connect(f"127.0.0.1:{port}", soon(0.3)))
        assert "timed out" in err.detail
        assert time.monotonic() - started < 2.0
    finally:
        for s in fillers:
            s.close()
        full.close()


def test_deadline_already_passed_is_network_error(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    listener, conn, accepted = pair(a, b)
    port = b.local_port(listener)
    for call in (
        lambda: a.connect(f"127.0.0.1:{port}", past()),
        lambda: b.accept(listener, past()),
        lambda: a.send(conn, b"x", past()),
        lambda: b.recv(accepted, 10, past()),
    ):
        err = fails(ErrorCode.NETWORK_ERROR, call)
        assert "timed out" in err.detail


def test_recv_and_accept_time_out(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    listener, _, accepted = pair(a, b)
    started = time.monotonic()
    err = fails(ErrorCode.NETWORK_ERROR, lambda: b.recv(accepted, 10, soon(0.1)))
    assert "timed out" in err.detail
    err = fails(ErrorCode.NETWORK_ERROR, lambda: b.accept(listener, soon(0.1)))
    assert "timed out" in err.detail
    assert time.monotonic() - started < 2.0


def test_send_returns_partial_count_when_the_deadline_passes(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    _, conn, _ = pair(a, b)
    big = b"x" * (64 * 1024 * 1024)
    sent = a.send(conn, big, soon(0.2))
    assert 0 < sent < len(big)
    assert a.bytes_out == sent
    err = fails(ErrorCode.NETWORK_ERROR, lambda: a.send(conn, big, soon(0.1)))
    assert "timed out" in err.detail


def test_send_to_a_reset_peer_is_network_error(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    _, conn, accepted = pair(a, b)
    b.send(accepted, b"unread", soon())
    b.close(accepted)  # closing with unread data sends RST
    time.sleep(0.05)
    with pytest.raises(HostCallError) as info:
        for _ in range(50):
            a.send(conn, b"y" * 65536, soon())
            time.sleep(0.01)
    assert info.value.code is ErrorCode.NETWORK_ERROR


# --- listeners ---------------------------------------------------------------------------


def test_listen_binds_loopback_and_reports_its_port(host: NetworkHost) -> None:
    net = host.sandbox("a")
    handle = net.listen(0)
    port = net.local_port(handle)
    assert 0 < port <= 65535
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        accepted = net.accept(handle, soon())
        raw.sendall(b"raw")
        assert net.recv(accepted, 10, soon()) == b"raw"


def test_listen_on_a_port_in_use_is_network_error(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    port = a.local_port(a.listen(0))
    err = fails(ErrorCode.NETWORK_ERROR, lambda: b.listen(port))
    assert "in use" in err.detail.lower()
    assert b.open_handles == 0


@pytest.mark.parametrize("port", [-1, 65536, "80", 1.0])
def test_listen_bad_port_is_invalid_parameter(host: NetworkHost, port: object) -> None:
    fails(ErrorCode.INVALID_PARAMETER, lambda: host.sandbox("a").listen(port))  # type: ignore[arg-type]


# --- handles ------------------------------------------------------------------------------


def test_handles_only_work_in_the_sandbox_that_opened_them(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    listener, conn, accepted = pair(a, b)
    err = fails(ErrorCode.INVALID_PARAMETER, lambda: b.send(conn, b"x", soon()))
    assert "another sandbox" in err.detail
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.recv(accepted, 1, soon()))
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.accept(listener, soon()))
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.close(listener))
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.local_port(listener))
    # Still usable by their owners.
    assert a.send(conn, b"ok", soon()) == 2
    assert b.recv(accepted, 2, soon()) == b"ok"


def test_unknown_wrong_kind_and_bad_handles(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    listener, conn, accepted = pair(a, b)
    err = fails(ErrorCode.INVALID_PARAMETER, lambda: a.send(999_999, b"x", soon()))
    assert "not open" in err.detail
    err = fails(ErrorCode.INVALID_PARAMETER, lambda: b.send(listener, b"x", soon()))
    assert "listener" in err.detail
    fails(ErrorCode.INVALID_PARAMETER, lambda: b.recv(listener, 1, soon()))
    fails(ErrorCode.INVALID_PARAMETER, lambda: b.accept(accepted, soon()))
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.close("1"))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.recv(conn, 0, soon()))
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.recv(conn, -5, soon()))
    a.close(conn)
    err = fails(ErrorCode.INVALID_PARAMETER, lambda: a.close(conn))
    assert "not open" in err.detail
    fails(ErrorCode.INVALID_PARAMETER, lambda: a.send(conn, b"x", soon()))


def test_handle_count_is_bounded(host: NetworkHost) -> None:
    limited = NetworkHost(limits=NetworkLimits(max_handles=2))
    try:
        a, b = limited.sandbox("a"), limited.sandbox("b")
        first = b.listen(0)
        b.listen(0)
        err = fails(ErrorCode.QUOTA_EXCEEDED, lambda: b.listen(0))
        assert "limit is 2" in err.detail
        port = b.local_port(first)
        a.connect(f"127.0.0.1:{port}", soon())
        fails(ErrorCode.QUOTA_EXCEEDED, lambda: b.accept(first, soon()))
        a.connect(f"127.0.0.1:{port}", soon())
        fails(ErrorCode.QUOTA_EXCEEDED, lambda: a.connect(f"127.0.0.1:{port}", soon()))
        b.close(first)
        b.listen(0)  # room again
    finally:
        limited.close()


def test_close_all_wakes_a_blocked_recv(host: NetworkHost) -> None:
    a, b = host.sandbox("a"), host.sandbox("b")
    _, _, accepted = pair(a, b)
    outcome: list[object] = []

    def blocked() -> None:
        try:
            outcome.append(b.recv(accepted, 10, soon(10)))
        except HostCallError as exc:
            outcome.append(exc.code)

    thread = threading.Thread(target=blocked)
    started = time.monotonic()
    thread.start()
    time.sleep(0.1)
    b.close_all()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 3
    assert outcome and outcome[0] in (b"", ErrorCode.NETWORK_ERROR)
    assert b.open_handles == 0
    err = fails(ErrorCode.NETWORK_ERROR, lambda: b.listen(0))
    assert "closed" in err.detail


def test_host_close_closes_every_sandbox() -> None:
    host = NetworkHost()
    a, b = host.sandbox("a"), host.sandbox("b")
    pair(a, b)
    host.close()
    assert a.open_handles == 0 and b.open_handles == 0


def test_sandbox_network_is_a_context_manager(host: NetworkHost) -> None:
    with SandboxNetwork(host, "a") as net:
        net.listen(0)
        assert net.open_handles == 1
    assert net.open_handles == 0
    assert host.broadcast_targets() == []


# --- broadcast ------------------------------------------------------------------------------


def read_broadcast(net: SandboxNetwork, listener: int) -> bytes:
    conn = net.accept(listener, soon())
    data = b""
    while chunk := net.recv(conn, 1024, soon()):
        data += chunk
    net.close(conn)
    return data


def test_broadcast_reaches_every_other_listening_sandbox_once(host: NetworkHost) -> None:
    sender, b, c, quiet = (host.sandbox(n) for n in ("sender", "b", "c", "quiet"))
    own = sender.listen(0)
    lb = b.listen(0)
    b.listen(0)  # a second listener of b does not get a second copy
    lc = c.listen(0)
    assert sender.broadcast(b"hello all") == 2
    assert read_broadcast(b, lb) == b"hello all"
    assert read_broadcast(c, lc) == b"hello all"
    fails(ErrorCode.NETWORK_ERROR, lambda: sender.accept(own, soon(0.1)))
    late = quiet.listen(0)  # listening after the broadcast: nothing for it
    fails(ErrorCode.NETWORK_ERROR, lambda: quiet.accept(late, soon(0.1)))
    assert sender.bytes_out == 2 * len(b"hello all")


def test_broadcast_with_no_listeners_reaches_nobody(host: NetworkHost) -> None:
    assert host.sandbox("a").broadcast(b"anyone?") == 0


def test_broadcast_skips_closed_listeners_and_ended_sandboxes(host: NetworkHost) -> None:
    sender, b, c = (host.sandbox(n) for n in ("sender", "b", "c"))
    lb = b.listen(0)
    c.listen(0)
    b.close(lb)
    c.close_all()
    assert sender.broadcast(b"x") == 0


def test_broadcast_skips_unreachable_listeners(host: NetworkHost) -> None:
    # A listener whose port is registered but no longer accepts (socket closed underneath).
    sender, b, c = (host.sandbox(n) for n in ("sender", "b", "c"))
    lb = b.listen(0)
    lc = c.listen(0)
    b._handles[lb].sock.close()
    assert sender.broadcast(b"x") == 1
    assert read_broadcast(c, lc) == b"x"


def test_broadcast_size_limit_and_deadline(host: NetworkHost) -> None:
    limited = NetworkHost(limits=NetworkLimits(max_broadcast_bytes=8))
    try:
        a, b = limited.sandbox("a"), limited.sandbox("b")
        b.listen(0)
        err = fails(ErrorCode.QUOTA_EXCEEDED, lambda: a.broadcast(b"123456789"))
        assert "8-byte limit" in err.detail
        fails(ErrorCode.INVALID_PARAMETER, lambda: a.broadcast("text"))  # type: ignore[arg-type]
        fails(ErrorCode.NETWORK_ERROR, lambda: a.broadcast(b"hi", past()))
        assert a.broadcast(b"12345678", soon()) == 1
    finally:
        limited.close()


def test_close_all_wakes_a_blocked_accept(host: NetworkHost) -> None:
    net = host.sandbox("a")
    listener = net.listen(0)
    outcome: list[object] = []

    def blocked() -> None:
        try:
            outcome.append(net.accept(listener, soon(10)))
        except HostCallError as exc:
            outcome.append(exc.code)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    net.close_all()
    thread.join(5)
    assert not thread.is_alive()
    assert outcome == [ErrorCode.NETWORK_ERROR]
