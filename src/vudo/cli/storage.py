"""``vudo storage``: a Spirit's stored keys and values (what the workbench's storage pane shows).

    vudo storage list [NAME]          its keys, sizes and the start of each value
    vudo storage get NAME KEY         one whole value (raw bytes on stdout with --raw)
    vudo storage delete NAME KEY      remove one key (asks first; --yes to skip)

NAME is an installed Spirit; a path (``./wallet``, ``.``) names a project, a
``.wasm``/``.wat`` path a loose module (as ``vudo credit`` names them). Without NAME,
``list`` shows the project in the current directory. A KEY is text, or ``hex:6b6579``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vudo.cli.render import emit_json, out
from vudo.errors import NotFoundError, UsageError, printable
from vudo.home import vudo_home

#: action -> (fewest words, most words, what they are, usage)
_TAKES = {
    "list": (0, 1, "at most one NAME", "vudo storage list [NAME]"),
    "get": (2, 2, "a NAME and a KEY", "vudo storage get NAME KEY"),
    "delete": (2, 2, "a NAME and a KEY", "vudo storage delete NAME KEY --yes"),
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=sorted(_TAKES),
        help="list [NAME] | get NAME KEY | delete NAME KEY",
    )
    p.add_argument(
        "words",
        metavar="NAME/KEY",
        nargs="*",
        help="an installed Spirit NAME (a path for a project), a KEY (text, or hex:...)",
    )
    p.add_argument("--raw", action="store_true", help="get: write the value's bytes as they are")
    p.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def run(args: argparse.Namespace) -> int:
    # lazy: project.credit (~170 ms) only when `vudo storage` runs
    from vudo.project.credit import subject

    # lazy: project.storage (~90 ms) only when `vudo storage` runs
    from vudo.project.storage import (
        delete_key,
        entries,
        open_storage,
        parse_key,
        read_value,
        show_key,
        value_text,
    )

    low, high, what, usage = _TAKES[args.action]
    words: list[str] = list(args.words)
    if not low <= len(words) <= high:
        raise UsageError(
            f"storage {args.action} takes {what}, got {len(words)} "
            f"word{'s' if len(words) != 1 else ''}",
            hint=f"usage: {usage}",
        )
    home, cwd = vudo_home(), Path.cwd()
    label, identity = subject(words[0] if words else ".", cwd=cwd, home=home)
    key = parse_key(words[1]) if len(words) > 1 else b""
    if args.action == "delete" and not args.yes:
        if args.json or not sys.stdin.isatty():
            raise UsageError(
                "storage delete asks first, and there is no terminal to ask on",
                hint="pass --yes to delete without asking",
            )
        answer = input(f"delete {printable(show_key(key))} from {printable(label)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out("nothing deleted")
            return 0
    with open_storage(home) as store:
        if args.action == "list":
            rows = entries(store, identity)
            if args.json:
                emit_json(rows)
            elif not rows:
                out(f"{printable(label)} has stored nothing")
            else:
                for e in rows:
                    cut = "..." if len(e.value) < e.size else ""
                    out(
                        f"{printable(show_key(e.key))}  {e.size:,} bytes  "
                        f"{value_text(e.value[:60])}{cut}"
                    )
            return 0
        if args.action == "get":
            stored = read_value(store, identity, key)
            if stored is None:
                raise NotFoundError(
                    f"{printable(label)} has no key {printable(show_key(key))}",
                    hint=f"`vudo storage list {label}` shows its keys",
                )
            if args.raw:
                sys.stdout.buffer.write(stored.value)
                sys.stdout.flush()
            elif args.json:
                emit_json(stored)
            else:
                out(value_text(stored.value))
            return 0
        deleted = delete_key(store, identity, key)
    if args.json:
        emit_json(deleted)
    elif deleted.deleted:
        out(f"deleted {printable(show_key(key))}")
    else:
        out("no such key: nothing deleted")
    return 0
