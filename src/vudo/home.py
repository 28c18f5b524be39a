"""Where vudo keeps its files: ``~/.vudo`` or ``$VUDO_HOME``.

Everything that touches the user's home goes through :func:`vudo_home` and the path
functions here (no other module spells a directory name under the home), and takes the
home as a parameter where it can, so tests pass a temp dir instead of patching::

    <home>/keys/                 the user's Ed25519 key pair
    <home>/store/                the local store of installed Spirits (pkg/store.py)
    <home>/registries/local/     the built-in directory registry (`vudo publish`)
    <home>/cache/                compiled modules, git checkouts, HTTP registry downloads
    <home>/data/                 Spirit storage and the credit ledger

Homes written by older versions kept the store in ``registry/`` and the built-in
registry in ``published/``; :func:`migrate_home` moves them once, before either is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from vudo.errors import VudoError


def vudo_home(environ: dict[str, str] | None = None) -> Path:
    """The vudo home directory (not created)."""
    env = os.environ if environ is None else environ
    override = env.get("VUDO_HOME")
    return Path(override) if override else Path.home() / ".vudo"


def keys_dir(home: Path) -> Path:
    return Path(home) / "keys"


def store_dir(home: Path) -> Path:
    """The local store of installed Spirits."""
    return Path(home) / "store"


def local_registry_dir(home: Path) -> Path:
    """The built-in directory registry, used when no ``--registry`` is named."""
    return Path(home) / "registries" / "local"


def cache_dir(home: Path) -> Path:
    """Compiled-module cache (and, below it, the other caches)."""
    return Path(home) / "cache"


def grant_cache_dir(home: Path) -> Path:
    """Signed grants kept for repeat runs (:mod:`vudo.project.grant_cache`)."""
    return cache_dir(home) / "grants"


def git_cache_dir(home: Path) -> Path:
    """Checkouts of git dependencies."""
    return cache_dir(home) / "git"


def download_cache_dir(home: Path) -> Path:
    """Packages and indexes downloaded from HTTP and OCI registries."""
    return cache_dir(home) / "registries"


def trusted_file(home: Path) -> Path:
    """Project folders the user trusts to build and run (``vudo trust``)."""
    return Path(home) / "trusted.json"


def old_trusted_file(home: Path) -> Path:
    """Where older homes listed the trusted folders, as TOML: read while
    :func:`trusted_file` does not exist yet, removed once it is written."""
    return Path(home) / "trusted.toml"


def data_dir(home: Path) -> Path:
    """Spirit storage and the credit ledger."""
    return Path(home) / "data"


#: (old location, new location) of each directory an older home may have.
_MOVED = ((("registry",), store_dir), (("published",), local_registry_dir))


def migrate_home(home: Path) -> None:
    """Move an older home's ``registry/`` (the store) to ``store/`` and ``published/``
    (the built-in registry) to ``registries/local/``, once.

    Each move is one ``rename``, so another process opening the same home at the same
    time sees the old layout or the new one, never half of each; the process that loses
    the race finds the new directory there and leaves it alone. An old directory is
    left in place when the new one already exists (nothing is merged or overwritten).
    """
    home = Path(home)
    for old_parts, new_of in _MOVED:
        old, new = home.joinpath(*old_parts), new_of(home)
        if new.exists() or not old.is_dir():
            continue
        try:
            new.parent.mkdir(parents=True, exist_ok=True)
            os.rename(old, new)
        except FileNotFoundError:  # another process moved it first
            continue
        except OSError as err:
            if new.is_dir():  # ENOTEMPTY/EEXIST: another process got there first
                continue
            raise VudoError(
                f"cannot move {old} to {new} (the new home layout): {err.strerror or err}",
                hint=f"move it by hand, or make {home} writable",
            ) from None
