"""The host-side services a sandbox's host functions use, bundled in one value.

The engine takes a :class:`HostServices` in its sandbox configuration; the CLI opens one
per process from the vudo home's data directory, tests open one in ``tmp_path`` and pass a
fixed clock and a seeded random source so runs are repeatable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vudo.engine.ledger import CreditLedger
from vudo.engine.network import NetworkHost, NetworkLimits
from vudo.engine.storage import KeyValueStore, StorageQuota
from vudo.errors import VudoError
from vudo.resources import Resource

__all__ = ["LEDGER_FILE", "STORAGE_FILE", "HostServices", "make_data_dir"]

STORAGE_FILE = "storage.sqlite"
LEDGER_FILE = "ledger.sqlite"


@dataclass(frozen=True, slots=True)
class HostServices(Resource):
    """Storage, ledger, network host, clock (Unix ns) and randomness for host calls."""

    storage: KeyValueStore
    ledger: CreditLedger
    network: NetworkHost = field(default_factory=NetworkHost)
    clock: Callable[[], int] = time.time_ns
    random: Callable[[int], bytes] = os.urandom

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Callable[[], int] = time.time_ns,
        random: Callable[[int], bytes] = os.urandom,
        storage_quota: StorageQuota | None = None,
        network_limits: NetworkLimits | None = None,
        bind_host: str = "127.0.0.1",
    ) -> HostServices:
        """Open (creating if needed) ``data_dir/storage.sqlite`` and ``ledger.sqlite``."""
        data_dir = make_data_dir(Path(data_dir))
        storage = KeyValueStore(data_dir / STORAGE_FILE, quota=storage_quota)
        try:
            ledger = CreditLedger(data_dir / LEDGER_FILE)
        except BaseException:
            storage.close()
            raise
        return cls(
            storage=storage,
            ledger=ledger,
            network=NetworkHost(bind_host=bind_host, limits=network_limits),
            clock=clock,
            random=random,
        )

    def close(self) -> None:
        """Close every socket, then the ledger and the store. Safe to call twice."""
        try:
            self.network.close()
        finally:
            try:
                self.ledger.close()
            finally:
                self.storage.close()


def make_data_dir(data_dir: Path) -> Path:
    """Create the folder the storage and ledger files live in; VudoError if it cannot be."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VudoError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc}",
            hint="set VUDO_HOME to a writable directory",
        ) from exc
    return data_dir
