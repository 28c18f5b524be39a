"""Real sockets for the ``host_network_*`` calls (DESIGN.md §1).

:class:`NetworkHost` is process-wide: it numbers handles (unique across every sandbox of
the process, so a handle leaked from one sandbox is recognisably foreign in another) and
keeps the registry of listening sandboxes that ``broadcast`` delivers to.
:class:`SandboxNetwork` is one sandbox's handle table; the host functions call it with the
run's deadline (a :func:`time.monotonic` value).

Who may connect where is not decided here: the caller checks ``network_connect`` with
:class:`vudo.engine.grants.GrantChecker` on the target :func:`normalize_address` returns
(every numeric spelling of an address, ``127.1``, ``2130706433``, ``0x7f.1``, is already
the address it stands for there), then calls :meth:`SandboxNetwork.connect` with that
same target and an ``admit`` rule. ``connect`` resolves the name **once**, asks ``admit``
about every address it resolved to, and connects to exactly an admitted address (no
second lookup, so a DNS answer that changes between the check and the connection, DNS
rebinding, cannot redirect it). No address admitted: CAPABILITY_DENIED with the reason.

Semantics:

- ``listen(port)`` binds the host's ``bind_host`` (127.0.0.1 unless configured); port 0
  picks a free port, :meth:`SandboxNetwork.local_port` tells which.
- ``recv`` returns at most ``max_bytes`` (at least one byte), or ``b""`` once the peer has
  closed its side in order.
- ``send`` returns how many bytes went out; if the deadline passes after some were sent,
  it returns that partial count, otherwise NETWORK_ERROR.
- ``broadcast(message)`` connects over loopback to one listener (the oldest) of every
  *other* sandbox on this host, writes the message and closes: the receiver ``accept``\\s a
  connection and reads the message until ``b""``. It returns how many sandboxes took it
  (their listener accepted the connection and the bytes were written); unreachable ones
  are skipped.
- Blocking calls (connect, accept, send, recv) wait until the deadline at most, then raise
  NETWORK_ERROR "timed out". :meth:`SandboxNetwork.close_all` (sandbox terminated) shuts
  every socket down, which also wakes a call blocked in another thread.

Errors: a handle not open in this sandbox, a listener used as a connection (or the
reverse), bad ports and addresses are INVALID_PARAMETER; too many open handles or an
oversized broadcast are QUOTA_EXCEEDED; every ``OSError`` becomes NETWORK_ERROR in
:func:`_socket_errors`.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.resources import Resource

__all__ = [
    "NetworkHost",
    "NetworkLimits",
    "SandboxNetwork",
    "normalize_address",
    "parse_address",
]

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")
_MAX_ADDRESS: Final = 261  # "[" + 45-char IPv6 + "]" ... or a 253-char name, ":" and 5 digits
_MAX_RESOLVED: Final = 16  # addresses of one name tried at most

#: ``admit(address) -> (allowed, reason)`` for one resolved address (``"1.2.3.4"`` or
#: ``"[::1]"``); the host builds it from :meth:`GrantChecker.check_resolved`.
Admit = Callable[[str], tuple[bool, str]]


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` into a normalised host and a port (1..65535).

    Hosts are lower-cased DNS names or IPv4 addresses, or IPv6 addresses in brackets
    (``"[::1]:80"``); a trailing dot is dropped. A host the C library reads as an IPv4
    address (``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``) and an IPv4-mapped
    IPv6 address come back as the dotted quad they stand for, IPv6 compressed. Zone ids
    and anything else are INVALID_PARAMETER.
    """
    if not isinstance(address, str) or not 0 < len(address) <= _MAX_ADDRESS:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"bad address {address!r}")
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"address {address!r} is not host:port")
    port = int(port_text)
    if not 0 < port <= 65535:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"port {port} is out of range")
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        try:
            if "%" in host:
                raise ValueError("zone id")
            ip6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise HostCallError(
                ErrorCode.INVALID_PARAMETER, f"bad IPv6 address in {address!r}"
            ) from None
        mapped = ip6.ipv4_mapped
        return (str(mapped) if mapped is not None else f"[{ip6.compressed}]"), port
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii() or not _HOSTNAME.fullmatch(host):
        raise HostCallError(ErrorCode.INVALID_PARAMETER, f"bad host name in {address!r}")
    try:  # the numeric spellings getaddrinfo would read as an address, without DNS
        return str(ipaddress.IPv4Address(socket.inet_aton(host))), port
    except OSError:
        return host, port


