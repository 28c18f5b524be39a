"""The vudo home layout and the one-time move of an older home (``registry/`` held the
store, ``published/`` the built-in registry), on real directories and real SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vudo.errors import VudoError
from vudo.home import local_registry_dir, migrate_home, store_dir
from vudo.pkg.archive import pack
from vudo.pkg.keys import generate_keypair
from vudo.pkg.registry import DirectoryRegistry
from vudo.pkg.signing import sign_package
from vudo.pkg.store import LocalStore, open_store
from vudo.project.registries import browse, local_registry

SRC = str(Path(__file__).resolve().parent.parent / "src")
MODULE = b"\x00asm\x01\x00\x00\x00"


def make_package(tmp: Path, name: str) -> Path:
    """A signed package of an empty module (the store and registries verify it)."""
    signer = generate_keypair(lambda n: bytes([1]) * n)
    root = tmp / "src" / name
    root.mkdir(parents=True)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "0.1.0"\nauthor = "{signer.public_hex}"\n'
        'description = "d"\ncapabilities = ["sensor_time"]\n'
    )
    (root / "module.wasm").write_bytes(MODULE)
    out = pack(root / "spirit.toml", root / "module.wasm", root / f"{name}.spirit")
    sign_package(out, signer)
    return out


def old_home(tmp_path: Path) -> Path:
    """A home laid out the old way: one installed Spirit, one published one."""
    home = tmp_path / "home"
    with LocalStore(home / "registry") as store:
        store.install(make_package(tmp_path, "installed-one"))
        store.save_grants("installed-one", [])
    DirectoryRegistry(home / "published", create=True).publish(
        make_package(tmp_path, "published-one")
    )
    return home


def test_paths_come_from_home() -> None:
    home = Path("/h")
    assert store_dir(home) == Path("/h/store")
    assert local_registry_dir(home) == Path("/h/registries/local")


def test_old_home_is_moved_once_on_open(tmp_path: Path) -> None:
    home = old_home(tmp_path)
    with open_store(home) as store:
        assert [s.name for s in store.list()] == ["installed-one"]
        assert store.root == home / "store"
        # the package files moved with the index: the installed one still verifies
        assert store.check(deep=True).ok
    assert not (home / "registry").exists()
    assert [e.name for e in browse(home=home)] == ["published-one"]
    assert not (home / "published").exists()
    assert local_registry(home).path == home / "registries" / "local"
    migrate_home(home)  # nothing left to move: a no-op
    assert sorted(p.name for p in home.iterdir()) == ["registries", "store"]


def test_new_layout_wins_and_old_is_left_alone(tmp_path: Path) -> None:
    home = old_home(tmp_path)
    with LocalStore(store_dir(home)):
        pass  # a store already in the new place (empty)
    migrate_home(home)
    assert (home / "registry").is_dir()  # not merged, not deleted
    with open_store(home) as store:
        assert store.list() == []


def test_fresh_home_gets_the_new_layout(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    with open_store(home):
        pass
    local_registry(home)
    assert sorted(p.name for p in home.iterdir()) == ["registries", "store"]


RACER = """
import sys, time
from pathlib import Path
from vudo.pkg.store import open_store
from vudo.project.registries import local_registry
home, start = Path(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    pass
with open_store(home) as store:
    names = [s.name for s in store.list()]
reg = local_registry(home)
print(",".join(names), ",".join(reg.names()))
"""


def test_concurrent_first_opens_of_an_old_home(tmp_path: Path) -> None:
    """Several processes open an old home at the same instant: every one sees the moved
    store and registry, none fails, nothing is left behind or duplicated."""
    home = old_home(tmp_path)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.time() + 2.0  # after every interpreter has started
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(home), str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.split() == ["installed-one", "published-one"], (out, err)
    assert sorted(p.name for p in home.iterdir()) == ["registries", "store"]
    assert sorted(p.name for p in (home / "registries").iterdir()) == ["local"]


def test_old_store_that_is_a_file_is_not_moved(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry").write_text("not a directory")
    with open_store(home) as store:
        assert store.list() == []
    assert (home / "registry").read_text() == "not a directory"


@pytest.mark.parametrize("old", ["registry", "published"])
def test_unmovable_old_directory_is_an_error_not_an_empty_store(tmp_path: Path, old: str) -> None:
    home = tmp_path / "home"
    (home / old).mkdir(parents=True)
    if old == "registry":  # store/ is a dangling symlink: the rename cannot replace it
        new = store_dir(home)
        new.symlink_to(tmp_path / "nowhere")
    else:  # registries/ is a file: registries/local cannot be created
        new = local_registry_dir(home)
        new.parent.write_text("")
    with pytest.raises(VudoError, match="cannot move") as err:
        open_store(home) if old == "registry" else local_registry(home)
    assert str(home / old) in err.value.message and str(new) in err.value.message
    assert err.value.hint is not None and "move it by hand" in err.value.hint
    assert (home / old).is_dir()  # left where it was
