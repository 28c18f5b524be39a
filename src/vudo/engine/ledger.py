"""The credit ledger behind the ``host_credit_*`` calls (DESIGN.md §1).

Accounts are 32-byte Ed25519 public keys. Balances live in one SQLite file (WAL); every
operation is one ``BEGIN IMMEDIATE`` transaction, so concurrent threads or processes never
lose or double-spend credit. Balances never go negative (checked in Python and by a
``CHECK`` constraint).

Money flow:

- :meth:`CreditLedger.deposit` creates credit. Only the host (an admin command, a test)
  calls it; no host function reaches it.
- :meth:`~CreditLedger.transfer` moves credit between accounts.
- :meth:`~CreditLedger.reserve` earmarks part of an account's balance for an ``owner``
  (the sandbox's id). Reserved credit stays in the balance but not in
  :meth:`~CreditLedger.available`, so it cannot be transferred or reserved twice.
- :meth:`~CreditLedger.release` closes a reservation, returning it to ``available``.
- :meth:`~CreditLedger.consume` closes a reservation and **burns** its amount: it leaves
  the account's balance and circulation, and the running total is :meth:`consumed_total`.
  Every movement is also written to the ``journal`` table for auditing.

Ownership: the guest may spend only from the account its sandbox runs as.
:class:`LedgerView` is the per-sandbox face the host functions use: it is bound to that
account and the sandbox's owner id, and refuses (CREDIT_ERROR) transfers or reservations
from any other account and releases or consumes of other owners' reservations. Reading
any account's balance is allowed.

Errors are ``HostCallError``: non-positive or out-of-range amounts and malformed accounts
are INVALID_PARAMETER; insufficient funds, wrong owner or account, unknown or closed
reservations are CREDIT_ERROR; every ``sqlite3`` exception becomes STORAGE_ERROR (or a
:class:`vudo.errors.VudoError` when opening fails) in :mod:`vudo.engine.sqlite`, shared
with the key-value store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from vudo.engine.abi import I64_MAX, ErrorCode, HostCallError
from vudo.engine.sqlite import Database
from vudo.resources import Resource

__all__ = ["MAX_AMOUNT", "CreditLedger", "LedgerView"]

#: The largest amount or balance: an i64, the ABI's amount type.
MAX_AMOUNT: Final = I64_MAX

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account BLOB PRIMARY KEY CHECK (length(account) = 32),
    balance INTEGER NOT NULL CHECK (balance >= 0)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account BLOB NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    owner TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'released', 'consumed'))
);
CREATE INDEX IF NOT EXISTS reservations_open ON reservations (account) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    src BLOB,
    dst BLOB,
    amount INTEGER NOT NULL,
    reservation INTEGER
);
"""


def _check_account(account: bytes) -> bytes:
    if not isinstance(account, bytes) or len(account) != 32:
        raise HostCallError(
            ErrorCode.INVALID_PARAMETER, "an account is a 32-byte Ed25519 public key"
        )
    return account


def _check_amount(amount: int) -> int:
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise HostCallError(
            ErrorCode.INVALID_PARAMETER, f"amount must be 1..{MAX_AMOUNT}, got {amount!r}"
        )
    return amount


def _check_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner:
        raise HostCallError(ErrorCode.INVALID_PARAMETER, "a reservation owner is a non-empty id")
    return owner


def _short(account: bytes) -> str:
    return account.hex()[:12] + "..."


