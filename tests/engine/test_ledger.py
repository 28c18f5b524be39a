"""The credit ledger on a real SQLite file: balances, reservations, ownership, threads."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import nacl.signing
import pytest

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.identity import credit_account
from vudo.engine.ledger import MAX_AMOUNT, CreditLedger, LedgerView, fund_message
from vudo.errors import VudoError

A = b"\x01" * 32
B = b"\x02" * 32
C = b"\x03" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    with CreditLedger(tmp_path / "ledger.sqlite") as led:
        yield led


def fails(code: ErrorCode, call: Callable[[], object]) -> HostCallError:
    with pytest.raises(HostCallError) as info:
        call()
    assert info.value.code is code, info.value
    return info.value


def test_unknown_account_has_zero_balance(ledger: CreditLedger) -> None:
    assert ledger.balance(A) == 0
    assert ledger.available(A) == 0
    assert ledger.accounts() == []


def test_deposit_and_transfer(ledger: CreditLedger) -> None:
    assert ledger.deposit(A, 100) == 100
    assert ledger.deposit(A, 50) == 150
    ledger.transfer(A, B, 60)
    assert ledger.balance(A) == 90
    assert ledger.balance(B) == 60
    ledger.transfer(B, A, 60)
    assert ledger.balance(B) == 0
    assert ledger.accounts() == [(A, 150), (B, 0)]


def test_transfer_to_self_changes_nothing_but_needs_funds(ledger: CreditLedger) -> None:
    ledger.deposit(A, 10)
    ledger.transfer(A, A, 10)
    assert ledger.balance(A) == 10
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.transfer(A, A, 11))


def test_insufficient_funds_is_credit_error_and_changes_nothing(ledger: CreditLedger) -> None:
    ledger.deposit(A, 10)
    err = fails(ErrorCode.CREDIT_ERROR, lambda: ledger.transfer(A, B, 11))
    assert "insufficient funds" in err.detail
    assert ledger.balance(A) == 10 and ledger.balance(B) == 0
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.transfer(C, B, 1))


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT + 1, 1.5, True, "5"])
def test_bad_amounts_are_invalid_parameter(ledger: CreditLedger, amount: object) -> None:
    ledger.deposit(A, 100)
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.deposit(A, amount))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.transfer(A, B, amount))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.reserve(A, amount, "s"))  # type: ignore[arg-type]
    assert ledger.balance(A) == 100


@pytest.mark.parametrize("account", [b"", b"\x01" * 31, b"\x01" * 33, "01" * 32, None])
def test_bad_accounts_are_invalid_parameter(ledger: CreditLedger, account: object) -> None:
    bad = account
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.balance(bad))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.available(bad))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.deposit(bad, 1))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.transfer(A, bad, 1))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.reserve(bad, 1, "s"))  # type: ignore[arg-type]


def test_balance_overflow_is_refused(ledger: CreditLedger) -> None:
    ledger.deposit(A, MAX_AMOUNT)
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.deposit(A, 1))
    ledger.deposit(B, 1)
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.transfer(B, A, 1))
    assert ledger.balance(A) == MAX_AMOUNT and ledger.balance(B) == 1


def test_reservation_holds_credit_until_released(ledger: CreditLedger) -> None:
    ledger.deposit(A, 100)
    rid = ledger.reserve(A, 70, "sb-1")
    assert ledger.balance(A) == 100
    assert ledger.available(A) == 30
    assert ledger.reserved(A) == 70
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.transfer(A, B, 31))
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.reserve(A, 31, "sb-1"))
    ledger.transfer(A, B, 30)
    assert ledger.available(A) == 0
    assert ledger.release(rid, "sb-1") == 70
    assert ledger.available(A) == 70
    assert ledger.balance(A) == 70


def test_consume_burns_the_reserved_amount(ledger: CreditLedger) -> None:
    ledger.deposit(A, 100)
    rid = ledger.reserve(A, 40, "sb-1")
    assert ledger.consume(rid, "sb-1") == 40
    assert ledger.balance(A) == 60
    assert ledger.available(A) == 60
    assert ledger.consumed_total() == 40
    assert ledger.open_reservations() == []


def test_closed_or_unknown_reservations_are_credit_errors(ledger: CreditLedger) -> None:
    ledger.deposit(A, 100)
    rid = ledger.reserve(A, 10, "sb-1")
    ledger.release(rid, "sb-1")
    err = fails(ErrorCode.CREDIT_ERROR, lambda: ledger.release(rid, "sb-1"))
    assert "already released" in err.detail
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.consume(rid, "sb-1"))
    rid2 = ledger.reserve(A, 10, "sb-1")
    ledger.consume(rid2, "sb-1")
    assert (
        "already consumed"
        in fails(ErrorCode.CREDIT_ERROR, lambda: ledger.consume(rid2, "sb-1")).detail
    )
    assert "unknown" in fails(ErrorCode.CREDIT_ERROR, lambda: ledger.release(999, "sb-1")).detail
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.consume(-5, "sb-1"))
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.release("1", "sb-1"))  # type: ignore[arg-type]
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.release(rid, ""))
    fails(ErrorCode.INVALID_PARAMETER, lambda: ledger.reserve(A, 1, ""))
    assert ledger.balance(A) == 90


def test_only_the_owner_can_release_or_consume(ledger: CreditLedger) -> None:
    ledger.deposit(A, 100)
    rid = ledger.reserve(A, 10, "sb-1")
    err = fails(ErrorCode.CREDIT_ERROR, lambda: ledger.release(rid, "sb-2"))
    assert "another sandbox" in err.detail
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.consume(rid, "sb-2"))
    [held] = ledger.open_reservations()
    assert (held.id, held.account, held.amount, held.owner) == (rid, A, 10, "sb-1")
    assert ledger.open_reservations("sb-2") == []
    assert ledger.release_all("sb-1") == 1
    assert ledger.available(A) == 100


def test_ledger_view_spends_only_its_own_account(ledger: CreditLedger) -> None:
    ledger.deposit(A, 100)
    ledger.deposit(B, 100)
    view = LedgerView(ledger, A, "sb-a")
    other = LedgerView(ledger, B, "sb-b")
    view.transfer(A, B, 10)
    assert view.balance(B) == 110 and view.available(A) == 90
    err = fails(ErrorCode.CREDIT_ERROR, lambda: view.transfer(B, A, 10))
    assert "runs as" in err.detail
    fails(ErrorCode.CREDIT_ERROR, lambda: view.reserve(B, 10))
    rid = view.reserve(A, 20)
    fails(ErrorCode.CREDIT_ERROR, lambda: other.release(rid))
    fails(ErrorCode.CREDIT_ERROR, lambda: other.consume(rid))
    assert view.consume(rid) == 20
    rid2 = view.reserve(A, 5)
    assert view.release(rid2) == 5
    assert ledger.balance(A) == 70 and ledger.balance(B) == 110
    fails(ErrorCode.INVALID_PARAMETER, lambda: view.transfer(b"x", B, 1))
    with pytest.raises(HostCallError):
        LedgerView(ledger, b"short", "sb")
    with pytest.raises(HostCallError):
        LedgerView(ledger, A, "")


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with CreditLedger(path) as led:
        led.deposit(A, 100)
        led.transfer(A, B, 25)
        rid = led.reserve(A, 5, "sb")
    with CreditLedger(path) as led:
        assert led.balance(A) == 75 and led.balance(B) == 25
        assert led.available(A) == 70
        assert led.consume(rid, "sb") == 5
    with sqlite3.connect(path) as raw:
        kinds = [r[0] for r in raw.execute("SELECT kind FROM journal ORDER BY seq")]
    raw.close()
    assert kinds == ["deposit", "transfer", "reserve", "consume"]


def test_closed_ledger_and_sqlite_failures_are_storage_errors(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    led = CreditLedger(path, busy_timeout=0.05)
    led.deposit(A, 5)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        err = fails(ErrorCode.STORAGE_ERROR, lambda: led.deposit(A, 1))
        assert "locked" in err.detail
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert led.deposit(A, 1) == 6
    led.close()
    led.close()
    fails(ErrorCode.STORAGE_ERROR, lambda: led.balance(A))
    fails(ErrorCode.STORAGE_ERROR, lambda: led.transfer(A, B, 1))


def test_unopenable_ledger_is_a_vudo_error(tmp_path: Path) -> None:
    bad = tmp_path / "ledger.sqlite"
    bad.write_bytes(b"garbage" * 500)
    with pytest.raises(VudoError):
        CreditLedger(bad)
    with pytest.raises(VudoError):
        CreditLedger(tmp_path / "missing" / "ledger.sqlite")


def test_concurrent_transfers_conserve_credit(ledger: CreditLedger) -> None:
    accounts = [bytes([i]) * 32 for i in range(1, 5)]
    for acct in accounts:
        ledger.deposit(acct, 1000)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        src = accounts[index]
        dst = accounts[(index + 1) % len(accounts)]
        try:
            for _ in range(60):
                try:
                    ledger.transfer(src, dst, 7)
                except HostCallError as exc:
                    assert exc.code is ErrorCode.CREDIT_ERROR
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(accounts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(ledger.balance(a) for a in accounts) == 4000
    assert all(ledger.balance(a) >= 0 for a in accounts)


def test_concurrent_reservations_never_overcommit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with CreditLedger(path) as setup:
        setup.deposit(A, 100)
    granted: list[int] = []
    lock = threading.Lock()

    def worker(owner: str) -> None:
        # Each thread has its own connection: a second process would look the same.
        with CreditLedger(path) as led:
            for _ in range(30):
                try:
                    rid = led.reserve(A, 3, owner)
                except HostCallError as exc:
                    assert exc.code is ErrorCode.CREDIT_ERROR
                    continue
                with lock:
                    granted.append(rid)

    threads = [threading.Thread(target=worker, args=(f"sb-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with CreditLedger(path) as led:
        assert len(granted) == 33  # floor(100 / 3)
        assert led.available(A) == 1
        assert led.reserved(A) == 99
        assert led.balance(A) == 100


# -- runs, history, funding --------------------------------------------------------------

_HOLD = """
import sys, time
from vudo.engine.ledger import CreditLedger
led = CreditLedger(sys.argv[1])
rid = led.reserve(bytes([1]) * 32, 30, "child-run")
print(rid, flush=True)
time.sleep(60)
"""


def _child_holding_a_reservation(path: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


def test_reservations_of_a_killed_run_are_released_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with CreditLedger(path) as setup:
        setup.deposit(A, 100)
    child, rid = _child_holding_a_reservation(path)
    try:
        with CreditLedger(path) as led:  # the run is alive: its reservation stays
            [held] = led.open_reservations()
            assert (held.id, held.amount, held.pid) == (rid, 30, child.pid)
            assert led.available(A) == 70
            child.send_signal(signal.SIGKILL)  # kill -9: no chance to release anything
            child.wait()
            assert led.available(A) == 70  # nobody noticed yet
            [freed] = led.release_dead_runs()  # what `vudo repair` calls
            assert freed.id == rid and led.available(A) == 100
            assert led.release_dead_runs() == []
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    with CreditLedger(path) as led:
        assert led.open_reservations() == []
        assert [(m.kind, m.amount, m.note) for m in led.history(A)][-1] == (
            "release",
            30,
            f"run ended (pid {child.pid})",
        )


def test_opening_the_ledger_releases_a_dead_runs_reservations(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with CreditLedger(path) as setup:
        setup.deposit(A, 100)
    child, _ = _child_holding_a_reservation(path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.stdout is not None
    child.stdout.close()
    with CreditLedger(path) as led:
        assert led.open_reservations() == [] and led.available(A) == 100


def test_this_processs_reservations_survive_a_reopen(ledger: CreditLedger, tmp_path: Path) -> None:
    ledger.deposit(A, 10)
    rid = ledger.reserve(A, 4, "sb")
    with CreditLedger(tmp_path / "ledger.sqlite") as again:
        assert [r.id for r in again.open_reservations()] == [rid]
        assert again.release_dead_runs() == []


def test_an_old_ledger_file_is_upgraded_and_its_runless_reservations_freed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    raw = sqlite3.connect(path)
    raw.executescript("""
        CREATE TABLE accounts (account BLOB PRIMARY KEY CHECK (length(account) = 32),
            balance INTEGER NOT NULL CHECK (balance >= 0)) WITHOUT ROWID;
        CREATE TABLE reservations (id INTEGER PRIMARY KEY AUTOINCREMENT,
            account BLOB NOT NULL, amount INTEGER NOT NULL CHECK (amount > 0),
            owner TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'released', 'consumed')));
        CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
            src BLOB, dst BLOB, amount INTEGER NOT NULL, reservation INTEGER);
    """)
    raw.execute("INSERT INTO accounts VALUES (?, 50)", (A,))
    raw.execute(
        "INSERT INTO reservations (account, amount, owner, state) VALUES (?, 20, 'old', 'open')",
        (A,),
    )
    raw.commit()
    raw.close()
    with CreditLedger(path, clock=lambda: 7.0) as led:
        assert led.balance(A) == 50 and led.available(A) == 50
        led.transfer(A, B, 5)
        assert [(m.kind, m.at, m.change) for m in led.history(A)] == [
            ("release", 7.0, 0),
            ("transfer", 7.0, -5),
        ]


def test_history_lists_an_accounts_movements_and_their_effect(tmp_path: Path) -> None:
    now = [100.0]
    with CreditLedger(tmp_path / "l.sqlite", clock=lambda: now[0]) as led:
        led.deposit(A, 100)
        now[0] = 101.0
        led.transfer(A, B, 30)
        led.transfer(B, A, 5)
        rid = led.reserve(A, 10, "sb")
        led.consume(rid, "sb")
        rid2 = led.reserve(A, 1, "sb")
        led.release(rid2, "sb")
        led.transfer(A, A, 2)
        led.deposit(C, 9)
        moves = led.history(A)
        assert [(m.kind, m.amount, m.change) for m in moves] == [
            ("deposit", 100, 100),
            ("transfer", 30, -30),
            ("transfer", 5, 5),
            ("reserve", 10, 0),
            ("consume", 10, -10),
            ("reserve", 1, 0),
            ("release", 1, 0),
            ("transfer", 2, 0),
        ]
        assert sum(m.change for m in moves) == led.balance(A) == 65
        assert [m.at for m in moves[:2]] == [100.0, 101.0]
        assert moves[3].reservation == rid and not moves[0].signed
        assert [m.kind for m in led.history(A, limit=2)] == ["release", "transfer"]
        assert [(m.kind, m.change) for m in led.history(B)] == [("transfer", 30), ("transfer", -5)]
        assert led.history(bytes([9]) * 32) == []
        fails(ErrorCode.INVALID_PARAMETER, lambda: led.history(b"short"))


def test_fund_moves_credit_from_the_signers_account_only_when_signed(ledger: CreditLedger) -> None:
    key = nacl.signing.SigningKey(bytes([5]) * 32)
    signer = bytes(key.verify_key)
    mine = credit_account(signer)
    ledger.deposit(mine, 100)
    signature = key.sign(fund_message(signer, B, 40, 1234)).signature
    ledger.fund(signer, B, 40, 1234, signature)
    assert ledger.balance(mine) == 60 and ledger.balance(B) == 40
    [move] = [m for m in ledger.history(B) if m.kind == "fund"]
    assert move.signed and move.src == mine and move.amount == 40
    # replayed, altered, or signed by another key: nothing moves
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, B, 40, 1234, signature))
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, B, 41, 1234, signature))
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, C, 40, 1234, signature))
    other = nacl.signing.SigningKey(bytes([6]) * 32)
    forged = other.sign(fund_message(signer, B, 10, 99)).signature
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, B, 10, 99, forged))
    fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, B, 10, 99, bytes(64)))
    too_much = key.sign(fund_message(signer, B, 61, 5)).signature
    err = fails(ErrorCode.CREDIT_ERROR, lambda: ledger.fund(signer, B, 61, 5, too_much))
    assert "insufficient funds" in err.detail
    assert ledger.balance(mine) == 60 and ledger.balance(B) == 40


def test_accounts_are_derived_per_identity() -> None:
    from vudo.engine.identity import SpiritIdentity

    wallet = SpiritIdentity.installed("ab" * 32, "wallet")
    assert wallet == SpiritIdentity.installed("ab" * 32, "wallet")
    others = [
        SpiritIdentity.installed("cd" * 32, "wallet"),
        SpiritIdentity.installed("ab" * 32, "wallet2"),
        SpiritIdentity.project(Path("/somewhere/wallet")),
        SpiritIdentity.module(b"\0asm\1\0\0\0"),
        SpiritIdentity.of_key("ab" * 32),
    ]
    keys = {wallet.key, *(o.key for o in others)}
    accounts = {wallet.account, *(o.account for o in others)}
    assert len(keys) == len(accounts) == 6
    assert all(len(a) == 32 for a in accounts)
    assert wallet.account == credit_account(wallet.key) == credit_account(bytes.fromhex(wallet.key))
    assert wallet.account != bytes.fromhex(wallet.key)  # never the key itself
    assert SpiritIdentity.of_key("AB" * 32).account == credit_account("ab" * 32)
    with pytest.raises(ValueError):
        credit_account(b"short")
    with pytest.raises(ValueError):
        SpiritIdentity.installed("not a key", "wallet")
