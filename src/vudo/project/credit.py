"""``vudo credit``: every Spirit's own account, made visible and fundable.

Each run's identity owns a credit account (:mod:`vudo.engine.identity`); this module names
them the way users do and moves credit between the user and a Spirit:

* ``NAME`` is an installed Spirit (its (signer, name) identity); a path names a project
  (its real path) or a loose ``.wasm``/``.wat`` (its digest); no name means the user's own
  account (derived from the user's public key);
* :func:`deposit` creates credit in the user's own account (this machine's ledger is the
  user's: nothing else can mint it);
* :func:`fund` moves credit from the user's account to a Spirit's, signed with the user's
  key (the ledger verifies the signature and keeps it in the journal);
* :func:`history` and :func:`open_reservations` read the ledger; opening it releases the
  reservations of runs that died (``kill -9``, the OOM killer), as ``vudo repair`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.identity import SpiritIdentity, credit_account
from vudo.engine.ledger import MAX_AMOUNT, CreditLedger, Movement, Reservation, fund_message
from vudo.engine.services import LEDGER_FILE, make_data_dir
from vudo.errors import NotFoundError, UsageError, VudoError
from vudo.home import data_dir
from vudo.pkg.keys import ensure_keypair
from vudo.pkg.store import open_store

__all__ = [
    "CreditHistory",
    "CreditStatus",
    "balance",
    "deposit",
    "fund",
    "history",
    "open_ledger",
    "open_reservations",
    "parse_amount",
    "release_dead_runs",
    "subject",
]


@dataclass(frozen=True, slots=True)
class CreditStatus:
    """One account: whose it is (``label``, ``identity``), its balance and availability."""

    label: str
    identity: SpiritIdentity
    account: bytes
    balance: int
    available: int

    @property
    def reserved(self) -> int:
        return self.balance - self.available

    def to_json(self) -> dict[str, object]:
        return {
            "spirit": self.label,
            "identity": self.identity.kind,
            "identity_key": self.identity.key,
            "account": self.account.hex(),
            "balance": self.balance,
            "available": self.available,
            "reserved": self.reserved,
        }


def parse_amount(text: str) -> int:
    """A positive whole number of credits (``1_000`` allowed); UsageError otherwise."""
    try:
        value = int(text.replace("_", ""), 10)
    except ValueError:
        raise UsageError(
            f'invalid amount "{text}"', hint="pass a whole number of credits, e.g. 1000"
        ) from None
    if not 0 < value <= MAX_AMOUNT:
        raise UsageError(
            f"amount must be 1..{MAX_AMOUNT}, got {text}",
            hint="pass a positive whole number of credits",
        )
    return value


@contextmanager
def open_ledger(home: Path) -> Iterator[CreditLedger]:
    """The user's ledger (``<home>/data/ledger.sqlite``), dead runs' reservations released."""

    with CreditLedger(make_data_dir(data_dir(home)) / LEDGER_FILE) as ledger:
        yield ledger


def _user(home: Path) -> tuple[str, SpiritIdentity]:

    return "you", SpiritIdentity.of_key(ensure_keypair(home).public_hex)


def subject(spec: str | None, *, cwd: Path, home: Path) -> tuple[str, SpiritIdentity]:
    """(label, identity) of ``spec``: None is the user; a path a project or module file;
    a bare name an installed Spirit (a bare name never means a folder)."""
    if spec is None:
        return _user(home)
    # lazy: the engine imports wasmtime, which a credit account needs only for a file
    from vudo.engine.engine import wasm_bytes
    from vudo.project.runner import _looks_like_path  # lazy: as above

    if _looks_like_path(spec):
        path = Path(spec) if Path(spec).is_absolute() else cwd / spec
        if path.is_dir():
            if not any(
                (path / n).is_file() for n in ("spirit.toml", "manifest.toml", "manifest.json")
            ):
                raise NotFoundError(
                    f"{spec} is not a Spirit project (no spirit.toml)",
                    hint="name a project directory, or an installed Spirit",
                )
            return spec, SpiritIdentity.project(path)
        if path.is_file() and path.suffix in (".wasm", ".wat"):
            return spec, SpiritIdentity.module(wasm_bytes(path))
        raise NotFoundError(
            f"no Spirit project or module at {spec}",
            hint="name a project directory, a .wasm/.wat file, or an "
            "installed Spirit (`vudo list`)",
        )

    with open_store(home, read_only=True) as store:
        spirit = store.get(spec)
    return spec, SpiritIdentity.installed(spirit.signer, spirit.name)


def balance(spec: str | None, *, cwd: Path, home: Path) -> CreditStatus:
    """The balance of ``spec``'s account (see :func:`subject`)."""
    label, identity = subject(spec, cwd=cwd, home=home)
    account = identity.account
    with open_ledger(home) as ledger:
        return CreditStatus(
            label, identity, account, ledger.balance(account), ledger.available(account)
        )


