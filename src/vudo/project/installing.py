"""Installing Spirits: ``vudo summon``, ``install``, ``upgrade`` and ``uninstall``.

Every package is verified, and consented to (:mod:`vudo.project.consent`), before it is
installed; the grants the user agreed to are signed with their key
(:func:`vudo.project.grants.sign_grants`) and stored with the Spirit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.engine.grants import Grant
from vudo.errors import NotFoundError
from vudo.home import git_cache_dir
from vudo.pkg.keys import ensure_keypair
from vudo.pkg.manifest import Dependency
from vudo.pkg.registry import Fetched, Registry
from vudo.pkg.resolve import resolve
from vudo.pkg.signing import CheckedPackage, check_package
from vudo.pkg.sources import GitSource
from vudo.pkg.store import InstalledSpirit, LocalStore, open_store
from vudo.pkg.trust import TrustPolicy
from vudo.pkg.versions import parse_requirement
from vudo.project.consent import Consent, ConsentDecision, ConsentRequest
from vudo.project.grants import installed_grantee, sign_grants
from vudo.project.installed import split_spec
from vudo.project.layout import Progress, no_progress
from vudo.project.packaging import pack_project, sign_project_package
from vudo.project.registries import (
    RegistrySet,
    named_registries,
    open_registries,
    open_spec,
    registry_label,
)

if TYPE_CHECKING:
    from vudo.pkg.versions import Version


def user_policy(home: Path, *, trust_signer: bool = False) -> TrustPolicy:
    """The trust policy for installs by this user: their own key is trusted as a signer.

    ``trust_signer`` (``--trust-signer``) is what the refusals' hints promise: accept this
    package's signer for this install, whether the manifest names another author or the
    name was pinned to another key, and pin it.
    """
    own = ensure_keypair(home).public_hex
    return TrustPolicy(
        trusted_keys=frozenset({own}), repin=trust_signer, allow_author_mismatch=trust_signer
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A verified package ready to install, and the consent it needs."""

    package: Path
    request: ConsentRequest
    built_from: Path | None  # project directory it was packed from, if any
    fetched: Fetched | None = None  # a registry download the store may take over


@dataclass(frozen=True, slots=True)
class SummonResult:
    spirit: InstalledSpirit
    already_installed: bool
    granted: tuple[tuple[str, str], ...]
    denied: tuple[str, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "installed": self.spirit.to_json(),
            "already_installed": self.already_installed,
            "granted": [{"capability": c, "scope": s} for c, s in self.granted],
            "denied": list(self.denied),
            "notes": list(self.notes),
        }


def _prepared(
    verified: CheckedPackage, built_from: Path | None = None, fetched: Fetched | None = None
) -> Prepared:
    m = verified.manifest
    return Prepared(
        verified.path,
        ConsentRequest(
            m.name,
            str(m.version),
            verified.signer,
            m.author,
            tuple(m.capabilities),
            directories=m.directories,
        ),
        built_from,
        fetched,
    )


def prepare_summon(source: Path, *, home: Path, progress: Progress = no_progress) -> Prepared:
    """Verify a ``.spirit`` file (or pack and sign a project directory) before consent."""
    src = Path(source)
    if src.is_dir():
        progress("packing the project")
        packed = pack_project(src, progress=progress)
        progress("signing with your key")
        sign_project_package(packed.path, project_dir=src, home=home)
        return _prepared(check_package(packed.path), built_from=src)
    if not src.is_file():
        raise NotFoundError(
            f"no package or project at {source}", hint="pass a .spirit file or a project directory"
        )
    return _prepared(check_package(src))


def install_prepared(
    prepared: Prepared,
    decision: ConsentDecision,
    *,
    home: Path,
    trust_signer: bool = False,
    clock: Callable[[], float] = time.time,
    registry: str = "",
) -> SummonResult:
    """Install a prepared package and store the grants the user consented to;
    ``registry`` is remembered as where it came from (for ``vudo upgrade``)."""
    policy = user_policy(home, trust_signer=trust_signer)
    with open_store(home) as store:
        fetched = prepared.fetched
        if fetched is not None and fetched.sha256 is not None:
            result = store.adopt(
                fetched.path, fetched.checked, fetched.sha256, policy=policy, registry=registry
            )
        else:
            result = store.install(prepared.package, policy=policy, registry=registry)
        grants, _ = sign_grants(
            decision.granted,
            home=home,
            now=clock(),
            grantee=installed_grantee(result.spirit.signer, result.spirit.name),
        )
        store.save_grants(result.spirit.name, [g.to_dict() for g in grants])
    return SummonResult(
        spirit=result.spirit,
        already_installed=result.already_installed,
        granted=tuple((c.value, s) for c, s in decision.granted),
        denied=tuple(c.value for c in decision.denied),
        notes=tuple(result.notes),
    )


