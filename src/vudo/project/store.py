"""Installing Spirits and deciding what they may do: summon, consent, grants, queries.

Consent is a value, not a prompt: :func:`consent_request` says what a Spirit asks for,
:func:`decide_consent` turns the user's flags into a decision or says it must ask, and
:func:`summon` installs and stores the grants the user agreed to, signed with their key.
The CLI prompts on a terminal; the TUI shows a dialog; both call the same functions.

Grants are issued by the user's key to the user's key (the identity installed Spirits run
as) and stored per Spirit name in the local store; ``vudo run NAME`` loads exactly those.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.capabilities import Capability, parse_capability
from vudo.errors import InvalidInputError, NotFoundError, UsageError, VudoError
from vudo.project.layout import Progress, no_progress

if TYPE_CHECKING:
    from vudo.engine.grants import Grant
    from vudo.pkg.manifest import Manifest
    from vudo.pkg.store import InstalledSpirit, LocalStore, SpiritInfo
    from vudo.pkg.trust import TrustPolicy


def split_spec(spec: str) -> tuple[str, str | None]:
    """``name@req`` -> (name, req); a bare name gives (name, None)."""
    name, sep, req = spec.partition("@")
    name = name.strip()
    if not name:
        raise UsageError(f'"{spec}" names no Spirit', hint="e.g. hello-spirit@^0.1")
    return name, (req.strip() or None) if sep else None


def open_local_store(home: Path) -> LocalStore:
    from vudo.pkg.store import open_store

    return open_store(home)


def user_policy(home: Path, *, trust_signer: bool = False) -> TrustPolicy:
    """The trust policy for installs by this user: their own key is trusted as a signer."""
    from vudo.pkg.keys import ensure_keypair
    from vudo.pkg.trust import TrustPolicy

    own = ensure_keypair(home).public_hex
    return TrustPolicy(trusted_keys=frozenset({own}), repin=trust_signer)


# --------------------------------------------------------------------------- consent


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What a Spirit asks for, shown before it is installed or upgraded."""

    name: str
    version: str
    signer: str
    author: str
    capabilities: tuple[Capability, ...]
    previous: tuple[Capability, ...] | None = None  # installed version's, on upgrade

    @property
    def added(self) -> tuple[Capability, ...]:
        if self.previous is None:
            return self.capabilities
        return tuple(c for c in self.capabilities if c not in self.previous)

    @property
    def removed(self) -> tuple[Capability, ...]:
        if self.previous is None:
            return ()
        return tuple(c for c in self.previous if c not in self.capabilities)

    @property
    def widens(self) -> bool:
        return bool(self.added)


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """Which asked-for capabilities are granted (with scope) and which are denied."""

    granted: tuple[tuple[Capability, str], ...]
    denied: tuple[Capability, ...]


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
    from vudo.project.runner import parse_grant_spec

    asked = request.capabilities
    denied = {parse_capability(d.strip()) for d in deny}
    chosen: dict[Capability, str] = {}
    for spec in grant:
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
        return ConsentDecision(tuple((c, "global") for c in asked if c not in denied),
                               tuple(c for c in asked if c in denied))
    return None


def sign_grants(
    decision: ConsentDecision, *, home: Path, clock: Callable[[], float] = time.time,
    expires_at: int | None = None,
) -> list[Grant]:
    """Issue one signed grant per granted capability, from and to the user's key."""
    from vudo.engine.grants import Scope, issue_grant
    from vudo.pkg.keys import ensure_keypair

    kp = ensure_keypair(home)
    now = int(clock())
    return [
        issue_grant(kp.signing_key, cap, Scope.parse(scope), kp.public_hex, issued_at=now,
                    expires_at=expires_at)
        for cap, scope in decision.granted
    ]


# --------------------------------------------------------------------------- summon


@dataclass(frozen=True, slots=True)
class Prepared:
    """A verified package ready to install, and the consent it needs."""

    package: Path
    request: ConsentRequest
    built_from: Path | None  # project directory it was packed from, if any


@dataclass(frozen=True, slots=True)
class SummonResult:
    spirit: InstalledSpirit
    already_installed: bool
    granted: tuple[tuple[str, str], ...]
    denied: tuple[str, ...]
    notes: tuple[str, ...]


