"""Run-time dependencies: which Spirit a ``host_spirit_call`` reaches, as whom, with what.

The engine never looks a Spirit up by a name the guest chose
(:mod:`vudo.engine.compose`); it asks the resolver built here, which answers only for the
names in the caller's own manifest ``[dependencies]``:

* a project (``vudo run DIR``, ``vudo test``, the TUI): the name must also be pinned in
  its ``spirit.lock`` (``vudo build`` writes it), and the installed package must be the
  locked one: same version, same package digest, same signer;
* an installed Spirit or a ``.spirit`` file: the highest installed version its manifest's
  requirement allows (the store verified its signer pin at install).

Either way the package is verified again (as ``vudo run NAME`` does) and the callee runs
as its own installed identity ``(signer, name)``, with the grants stored for it at its
own install (consent), its own storage namespace and credit account, and a resolver of
its own for its dependencies. Nothing of the caller's (grants, storage, identity) passes
to it. A name that is not a dependency, not locked, or not installed is NOT_FOUND, with
the reason in the host-call log.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.config import Callee, SandboxConfig
from vudo.errors import VudoError

if TYPE_CHECKING:
    from vudo.engine import Engine, SpiritModule
    from vudo.engine.grants import Grant
    from vudo.engine.services import HostServices
    from vudo.pkg.lockfile import Lockfile
    from vudo.pkg.manifest import Manifest
    from vudo.pkg.pricing import Pricing


class DependencyResolver:
    """The resolver one caller's sandbox gets (:attr:`SandboxConfig.dependencies`).

    ``manifest`` and ``lock`` are read on the first call only (a run that calls nothing
    parses nothing): ``lock`` is None for an installed Spirit, whose dependencies are
    matched against the store by requirement. ``services`` gives a callee's module the
    host services it needs (None when it needs none). ``prices`` collects, by module digest, the
    [pricing] of every callee resolved (shared with the callees' own resolvers), so the
    nested receipts can be priced like the top one (:func:`vudo.project.runner.priced`).
    """

    def __init__(
        self,
        label: str,
        manifest: Callable[[], Manifest],
        lock: Callable[[], Lockfile] | None,
        *,
        engine: Engine,
        home: Path,
        services: Callable[[SpiritModule], HostServices | None],
        prices: dict[str, Pricing] | None = None,
    ) -> None:
        self.label = label
        self.prices: dict[str, Pricing] = prices if prices is not None else {}
        self._manifest_of = manifest
        self._lock_of = lock
        self.engine = engine
        self.home = home
        self.services = services
        self._manifest: Manifest | None = None
        self._lock: Lockfile | None = None

    def __call__(self, name: str) -> Callee:
        try:
            return self._resolve(name)
        except HostCallError:
            raise
        except VudoError as exc:  # a damaged package, an unreadable lock: the callee's problem
            raise HostCallError(ErrorCode.NOT_FOUND, f"{name}: {exc.message}") from None

    def _resolve(self, name: str) -> Callee:
        from vudo.pkg.signing import verify_package  # lazy: nacl, when a call resolves
        from vudo.pkg.store import open_store  # lazy: sqlite3, when a call resolves

        if self._manifest is None:
            self._manifest = self._manifest_of()
        declared = self._manifest.dependency(name)
        if declared is None:
            raise HostCallError(
                ErrorCode.NOT_FOUND, f"{name} is not a dependency in {self.label}'s manifest"
            )
        with open_store(self.home, read_only=True) as store:
            if self._lock_of is not None:
                if self._lock is None:
                    self._lock = self._lock_of()
                locked = self._lock.get(name)
                if locked is None:
                    raise HostCallError(
                        ErrorCode.NOT_FOUND,
                        f"{name} is not in {self.label}'s spirit.lock (run `vudo build`)",
                    )
                spirit = store.get(name, f"={locked.version}")
                if (locked.digest is not None and spirit.digest != locked.digest) or (
                    locked.signer is not None and spirit.signer != locked.signer
                ):
                    raise HostCallError(
                        ErrorCode.NOT_FOUND,
                        f"the installed {spirit.spec} is not the package spirit.lock pins",
                    )
            else:
                spirit = store.get(name, declared.requirement)
            stored = store.grants_for(name)
        verified = verify_package(spirit.path)
        return self._dependency(name, verified.manifest, verified.module, verified.signer, stored)

    def _dependency(
        self,
        name: str,
        manifest: Manifest,
        wasm: bytes,
        signer: str,
        stored: list[dict[str, object]],
    ) -> Callee:
        from vudo.engine.identity import SpiritIdentity  # lazy: nacl, when a call resolves
        from vudo.pkg.keys import ensure_keypair  # lazy: as above
        from vudo.project.grants import usable_grants  # lazy: as above
        from vudo.project.installed import readable_grants, stored_grants  # lazy: as above

        identity = SpiritIdentity.installed(signer, manifest.name)
        home = self.home
        grants = usable_grants(readable_grants(stored), home=home, grantee=identity.key)

        def current() -> tuple[Grant, ...]:  # `vudo revoke` in another process reaches it
            return usable_grants(
                stored_grants(manifest.name, home=home), home=home, grantee=identity.key
            )

        module = self.engine.load(wasm, name=manifest.name)
        if manifest.pricing is not None:
            self.prices[module.digest] = manifest.pricing
        config = SandboxConfig(
            grants=grants,
            trusted_granters=(ensure_keypair(home).public_hex,),
            grant_refresh=current,
            identity=identity.key,
            namespace=identity.namespace,
            services=self.services(module),
            dependencies=installed_resolver(
                manifest,
                engine=self.engine,
                home=self.home,
                services=self.services,
                prices=self.prices,
            ),
        )
        return Callee(name, wasm, config, signer)


def project_resolver(
    root: Path,
    *,
    engine: Engine,
    home: Path,
    services: Callable[[SpiritModule], HostServices | None],
) -> DependencyResolver:
    """The resolver of a project run: its manifest, pinned by its ``spirit.lock``."""

    def manifest() -> Manifest:
        from vudo.pkg.manifest import load_manifest  # lazy: only when a call resolves

        return load_manifest(root)

    def lock() -> Lockfile:
        from vudo.pkg.lockfile import LOCK_FILENAME, Lockfile, read_lockfile  # lazy: on a call

        path = root / LOCK_FILENAME
        return read_lockfile(path) if path.is_file() else Lockfile()

    return DependencyResolver(
        str(root), manifest, lock, engine=engine, home=home, services=services
    )


def installed_resolver(
    manifest: Manifest,
    *,
    engine: Engine,
    home: Path,
    services: Callable[[SpiritModule], HostServices | None],
    prices: dict[str, Pricing] | None = None,
) -> DependencyResolver | None:
    """The resolver of an installed Spirit (or a ``.spirit`` file): its manifest's
    requirements against the store; None when it declares no dependencies."""
    if not manifest.dependencies:
        return None
    return DependencyResolver(
        f"{manifest.name} {manifest.version}",
        lambda: manifest,
        None,
        engine=engine,
        home=home,
        services=services,
        prices=prices,
    )
