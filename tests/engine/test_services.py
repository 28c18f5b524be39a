"""HostServices: opens real files in a data directory, bundles clock and randomness."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.ledger import CreditLedger
from vudo.engine.network import NetworkHost, NetworkLimits
from vudo.engine.services import LEDGER_FILE, STORAGE_FILE, HostServices
from vudo.engine.storage import KeyValueStore, StorageQuota
from vudo.errors import VudoError

ACCOUNT = b"\x07" * 32


def test_open_creates_both_databases_and_persists(tmp_path: Path) -> None:
    data = tmp_path / "home" / "data"
    with HostServices.open(data) as services:
        assert isinstance(services.storage, KeyValueStore)
        assert isinstance(services.ledger, CreditLedger)
        assert isinstance(services.network, NetworkHost)
        services.storage.write("spirit", b"k", b"v")
        services.ledger.deposit(ACCOUNT, 9)
    assert (data / STORAGE_FILE).is_file() and (data / LEDGER_FILE).is_file()
    with HostServices.open(data) as services:
        assert services.storage.read("spirit", b"k") == b"v"
        assert services.ledger.balance(ACCOUNT) == 9


def test_defaults_are_the_real_clock_and_csprng(tmp_path: Path) -> None:
    with HostServices.open(tmp_path) as services:
        assert services.clock is time.time_ns
        assert services.random is os.urandom
        assert abs(services.clock() - time.time_ns()) < 60 * 10**9


def test_clock_random_and_limits_are_passed_in(tmp_path: Path) -> None:
    with HostServices.open(
        tmp_path,
        clock=lambda: 42,
        random=lambda n: b"\x01" * n,
        storage_quota=StorageQuota(max_value_bytes=2),
        network_limits=NetworkLimits(max_handles=1),
    ) as services:
        assert services.clock() == 42
        assert services.random(3) == b"\x01\x01\x01"
        with pytest.raises(HostCallError) as info:
            services.storage.write("s", b"k", b"abc")
        assert info.value.code is ErrorCode.QUOTA_EXCEEDED
        net = services.network.sandbox("s")
        net.listen(0)
        with pytest.raises(HostCallError) as info:
            net.listen(0)
        assert info.value.code is ErrorCode.QUOTA_EXCEEDED


def test_close_closes_everything_and_is_idempotent(tmp_path: Path) -> None:
    services = HostServices.open(tmp_path)
    net = services.network.sandbox("s")
    net.listen(0)
    services.close()
    services.close()
    assert net.open_handles == 0
    for call in (
        lambda: services.storage.read("s", b"k"),
        lambda: services.ledger.balance(ACCOUNT),
    ):
        with pytest.raises(HostCallError) as info:
            call()
        assert info.value.code is ErrorCode.STORAGE_ERROR


def test_unusable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(VudoError) as info:
        HostServices.open(blocker / "data")
    assert info.value.hint


def test_bad_ledger_file_closes_the_store_it_opened(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILE).write_bytes(b"garbage" * 500)
    with pytest.raises(VudoError):
        HostServices.open(tmp_path)
    # The storage database was closed again: it can be opened and used normally.
    with KeyValueStore(tmp_path / STORAGE_FILE) as kv:
        kv.write("s", b"k", b"v")


def test_services_value_is_frozen(tmp_path: Path) -> None:
    with HostServices.open(tmp_path) as services, pytest.raises(AttributeError):
        services.clock = time.time_ns  # type: ignore[misc]
