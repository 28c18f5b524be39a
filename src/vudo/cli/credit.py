"""``vudo credit``: list open reservations, show balances and history, deposit and fund.

    vudo credit                       open reservations (of runs still alive)
    vudo credit balance [NAME]        NAME's account, or yours without NAME
    vudo credit history [NAME]        its movements, oldest first
    vudo credit deposit AMOUNT        create credit in your own account
    vudo credit fund NAME AMOUNT      move credit from yours to NAME's (signed with your key)

NAME is an installed Spirit; a path (``./wallet``, ``wallet/``) names a project, a
``.wasm``/``.wat`` path a loose module.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vudo.cli.render import emit_json, out
from vudo.errors import UsageError
from vudo.home import vudo_home

#: action -> (fewest words, most words, what they are)
_TAKES = {
    "list": (0, 0, "no NAME or AMOUNT"),
    "balance": (0, 1, "at most one NAME"),
    "history": (0, 1, "at most one NAME"),
    "deposit": (1, 1, "one AMOUNT"),
    "fund": (2, 2, "a NAME and an AMOUNT"),
}
_USAGE = {
    "list": "vudo credit",
    "balance": "vudo credit balance [NAME]",
    "history": "vudo credit history [NAME]",
    "deposit": "vudo credit deposit AMOUNT",
    "fund": "vudo credit fund NAME AMOUNT",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        metavar="ACTION",
        nargs="?",
        default="list",
        choices=sorted(_TAKES),
        help="list (default): open reservations | balance [NAME] | history [NAME] "
        "| deposit AMOUNT | fund NAME AMOUNT",
    )
    p.add_argument(
        "words",
        metavar="NAME/AMOUNT",
        nargs="*",
        help="an installed Spirit NAME (a path for a project), an AMOUNT of credits",
    )
    p.add_argument(
        "--limit",
        metavar="N",
        type=int,
        default=50,
        help="history: show the latest N movements (default 50)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _when(at: float | None) -> str:
    if at is None:
        return "-".rjust(19)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def run(args: argparse.Namespace) -> int:
    from vudo.project import credit  # lazy: project.credit (~170 ms) only when `vudo credit` runs

    low, high, what = _TAKES[args.action]
    words: list[str] = list(args.words)
    if not low <= len(words) <= high:
        raise UsageError(
            f"credit {args.action} takes {what}, got {len(words)} "
            f"word{'s' if len(words) != 1 else ''}",
            hint=f"usage: {_USAGE[args.action]}",
        )
    if args.limit <= 0:
        raise UsageError(
            f"--limit must be positive, got {args.limit}",
            hint="pass how many movements to show, e.g. --limit 20",
        )
    home, cwd = vudo_home(), Path.cwd()
    if args.action == "list":
        held = credit.open_reservations(home=home)
        if args.json:
            emit_json(held)
        elif not held:
            out("no open reservations")
        else:
            for r in held:
                out(
                    f"#{r.id:<6} {r.amount:>12,}  account {r.account.hex()[:16]}...  "
                    f"run pid {r.pid} on {r.host}  since {_when(r.created)}"
                )
        return 0
    if args.action in ("balance", "history"):
        spec = words[0] if words else None
        if args.action == "balance":
            status = credit.balance(spec, cwd=cwd, home=home)
            if args.json:
                emit_json(status)
            else:
                out(
                    f"{status.label}: {status.balance:,} credits ({status.available:,} "
                    f"available, {status.reserved:,} reserved)  account "
                    f"{status.account.hex()[:16]}..."
                )
            return 0
        found = credit.history(spec, cwd=cwd, home=home, limit=args.limit)
        status, moves = found
        if args.json:
            emit_json(found)
            return 0
        if not moves:
            out(f"{status.label}: no movements yet")
            return 0
        for m in moves:
            other = m.dst if m.src == status.account else m.src
            party = (
                f"  {'to' if m.src == status.account else 'from'} {other.hex()[:16]}..."
                if other is not None
                and other != status.account
                and m.kind not in ("reserve", "release", "consume")
                else ""
            )
            extra = f"  #{m.reservation}" if m.reservation is not None else ""
            note = f"  ({m.note})" if m.note else ""
            out(f"{_when(m.at)}  {m.kind:<8} {m.change:>+14,}{party}{extra}{note}")
        out(f"balance {status.balance:,} ({status.available:,} available)")
        return 0
    if args.action == "deposit":
        status = credit.deposit(credit.parse_amount(words[0]), home=home)
        if args.json:
            emit_json(status)
        else:
            out(f"your account now holds {status.balance:,} credits")
        return 0
    amount = credit.parse_amount(words[1])
    status = credit.fund(words[0], amount, cwd=cwd, home=home)
    if args.json:
        emit_json(status)
    else:
        out(f"funded {status.label} with {amount:,} credits (balance {status.balance:,})")
    return 0
