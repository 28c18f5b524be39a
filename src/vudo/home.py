"""Where vudo keeps its files: ``~/.vudo`` or ``$VUDO_HOME``.

Everything that touches the user's home goes through :func:`vudo_home`, and takes the
home as a parameter where it can, so tests pass a temp dir instead of patching.
"""

from __future__ import annotations

import os
from pathlib import Path


def vudo_home(environ: dict[str, str] | None = None) -> Path:
    """The vudo home directory (not created)."""
    env = os.environ if environ is None else environ
    override = env.get("VUDO_HOME")
    return Path(override) if override else Path.home() / ".vudo"


def keys_dir(home: Path) -> Path:
    return home / "keys"


def registry_dir(home: Path) -> Path:
    """The local store of installed Spirits."""
    return home / "registry"


def cache_dir(home: Path) -> Path:
    """Compiled-module cache."""
    return home / "cache"


def data_dir(home: Path) -> Path:
    """Spirit storage and the credit ledger."""
    return home / "data"
