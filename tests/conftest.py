"""Fixtures shared by the pkg and cli tests: a real OCI registry (CNCF Distribution) on a
loopback port with htpasswd Basic auth, per-test namespaces, and a connection-cutting proxy
(the helpers are in oci_helpers.py)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from oci_helpers import CutProxy, OciServer, TokenFront, start_registry


@pytest.fixture(scope="session")
def oci_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciServer]:
    """One registry for the session; tests keep apart by namespace (``oci_ns``)."""
    server = start_registry(tmp_path_factory.mktemp("oci-registry"))
    yield server
    server.stop()


_namespaces = itertools.count(1)


@pytest.fixture
def oci_ns() -> str:
    """A namespace no other test uses, in the session registry."""
    return f"t{os.getpid()}x{next(_namespaces)}"


@pytest.fixture
def cut_proxy(oci_server: OciServer) -> Iterator[CutProxy]:
    proxy = CutProxy(oci_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def token_front(oci_server: OciServer) -> Iterator[TokenFront]:
    """The session registry behind a Bearer-token front (the Docker token protocol)."""
    front = TokenFront(oci_server)
    yield front
    front.close()
