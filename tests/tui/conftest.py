"""Fixtures for the workbench tests: a temp home with a fixed key, small WAT projects,
and SVG snapshots stored under the top-level ``snapshots/`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from tui_helpers import write_project

from vudo.home import keys_dir
from vudo.pkg.keys import KeyPair, generate_keypair, save_keypair

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "snapshots"


class TopLevelSVG(SVGImageExtension):
    """pytest-textual-snapshot's SVG extension, writing to ``snapshots/<test module>/``."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOT_DIR / Path(test_location.filepath).stem)


class TopLevelSnapshot(SnapshotAssertion):
    def use_extension(self, extension_class: Any = None) -> SnapshotAssertion:
        if extension_class is SVGImageExtension:
            extension_class = TopLevelSVG
        return super().use_extension(extension_class)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return TopLevelSnapshot(
        session=snapshot.session,
        extension_class=snapshot.extension_class,
        test_location=snapshot.test_location,
        update_snapshots=snapshot.update_snapshots,
    )


@pytest.fixture(autouse=True)
def _stable_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("VUDO_HOME", str(tmp_path / "home"))


FIXED_SEED = bytes(range(32))


@pytest.fixture
def keypair(tmp_path: Path) -> KeyPair:
    kp = generate_keypair(lambda n: FIXED_SEED[:n])
    save_keypair(kp, keys_dir(tmp_path / "home"))
    return kp


@pytest.fixture
def home(tmp_path: Path, keypair: KeyPair) -> Path:
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path, keypair: KeyPair) -> Path:
    return write_project(tmp_path / "hello-spirit", author=keypair.public_hex)
