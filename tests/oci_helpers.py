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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _htpasswd(user: str, password: str) -> str:
    """A bcrypt htpasswd line (what Distribution's htpasswd auth accepts)."""
    out = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip() + "\n"


@dataclass
class OciServer:
    """A running ``docker-registry``; ``storage`` is its filesystem root."""

    port: int
    storage: Path
    proc: subprocess.Popen[bytes]
    username: str = REGISTRY_USER
    password: str = REGISTRY_PASSWORD

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, namespace: str) -> str:
        return f"oci://{self.host}/{namespace}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_registry(tmp: Path, *, auth: bool = True) -> OciServer:
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry; "
                    ".ci/run installs it)")
    port = free_port()
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
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: vudo-test-secret\n"
        + auth_block)
    with open(tmp / "registry.log", "wb") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("docker-registry exited: " + (tmp / "registry.log").read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start listening")
    return OciServer(port, storage, proc)


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
                threading.Thread(target=self._pump, args=(src, dst, way, state, client,
                                                          upstream), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str,
              state: dict[str, int | bool], client: socket.socket,
              upstream: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                limit = self.cut_after
                if limit is not None and way == self.direction:
                    room = limit - int(state[way])
                    if len(data) >= room:
                        dst.sendall(data[:max(room, 0)])
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
