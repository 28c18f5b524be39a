"""`vudo credit`: per-Spirit accounts, deposit, signed funding, history, reservations of
runs killed with kill -9, and `vudo repair` releasing them, all through real subprocesses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]

#: Spends from its own account: reserve 30, consume it, transfer 5 to account 0x02..02.
SPENDER = """(module
  (import "vudo" "host_credit_account" (func $acct (param i32) (result i32)))
  (import "vudo" "host_credit_reserve" (func $reserve (param i32 i64) (result i64)))
  (import "vudo" "host_credit_consume" (func $consume (param i64) (result i32)))
  (import "vudo" "host_credit_transfer" (func $transfer (param i32 i32 i64) (result i32)))
  (import "vudo" "host_credit_balance" (func $balance (param i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 32) "\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02"
                       "\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02\\02")
  (func (export "main") (result i64)
    (drop (call $acct (i32.const 0)))
    (drop (call $consume (call $reserve (i32.const 0) (i64.const 30))))
    (drop (call $transfer (i32.const 0) (i32.const 32) (i64.const 5)))
    (call $balance (i32.const 0)))
  ;; reserve 40 and spin until killed
  (func (export "hold") (result i64)
    (drop (call $acct (i32.const 0)))
    (drop (call $reserve (i32.const 0) (i64.const 40)))
    (loop $l (br $l))
    (i64.const 0)))
"""


def test_deposit_fund_balance_history_and_a_run_spending_its_own_account(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    spender = tmp_path / "spender.wat"
    spender.write_text(SPENDER)
    r = vudo_cli("credit", "balance", "--json")
    assert r.code == 0, r.stderr
    mine = r.json()
    assert mine["spirit"] == "you" and mine["balance"] == 0 and mine["identity"] == "key"
    assert vudo_cli("credit", "deposit", "1_000", "--json").json()["balance"] == 1000
    r = vudo_cli("credit", "fund", "spender.wat", "100")
    assert r.code == 0, r.stderr
    assert "funded spender.wat with 100 credits (balance 100)" in r.stdout
    assert vudo_cli("credit", "balance", "--json").json()["balance"] == 900
    # The run spends from its own account, never from the user's.
    r = vudo_cli("run", "spender.wat", "--grant", "actuator_credit", "-q")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "65"  # 100 - 30 consumed - 5 paid away
    balance = vudo_cli("credit", "balance", "spender.wat", "--json").json()
    assert balance["balance"] == 65 and balance["identity"] == "module"
    assert vudo_cli("credit", "balance", "--json").json()["balance"] == 900
    history = vudo_cli("credit", "history", "spender.wat", "--json").json()
    assert [(m["kind"], m["change"]) for m in history["movements"]] == [
        ("fund", 100),
        ("reserve", 0),
        ("consume", -30),
        ("transfer", -5),
    ]
    assert history["movements"][0]["signed"] is True
    # times in JSON are ISO 8601 in UTC, as in every other command
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["at"]) for m in history["movements"]
    )
    text = vudo_cli("credit", "history", "spender.wat").stdout
    assert "fund" in text and "+100" in text and "balance 65" in text
    assert (
        vudo_cli("credit", "history", "--limit", "1", "--json").json()["movements"][0]["kind"]
        == "fund"
    )  # the user's side of the funding


def test_a_spirit_with_no_credit_cannot_spend_the_users(vudo_cli: Vudo, tmp_path: Path) -> None:
    (tmp_path / "spender.wat").write_text(SPENDER)
    assert vudo_cli("credit", "deposit", "500").code == 0
    r = vudo_cli("run", "spender.wat", "--grant", "actuator_credit", "-q")
    assert r.code == 0 and r.stdout.strip() == "0"  # its own, empty account
    assert vudo_cli("credit", "balance", "--json").json()["balance"] == 500


def test_credit_errors_are_one_line_with_hints(vudo_cli: Vudo, tmp_path: Path) -> None:
    (tmp_path / "spender.wat").write_text(SPENDER)
    r = vudo_cli("credit", "fund", "spender.wat", "10")
    assert r.code == 1 and "insufficient funds" in r.error_line
    assert "vudo credit deposit" in r.error_line
    for argv, words in [
        (("credit", "fund", "spender.wat"), "a NAME and an AMOUNT"),
        (("credit", "deposit"), "one AMOUNT"),
        (("credit", "balance", "a", "b"), "at most one NAME"),
    ]:
        r = vudo_cli(*argv)
        assert r.code == 2 and words in r.error_line and "usage:" in r.error_line, argv
    for amount in ("0", "-5", "ten", "1.5", str(2**63)):
        r = vudo_cli("credit", "deposit", amount)
        assert r.code == 2 and "hint:" in r.error_line, amount
    r = vudo_cli("credit", "balance", "no-such-spirit")
    assert r.code == 5 and "hint:" in r.error_line
    r = vudo_cli("credit", "balance", "./nowhere")
    assert r.code == 5 and "hint:" in r.error_line
    r = vudo_cli("credit", "nonsense")
    assert r.code == 2
    r = vudo_cli("credit", "history", "--limit", "0")
    assert r.code == 2
    assert "vudo credit fund" in vudo_cli("credit", "--help").stdout


def test_a_killed_runs_reservation_is_listed_then_released(
    vudo_cli: Vudo, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "spender.wat").write_text(SPENDER)
    assert vudo_cli("credit", "deposit", "100").code == 0
    assert vudo_cli("credit", "fund", "spender.wat", "100").code == 0
    assert vudo_cli("credit").stdout.strip() == "no open reservations"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vudo",
            "run",
            "spender.wat",
            "-f",
            "hold",
            "--grant",
            "actuator_credit",
            "--timeout",
            "60",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        held: list[Any] = []
        for _ in range(200):
            held = vudo_cli("credit", "--json").json()
            if held:
                break
        assert [(h["amount"], h["pid"]) for h in held] == [(40, child.pid)]
        assert vudo_cli("credit", "balance", "spender.wat", "--json").json()["available"] == 60
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    r = vudo_cli("repair", "--json")
    assert r.code == 0, r.stderr
    assert r.json()["released_reservations"] == [held[0]["id"]]
    assert "released reservation" in r.stderr
    status = vudo_cli("credit", "balance", "spender.wat", "--json").json()
    assert status["available"] == status["balance"] == 100
    assert vudo_cli("credit", "--json").json() == []
