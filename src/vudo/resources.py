"""The one shape every vudo resource has: ``close()`` and the context-manager protocol.

Stores, ledgers, registries and the host services hold files, SQLite connections or
sockets. Each says how to release them in ``close()``; :class:`Resource` turns that into
``with`` support, so the protocol is written once instead of in every class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["Resource"]


class Resource(ABC):
    """Base class of anything that must be closed: subclasses define :meth:`close`.

    ``with resource:`` closes it on the way out, exception or not, and never swallows
    the exception. Slot-free (``__slots__ = ()``) so frozen, slotted dataclasses can
    derive from it.
    """

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Release what the resource holds; calling it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