def install(
    spec: str,
    *,
    home: Path,
    consent: Consent,
    registries: Sequence[str] = (),
    trust_signer: bool = False,
    progress: Progress = no_progress,
    clock: Callable[[], float] = time.time,
) -> list[SummonResult]:
    """Resolve ``name[@req]`` and its dependencies in the registries and install them,
    dependencies first. Every package is verified and consented to before any is
    installed, so a refusal installs nothing. Already installed versions are skipped
    (the named Spirit is reinstalled, which updates its grants)."""
    name, req = split_spec(spec)
    dependency = Dependency(name, parse_requirement(req) if req else parse_requirement("*"))
    opened = open_registries(registries, home=home, progress=progress)
    named = named_registries(home, progress)
    try:
        source = RegistrySet(opened)
        progress(f"resolving {spec}")
        resolution = resolve(
            [dependency],
            source.registries,
            registries=named,
            git=GitSource(git_cache_dir(home)),
        )
        plan: list[tuple[Prepared, ConsentDecision, str]] = []
        with open_store(home) as store:
            for candidate in resolution.values():
                is_root = candidate.name == name
                if not is_root and any(
                    s.version == candidate.version for s in store.versions(candidate.name)
                ):
                    continue
                progress(f"fetching {candidate.name} {candidate.version}")
                origin = ""
                if candidate.source.startswith("git+") and candidate.location is not None:
                    # A git dependency is a source tree: packed and signed here with the
                    # user's key, as `vudo summon DIR` does.
                    prepared = prepare_summon(candidate.location, home=home, progress=progress)
                else:
                    pool = [r for r in named.values() if r.label == candidate.source]
                    fetched, registry = RegistrySet(pool or opened).fetch_from(
                        candidate.name, candidate.version
                    )
                    prepared = _prepared(fetched.checked, fetched=fetched)
                    origin = registry_label(registry)
                plan.append((prepared, consent(prepared.request, is_root), origin))
        return [
            install_prepared(
                p, d, home=home, trust_signer=trust_signer, clock=clock, registry=origin
            )
            for p, d, origin in plan
        ]
    finally:
        for registry in [*opened, *named.values()]:
            registry.close()


@dataclass(frozen=True, slots=True)
class UpgradeOutcome:
    name: str
    old_version: str
    new_version: str
    upgraded: bool
    added: tuple[str, ...]
    removed: tuple[str, ...]
    granted: tuple[tuple[str, str], ...]
    pruned: tuple[str, ...] = ()  # older versions :func:`prune` removed afterwards

    def with_pruned(self, removed: Iterable[InstalledSpirit]) -> UpgradeOutcome:
        """This outcome with the versions of its Spirit among ``removed`` (:func:`prune`)."""
        versions = tuple(str(s.version) for s in removed if s.name == self.name)
        return dataclasses.replace(self, pruned=versions)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old": self.old_version,
            "new": self.new_version,
            "upgraded": self.upgraded,
            "added": list(self.added),
            "removed": list(self.removed),
            "granted": [{"capability": c, "scope": s} for c, s in self.granted],
            "pruned": list(self.pruned),
        }


