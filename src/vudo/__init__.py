"""vudo: run untrusted WebAssembly Spirits in capability-checked, metered sandboxes.

The engine lives in :mod:`vudo.engine`, the package manager in :mod:`vudo.pkg`, the
developer workflow in :mod:`vudo.project`. ``import vudo`` stays light: it never imports
textual, and the heavier submodules load when first used.

Value style: values are frozen, slotted dataclasses, with one exception: the modules a
plain ``vudo run`` imports (``vudo.engine.config``, ``.events``, ``.receipt``,
``vudo.project.layout``, ``vudo.project.runner``) use :class:`typing.NamedTuple`, which is
as immutable and slotted but costs nothing to import, where ``dataclasses`` (it imports
``inspect``) costs more than a small guest takes to run. ``tests/test_layering.py``
checks that a run keeps ``dataclasses`` out.
"""

from __future__ import annotations

from vudo.capabilities import Capability
from vudo.errors import VudoError

__version__ = "0.1.0"

__all__ = ["Capability", "VudoError", "__version__"]
