"""Helpers for the OCI registry tests (fixtures in tests/conftest.py): a real OCI
registry (CNCF Distribution, the ``docker-registry`` binary) on a loopback port with
htpasswd Basic auth, and a TCP proxy that can cut a connection part-way (a registry going
down mid-transfer)."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY_USER = "vudo-user"
REGISTRY_PASSWORD = "s3cret-Pa55word"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _htpasswd(user: str, password: str) -> str:
    """A bcrypt htpasswd line (what Distribution's htpasswd auth accepts)."""
    out = subprocess.run(
        ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip() + "\n"


@dataclass
class OciServer:
    """A running ``docker-registry``; ``storage`` is its filesystem root."""

    port: int
    storage: Path
    proc: subprocess.Popen[bytes]
    username: str = REGISTRY_USER
    password: str = REGISTRY_PASSWORD
    address: str = "127.0.0.1"

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    def url(self, namespace: str) -> str:
        return f"oci://{self.host}/{namespace}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_registry(
    tmp: Path, *, auth: bool = True, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None
) -> OciServer:
    """Start ``docker-registry`` on a free port of ``host``; ``tls`` is (cert, key)."""
    if shutil.which("docker-registry") is None:
        pytest.fail(
            "docker-registry is not installed (apt-get install docker-registry; "
            ".ci/run installs it)"
        )
    port = free_port(host)
    storage = tmp / "storage"
    storage.mkdir(parents=True)
    config = tmp / "config.yml"
    auth_block = ""
    if auth:
        (tmp / "htpasswd").write_text(_htpasswd(REGISTRY_USER, REGISTRY_PASSWORD))
        auth_block = f"auth:\n  htpasswd:\n    realm: vudo-test\n    path: {tmp / 'htpasswd'}\n"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: {host}:{port}\n  secret: vudo-test-secret\n"
        + (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "")
        + auth_block
    )
    with open(tmp / "registry.log", "wb") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("docker-registry exited: " + (tmp / "registry.log").read_text())
        try:
            with socket.create_connection((host, port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start listening")
    return OciServer(port, storage, proc, address=host)


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class CutProxy:
    """Forwards 127.0.0.1:port to a target; with ``cut_after`` set, closes a connection
    once that many bytes went the way ``direction`` says ("down": to the client)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_after: int | None = None
        self.direction = "down"
        self.cuts = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            state = {"down": 0, "up": 0, "dead": False}
            for src, dst, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(
                    target=self._pump, args=(src, dst, way, state, client, upstream), daemon=True
                ).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        way: str,
        state: dict[str, int | bool],
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        try:
            while data := src.recv(65536):
                limit = self.cut_after
                if limit is not None and way == self.direction:
                    room = limit - int(state[way])
                    if len(data) >= room:
                        dst.sendall(data[: max(room, 0)])
                        self.cuts += 1
                        raise OSError("cut")
                state[way] = int(state[way]) + len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._sock.close()


class TokenFront:
    """A registry front that speaks the Docker token protocol: requests without a valid
    Bearer token get ``401 WWW-Authenticate: Bearer realm=...``; ``GET /token`` trades
    Basic credentials (or a ``refresh_token`` POST) for a token scoped as asked; requests
    with a token are forwarded to the real registry behind it (with its Basic login)."""

    def __init__(self, upstream: OciServer) -> None:
        import http.server
        import secrets

        self.upstream = upstream
        self.tokens: dict[str, str] = {}  # token -> scope
        self.refresh_token = "refresh-" + secrets.token_hex(8)
        self.token_requests: list[str] = []
        self.expires_in: int | None = None  # sent with each token when set
        self.refuse_tokens = False  # every token is refused (as if revoked at once)
        self.challenges = 0  # 401s sent to registry requests
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _token(self) -> None:
                import json
                import urllib.parse

                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length", "0"))
                    form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                    ok = form.get("refresh_token") == [front.refresh_token]
                    scope = (form.get("scope") or [""])[0]
                else:
                    ok = self.headers.get("Authorization") == basic_header(
                        upstream.username, upstream.password
                    )
                    scope = (query.get("scope") or [""])[0]
                front.token_requests.append(scope)
                if not ok:
                    self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                    return
                token = secrets.token_hex(16)
                front.tokens[token] = scope
                body: dict[str, object] = {"token": token}
                if front.expires_in is not None:
                    body["expires_in"] = front.expires_in
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def _any(self) -> None:
                import http.client

                if self.path.startswith("/token"):
                    self._token()
                    return
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
                if token not in front.tokens or front.refuse_tokens:
                    front.challenges += 1
                    if self.headers.get("Content-Length"):
                        self.rfile.read(int(self.headers["Content-Length"]))
                    realm = f"http://127.0.0.1:{front.port}/token"
                    self._send(
                        401,
                        b"{}",
                        {"WWW-Authenticate": f'Bearer realm="{realm}",service="vudo-test"'},
                    )
                    return
                body = None
                if self.headers.get("Content-Length"):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("authorization", "host", "connection")
                }
                headers["Authorization"] = basic_header(upstream.username, upstream.password)
                conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out = {
                    k: v
                    for k, v in resp.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding")
                }
                conn.close()
                self._send(resp.status, data, out)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, namespace: str) -> str:
        return f"oci://127.0.0.1:{self.port}/{namespace}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def non_loopback_ipv4() -> str | None:
    """An address of this machine that is not loopback (TLS is required there), if any."""
    import ipaddress

    candidates: list[str] = []
    with contextlib.suppress(OSError):
        candidates += [
            str(a[4][0]) for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        ]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        candidates.append(str(s.getsockname()[0]))
    for ip in candidates:
        if not ipaddress.ip_address(ip).is_loopback:
            with contextlib.suppress(OSError), socket.socket() as probe:
                probe.bind((ip, 0))
                return ip
    return None


def self_signed(tmp: Path, ip: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``ip`` (openssl), as (cert, key)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=vudo-test",
            "-addext",
            f"subjectAltName=IP:{ip}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