def prepare_summon(
    source: Path, *, home: Path, progress: Progress = no_progress
) -> Prepared:
    """Verify a ``.spirit`` file (or pack and sign a project directory) before consent."""
    from vudo.pkg.signing import verify_package

    src = Path(source)
    built_from = None
    if src.is_dir():
        from vudo.project.packaging import pack_project, sign_project_package

        progress("packing the project")
        packed = pack_project(src, progress=progress)
        progress("signing with your key")
        sign_project_package(packed.path, project_dir=src, home=home)
        src, built_from = packed.path, Path(source)
    elif not src.is_file():
        raise NotFoundError(f"no package or project at {source}",
                            hint="pass a .spirit file or a project directory")
    verified = verify_package(src)
    m = verified.manifest
    return Prepared(src, ConsentRequest(m.name, str(m.version), verified.signer, m.author,
                                        tuple(m.capabilities)), built_from)


def install_prepared(
    prepared: Prepared, decision: ConsentDecision, *, home: Path,
    trust_signer: bool = False, clock: Callable[[], float] = time.time, registry: str = "",
) -> SummonResult:
    """Install a prepared package and store the grants the user consented to;
    ``registry`` is remembered as where it came from (for ``vudo upgrade``)."""
    policy = user_policy(home, trust_signer=trust_signer)
    grants = sign_grants(decision, home=home, clock=clock)
    with open_local_store(home) as store:
        result = store.install(prepared.package, policy=policy, registry=registry)
        store.save_grants(result.spirit.name, [g.to_dict() for g in grants])
    return SummonResult(
        spirit=result.spirit, already_installed=result.already_installed,
        granted=tuple((c.value, s) for c, s in decision.granted),
        denied=tuple(c.value for c in decision.denied), notes=tuple(result.notes),
    )


# --------------------------------------------------------------------------- queries


def list_installed(home: Path) -> list[InstalledSpirit]:
    with open_local_store(home) as store:
        return store.list()


def search_installed(
    query: str, *, home: Path, capability: str | None = None, author: str | None = None
) -> list[InstalledSpirit]:
    cap = parse_capability(capability) if capability else None
    with open_local_store(home) as store:
        return store.search(query, capability=cap, author=author)


def info_installed(spec: str, *, home: Path) -> SpiritInfo:
    name, version = split_spec(spec)
    with open_local_store(home) as store:
        return store.info(name, version)


def uninstall(spec: str, *, home: Path) -> list[InstalledSpirit]:
    name, version = split_spec(spec)
    with open_local_store(home) as store:
        return store.uninstall(name, version)


@dataclass(frozen=True, slots=True)
class LoadedSpirit:
    """An installed Spirit, re-verified, with the grants stored for it."""

    manifest: Manifest
    module: bytes
    signer: str
    grants: tuple[Grant, ...]
    installed: InstalledSpirit


def installed_spirit(spec: str, *, home: Path) -> LoadedSpirit:
    """Load ``name[@requirement]`` from the store; its package is verified again."""
    from vudo.engine.grants import Grant
    from vudo.pkg.signing import verify_package

    name, req = split_spec(spec)
    with open_local_store(home) as store:
        spirit = store.get(name, req)
        stored = store.grants_for(name)
    verified = verify_package(spirit.path)
    grants = tuple(_readable_grants(stored, Grant))
    return LoadedSpirit(verified.manifest, verified.module, verified.signer, grants, spirit)


def _readable_grants(stored: Iterable[dict[str, Any]], grant: type[Grant]) -> Iterator[Grant]:
    """The stored grants that parse. A malformed one is skipped, as the sandbox skips a
    forged one: it grants nothing either way, and `vudo info` shows it as INVALID."""
    for data in stored:
        try:
            yield grant.from_dict(data)
        except VudoError:
            continue


# --------------------------------------------------------------------------- grant/revoke

