"""vudo: run untrusted WebAssembly Spirits in capability-checked, metered sandboxes.

The engine lives in :mod:`vudo.engine`, the package manager in :mod:`vudo.pkg`, the
developer workflow in :mod:`vudo.project`. ``import vudo`` stays light: it never imports
textual, and the heavier submodules load when first used.
"""

from __future__ import annotations

from vudo.capabilities import Capability
from vudo.errors import VudoError

__version__ = "0.1.0"

__all__ = ["Capability", "VudoError", "__version__"]
