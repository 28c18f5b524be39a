"""The credit ledger on a real SQLite file: balances, reservations, ownership, threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vudo.engine.abi import ErrorCode, HostCallError
from vudo.engine.ledger import MAX_AMOUNT, CreditLedger, LedgerView
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
    assert ledger.open_reservations() == [(rid, A, 10, "sb-1")]
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
