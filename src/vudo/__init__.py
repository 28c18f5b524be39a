"""vudo: run untrusted WebAssembly Spirits in capability-checked, metered sandboxes.

Embedding: ``vudo.load(...)`` returns a :class:`vudo.api.Spirit` to call with bytes in
and bytes out, ``vudo.HostFunctions`` defines the application's own host functions
(:mod:`vudo.api`, :mod:`vudo.engine.custom`). The engine lives in :mod:`vudo.engine`,
the package manager in :mod:`vudo.pkg`, the developer workflow in :mod:`vudo.project`.
``import vudo`` stays light: it never imports textual, and the heavier submodules load
when first used.

Value style: values are frozen, slotted dataclasses, with one exception: the modules a
``vudo run`` of a module or of a project, or a ``vudo search``, imports
(``vudo.engine.config``, ``.events``, ``.receipt``, ``.grants``, ``vudo.project.layout``,
``.runner``, ``.workspace``, ``.installed``, ``vudo.pkg.pricing``, ``vudo.pkg.index``,
``vudo.cli.app``) make their records named tuples (or, for a value that checks its fields,
a small slotted class, :class:`vudo.engine.grants.Grant`), which are as immutable and
slotted but cost nothing to define, where ``dataclasses`` (it imports ``inspect``) costs
more than a small guest takes to run. A run has imported ``typing`` with wasmtime, so the
run path writes them as :class:`typing.NamedTuple` classes; the modules ``vudo search``
and every command's start import (``vudo.cli.app``, ``vudo.pkg.index``,
``vudo.project.installed``) never import ``typing`` (:data:`TYPE_CHECKING` below), and
write the same class with :func:`collections.namedtuple`, the field types under
``if TYPE_CHECKING:``. ``tests/test_layering.py`` checks that those commands keep
``dataclasses`` out, and ``vudo search`` and ``vudo --help`` ``typing`` too.
"""

from __future__ import annotations

from vudo.errors import VudoError

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (~4 ms, which ``vudo search`` and
#: ``vudo --help`` would otherwise pay): type checkers read any constant of this name as
#: true. The modules those commands import spell it so, and keep ``typing`` under it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from vudo.api import Spirit, load
    from vudo.capabilities import Capability
    from vudo.engine.custom import HostContext, HostFunctions

__version__ = "0.1.0"

__all__ = [
    "Capability",
    "HostContext",
    "HostFunctions",
    "Spirit",
    "VudoError",
    "__version__",
    "load",
]

#: The embedding API (vudo.api) and the capability names, loaded on first use so
#: ``import vudo`` (which every ``vudo`` command does) stays light.
_LAZY = {
    "Capability": "vudo.capabilities",
    "load": "vudo.api",
    "Spirit": "vudo.api",
    "HostFunctions": "vudo.engine.custom",
    "HostContext": "vudo.engine.custom",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vudo' has no attribute {name!r}")
    import importlib  # lazy: only the embedding API's first use needs it

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