_DURATION = re.compile(r"^\s*([-+]?\d+)\s*([smhdw])\s*$")
MAX_EXPIRY = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can show
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, *, now: float) -> int:
    """``30d``/``12h``/``15m``/``2w``, or an ISO date or date-time -> Unix seconds."""
    match = _DURATION.match(text)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise UsageError(f'expiry "{text.strip()}" is not a positive duration',
                             hint="a grant expires after a positive duration such as 30d "
                             "or 12h; leave --expires out for a grant that does not expire")
        seconds = int(now) + amount * _SECONDS[match.group(2)]
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f'invalid expiry "{text}"',
                hint="use a duration like 30d, 12h, 15m, or a date like 2027-01-31") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int(when.timestamp())
    if seconds <= now:
        raise UsageError(f'expiry "{text}" is in the past',
                         hint="pick a later time, e.g. 30d")
    if seconds > MAX_EXPIRY:
        # Later than any date can show (or a grant can carry): a bigger duration would
        # be stored and then break every command that prints the grant.
        raise UsageError(f'expiry "{text}" is after 9999-12-31',
                         hint="leave --expires out for a grant that does not expire")
    return seconds


def grant_capability(
    name: str, capability: str, *, home: Path, scope: str = "global",
    expires: str | None = None, clock: Callable[[], float] = time.time,
) -> Grant:
    """Grant (or replace the grant of) one capability to an installed Spirit."""
    from vudo.project.runner import parse_grant_spec

    cap, _ = parse_grant_spec(capability)
    now = clock()
    expires_at = parse_expiry(expires, now=now) if expires else None
    with open_local_store(home) as store:
        spirit = store.get(name)
        if cap not in spirit.capabilities:
            raise InvalidInputError(
                f'{name} does not ask for "{cap.value}"',
                hint="it asks for: " + (", ".join(c.value for c in spirit.capabilities)
                                        or "nothing"),
            )
        [grant] = sign_grants(ConsentDecision(((cap, scope),), ()), home=home,
                              clock=lambda: now, expires_at=expires_at)
        # Read, replace and write in one transaction: concurrent grants all stay.
        store.update_grants(name, lambda current: [
            *(g for g in current if g.get("capability") != cap.value), grant.to_dict()])
    return grant