class CreditLedger(Resource):
    """Persistent balances and reservations. Close it (or use ``with``)."""

    def __init__(self, path: Path | str, *, busy_timeout: float = 5.0) -> None:
        """Open or create the ledger; ``busy_timeout`` is how long (s) to wait for a lock."""
        self.path = Path(path)
        # FULL: a commit the caller saw must survive a power cut (it is money).
        self._db = Database(
            self.path,
            schema=_SCHEMA,
            title="the credit ledger",
            prefix="ledger ",
            synchronous="FULL",
            busy_timeout=busy_timeout,
        )

    def close(self) -> None:
        """Close the database; later calls raise STORAGE_ERROR. Safe to call twice."""
        self._db.close()

    # -- queries ---------------------------------------------------------------------------

    @staticmethod
    def _balance(db: sqlite3.Connection, account: bytes) -> int:
        row = db.execute("SELECT balance FROM accounts WHERE account = ?", (account,)).fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _reserved(db: sqlite3.Connection, account: bytes) -> int:
        row = db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM reservations "
            "WHERE account = ? AND state = 'open'",
            (account,),
        ).fetchone()
        return int(row[0])

    def balance(self, account: bytes) -> int:
        """The account's balance, reservations included (0 for an unknown account)."""
        _check_account(account)
        with self._db.locked("balance") as db:
            return self._balance(db, account)

    def available(self, account: bytes) -> int:
        """Balance minus open reservations: what can still be transferred or reserved."""
        _check_account(account)
        with self._db.locked("available") as db:
            return self._balance(db, account) - self._reserved(db, account)

    def reserved(self, account: bytes) -> int:
        """The sum of the account's open reservations."""
        _check_account(account)
        with self._db.locked("reserved") as db:
            return self._reserved(db, account)

    def consumed_total(self) -> int:
        """All credit burned by :meth:`consume` so far."""
        with self._db.locked("consumed total") as db:
            row = db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM journal WHERE kind = 'consume'"
            ).fetchone()
        return int(row[0])

    def accounts(self) -> list[tuple[bytes, int]]:
        """Every account with its balance, for inspection (CLI, TUI)."""
        with self._db.locked("accounts") as db:
            rows = db.execute("SELECT account, balance FROM accounts ORDER BY account").fetchall()
        return [(bytes(a), int(b)) for a, b in rows]

    # -- movements -------------------------------------------------------------------------

    @staticmethod
    def _set_balance(db: sqlite3.Connection, account: bytes, balance: int) -> None:
        db.execute(
            "INSERT INTO accounts (account, balance) VALUES (?, ?) "
            "ON CONFLICT (account) DO UPDATE SET balance = excluded.balance",
            (account, balance),
        )

    @staticmethod
    def _journal(
        db: sqlite3.Connection,
        kind: str,
        src: bytes | None,
        dst: bytes | None,
        amount: int,
        reservation: int | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO journal (kind, src, dst, amount, reservation) VALUES (?, ?, ?, ?, ?)",
            (kind, src, dst, amount, reservation),
        )

    @classmethod
    def _add(cls, db: sqlite3.Connection, account: bytes, amount: int) -> int:
        """Credit ``amount`` to ``account``; CREDIT_ERROR (nothing written) past MAX_AMOUNT."""
        new = cls._balance(db, account) + amount
        if new > MAX_AMOUNT:
            raise HostCallError(
                ErrorCode.CREDIT_ERROR, f"balance of {_short(account)} would overflow"
            )
        cls._set_balance(db, account, new)
        return new

    @classmethod
    def _require_available(
        cls, db: sqlite3.Connection, account: bytes, amount: int, purpose: str
    ) -> None:
        """CREDIT_ERROR unless ``account`` has ``amount`` not yet reserved (for ``purpose``)."""
        available = cls._balance(db, account) - cls._reserved(db, account)
        if available < amount:
            raise HostCallError(
                ErrorCode.CREDIT_ERROR,
                f"insufficient funds: {_short(account)} has {available} available, "
                f"{purpose} needs {amount}",
            )

    def deposit(self, account: bytes, amount: int) -> int:
        """Create credit in ``account`` (host/admin only); returns the new balance."""
        _check_account(account)
        _check_amount(amount)
        with self._db.transaction("deposit") as db:
            new = self._add(db, account, amount)
            self._journal(db, "deposit", None, account, amount)
        return new

    def transfer(self, src: bytes, dst: bytes, amount: int) -> None:
        """Move ``amount`` from ``src``'s available credit to ``dst``."""
        _check_account(src)
        _check_account(dst)
        _check_amount(amount)
        with self._db.transaction("transfer") as db:
            self._require_available(db, src, amount, "transfer")
            if src != dst:
                self._add(db, dst, amount)
                self._set_balance(db, src, self._balance(db, src) - amount)
            self._journal(db, "transfer", src, dst, amount)

    def reserve(self, account: bytes, amount: int, owner: str) -> int:
        """Earmark ``amount`` of ``account``'s available credit for ``owner``; returns its id."""
        _check_account(account)
        _check_amount(amount)
        _check_owner(owner)
        with self._db.transaction("reserve") as db:
            self._require_available(db, account, amount, "reservation")
            cursor = db.execute(
                "INSERT INTO reservations (account, amount, owner, state) VALUES (?, ?, ?, 'open')",
                (account, amount, owner),
            )
            rid = cursor.lastrowid
            assert rid is not None
            self._journal(db, "reserve", account, None, amount, rid)
        return rid

    def _close_reservation(self, rid: int, owner: str, state: str) -> tuple[bytes, int]:
        if type(rid) is not int:
            raise HostCallError(ErrorCode.INVALID_PARAMETER, "a reservation id is an integer")
        _check_owner(owner)
        action = "release" if state == "released" else "consume"
        with self._db.transaction(action) as db:
            row = db.execute(
                "SELECT account, amount, owner, state FROM reservations WHERE id = ?", (rid,)
            ).fetchone()
            if row is None or row[3] != "open":
                what = "unknown" if row is None else f"already {row[3]}"
                raise HostCallError(ErrorCode.CREDIT_ERROR, f"reservation {rid} is {what}")
            account, amount, holder = bytes(row[0]), int(row[1]), str(row[2])
            if holder != owner:
                raise HostCallError(
                    ErrorCode.CREDIT_ERROR, f"reservation {rid} belongs to another sandbox"
                )
            db.execute("UPDATE reservations SET state = ? WHERE id = ?", (state, rid))
            if state == "consumed":
                self._set_balance(db, account, self._balance(db, account) - amount)
            self._journal(db, action, account, None, amount, rid)
        return account, amount

    def release(self, reservation_id: int, owner: str) -> int:
        """Cancel an open reservation of ``owner``; returns the amount freed."""
        return self._close_reservation(reservation_id, owner, "released")[1]

    def consume(self, reservation_id: int, owner: str) -> int:
        """Spend an open reservation of ``owner`` (the amount is burned); returns it."""
        return self._close_reservation(reservation_id, owner, "consumed")[1]

    def open_reservations(self, owner: str | None = None) -> list[tuple[int, bytes, int, str]]:
        """Open reservations ``(id, account, amount, owner)``, optionally of one owner."""
        with self._db.locked("reservations") as db:
            rows = db.execute(
                "SELECT id, account, amount, owner FROM reservations "
                "WHERE state = 'open' AND (? IS NULL OR owner = ?) ORDER BY id",
                (owner, owner),
            ).fetchall()
        return [(int(i), bytes(a), int(m), str(o)) for i, a, m, o in rows]

    def release_all(self, owner: str) -> int:
        """Release every open reservation of ``owner`` (a sandbox ending); returns count."""
        ids = [rid for rid, _, _, _ in self.open_reservations(owner)]
        count = 0
        for rid in ids:
            try:
                self.release(rid, owner)
                count += 1
            except HostCallError as exc:
                if exc.code is not ErrorCode.CREDIT_ERROR:
                    raise
        return count