def normalize_address(address: str) -> str:
    """The canonical ``"host:port"`` form the grant's domain scope is matched against."""
    host, port = parse_address(address)
    return f"{host}:{port}"


@contextmanager
def _socket_errors(action: str) -> Iterator[None]:
    """The one place socket exceptions become NETWORK_ERROR."""
    try:
        yield
    except TimeoutError:
        raise HostCallError(ErrorCode.NETWORK_ERROR, f"{action}: timed out") from None
    except socket.gaierror as exc:
        raise HostCallError(
            ErrorCode.NETWORK_ERROR, f"{action}: cannot resolve host ({exc.strerror})"
        ) from None
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc)
        raise HostCallError(ErrorCode.NETWORK_ERROR, f"{action}: {reason}") from None


def _remaining(deadline: float, action: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HostCallError(ErrorCode.NETWORK_ERROR, f"{action}: timed out (deadline passed)")
    return left


def _resolve(host: str, port: int, action: str) -> list[tuple[int, tuple[object, ...], str]]:
    """The addresses of ``host`` as (family, sockaddr, canonical text), one lookup.

    ``host`` comes from :func:`parse_address`: an address is used as it is (no DNS), a
    name is resolved with ``getaddrinfo``. IPv4-mapped IPv6 answers become the IPv4
    address they reach; duplicates go; at most ``_MAX_RESOLVED`` are kept.
    """
    if host.startswith("["):
        text = host[1:-1]
        return [(socket.AF_INET6, (text, port, 0, 0), host)]
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return [(socket.AF_INET, (host, port), host)]
    with _socket_errors(action):
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    found: list[tuple[int, tuple[object, ...], str]] = []
    for family, _, _, _, sockaddr in infos:
        if family == socket.AF_INET:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(sockaddr[0])
        elif family == socket.AF_INET6:
            ip = ipaddress.IPv6Address(str(sockaddr[0]).partition("%")[0])
            if ip.ipv4_mapped is not None:
                family, ip = socket.AF_INET, ip.ipv4_mapped
                sockaddr = (str(ip), port)
        else:
            continue
        text = str(ip) if ip.version == 4 else f"[{ip.compressed}]"
        if all(text != seen for _, _, seen in found):
            found.append((family, tuple(sockaddr), text))
    if not found:
        raise HostCallError(ErrorCode.NETWORK_ERROR, f"{action}: no IPv4 or IPv6 address")
    return found[:_MAX_RESOLVED]


@dataclass(frozen=True, slots=True)
class NetworkLimits:
    """Per-sandbox bounds and broadcast settings."""

    max_handles: int = 64
    max_recv_bytes: int = 1024 * 1024
    max_broadcast_bytes: int = 64 * 1024
    broadcast_timeout: float = 1.0
    backlog: int = 16


class _Handle:
    __slots__ = ("kind", "sock")

    def __init__(self, sock: socket.socket, kind: str) -> None:
        self.sock = sock
        self.kind = kind  # "listener" or "connection"


def _shutdown(sock: socket.socket) -> None:
    # Not connected or already shut down is fine: close() is what matters.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class NetworkHost(Resource):
    """Process-wide network state: handle numbers and the broadcast registry."""

    def __init__(
        self, *, bind_host: str = "127.0.0.1", limits: NetworkLimits | None = None
    ) -> None:
        self.bind_host = bind_host
        self.limits = limits if limits is not None else NetworkLimits()
        self._lock = threading.Lock()
        self._next = 1
        self._owners: dict[int, str] = {}
        self._listeners: dict[SandboxNetwork, list[tuple[int, int]]] = {}
        self._sandboxes: list[SandboxNetwork] = []

    def sandbox(self, owner: str) -> SandboxNetwork:
        """A new handle table for the sandbox ``owner`` (its id, for messages)."""
        return SandboxNetwork(self, owner)

    def _attach(self, net: SandboxNetwork) -> None:
        with self._lock:
            self._sandboxes.append(net)

    def _detach(self, net: SandboxNetwork) -> None:
        with self._lock:
            if net in self._sandboxes:
                self._sandboxes.remove(net)
            self._listeners.pop(net, None)

    def _new_handle(self, owner: str) -> int:
        with self._lock:
            handle = self._next
            self._next += 1
            self._owners[handle] = owner
            return handle

    def _forget(self, handle: int) -> None:
        with self._lock:
            self._owners.pop(handle, None)
            for entries in self._listeners.values():
                entries[:] = [e for e in entries if e[0] != handle]

    def _owner_of(self, handle: int) -> str | None:
        with self._lock:
            return self._owners.get(handle)

    def _register_listener(self, net: SandboxNetwork, handle: int, port: int) -> None:
        with self._lock:
            self._listeners.setdefault(net, []).append((handle, port))

    def broadcast_targets(self, exclude: SandboxNetwork | None = None) -> list[int]:
        """The port of the oldest listener of every listening sandbox except ``exclude``."""
        with self._lock:
            return [
                entries[0][1]
                for net, entries in self._listeners.items()
                if net is not exclude and entries
            ]

    def close(self) -> None:
        """Close every sandbox's sockets (host shutting down)."""
        with self._lock:
            sandboxes = list(self._sandboxes)
        for net in sandboxes:
            net.close_all()


class SandboxNetwork:
    """One sandbox's sockets, addressed by integer handles valid only here."""

    def __init__(self, host: NetworkHost, owner: str) -> None:
        self.host = host
        self.owner = owner
        self.limits = host.limits
        self.bytes_in = 0
        self.bytes_out = 0
        self._lock = threading.Lock()
        self._handles: dict[int, _Handle] = {}
        self._closed = False
        host._attach(self)

    # -- handle table ------------------------------------------------------------------

    def _lookup(self, handle: int) -> _Handle:
        if type(handle) is not int:
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "handle must be an integer")
        with self._lock:
            entry = self._handles.get(handle)
        if entry is None:
            owner = self.host._owner_of(handle)
            why = "belongs to another sandbox" if owner is not None else "is not open"
            raise HostCallError(ErrorCode.INVALID_PARAMETER, f"handle {handle} {why}")
        return entry

    def _get(self, handle: int, kind: str) -> socket.socket:
        entry = self._lookup(handle)
        if entry.kind != kind:
            raise HostCallError(
                ErrorCode.INVALID_PARAMETER, f"handle {handle} is a {entry.kind}, not a {kind}"
            )
        return entry.sock

    def _check_room(self) -> None:
        with self._lock:
            count = len(self._handles)
            closed = self._closed
        if closed:
            raise HostCallError(ErrorCode.NETWORK_ERROR, "the sandbox's network is closed")
        if count >= self.limits.max_handles:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"{count} network handles open, the limit is {self.limits.max_handles}",
            )

    def _add(self, sock: socket.socket, kind: str) -> int:
        with self._lock:
            if self._closed or len(self._handles) >= self.limits.max_handles:
                full = True
            else:
                full = False
                handle = self.host._new_handle(self.owner)
                self._handles[handle] = _Handle(sock, kind)
        if full:
            sock.close()
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"network handle limit of {self.limits.max_handles} reached",
            )
        return handle

    @property
    def open_handles(self) -> int:
        with self._lock:
            return len(self._handles)

    # -- calls -------------------------------------------------------------------------

    def connect(self, address: str, deadline: float, admit: Admit | None = None) -> int:
        """Open a TCP connection to ``"host:port"``; returns its handle.

        The host is resolved once; each address is put to ``admit`` (None: every one is
        admitted) and the connection goes to exactly an admitted one, in resolver order.
        """
        host, port = parse_address(address)
        self._check_room()
        action = f"connect to {address}"
        _remaining(deadline, action)
        candidates = _resolve(host, port, action)
        if admit is not None:
            refusals: list[str] = []
            admitted = []
            for candidate in candidates:
                allowed, reason = admit(candidate[2])
                if allowed:
                    admitted.append(candidate)
                elif reason not in refusals:
                    refusals.append(reason)
            if not admitted:
                raise HostCallError(ErrorCode.CAPABILITY_DENIED, "; ".join(refusals))
            candidates = admitted
        failure: HostCallError | None = None
        for family, sockaddr, _ in candidates:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                with _socket_errors(action):
                    sock.settimeout(_remaining(deadline, action))
                    sock.connect(sockaddr)
            except HostCallError as exc:
                sock.close()
                failure = exc
                continue
            return self._add(sock, "connection")
        assert failure is not None
        raise failure

    def listen(self, port: int) -> int:
        """Listen on ``bind_host:port`` (0: any free port); returns the listener handle."""
        if type(port) is not int or not 0 <= port <= 65535:
            raise HostCallError(ErrorCode.INVALID_PARAMETER, f"port {port!r} is out of range")
        self._check_room()
        with _socket_errors(f"listen on port {port}"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host.bind_host, port))
                sock.listen(self.limits.backlog)
                bound = int(sock.getsockname()[1])
            except BaseException:
                sock.close()
                raise
        handle = self._add(sock, "listener")
        self.host._register_listener(self, handle, bound)
        return handle

    def local_port(self, handle: int) -> int:
        """The local port of a listener or connection of this sandbox."""
        entry = self._lookup(handle)
        with _socket_errors("local port"):
            return int(entry.sock.getsockname()[1])

    def accept(self, handle: int, deadline: float) -> int:
        """Wait for a connection on listener ``handle``; returns the new connection's handle."""
        sock = self._get(handle, "listener")
        self._check_room()
        action = f"accept on handle {handle}"
        left = _remaining(deadline, action)
        with _socket_errors(action):
            sock.settimeout(left)
            conn, _ = sock.accept()
        return self._add(conn, "connection")

    def send(self, handle: int, data: bytes, deadline: float) -> int:
        """Send ``data``; returns the bytes sent (all, or what went out before the deadline)."""
        sock = self._get(handle, "connection")
        view = memoryview(data)
        sent = 0
        action = f"send on handle {handle}"
        try:
            while sent < len(view):
                with _socket_errors(action):
                    sock.settimeout(_remaining(deadline, action))
                    sent += sock.send(view[sent:])
        except HostCallError:
            if sent == 0:
                raise
        finally:
            self.bytes_out += sent
        return sent

    def recv(self, handle: int, max_bytes: int, deadline: float) -> bytes:
        """Up to ``max_bytes`` received bytes; ``b""`` when the peer closed in order."""
        sock = self._get(handle, "connection")
        if type(max_bytes) is not int or max_bytes <= 0:
            raise HostCallError(
                ErrorCode.INVALID_PARAMETER, f"max_bytes must be positive, got {max_bytes!r}"
            )
        action = f"recv on handle {handle}"
        left = _remaining(deadline, action)
        with _socket_errors(action):
            sock.settimeout(left)
            data = sock.recv(min(max_bytes, self.limits.max_recv_bytes))
        self.bytes_in += len(data)
        return data

    def close(self, handle: int) -> None:
        """Close one handle of this sandbox."""
        self._lookup(handle)
        with self._lock:
            entry = self._handles.pop(handle, None)
        if entry is None:  # closed by another thread since the lookup
            raise HostCallError(ErrorCode.INVALID_PARAMETER, f"handle {handle} is not open")
        self.host._forget(handle)
        _shutdown(entry.sock)

    def broadcast(self, message: bytes, deadline: float | None = None) -> int:
        """Deliver ``message`` to every other listening sandbox; returns how many took it."""
        if not isinstance(message, bytes):
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "message must be bytes")
        if len(message) > self.limits.max_broadcast_bytes:
            raise HostCallError(
                ErrorCode.QUOTA_EXCEEDED,
                f"broadcast of {len(message)} bytes is over the "
                f"{self.limits.max_broadcast_bytes}-byte limit",
            )
        delivered = 0
        for port in self.host.broadcast_targets(exclude=self):
            timeout = self.limits.broadcast_timeout
            if deadline is not None:
                timeout = min(timeout, _remaining(deadline, "broadcast"))
            try:
                with (
                    _socket_errors("broadcast"),
                    socket.create_connection((self.host.bind_host, port), timeout=timeout) as sock,
                ):
                    sock.sendall(message)
                    sock.shutdown(socket.SHUT_WR)
            except HostCallError:
                continue
            delivered += 1
            self.bytes_out += len(message)
        return delivered

    def close_all(self) -> None:
        """Close every socket of this sandbox (it ended); wakes calls blocked on them."""
        with self._lock:
            self._closed = True
            entries = list(self._handles.items())
            self._handles.clear()
        for handle, entry in entries:
            self.host._forget(handle)
            _shutdown(entry.sock)
        self.host._detach(self)

    def __enter__(self) -> SandboxNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_all()
