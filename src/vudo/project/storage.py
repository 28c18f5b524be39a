"""``vudo storage``: a Spirit's key-value storage, as its runs see it.

A Spirit's storage namespace belongs to its run identity (:mod:`vudo.engine.identity`),
named as ``vudo credit`` names accounts (:func:`vudo.project.credit.subject`): an
installed Spirit by name, a project or module by path. Listing and reading never change
anything; :func:`delete_key` removes one key. The workbench's storage pane calls the same
functions with the store its runs already hold open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.engine.abi import HostCallError
from vudo.engine.identity import SpiritIdentity
from vudo.engine.services import STORAGE_FILE
from vudo.engine.storage import KeyValueStore
from vudo.errors import InvalidInputError, NotFoundError, VudoError, printable
from vudo.home import data_dir

__all__ = [
    "KeyDeleted",
    "StoredEntry",
    "StoredValue",
    "delete_key",
    "entries",
    "open_storage",
    "parse_key",
    "read_value",
    "show_key",
    "value_text",
]

#: Values longer than this are cut when listed (``get`` shows them whole).
PREVIEW_BYTES = 256


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One key and its value (bytes as stored; the value cut to ``size`` when a preview)."""

    key: bytes
    value: bytes
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"key": show_key(self.key), "size": self.size, "preview": value_text(self.value)}


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One whole value (``vudo storage get``)."""

    key: bytes
    value: bytes

    def to_json(self) -> dict[str, Any]:
        return {"key": show_key(self.key), "size": len(self.value), "value": value_text(self.value)}


@dataclass(frozen=True, slots=True)
class KeyDeleted:
    """``vudo storage delete``: the key, and whether it was there to delete."""

    key: bytes
    deleted: bool

    def to_json(self) -> dict[str, Any]:
        return {"key": show_key(self.key), "deleted": self.deleted}


@contextmanager
def open_storage(home: Path) -> Iterator[KeyValueStore]:
    """The user's store (``<home>/data/storage.sqlite``)."""
    path = data_dir(home) / STORAGE_FILE
    if not path.is_file():
        raise NotFoundError(
            "no Spirit has stored anything yet", hint="a Spirit's first storage write creates it"
        )
    try:
        store = KeyValueStore(path)
    except HostCallError as exc:
        raise VudoError(f"cannot open the storage database: {exc}") from exc
    with store:
        yield store


def _errors(exc: HostCallError) -> VudoError:
    return VudoError(f"storage: {exc}", hint="`vudo repair` checks the databases")


def entries(
    store: KeyValueStore, identity: SpiritIdentity, *, preview: int | None = PREVIEW_BYTES
) -> list[StoredEntry]:
    """Every key of ``identity``'s namespace with its value (cut to ``preview`` bytes)."""
    try:
        out = []
        for key in store.keys(identity.namespace):
            value = store.read(identity.namespace, key)
            if value is None:  # deleted between the two reads
                continue
            shown = value if preview is None else value[:preview]
            out.append(StoredEntry(key, shown, len(value)))
        return out
    except HostCallError as exc:
        raise _errors(exc) from exc


def read_value(store: KeyValueStore, identity: SpiritIdentity, key: bytes) -> StoredValue | None:
    """The whole value stored under ``key`` in ``identity``'s namespace (None if absent)."""
    try:
        value = store.read(identity.namespace, key)
    except HostCallError as exc:
        raise _errors(exc) from exc
    return None if value is None else StoredValue(key, value)


def delete_key(store: KeyValueStore, identity: SpiritIdentity, key: bytes) -> KeyDeleted:
    """Remove ``key`` from ``identity``'s namespace (``deleted`` False: it was not there)."""
    try:
        return KeyDeleted(key, store.delete(identity.namespace, key))
    except HostCallError as exc:
        raise _errors(exc) from exc


def value_text(value: bytes) -> str:
    """A value as text: its UTF-8 (control characters escaped), else ``hex:...``."""
    try:
        return printable(value.decode("utf-8"))
    except UnicodeDecodeError:
        return "hex:" + value.hex()


def show_key(key: bytes) -> str:
    """A key as users type it: UTF-8 text when it is printable text, else ``hex:...``."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + key.hex()
    if text.isprintable() and not text.startswith("hex:"):
        return text
    return "hex:" + key.hex()


def parse_key(text: str) -> bytes:
    """The inverse of :func:`show_key`: ``hex:6b6579`` or plain UTF-8 text."""
    if text.startswith("hex:"):
        try:
            key = bytes.fromhex(text[4:])
        except ValueError:
            raise InvalidInputError(
                f'"{text[:40]}" is not hex', hint="write hex:<even number of hex digits>"
            ) from None
    else:
        key = text.encode("utf-8")
    if not key:
        raise InvalidInputError("the key is empty", hint="`vudo storage list` shows the keys")
    return key
