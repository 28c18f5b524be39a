"""SHA-256 for all of vudo, cheap to start.

``hashlib`` loads OpenSSL when imported (~4 ms, more than a small Spirit takes to run),
and every ``vudo run`` takes a few small digests (the module, its identity, its grants,
the build stamp). CPython's own SHA-256 (``_sha256``; ``_sha2`` from 3.12) costs nothing
to import but hashes about five times slower than OpenSSL, so :func:`sha256` gives small
inputs to it and large ones, and streams of unknown size, to OpenSSL. Both compute the
same digest; only the speed differs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = ["LARGE", "sha256"]

#: From this many bytes on, OpenSSL's speed pays for loading it.
LARGE = 1 << 20

if sys.version_info >= (3, 12):
    from _sha2 import sha256 as _builtin
else:
    from _sha256 import sha256 as _builtin  # type: ignore[import-not-found]


def sha256(data: bytes | bytearray | memoryview = b"", *, stream: bool = False) -> _Hash:
    """A SHA-256 hash object (``hashlib``'s interface) over ``data``.

    ``stream``: more data will follow with ``update`` (a file, a download), so take
    OpenSSL's speed from the start.
    """
    if not stream and len(data) < LARGE:
        return _builtin(data)  # type: ignore[no-any-return]
    import hashlib  # lazy: OpenSSL (~4 ms) only for large inputs and streams

    return hashlib.sha256(data)