def upgrade(
    name: str | None,
    *,
    home: Path,
    consent: Consent,
    registries: Sequence[str] = (),
    trust_signer: bool = False,
    progress: Progress = no_progress,
    clock: Callable[[], float] = time.time,
) -> list[UpgradeOutcome]:
    """Upgrade one installed Spirit (or all) to the newest version in the registries.

    When the new version asks for capabilities the installed one did not, ``consent`` is
    asked about the new ones (the request carries ``previous``); grants of capabilities
    still asked for are kept, grants of dropped ones are removed.
    """
    opened = open_registries(registries, home=home, progress=progress)
    origins: dict[str, Registry] = {}  # without --registry: where each Spirit came from
    outcomes: list[UpgradeOutcome] = []
    try:
        default_source = RegistrySet(opened)
        with open_store(home) as store:
            names = [name] if name else sorted({s.name for s in store.list()})
            for each in names:
                progress(f"checking {each}")
                origin = None if registries else store.origin(each)
                source = default_source
                if origin:
                    if origin not in origins:
                        origins[origin] = open_spec(
                            origin, home=home, progress=progress, label="downloading"
                        )
                    source = RegistrySet([origins[origin]])
                plan = store.plan_upgrade(each, source)
                current = store.get(each)
                if plan is None:
                    outcomes.append(
                        UpgradeOutcome(
                            each, str(current.version), str(current.version), False, (), (), ()
                        )
                    )
                    continue
                new_caps = tuple(plan.verified.manifest.capabilities)
                kept = [Grant.from_dict(g) for g in store.grants_for(each)]
                kept = [g for g in kept if g.capability in new_caps]
                new_grants: tuple[Grant, ...] = ()
                if plan.widens:
                    request = ConsentRequest(
                        each,
                        str(plan.version),
                        plan.verified.signer,
                        plan.verified.manifest.author,
                        new_caps,
                        previous=tuple(current.capabilities),
                        directories=plan.verified.manifest.directories,
                    )
                    narrowed = dataclasses.replace(
                        request, capabilities=request.added, previous=None
                    )
                    decision = consent(request, True)
                    new_grants, _ = sign_grants(
                        ((c, s) for c, s in decision.granted if c in narrowed.capabilities),
                        home=home,
                        now=clock(),
                        grantee=installed_grantee(plan.verified.signer, each),
                    )
                result = store.install(
                    plan.package,
                    policy=user_policy(home, trust_signer=trust_signer),
                    registry=registry_label(source.registries[0]),
                )
                store.save_grants(each, [g.to_dict() for g in [*kept, *new_grants]])
                outcomes.append(
                    UpgradeOutcome(
                        each,
                        str(current.version),
                        str(result.spirit.version),
                        True,
                        tuple(c.value for c in plan.added_capabilities),
                        tuple(c.value for c in plan.removed_capabilities),
                        tuple((g.capability.value, str(g.scope)) for g in [*kept, *new_grants]),
                    )
                )
    finally:
        for registry in [*opened, *origins.values()]:
            registry.close()
    return outcomes


@dataclass(frozen=True, slots=True)
class Uninstalled:
    """What :func:`uninstall` removed, and the installed Spirits it left without a
    dependency they need (``"app 1.0.0 needs name ^1.2"``: said, never refused)."""

    removed: tuple[InstalledSpirit, ...]
    broken_dependents: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": [s.to_json() for s in self.removed],
            "broken_dependents": list(self.broken_dependents),
        }


def uninstall(spec: str, *, home: Path) -> Uninstalled:
    """Remove ``NAME`` (every version) or ``NAME@VERSION`` from the store."""
    name, version = split_spec(spec)
    with open_store(home) as store:
        versions = [
            s.version
            for s in store.list()
            if s.name == name and (version is None or str(s.version) == version)
        ]
        broken = dependents(store, name, versions)
        return Uninstalled(tuple(store.uninstall(name, version)), tuple(broken))


def dependents(store: LocalStore, name: str, removing: Iterable[Version]) -> list[str]:
    """Installed Spirits whose dependency on ``name`` only the versions in ``removing``
    satisfy (what removing them would break), as ``"app 1.0.0 needs name ^1.2"``."""
    removing = set(removing)
    remaining = [s.version for s in store.list() if s.name == name and s.version not in removing]
    found: list[str] = []
    for other in store.list():
        if other.name == name:
            continue
        dep = store.manifest(other.name, other.version).dependency(name)
        if dep is None or dep.optional:
            continue
        if any(dep.requirement.matches(v) for v in removing) and not any(
            dep.requirement.matches(v) for v in remaining
        ):
            found.append(f"{other.name} {other.version} needs {name} {dep.requirement}")
    return found


def prune(name: str | None, *, home: Path) -> tuple[list[InstalledSpirit], list[str]]:
    """Remove every installed version older than the newest of its name (``name``, or
    all), except one an installed Spirit still needs; returns what was removed and what
    was kept for whom."""
    removed: list[InstalledSpirit] = []
    kept: list[str] = []
    with open_store(home) as store:
        by_name: dict[str, list[InstalledSpirit]] = {}
        for s in store.list():
            by_name.setdefault(s.name, []).append(s)
        for each in [name] if name else sorted(by_name):
            versions = sorted(by_name.get(each, []), key=lambda s: s.version)
            for old in versions[:-1]:
                needed = dependents(store, each, [old.version])
                if needed:
                    kept.extend(f"kept {each} {old.version}: {why}" for why in needed)
                    continue
                removed.extend(store.uninstall(each, old.version))
    return removed, kept
