"""Workspace trust on the command line: the question before building or running a folder,
and ``vudo trust`` / ``vudo untrust`` (see :mod:`vudo.project.workspace`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vudo.cli.render import emit_json, note, out, stderr_is_tty
from vudo.errors import UsageError, VudoError, printable
from vudo.home import vudo_home


def add_yes(p: argparse.ArgumentParser) -> None:
    """``--yes``: trust an untrusted project folder without asking."""
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="trust the project folder without asking (if it is not trusted yet)",
    )


def gate(yes: bool) -> Callable[[Path], None]:
    """The check to run before a project folder is built or run: asks once, remembers."""

    def check(root: Path) -> None:
        ensure_trusted(root, yes=yes)

    return check


def _say(line: str) -> None:
    """Part of the question: shown even with -q (which silences only remarks)."""
    sys.stderr.write(printable(line) + "\n")


def ensure_trusted(root: Path, *, yes: bool) -> None:
    """Return if ``root`` is trusted (or the user trusts it now); raise otherwise."""
    # lazy: project.workspace (~25 ms) only when a folder's trust is checked
    from vudo.project.workspace import check_trust, trust

    home = vudo_home()
    request = check_trust(root, home=home)
    if request is None:
        return
    if request.previous is None:
        _say(f"{request.root} is a project you have not trusted yet ({request.name}).")
    else:
        _say(f"{request.root} now asks for more than you trusted it with.")
    _say(f"  {request.build_warning()}")
    if request.capabilities:
        _say("  running it grants what its manifest asks for:")
        added = set(request.added) if request.previous is not None else set()
        for cap in request.capabilities:
            _say(f"  {'+' if cap in added else ' '} {cap.value:<20} {cap.description}")
    else:
        _say("  its manifest asks for no capabilities")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"{request.root} is not a trusted folder and stdin is not a terminal to ask",
                hint="pass --yes to trust it, or run `vudo trust DIR` first",
            )
        sys.stderr.write("trust this folder to build and run? [y/N]: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not stderr_is_tty():
            sys.stderr.write("\n")
        if answer.strip().lower() not in ("y", "yes"):
            raise VudoError(
                f"cancelled: {request.root} is not trusted",
                hint="run again and answer y, or `vudo trust DIR`",
            )
    trust(request.root, home=home)
    note(f"trusted {request.root} (`vudo untrust {request.root}` forgets it)")


def configure_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", nargs="?", help="a project folder")
    p.add_argument("--list", action="store_true", help="list the trusted folders")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def configure_untrust(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="a trusted project folder")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def run_trust(args: argparse.Namespace) -> int:
    # lazy: project.workspace (~25 ms) only for `vudo trust`
    from vudo.project.workspace import trust, trusted_folders

    home = vudo_home()
    if args.list or args.dir is None:
        if args.dir is not None:
            raise UsageError("--list takes no DIR", hint="`vudo trust --list` or `vudo trust DIR`")
        folders = trusted_folders(home)
        if args.json:
            emit_json(folders)
        elif not folders:
            out("no trusted folders")
        for f in folders if not args.json else ():
            caps = ", ".join(c.value for c in f.capabilities) or "-"
            why = "made by vudo new" if f.reason == "created" else f"capabilities: {caps}"
            since = time.strftime("%Y-%m-%d", time.localtime(f.trusted_at))
            out(f"{f.path}  ({why}; since {since})")
        return 0
    folder = trust(Path(args.dir), home=home)
    if args.json:
        emit_json(folder)
    else:
        out(
            f"trusted {folder.path} with "
            + (", ".join(c.value for c in folder.capabilities) or "no capabilities")
        )
    return 0


def run_untrust(args: argparse.Namespace) -> int:
    # lazy: project.workspace (~25 ms) only for `vudo untrust`
    from vudo.project.workspace import untrust

    folder = untrust(Path(args.dir), home=vudo_home())
    if args.json:
        emit_json(folder)
    else:
        out(f"untrusted {folder.path}")
    return 0
