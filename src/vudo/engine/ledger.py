"""The credit ledger behind the ``host_credit_*`` calls (DESIGN.md §1).

Accounts are 32 bytes, derived from an identity by
:func:`vudo.engine.identity.credit_account`: every Spirit identity owns its own account,
and so does the user (the account of the user's public key). Balances live in one SQLite
file (WAL); every operation is one ``BEGIN IMMEDIATE`` transaction, so concurrent threads or
processes never lose or double-spend credit. Balances never go negative (checked in Python and by a
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
  Every movement is also written to the ``journal`` table (with its time), which
  :meth:`~CreditLedger.history` reads per account (``vudo credit history``).
- :meth:`~CreditLedger.fund` moves credit from the user's account to another one, signed:
  the ledger checks the Ed25519 signature of the account's key over the movement, and the
  journal keeps it.

Reservations belong to a run: each records the process that made it (host name, pid and
the process's start time, so a recycled pid is not mistaken for it). A run that ends
normally releases its open reservations (:meth:`~CreditLedger.release_all`, when its
sandbox terminates); one killed with ``kill -9`` or by the OOM killer cannot, so opening the
ledger, and :meth:`~CreditLedger.release_dead_runs` (``vudo repair``), release the open
reservations of every run of this host that is no longer alive. Reservations written
before runs were recorded have no run: they count as dead.

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

import os
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from vudo.boundaries import verify_signature
from vudo.display import iso_time
from vudo.engine.abi import I64_MAX, ErrorCode, HostCallError
from vudo.engine.identity import credit_account
from vudo.engine.sqlite import Database
from vudo.errors import VudoError
from vudo.resources import Resource

__all__ = ["MAX_AMOUNT", "CreditLedger", "LedgerView", "Movement", "Reservation", "fund_message"]

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
    {reservations_columns}
);
CREATE INDEX IF NOT EXISTS reservations_open ON reservations (account) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    src BLOB,
    dst BLOB,
    amount INTEGER NOT NULL,
    reservation INTEGER
    {journal_columns}
);
"""

#: Columns added after the first release: (table, column, type). New files get them in
#: CREATE TABLE; older files get them by ALTER TABLE when opened.
_ADDED_COLUMNS: Final = (
    ("reservations", "host", "TEXT"),
    ("reservations", "pid", "INTEGER"),
    ("reservations", "started", "TEXT"),
    ("reservations", "created", "REAL"),
    ("journal", "at", "REAL"),
    ("journal", "note", "TEXT"),
    ("journal", "signer", "BLOB"),
    ("journal", "signature", "BLOB"),
)
_SCHEMA = _SCHEMA.format(
    **{
        f"{table}_columns": "".join(f", {c} {t}" for tb, c, t in _ADDED_COLUMNS if tb == table)
        for table in ("reservations", "journal")
    }
)

#: The domain tag of a signed :meth:`CreditLedger.fund` movement.
FUND_TAG: Final = b"vudo-credit-fund-v1\0"


def fund_message(signer: bytes, dst: bytes, amount: int, at: int) -> bytes:
    """The bytes the user's key signs to move ``amount`` to ``dst`` at Unix time ``at``."""
    return FUND_TAG + signer + dst + amount.to_bytes(8, "big") + at.to_bytes(8, "big")


@dataclass(frozen=True, slots=True)
class Reservation:
    """An open reservation and the run holding it (``pid`` 0 for one made before runs
    were recorded)."""

    id: int
    account: bytes
    amount: int
    owner: str
    host: str
    pid: int
    created: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account.hex(),
            "amount": self.amount,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "created": iso_time(self.created),
        }


