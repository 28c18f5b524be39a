"""Consent as a value, not a prompt: what a Spirit asks for and what the user decides.

:class:`ConsentRequest` says what a Spirit asks for (on upgrade, also what its installed
version had); :func:`decide_consent` turns the user's flags into a
:class:`ConsentDecision` or says it must ask. The CLI prompts on a terminal, the TUI
shows a dialog; :mod:`vudo.project.installing` stores the grants of the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vudo.capabilities import AnyCapability, parse_any_capability
from vudo.errors import UsageError


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What a Spirit asks for, shown before it is installed or upgraded."""

    name: str
    version: str
    signer: str
    author: str
    capabilities: tuple[AnyCapability, ...]
    previous: tuple[AnyCapability, ...] | None = None  # installed version's, on upgrade
    #: WASI data directories of its own it wants (the manifest's ``directories``)
    directories: tuple[str, ...] = ()

    @property
    def added(self) -> tuple[AnyCapability, ...]:
        if self.previous is None:
            return self.capabilities
        return tuple(c for c in self.capabilities if c not in self.previous)

    @property
    def removed(self) -> tuple[AnyCapability, ...]:
        if self.previous is None:
            return ()
        return tuple(c for c in self.previous if c not in self.capabilities)

    @property
    def widens(self) -> bool:
        return bool(self.added)


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """Which asked-for capabilities are granted (with scope) and which are denied."""

    granted: tuple[tuple[AnyCapability, str], ...]
    denied: tuple[AnyCapability, ...]


Consent = Callable[[ConsentRequest, bool], ConsentDecision]
"""Asked once per package to install: (request, is_the_named_one) -> decision."""


def decide_consent(
    request: ConsentRequest,
    *,
    yes: bool = False,
    grant: Sequence[str] = (),
    deny: Sequence[str] = (),
) -> ConsentDecision | None:
    """The decision the flags already make, or None when the user must be asked.

    ``--yes`` grants everything asked for except ``--deny``; ``--grant`` lists exactly
    what to grant (the rest is denied); asking for nothing needs no consent. A ``--grant``
    of a capability the Spirit did not ask for is an error: consent is to its request.
    """
    asked = request.capabilities
    denied = {parse_any_capability(d.strip()) for d in deny}
    chosen: dict[AnyCapability, str] = {}
    for spec in grant:
        from vudo.engine.grants import parse_grant_spec  # lazy: only with --grant

        cap, scope = parse_grant_spec(spec)
        if cap not in asked:
            raise UsageError(
                f'{request.name} does not ask for "{cap.value}"',
                hint="it asks for: " + (", ".join(c.value for c in asked) or "nothing"),
            )
        chosen[cap] = scope
    if not asked:
        return ConsentDecision((), ())
    if chosen:
        granted = tuple((c, s) for c, s in chosen.items() if c not in denied)
        return ConsentDecision(granted, tuple(c for c in asked if c not in dict(granted)))
    if yes:
        return ConsentDecision(
            tuple((c, "global") for c in asked if c not in denied),
            tuple(c for c in asked if c in denied),
        )
    return None