def revoke_capability(name: str, capability: str, *, home: Path) -> int:
    """Drop every stored grant of ``capability`` for ``name``; returns how many."""

    cap = parse_capability(capability)
    dropped = 0

    def without(current: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal dropped
        kept = [g for g in current if g.get("capability") != cap.value]
        dropped = len(current) - len(kept)
        if not dropped:  # raising leaves the stored grants untouched
            raise NotFoundError(f'{name} has no grant of "{cap.value}"',
                                hint=f"see `vudo info {name}`")
        return kept

    with open_local_store(home) as store:
        store.get(name)
        store.update_grants(name, without)
    return dropped


def grant_rows(grants: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored grants as display rows (capability, scope, expiry, granter), each checked:
    ``valid`` is False, with the reason in ``problem``, for a grant the sandbox would
    refuse (malformed, or its signature does not hold), so it is never shown as given."""
    from vudo.engine.grants import Grant, verify_grant

    rows = []
    for g in grants:
        expires = g.get("expires_at")
        problem: str | None = None
        try:
            verify_grant(Grant.from_dict(g))
        except VudoError as err:
            problem = err.message
        rows.append({
            "capability": g.get("capability"), "scope": g.get("scope"),
            "granter": g.get("granter"), "issued_at": g.get("issued_at"),
            "expires_at": expires if isinstance(expires, int) else None,
            "valid": problem is None, "problem": problem,
        })
    return rows


def resolve_project_dependencies(root: Path, *, home: Path,
                                 registries: Sequence[str] = (), locked: bool = False) -> Any:
    """Resolve the project's dependencies against the installed Spirits and the
    registries (``vudo check``); DependencyConflictError or NotFoundError if impossible.
    An existing ``spirit.lock`` is preferred, so a check does not drift from the lock;
    with ``locked`` the resolution must reproduce it exactly (and it must exist)."""
    from vudo.home import cache_dir
    from vudo.pkg.lockfile import LOCK_FILENAME, read_lockfile
    from vudo.pkg.manifest import load_manifest
    from vudo.pkg.resolve import resolve
    from vudo.pkg.sources import GitSource

    root = Path(root)
    manifest = load_manifest(root)
    lock_path = root / LOCK_FILENAME
    lock = read_lockfile(lock_path) if locked or lock_path.is_file() else None
    opened = open_registries(registries, home=home)
    try:
        with open_local_store(home) as store:
            return resolve(manifest, [store, *opened], root_dir=root,
                           git=GitSource(cache_dir(home) / "git"),
                           locked=lock if locked else None, prefer=None if locked else lock)
    finally:
        for registry in opened:
            registry.close()


def lock_project(root: Path, *, home: Path, registries: Sequence[str] = (),
                 locked: bool = False) -> Path | None:
    """Resolve the project's dependencies and write ``spirit.lock`` (versions, digests,
    signer keys); None when the project has no dependencies (no lock is written). With
    ``locked``, the existing lock must already be exactly right (DependencyConflictError
    otherwise) and is left as it is."""
    from vudo.pkg.lockfile import LOCK_FILENAME, Lockfile, write_lockfile
    from vudo.pkg.manifest import load_manifest

    root = Path(root)
    if not load_manifest(root).dependencies:
        return None
    resolution = resolve_project_dependencies(root, home=home, registries=registries,
                                              locked=locked)
    path = root / LOCK_FILENAME
    if not locked:
        write_lockfile(path, Lockfile.from_resolution(resolution))
    return path


# --------------------------------------------------------------------------- registries


def open_registries(locations: Sequence[str], *, home: Path,
                    progress: Progress = no_progress) -> list[Any]:
    """The registries named by ``--registry`` (configured names, URLs or paths), or the
    default one (``vudo registry add --default``, else the directory registry under the
    home, created empty on first use) when none is named."""
    from vudo.project.remote import open_spec

    if not locations:
        return [open_spec(None, home=home, progress=progress, label="downloading")]
    opened: list[Any] = []
    try:
        for location in locations:
            opened.append(open_spec(location, home=home, progress=progress,
                                    label="downloading"))
    except BaseException:
        for registry in opened:
            registry.close()
        raise
    return opened


def _named_registries(home: Path, progress: Progress) -> dict[str, Any]:
    """Every configured registry by name, for dependencies that say ``registry = "NAME"``."""
    from vudo.pkg.config import load_config
    from vudo.project.remote import open_named

    return {r.name: open_named(r, home=home, progress=progress, label="downloading")
            for r in load_config(home).registries}


class _Registries:
    """Several registries as one package source: every version of each, first one wins."""

    def __init__(self, registries: Sequence[Any]) -> None:
        self.registries = list(registries)

    def candidates(self, name: str) -> list[Any]:
        seen: set[Any] = set()
        out = []
        for registry in self.registries:
            for candidate in registry.candidates(name):
                if candidate.version not in seen:
                    seen.add(candidate.version)
                    out.append(candidate)
        return out

    def fetch(self, name: str, version: Any) -> Path:
        return self.fetch_from(name, version)[0]

    def fetch_from(self, name: str, version: Any) -> tuple[Path, Any]:
        """The package file and the registry it came from."""
        for registry in self.registries:
            if any(c.version == version for c in registry.candidates(name)):
                return Path(registry.fetch(name, version)), registry
        raise NotFoundError(f"no registry has {name} {version}", hint="check --registry")


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    name: str
    version: str
    digest: str
    signer: str
    registry: str
    path: Path
    already_published: bool


def publish(
    package: Path | None, *, project_dir: Path, home: Path, registry: str | None = None,
    allow_new_signer: bool = False, dry_run: bool = False, progress: Progress = no_progress,
) -> PublishOutcome:
    """Publish a signed package (default: newest in ``dist/``) to a registry: the one
    ``registry`` names (configured name, URL or path), else the configured default, else
    the directory registry under the home. Verified before anything is written; with
    ``dry_run`` nothing is."""
    from vudo.pkg.registry import HttpRegistry
    from vudo.project.packaging import newest_package
    from vudo.project.remote import open_spec, registry_label

    target = Path(package) if package is not None else newest_package(project_dir)
    if not target.is_file():
        raise NotFoundError(f"no package at {target}", hint="run `vudo pack` and `vudo sign`")
    reg = open_spec(registry, home=home, progress=progress, label="uploading")
    with reg:
        if isinstance(reg, HttpRegistry):
            raise UsageError(f"cannot publish to {reg.url}: HTTP registries are read-only",
                             hint="publish to the directory your web server serves "
                             "(--registry /path/to/dir), or to an oci:// registry")
        result = reg.publish(target, allow_new_signer=allow_new_signer, dry_run=dry_run)
        label = registry_label(reg)
    return PublishOutcome(result.name, str(result.version), result.digest, result.signer,
                          label, Path(result.path), result.already_published)


Consent = Callable[[ConsentRequest, bool], ConsentDecision]
"""Asked once per package to install: (request, is_the_named_one) -> decision."""


def install(
    spec: str, *, home: Path, consent: Consent, registries: Sequence[str] = (),
    trust_signer: bool = False, progress: Progress = no_progress,
    clock: Callable[[], float] = time.time,
) -> list[SummonResult]:
    """Resolve ``name[@req]`` and its dependencies in the registries and install them,
    dependencies first. Every package is verified and consented to before any is
    installed, so a refusal installs nothing. Already installed versions are skipped
    (the named Spirit is reinstalled, which updates its grants)."""
    from vudo.home import cache_dir
    from vudo.pkg.manifest import Dependency
    from vudo.pkg.resolve import resolve
    from vudo.pkg.signing import verify_package
    from vudo.pkg.sources import GitSource
    from vudo.pkg.versions import parse_requirement
    from vudo.project.remote import registry_label

    name, req = split_spec(spec)
    dependency = Dependency(name, parse_requirement(req) if req else parse_requirement("*"))
    opened = open_registries(registries, home=home, progress=progress)
    named = _named_registries(home, progress)
    try:
        source = _Registries(opened)
        progress(f"resolving {spec}")
        resolution = resolve([dependency], source.registries, registries=named,
                             git=GitSource(cache_dir(home) / "git"))
        plan: list[tuple[Prepared, ConsentDecision, str]] = []
        with open_local_store(home) as store:
            for candidate in resolution.values():
                is_root = candidate.name == name
                if not is_root and any(
                    s.version == candidate.version for s in store.versions(candidate.name)
                ):
                    continue
                progress(f"fetching {candidate.name} {candidate.version}")
                if candidate.source.startswith("git+") and candidate.location is not None:
                    # A git dependency is a source tree: built, packed and signed here,
                    # with the user's key, like `vudo summon DIR`.
                    prepared = prepare_summon(candidate.location, home=home,
                                              progress=progress)
                    origin = ""
                else:
                    pool = [r for r in named.values() if r.label == candidate.source]
                    path, reg = _Registries(pool or opened).fetch_from(
                        candidate.name, candidate.version)
                    verified = verify_package(path)
                    m = verified.manifest
                    prepared = Prepared(path, ConsentRequest(
                        m.name, str(m.version), verified.signer, m.author,
                        tuple(m.capabilities)), None)
                    origin = registry_label(reg)
                plan.append((prepared, consent(prepared.request, is_root), origin))
        return [install_prepared(p, d, home=home, trust_signer=trust_signer, clock=clock,
                                 registry=origin) for p, d, origin in plan]
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


def upgrade(
    name: str | None, *, home: Path, consent: Consent, registries: Sequence[str] = (),
    trust_signer: bool = False, progress: Progress = no_progress,
    clock: Callable[[], float] = time.time,
) -> list[UpgradeOutcome]:
    """Upgrade one installed Spirit (or all) to the newest version in the registries.

    When the new version asks for capabilities the installed one did not, ``consent`` is
    asked about the new ones (the request carries ``previous``); grants of capabilities
    still asked for are kept, grants of dropped ones are removed.
    """
    from vudo.engine.grants import Grant
    from vudo.project.remote import open_spec, registry_label

    opened = open_registries(registries, home=home, progress=progress)
    origins: dict[str, Any] = {}  # without --registry: where each Spirit came from
    outcomes: list[UpgradeOutcome] = []
    try:
        default_source = _Registries(opened)
        with open_local_store(home) as store:
            names = [name] if name else sorted({s.name for s in store.list()})
            for each in names:
                progress(f"checking {each}")
                origin = None if registries else store.origin(each)
                source = default_source
                if origin:
                    if origin not in origins:
                        origins[origin] = open_spec(origin, home=home, progress=progress,
                                                    label="downloading")
                    source = _Registries([origins[origin]])
                plan = store.plan_upgrade(each, source)
                current = store.get(each)
                if plan is None:
                    outcomes.append(UpgradeOutcome(each, str(current.version),
                                                   str(current.version), False, (), (), ()))
                    continue
                new_caps = tuple(plan.verified.manifest.capabilities)
                kept = [Grant.from_dict(g) for g in store.grants_for(each)]
                kept = [g for g in kept if g.capability in new_caps]
                new_grants: list[Grant] = []
                if plan.widens:
                    request = ConsentRequest(
                        each, str(plan.version), plan.verified.signer,
                        plan.verified.manifest.author, new_caps,
                        previous=tuple(current.capabilities))
                    narrowed = dataclasses.replace(request, capabilities=request.added,
                                                   previous=None)
                    decision = consent(request, True)
                    decision = ConsentDecision(
                        tuple((c, s) for c, s in decision.granted if c in narrowed.capabilities),
                        decision.denied)
                    new_grants = sign_grants(decision, home=home, clock=clock)
                result = store.install(plan.package,
                                       policy=user_policy(home, trust_signer=trust_signer),
                                       registry=registry_label(source.registries[0]))
                store.save_grants(each, [g.to_dict() for g in [*kept, *new_grants]])
                outcomes.append(UpgradeOutcome(
                    each, str(current.version), str(result.spirit.version), True,
                    tuple(c.value for c in plan.added_capabilities),
                    tuple(c.value for c in plan.removed_capabilities),
                    tuple((g.capability.value, str(g.scope)) for g in [*kept, *new_grants])))
    finally:
        for registry in [*opened, *origins.values()]:
            registry.close()
    return outcomes


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    """The newest published version of a Spirit, and whether (which) one is installed."""

    name: str
    version: str
    description: str
    capabilities: tuple[str, ...]
    signer: str
    author: str
    registry: str
    installed_version: str | None

    @property
    def upgradable(self) -> bool:
        from vudo.pkg.versions import parse_version

        return self.installed_version is not None and parse_version(
            self.version) > parse_version(self.installed_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "capabilities": list(self.capabilities), "signer": self.signer,
            "author": self.author, "registry": self.registry,
            "installed_version": self.installed_version, "upgradable": self.upgradable,
        }


def browse(
    query: str = "", *, home: Path, registries: Sequence[str] = (),
    capability: str | None = None,
) -> list[BrowseEntry]:
    """Spirits available in the registries whose name or description contains ``query``
    (``vudo search --available`` and the TUI's registry browser), newest version each."""
    from vudo.pkg.registry import summaries
    from vudo.project.remote import registry_label

    cap = parse_capability(capability).value if capability else None
    needle = query.strip().lower()
    opened = open_registries(registries, home=home)
    found: dict[str, BrowseEntry] = {}
    try:
        with open_local_store(home) as store:
            installed = {s.name: str(s.version) for s in store.list()}
        for registry in opened:
            label = registry_label(registry)
            for summary in summaries(registry):
                name = summary.name
                if name in found:
                    continue
                if needle and needle not in name.lower() and \
                        needle not in summary.description.lower():
                    continue
                if cap is not None and cap not in summary.capabilities:
                    continue
                found[name] = BrowseEntry(name, summary.version, summary.description,
                                          summary.capabilities, summary.signer,
                                          summary.author, label, installed.get(name))
    finally:
        for registry in opened:
            registry.close()
    return sorted(found.values(), key=lambda e: (not e.name.startswith(needle), e.name))


@dataclass(frozen=True, slots=True)
class RepairOutcome:
    """What ``vudo repair`` found and did to the local store."""

    rebuilt: bool  # the index was damaged and was rebuilt from the package files
    packages: int
    removed_orphans: int
    removed_temp_files: int
    dropped_rows: tuple[str, ...]  # name@version whose package file was missing or bad
    dropped_grants: tuple[str, ...] = ()  # names whose stored grants were unreadable


def repair_store(home: Path) -> RepairOutcome:
    """Check the local store deeply and fix it: rebuild a damaged index from the package
    files, remove orphaned objects and stale temp files, drop rows whose file is gone."""
    from vudo.pkg.store import LocalStore, StoreDamagedError

    root = Path(home) / "registry"
    try:
        store = open_local_store(home)
    except StoreDamagedError:
        store, count = LocalStore.rebuild_index(root)
        with store:
            return RepairOutcome(True, count, 0, 0, ())
    with store:
        report = store.check(deep=True)
        if not report.ok:
            store.repair()
        return RepairOutcome(False, report.packages, len(report.orphan_objects),
                             len(report.stale_temp_files),
                             (*report.missing_objects, *report.corrupt_objects),
                             report.damaged_grants)
