"""The ``vudo`` argument parser and dispatcher.

This module stays cheap to import: it loads only argparse and the error tree. Each command's
handler lives in :mod:`vudo.cli.commands`, which imports the engine, the package core or the
TUI only when that command runs, so ``vudo --help`` never pays for wasmtime or textual.

Every failure a user can cause reaches :func:`run_cli` as a :class:`~vudo.errors.VudoError`
and leaves as one ``error: ... (hint: ...)`` line on stderr with the class's exit code.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple, NoReturn

from vudo.engine.config import parse_fuel
from vudo.errors import UsageError, VudoError

PROG = "vudo"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line with a hint and exit code 2."""

    def error(self, message: str) -> NoReturn:
        err = UsageError(message, hint=f"see `{self.prog} --help`")
        sys.stderr.write(err.one_line() + "\n")
        sys.exit(err.exit_code)


class Command(NamedTuple):
    """One sub-command: its name, one-line help, an example for ``--help``, its options.

    A NamedTuple, not a frozen dataclass: this module is imported on every ``vudo`` start,
    and a frozen dataclass costs several times as much to define.
    """

    name: str
    help: str
    example: str
    configure: Callable[[argparse.ArgumentParser], None]


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--path", metavar="DIR", default=".", help="the Spirit project directory (default: .)"
    )


def _consent(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--yes", "-y", action="store_true", help="grant every capability the Spirit asks for"
    )
    p.add_argument(
        "--grant",
        metavar="CAP[=SCOPE]",
        action="append",
        default=[],
        help="grant this capability (repeatable); the others asked for are denied",
    )
    p.add_argument(
        "--deny",
        metavar="CAP",
        action="append",
        default=[],
        help="deny this capability (repeatable); with --yes, grant all but these",
    )
    p.add_argument(
        "--trust-signer",
        action="store_true",
        help="accept (and pin) a signer other than the one this name was first installed with",
    )