def deposit(amount: int, *, home: Path) -> CreditStatus:
    """Create ``amount`` credits in the user's own account."""
    label, identity = _user(home)
    account = identity.account
    with open_ledger(home) as ledger:
        _credit_errors(lambda: ledger.deposit(account, amount))
        return CreditStatus(
            label, identity, account, ledger.balance(account), ledger.available(account)
        )


def fund(
    spec: str, amount: int, *, cwd: Path, home: Path, clock: Callable[[], float] = time.time
) -> CreditStatus:
    """Move ``amount`` from the user's account to ``spec``'s, signed with the user's key."""

    label, identity = subject(spec, cwd=cwd, home=home)
    kp = ensure_keypair(home)
    signer = kp.public_bytes
    dst = identity.account
    if dst == credit_account(signer):
        raise UsageError(
            "that is your own account",
            hint="fund a Spirit: `vudo credit fund "
            "NAME AMOUNT` with an installed NAME or a project path",
        )
    at = int(clock())
    signature = kp.signing_key.sign(fund_message(signer, dst, amount, at)).signature
    with open_ledger(home) as ledger:
        _credit_errors(lambda: ledger.fund(signer, dst, amount, at, signature))
        return CreditStatus(label, identity, dst, ledger.balance(dst), ledger.available(dst))


class CreditHistory(NamedTuple):
    """``vudo credit history``: the account, and its movements oldest first."""

    status: CreditStatus
    movements: list[Movement]

    def to_json(self) -> dict[str, object]:
        return {**self.status.to_json(), "movements": [m.to_json() for m in self.movements]}


def history(spec: str | None, *, cwd: Path, home: Path, limit: int = 1000) -> CreditHistory:
    """The account of ``spec`` and its latest ``limit`` movements, oldest first."""
    status = balance(spec, cwd=cwd, home=home)
    with open_ledger(home) as ledger:
        return CreditHistory(status, ledger.history(status.account, limit=limit))


def open_reservations(*, home: Path) -> list[Reservation]:
    """Reservations held by runs that are still alive (dead runs' are released first)."""
    with open_ledger(home) as ledger:
        return ledger.open_reservations()


def release_dead_runs(*, home: Path) -> list[Reservation]:
    """``vudo repair``: release what runs killed with ``kill -9`` still held; returns them."""

    if not (data_dir(home) / LEDGER_FILE).exists():
        return []
    with open_ledger(home) as ledger:
        return ledger.released_on_open + ledger.release_dead_runs()


def _credit_errors(action: Callable[[], object]) -> None:
    """Ledger refusals (insufficient funds, overflow) as a one-line error with a hint."""

    try:
        action()
    except HostCallError as exc:
        if exc.code is ErrorCode.CREDIT_ERROR:
            raise VudoError(
                exc.detail,
                hint="check `vudo credit balance`; add credit to "
                "your account with `vudo credit deposit AMOUNT`",
            ) from None
        raise VudoError(
            f"the credit ledger failed: {exc.detail}", hint="run `vudo repair`, or check the disk"
        ) from None