@dataclass(frozen=True, slots=True)
class Movement:
    """One journal entry touching an account: ``kind`` is deposit, transfer, fund,
    reserve, release or consume. ``amount`` is its size; ``change`` is its effect on the
    account's balance (in is positive, out or consumed negative; a reservation or its
    release changes what is available, not the balance, so 0)."""

    seq: int
    at: float | None
    kind: str
    src: bytes | None
    dst: bytes | None
    amount: int
    change: int
    reservation: int | None
    note: str | None
    signed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso_time(self.at),
            "kind": self.kind,
            "amount": self.amount,
            "change": self.change,
            "from": None if self.src is None else self.src.hex(),
            "to": None if self.dst is None else self.dst.hex(),
            "reservation": self.reservation,
            "note": self.note,
            "signed": self.signed,
        }


# -- runs ------------------------------------------------------------------------------

_HOST = socket.gethostname()
_this_run: tuple[int, str] | None = None


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, from /proc), ``""`` where there
    is no /proc, None if there is no such live process (a zombie is not alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _exists(pid)
    except (OSError, IndexError):
        return None
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode() if len(fields) > 19 else ""


def _exists(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def current_run() -> tuple[int, str]:
    """This process as a run: (pid, start time); recomputed after a fork."""
    global _this_run
    pid = os.getpid()
    if _this_run is None or _this_run[0] != pid:
        _this_run = (pid, _start_time(pid) or "")
    return _this_run


def _run_alive(host: str | None, pid: int | None, started: str | None) -> bool:
    if host is None or pid is None:
        return False  # made before runs were recorded: its run is long gone
    if host != _HOST:
        return True  # another machine sharing the home: it cannot be checked from here
    now = _start_time(pid)
    return now is not None and (not started or not now or now == started)


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

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open or create the ledger and release the reservations of dead runs.

        ``busy_timeout`` is how long (s) to wait for a lock; ``clock`` (Unix seconds)
        stamps journal entries and reservations.
        """
        self.path = Path(path)
        self.clock = clock
        # FULL: a commit the caller saw must survive a power cut (it is money).
        self._db = Database(
            self.path,
            schema=_SCHEMA,
            title="the credit ledger",
            prefix="ledger ",
            synchronous="FULL",
            busy_timeout=busy_timeout,
        )
        try:
            self._upgrade()
            #: What opening released (reservations of runs that died), for ``vudo repair``.
            self.released_on_open = self.release_dead_runs()
        except BaseException:
            self._db.close()
            raise

    def _upgrade(self) -> None:
        """Add the columns a ledger file from an older vudo lacks."""
        with self._db.transaction("upgrade") as db:
            for table, column, sqltype in _ADDED_COLUMNS:
                present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")

    def release_dead_runs(self) -> list[Reservation]:
        """Release every open reservation whose run is no longer alive; returns them."""
        with self._db.locked("reservations") as db:
            rows = db.execute(
                "SELECT id, account, amount, owner, host, pid, started, created "
                "FROM reservations WHERE state = 'open' ORDER BY id"
            ).fetchall()
        dead = [row for row in rows if not _run_alive(row[4], row[5], row[6])]
        released: list[Reservation] = []
        for rid, account, amount, owner, host, pid, _, created in dead:
            with self._db.transaction("release dead run") as db:
                changed = db.execute(
                    "UPDATE reservations SET state = 'released' WHERE id = ? AND state = 'open'",
                    (rid,),
                ).rowcount
                if not changed:
                    continue  # its run, or another opener, closed it meanwhile
                self._journal(
                    db,
                    "release",
                    bytes(account),
                    None,
                    int(amount),
                    int(rid),
                    note=f"run ended (pid {pid or '?'})",
                )
            released.append(
                Reservation(
                    int(rid),
                    bytes(account),
                    int(amount),
                    str(owner),
                    str(host or ""),
                    int(pid or 0),
                    created,
                )
            )
        return released

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

    def _journal(
        self,
        db: sqlite3.Connection,
        kind: str,
        src: bytes | None,
        dst: bytes | None,
        amount: int,
        reservation: int | None = None,
        *,
        note: str | None = None,
        signer: bytes | None = None,
        signature: bytes | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO journal (kind, src, dst, amount, reservation, at, note, signer, "
            "signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, src, dst, amount, reservation, float(self.clock()), note, signer, signature),
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
            self._move(db, src, dst, amount)
            self._journal(db, "transfer", src, dst, amount)

    def _move(self, db: sqlite3.Connection, src: bytes, dst: bytes, amount: int) -> None:
        self._require_available(db, src, amount, "transfer")
        if src != dst:
            self._add(db, dst, amount)
            self._set_balance(db, src, self._balance(db, src) - amount)

    def fund(self, signer: bytes, dst: bytes, amount: int, at: int, signature: bytes) -> None:
        """Move ``amount`` from the account of key ``signer`` to ``dst``, signed by it.

        ``signature`` is the key's Ed25519 signature over :func:`fund_message`; the
        journal keeps both. A bad signature is CREDIT_ERROR and moves nothing.
        """
        _check_account(dst)
        _check_amount(amount)
        try:
            verify_signature(
                signature,
                fund_message(signer, dst, amount, at),
                signer,
                context="the funding signature does not verify",
            )
        except VudoError as exc:
            raise HostCallError(ErrorCode.CREDIT_ERROR, exc.message) from None
        src = credit_account(signer)
        with self._db.transaction("fund") as db:
            if db.execute("SELECT 1 FROM journal WHERE signature = ?", (signature,)).fetchone():
                raise HostCallError(
                    ErrorCode.CREDIT_ERROR, "this signed funding was already applied"
                )
            self._move(db, src, dst, amount)
            self._journal(db, "fund", src, dst, amount, signer=signer, signature=signature)

    def reserve(self, account: bytes, amount: int, owner: str) -> int:
        """Earmark ``amount`` of ``account``'s available credit for ``owner``; returns its id."""
        _check_account(account)
        _check_amount(amount)
        _check_owner(owner)
        pid, started = current_run()
        with self._db.transaction("reserve") as db:
            self._require_available(db, account, amount, "reservation")
            cursor = db.execute(
                "INSERT INTO reservations (account, amount, owner, state, host, pid, started, "
                "created) VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
                (account, amount, owner, _HOST, pid, started, float(self.clock())),
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

    def open_reservations(self, owner: str | None = None) -> list[Reservation]:
        """Open reservations (oldest first), optionally only those of one owner."""
        with self._db.locked("reservations") as db:
            rows = db.execute(
                "SELECT id, account, amount, owner, host, pid, created FROM reservations "
                "WHERE state = 'open' AND (? IS NULL OR owner = ?) ORDER BY id",
                (owner, owner),
            ).fetchall()
        return [
            Reservation(int(i), bytes(a), int(m), str(o), str(h or ""), int(p or 0), c)
            for i, a, m, o, h, p, c in rows
        ]

    def history(self, account: bytes, *, limit: int = 1000) -> list[Movement]:
        """The latest ``limit`` movements touching ``account``, oldest first."""
        _check_account(account)
        with self._db.locked("history") as db:
            rows = db.execute(
                "SELECT seq, at, kind, src, dst, amount, reservation, note, signature "
                "FROM journal WHERE src = ? OR dst = ? ORDER BY seq DESC LIMIT ?",
                (account, account, limit),
            ).fetchall()
        moves = []
        for seq, at, kind, src, dst, amount, rid, note, signature in reversed(rows):
            src_b = None if src is None else bytes(src)
            dst_b = None if dst is None else bytes(dst)
            change = 0
            if kind == "consume":
                change = -int(amount)
            elif kind in ("deposit", "transfer", "fund") and src_b != dst_b:
                change = int(amount) if dst_b == account else -int(amount)
            moves.append(
                Movement(
                    int(seq),
                    at,
                    str(kind),
                    src_b,
                    dst_b,
                    int(amount),
                    change,
                    None if rid is None else int(rid),
                    note,
                    signature is not None,
                )
            )
        return moves

    def release_all(self, owner: str) -> int:
        """Release every open reservation of ``owner`` (a sandbox ending); returns count."""
        ids = [r.id for r in self.open_reservations(owner)]
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