class LedgerView:
    """One sandbox's view of the ledger: spends only from ``account``, as ``owner``.

    The host functions call this, never :class:`CreditLedger` directly, so a guest cannot
    move credit out of an account it does not run as, nor touch another sandbox's
    reservations (both CREDIT_ERROR).
    """

    __slots__ = ("account", "ledger", "owner")

    def __init__(self, ledger: CreditLedger, account: bytes, owner: str) -> None:
        self.ledger = ledger
        self.account = _check_account(account)
        self.owner = _check_owner(owner)

    def _own(self, account: bytes, verb: str) -> None:
        if _check_account(account) != self.account:
            raise HostCallError(
                ErrorCode.CREDIT_ERROR,
                f"cannot {verb} from {_short(account)}: the sandbox runs as {_short(self.account)}",
            )

    def balance(self, account: bytes) -> int:
        return self.ledger.balance(account)

    def available(self, account: bytes) -> int:
        return self.ledger.available(account)

    def transfer(self, src: bytes, dst: bytes, amount: int) -> None:
        self._own(src, "transfer")
        self.ledger.transfer(src, dst, amount)

    def reserve(self, account: bytes, amount: int) -> int:
        self._own(account, "reserve")
        return self.ledger.reserve(account, amount, self.owner)

    def release(self, reservation_id: int) -> int:
        return self.ledger.release(reservation_id, self.owner)

    def consume(self, reservation_id: int) -> int:
        return self.ledger.consume(reservation_id, self.owner)