def _cfg_new(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the Spirit's name (lowercase, digits, -)")
    p.add_argument(
        "--template",
        "-t",
        default="wat",
        metavar="TEMPLATE",
        help="source language: wat (default), c, zig or rust",
    )
    p.add_argument(
        "--path",
        metavar="DIR",
        default=".",
        help="create the project inside this directory (default: .)",
    )
    _json(p)


def _cfg_build(p: argparse.ArgumentParser) -> None:
    _path(p)
    p.add_argument("--release", action="store_true", help="optimise for size and speed")
    p.add_argument("--locked", action="store_true",
                   help="require spirit.lock to be up to date (do not rewrite it)")
    _json(p)


def _cfg_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spirit",
        metavar="SPIRIT",
        nargs="?",
        default=".",
        help="project dir (default .), .wasm/.wat file, .spirit package or installed NAME[@REQ]",
    )
    p.add_argument("--function", "-f", metavar="NAME", help="function to call (default: main)")
    p.add_argument("--fuel", metavar="N", type=_fuel, help="fuel budget")
    p.add_argument("--timeout", metavar="SECONDS", type=_positive_float, help="wall-clock limit")
    p.add_argument("--memory", metavar="SIZE", help="linear memory limit, e.g. 64MiB")
    p.add_argument(
        "--grant",
        metavar="CAP[=SCOPE]",
        action="append",
        default=[],
        help="grant a capability for this run (repeatable)",
    )
    p.add_argument(
        "--deny", metavar="CAP", action="append", default=[], help="withhold a capability"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only the results")
    _json(p)


def _cfg_test(p: argparse.ArgumentParser) -> None:
    _path(p)
    p.add_argument("filter", metavar="FILTER", nargs="?", help="run only tests containing this")
    p.add_argument("--fuel", metavar="N", type=_fuel, help="fuel budget per test")
    p.add_argument("--timeout", metavar="SECONDS", type=_positive_float, help="time per test")
    _json(p)


def _cfg_pack(p: argparse.ArgumentParser) -> None:
    _path(p)
    p.add_argument("--output", "-o", metavar="FILE", help="where to write the .spirit package")
    _json(p)


def _cfg_sign(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", metavar="PACKAGE", nargs="?", help="default: newest in dist/")
    _path(p)
    p.add_argument("--key", metavar="FILE", help="private key (default ~/.vudo/keys/private.key)")
    p.add_argument("--verify", action="store_true", help="verify the package instead")
    _json(p)


def _cfg_check(p: argparse.ArgumentParser) -> None:
    _path(p)
    _json(p)


def _cfg_fmt(p: argparse.ArgumentParser) -> None:
    _path(p)
    p.add_argument("--check", action="store_true", help="only report; exit 3 if not formatted")
    _json(p)


def _cfg_doc(p: argparse.ArgumentParser) -> None:
    _path(p)
    p.add_argument("--output", "-o", metavar="DIR", help="output directory (default: doc/)")
    _json(p)


def _cfg_summon(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="a .spirit package or a project directory")
    _consent(p)
    _json(p)


def _cfg_install(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[@REQ]", help="e.g. hello-spirit@^0.1")
    p.add_argument(
        "--registry",
        metavar="URL|PATH",
        action="append",
        default=[],
        help="registry to install from (default: the one under ~/.vudo)",
    )
    _consent(p)
    _json(p)


def _cfg_publish(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", metavar="PACKAGE", nargs="?", help="default: newest in dist/")
    _path(p)
    p.add_argument("--registry", metavar="URL|PATH", help="default: the one under ~/.vudo")
    p.add_argument("--allow-new-signer", action="store_true",
                   help="publish a name first published by another key")
    _json(p)


def _cfg_name_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[@VERSION]")
    _json(p)


def _cfg_list(p: argparse.ArgumentParser) -> None:
    _json(p)


def _cfg_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", metavar="QUERY", nargs="?", default="", help="words in name/text")
    p.add_argument("--capability", metavar="CAP", help="only Spirits asking for this capability")
    p.add_argument("--author", metavar="KEY", help="only Spirits by this author key (or prefix)")
    p.add_argument("--available", action="store_true",
                   help="search the registries instead of the installed Spirits")
    p.add_argument("--registry", metavar="URL|PATH", action="append", default=[],
                   help="with --available: registry to search (default: the one under ~/.vudo)")
    _json(p)


def _cfg_upgrade(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", nargs="?", help="default: every installed Spirit")
    p.add_argument(
        "--registry", metavar="URL|PATH", action="append", default=[], help="where to look"
    )
    p.add_argument("--yes", "-y", action="store_true", help="accept widened capabilities")
    _json(p)


def _cfg_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", metavar="ACTION", choices=["generate", "list", "show", "trust"],
                   help="generate | list | show | trust KEY")
    p.add_argument("key", metavar="KEY", nargs="?", help="trust: a signer's 64-hex public key")
    p.add_argument("--force", action="store_true", help="generate: replace an existing key")
    _json(p)


def _cfg_grant(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="an installed Spirit")
    p.add_argument("capability", metavar="CAP", help="capability to grant")
    p.add_argument("--scope", metavar="SCOPE", default="global",
                   help="global, sandboxed, peer:<key> or domain:<pattern> (default: global)")
    p.add_argument("--expires", metavar="WHEN",
                   help="expiry: an ISO date/time or a duration like 30d, 12h")
    _json(p)


def _cfg_revoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="an installed Spirit")
    p.add_argument("capability", metavar="CAP", help="capability to revoke")
    _json(p)


def _cfg_dol(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to `dol` unchanged")


def _cfg_tui(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", nargs="?", default=".", help="project directory")


COMMANDS: tuple[Command, ...] = (
    Command("new", "create a Spirit project that builds and runs as created",
            "vudo new hello-spirit --template c", _cfg_new),
    Command("build", "compile the project's source to target/<name>.wasm",
            "vudo build --path hello-spirit --release", _cfg_build),
    Command("run", "run a Spirit in a sandbox and print its results and receipt",
            "vudo run examples/hello --fuel 1000000 -- 1 2", _cfg_run),
    Command("test", "run every test_* export in its own fresh sandbox",
            "vudo test --path hello-spirit greeting", _cfg_test),
    Command("pack", "write dist/<name>-<version>.spirit", "vudo pack -o out.spirit", _cfg_pack),
    Command("sign", "sign a package with your key, or --verify it",
            "vudo sign --key ~/.vudo/keys/private.key   |   vudo sign --verify dist/x.spirit",
            _cfg_sign),
    Command("publish", "push a signed package to a registry",
            "vudo publish dist/hello-spirit-0.1.0.spirit --registry /srv/vudo", _cfg_publish),
    Command("summon", "install a .spirit package or a project directory",
            "vudo summon ./dist/hello-spirit-0.1.0.spirit --yes", _cfg_summon),
    Command("install", "resolve and install a Spirit and its dependencies from registries",
            "vudo install hello-spirit@^0.1 --yes", _cfg_install),
    Command("uninstall", "remove an installed Spirit", "vudo uninstall hello-spirit@0.1.0",
            _cfg_name_version),
    Command("list", "list installed Spirits", "vudo list --json", _cfg_list),
    Command("search", "search installed Spirits (or --available ones in registries)",
            "vudo search hello --capability actuator_log", _cfg_search),
    Command("info", "show an installed Spirit's manifest, signer and grants",
            "vudo info hello-spirit", _cfg_name_version),
    Command("upgrade", "upgrade installed Spirits, asking again if capabilities widen",
            "vudo upgrade hello-spirit", _cfg_upgrade),
    Command("repair", "check the local store deeply and fix what it can",
            "vudo repair --json", _cfg_list),
    Command("check", "lint manifest, dependencies, capabilities and package signature",
            "vudo check --path hello-spirit", _cfg_check),
    Command("fmt", "format spirit.toml canonically (comments kept)", "vudo fmt --check",
            _cfg_fmt),
    Command("doc", "write Markdown and HTML documentation", "vudo doc -o site/", _cfg_doc),
    Command("keys", "generate, list or show your signing keys", "vudo keys show", _cfg_keys),
    Command("grant", "grant a capability to an installed Spirit",
            "vudo grant chat network_connect --scope 'domain:127.0.0.1:*' --expires 30d",
            _cfg_grant),
    Command("revoke", "revoke a capability from an installed Spirit",
            "vudo revoke chat network_connect", _cfg_revoke),
    Command("dol", "hand off to the DOL toolchain (`dol` on PATH)", "vudo dol build", _cfg_dol),
    Command("tui", "open the interactive workbench", "vudo tui hello-spirit", _cfg_tui),
)

_NAMES = frozenset(cmd.name for cmd in COMMANDS)


def _fuel(text: str) -> int:
    try:
        return parse_fuel(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):  # rejects nan too: it would mean "never time out"
        raise argparse.ArgumentTypeError(
            f"expected a positive, finite number of seconds, got {text!r}")
    return value


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``vudo`` parser (cheap: no command module is imported).

    With ``only`` (a command name) just that command's sub-parser is built, options and
    all: building every sub-parser costs more than running a small Spirit. Without it
    every command is listed (``vudo --help``, the "invalid choice" error), none configured.
    """
    width = _help_width()
    parser = _Parser(
        prog=PROG,
        formatter_class=functools.partial(argparse.HelpFormatter, width=width),
        description="Run untrusted WebAssembly Spirits in capability-checked, metered "
        "sandboxes, and manage them as signed packages.",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 invalid input, 4 verification failed, "
        "5 not found, 6 dependency conflict, 7 build failed, 10 trap, 11 fuel exhausted, "
        "12 timeout, 13 resource limit, 14 tests failed. "
        "VUDO_HOME moves ~/.vudo. Run `vudo COMMAND --help` for details and an example.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        if only is not None and cmd.name != only:
            continue
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help[0].upper() + cmd.help[1:] + ".",
            epilog=f"example:\n  {cmd.example}",
            formatter_class=functools.partial(argparse.RawDescriptionHelpFormatter,
                                              width=width),
        )
        if only is not None:
            cmd.configure(p)
    return parser


def _help_width() -> int:
    """The help width argparse picks by default: ``shutil.get_terminal_size()`` columns - 2.

    Worked out here and passed in because argparse otherwise imports shutil (and with it
    zlib, bz2 and lzma, ~2 ms) to build every formatter, one per ``add_argument``.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def _chosen_command(words: Sequence[str]) -> str | None:
    """The command ``words`` run, or None when the top-level parser has the say.

    None for no command, an unknown one (the error lists every command) and top-level
    help asked for before the command (``vudo --help run`` lists every command).
    """
    for word in words:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word if word in _NAMES else None
    return None


def _version() -> str:
    from vudo import __version__

    return __version__


def split_guest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``vudo run ... -- ARGS``: the words after the first ``--`` go to the guest.

    Done before argparse so guest words like ``-5`` are never read as options.
    """
    words = list(argv)
    if words[:1] == ["run"] and "--" in words:
        cut = words.index("--")
        return words[:cut], words[cut + 1 :]
    return words, []


#: Options whose value may start with "-" (``--expires -5d``): argparse reads such a
#: word as an option and fails with "expected one argument", so it is attached first.
_SIGNED_VALUE_OPTIONS = ("--expires",)


def attach_signed_values(words: Sequence[str]) -> list[str]:
    """``--expires -5d`` -> ``--expires=-5d``, so the value's own check can explain it."""
    out = list(words)
    for i in range(len(out) - 2, -1, -1):
        value = out[i + 1]
        if out[i] in _SIGNED_VALUE_OPTIONS and len(value) > 1 and value[0] == "-" \
                and value[1].isdigit():
            out[i:i + 2] = [f"{out[i]}={value}"]
    return out


def run_cli(argv: Sequence[str]) -> int:
    """Parse ``argv``, run the command, render errors; returns the process exit code."""
    own, guest = split_guest_args(argv)
    own = attach_signed_values(own)
    parser = build_parser(_chosen_command(own))
    try:
        args = parser.parse_args(own)
        if args.command is None:
            parser.print_help()
            return 2
        args.guest_args = guest
        from vudo.cli import commands

        handler: Callable[[argparse.Namespace], int] = getattr(
            commands, "cmd_" + args.command.replace("-", "_")
        )
        return handler(args)
    except VudoError as err:
        sys.stdout.flush()
        details = getattr(err, "output", None)  # a compiler's full diagnostics
        if isinstance(details, str) and details.strip():
            sys.stderr.write(details.rstrip() + "\n")
        sys.stderr.write(err.one_line() + "\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\nerror: interrupted (hint: run the command again to finish)\n")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. `vudo list | head`): not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except UnicodeEncodeError as err:
        if "surrogates" not in str(err.reason):
            raise
        # A word from argv, the environment or a file name that is not UTF-8 (Python
        # keeps such bytes as lone surrogates), reaching something that needs UTF-8.
        raw = os.fsencode(err.object)[:60] if isinstance(err.object, str) else b""
        text = raw.decode("utf-8", "backslashreplace")
        line = UsageError(f'"{text}" is not valid UTF-8 text',
                          hint="names, keys and queries must be UTF-8; check the terminal "
                          "or file name encoding").one_line()
        sys.stderr.write(line + "\n")
        return UsageError.exit_code
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        line = VudoError(f"{err.strerror or err}{where}",
                         hint="check the path and its permissions").one_line()
        sys.stderr.write(line + "\n")
        return 1
    except Exception as err:
        if os.environ.get("VUDO_DEBUG"):
            raise
        line = VudoError(f"internal error: {type(err).__name__}: {err}",
                         hint="this is a bug in vudo; run again with VUDO_DEBUG=1 "
                         "for the traceback and report it").one_line()
        sys.stderr.write(line + "\n")
        return 1
