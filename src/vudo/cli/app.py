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
from collections import namedtuple
from collections.abc import Callable, Sequence

from vudo import __version__
from vudo.errors import Interrupted, UsageError, VudoError, from_os_error, printable

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import NoReturn

PROG = "vudo"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line with a hint and exit code 2."""

    def error(self, message: str) -> NoReturn:
        err = UsageError(message, hint=f"see `{self.prog} --help`")
        sys.exit(report_error(err))


class Command(namedtuple("Command", "name help example configure")):
    """One sub-command: its name, one-line help, an example for ``--help``, its options.

    A :func:`collections.namedtuple`, as every record on the short commands' path is (see
    the :mod:`vudo` package docstring): this module is imported on every ``vudo`` start.
    """

    __slots__ = ()
    if TYPE_CHECKING:
        name: str
        help: str
        example: str
        configure: Callable[[argparse.ArgumentParser], None]


# One function per flag group: a flag that means the same thing in two commands is
# defined once, here, so its spelling, metavar and help cannot drift apart.


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print machine-readable JSON on stdout (on failure too)"
    )


def _verbosity(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-q``/``-v``, accepted before or after the command (``vudo -q run``, ``vudo run -q``).

    The sub-command's copies default to SUPPRESS so they never undo the top-level flag.
    """
    default: object = False if top else argparse.SUPPRESS
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=default,
        help="print only results: no notes, receipts or progress",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=default,
        help="print more detail (run: every host call on stderr)",
    )


def _project(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """The project a command works on: ``--path DIR`` everywhere (default: .).

    ``run`` and ``tui`` also take it as their positional word (``vudo run DIR``); there
    ``--path`` defaults to None so the two spellings can be told apart.
    """
    p.add_argument(
        "--path",
        metavar="DIR",
        default=None if positional else ".",
        help="the Spirit project directory (default: .)",
    )


def _limits(p: argparse.ArgumentParser, *, per: str = "run") -> None:
    p.add_argument("--fuel", metavar="N", type=_fuel, help=f"fuel budget per {per}")
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        help=f"wall-clock limit per {per}; compiling is bounded by it too",
    )
    p.add_argument("--memory", metavar="SIZE", help="linear memory limit, e.g. 64MiB")


def _grants(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--grant",
        metavar="CAP[=SCOPE]",
        action="append",
        default=[],
        help="grant this capability (repeatable; SCOPE e.g. domain:127.0.0.1:*)",
    )
    p.add_argument(
        "--deny",
        metavar="CAP",
        action="append",
        default=[],
        help="withhold this capability (repeatable)",
    )


def _guest_io(p: argparse.ArgumentParser) -> None:
    """What a run gives the guest besides arguments: its input bytes and variables."""
    p.add_argument(
        "--input",
        metavar="FILE",
        help="the call's input bytes (host_input_read), from FILE or - for stdin",
    )
    p.add_argument(
        "--env",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a variable the Spirit may read (repeatable); grants sensor_environment for "
        "this run. The host's own environment is never passed",
    )


def _preopens(p: argparse.ArgumentParser) -> None:
    """The directories a WASI program sees: the user's grant of them for this run."""
    p.add_argument(
        "--dir",
        metavar="HOST[::GUEST]",
        action="append",
        default=[],
        help="preopen a host directory read-write for a WASI program (repeatable; GUEST "
        "defaults to HOST): the user's grant of storage_read/write/delete on path:HOST",
    )
    p.add_argument(
        "--ro-dir",
        metavar="HOST[::GUEST]",
        action="append",
        default=[],
        help="preopen a host directory read-only (storage_read on path:HOST; changes EROFS)",
    )


def _wasi(p: argparse.ArgumentParser) -> None:
    """What a WASI program (one importing wasi_snapshot_preview1) is given besides argv."""
    _preopens(p)
    p.add_argument(
        "--stdin",
        action="store_true",
        help="stream this terminal's (or pipe's) stdin to a WASI program (default: empty; "
        "a read waits at most until --timeout)",
    )


def _consent(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--yes", "-y", action="store_true", help="grant every capability the Spirit asks for"
    )
    _grants(p)
    p.add_argument(
        "--trust-signer",
        action="store_true",
        help="accept (and pin) a signer other than the one this name was first installed with",
    )


def _registries(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        metavar="NAME|URL|PATH",
        action="append",
        default=[],
        help="registry to use (repeatable; default: the configured default, else "
        "the one under ~/.vudo; upgrade: the one each Spirit came from)",
    )


def _registry(p: argparse.ArgumentParser, *, what: str = "") -> None:
    """One registry (publish, yank, info --available): a configured name, URL or path."""
    p.add_argument(
        "--registry",
        metavar="NAME|URL|PATH",
        help=f"{what}default: the configured default, else the one under ~/.vudo",
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
        "--target",
        default="wasi",
        choices=("wasi", "freestanding"),
        help="c/zig/rust: wasi (default), a program using the standard library "
        "(printf, std.debug.print, println!), or freestanding, a Spirit importing only "
        "vudo's host functions",
    )
    p.add_argument(
        "--path",
        metavar="DIR",
        default=".",
        help="create the project inside this directory (default: .)",
    )
    _json(p)


def _cfg_build(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument("--release", action="store_true", help="optimise for size and speed")
    p.add_argument(
        "--locked",
        action="store_true",
        help="require spirit.lock to be up to date (do not rewrite it)",
    )
    _trust_yes(p)
    _json(p)


def _cfg_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spirit",
        metavar="SPIRIT",
        nargs="?",
        default=None,
        help="project dir (default .), .wasm/.wat file, .spirit package or installed NAME[@REQ]",
    )
    _project(p, positional=True)
    p.add_argument(
        "--function", "-f", metavar="NAME", help="function to call (default: main, else _start)"
    )
    _limits(p)
    _grants(p)
    _guest_io(p)
    _wasi(p)
    _trust_yes(p)
    _json(p)


def _cfg_test(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument("filter", metavar="FILTER", nargs="?", help="run only tests containing this")
    _limits(p, per="test")
    _grants(p)
    _guest_io(p)  # each test gets the same input bytes and variables
    _preopens(p)
    _trust_yes(p)
    _json(p)


def _cfg_pack(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument("--output", "-o", metavar="FILE", help="where to write the .spirit package")
    _json(p)


def _cfg_sign(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", metavar="PACKAGE", nargs="?", help="default: newest in dist/")
    _project(p)
    p.add_argument("--key", metavar="FILE", help="private key (default ~/.vudo/keys/private.key)")
    p.add_argument("--verify", action="store_true", help="verify the package instead")
    _json(p)


def _cfg_check(p: argparse.ArgumentParser) -> None:
    _project(p)
    _json(p)


def _cfg_tree(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument(
        "--registry",
        metavar="NAME|URL|PATH",
        action="append",
        default=[],
        help="registry to resolve against, besides the installed Spirits "
        "(default: the configured default, else the one under ~/.vudo)",
    )
    _json(p)


def _cfg_why(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="a package in the resolved graph")
    _cfg_tree(p)


def _cfg_fmt(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="only report: print the diff and exit 1 if not formatted",
    )
    _json(p)


def _cfg_doc(p: argparse.ArgumentParser) -> None:
    _project(p)
    p.add_argument("--output", "-o", metavar="DIR", help="output directory (default: doc/)")
    _json(p)


def _cfg_summon(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE", help="a .spirit package or a project directory")
    _consent(p)
    _json(p)


def _cfg_install(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[@REQ]", help="e.g. hello-spirit@^0.1")
    _registries(p)
    _consent(p)
    _json(p)


def _cfg_publish(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", metavar="PACKAGE", nargs="?", help="default: newest in dist/")
    _project(p)
    _registry(p)
    p.add_argument(
        "--allow-new-signer",
        action="store_true",
        help="publish a name first published by another key",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="check and show what would be pushed; push nothing"
    )
    _json(p)


def _cfg_info(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        metavar="NAME[@VERSION]|FILE.spirit",
        help="an installed Spirit, or a package file to inspect before installing",
    )
    p.add_argument(
        "--available",
        action="store_true",
        help="describe the Spirit as a registry holds it (before installing)",
    )
    _registry(p, what="with --available: the registry to ask; ")
    _json(p)


def _cfg_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=["add", "list", "remove"],
        help="add NAME URL | list | remove NAME",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="a short name for the registry")
    p.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        help="oci://HOST[:PORT]/NAMESPACE, https://..., file://... or a directory",
    )
    p.add_argument(
        "--default", action="store_true", help="add: use it when --registry is not given"
    )
    p.add_argument("--ca-file", metavar="PEM", help="add: trust this private CA for it")
    _json(p)


def _cfg_login(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry", metavar="REGISTRY", help="a configured name, oci:// URL or host")
    p.add_argument("--username", "-u", metavar="USER", help="user name (with --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument(
        "--token-stdin",
        action="store_true",
        help="read a registry token from stdin instead of a password",
    )
    p.add_argument("--ca-file", metavar="PEM", help="trust this private CA")
    _json(p)


def _cfg_logout(p: argparse.ArgumentParser) -> None:
    p.add_argument("registry", metavar="REGISTRY", help="a configured name, oci:// URL or host")
    _json(p)


def _cfg_yank(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME@VERSION", help="the published version to yank")
    p.add_argument("--undo", action="store_true", help="un-yank it")
    _registry(p)
    _json(p)


def _cfg_name_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME[@VERSION]")
    _json(p)


def _cfg_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", metavar="FILE.spirit", help="the package to verify")
    _json(p)


def _cfg_list(p: argparse.ArgumentParser) -> None:
    _json(p)


def _cfg_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", metavar="QUERY", nargs="?", default="", help="words in name/text")
    p.add_argument("--capability", metavar="CAP", help="only Spirits asking for this capability")
    p.add_argument("--author", metavar="KEY", help="only Spirits by this author key (or prefix)")
    p.add_argument(
        "--available",
        action="store_true",
        help="search the registries instead of the installed Spirits",
    )
    _registries(p)
    _json(p)


def _cfg_upgrade(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", nargs="?", help="default: every installed Spirit")
    _registries(p)
    p.add_argument("--yes", "-y", action="store_true", help="accept widened capabilities")
    p.add_argument(
        "--prune",
        action="store_true",
        help="then remove the versions the newest supersedes (unless a Spirit still needs one)",
    )
    _json(p)


def _cfg_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=["generate", "list", "show", "trust", "untrust", "rotate", "export", "import"],
        help="generate | list | show | trust KEY | untrust KEY | rotate | "
        "export [-o FILE] | import FILE",
    )
    p.add_argument(
        "key",
        metavar="KEY",
        nargs="?",
        help="trust/untrust: a signer's 64-hex public key; import: a key file",
    )
    p.add_argument(
        "--force", action="store_true", help="generate: replace an existing key (as rotate does)"
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="export: write the private key here (mode 0600) instead of stdout",
    )
    _json(p)


def _cfg_grant(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="an installed Spirit")
    p.add_argument("capability", metavar="CAP", help="capability to grant")
    p.add_argument(
        "--scope",
        metavar="SCOPE",
        help="global, sandboxed, peer:<key> or domain:<host>:<port>, where * is "
        "one DNS label or one IP octet (default: global; also CAP=SCOPE)",
    )
    p.add_argument(
        "--expires", metavar="WHEN", help="expiry: an ISO date/time or a duration like 30d, 12h"
    )
    _json(p)


def _cfg_revoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="an installed Spirit")
    p.add_argument("capability", metavar="CAP", help="capability to revoke")
    _json(p)


def _cfg_dol(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "args",
        metavar="ARGS",
        nargs="*",
        help="passed to `dol` unchanged (options too: `vudo dol --version`)",
    )


def _cfg_capabilities(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="CAP", nargs="?", help="show only this capability")
    _json(p)


def _cfg_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        metavar="ACTION",
        nargs="?",
        choices=["show", "clear"],
        default="show",
        help="show (default): what each cache holds | clear: empty them all (compiled "
        "modules, signed run grants, git checkouts, registry downloads)",
    )
    _json(p)


def _cfg_credit(p: argparse.ArgumentParser) -> None:
    # lazy: cli.credit (~10 ms) only to build `vudo credit`'s parser
    from vudo.cli.credit import configure

    configure(p)


def _cfg_storage(p: argparse.ArgumentParser) -> None:
    # lazy: cli.storage (~10 ms) only to build `vudo storage`'s parser
    from vudo.cli.storage import configure

    configure(p)


def _cfg_tui(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spirit", metavar="PATH", nargs="?", default=None, help="project directory (default: .)"
    )
    _project(p, positional=True)
    p.add_argument(
        "--watch",
        action="store_true",
        help="start with hot reload on: rebuild and rerun when a source changes",
    )
    _trust_yes(p)


def _trust_yes(p: argparse.ArgumentParser) -> None:
    # lazy: cli.trust (~15 ms) only for the commands that take --yes
    from vudo.cli.trust import add_yes

    add_yes(p)


def _cfg_trust(p: argparse.ArgumentParser) -> None:
    # lazy: cli.trust (~15 ms) only to build `vudo trust`'s parser
    from vudo.cli.trust import configure_trust

    configure_trust(p)


def _cfg_untrust(p: argparse.ArgumentParser) -> None:
    # lazy: cli.trust (~15 ms) only to build `vudo untrust`'s parser
    from vudo.cli.trust import configure_untrust

    configure_untrust(p)


COMMANDS: tuple[Command, ...] = (
    Command(
        "new",
        "create a Spirit project that builds and runs as created",
        "vudo new hello-spirit --template c",
        _cfg_new,
    ),
    Command(
        "build",
        "compile the project's source to target/<name>.wasm",
        "vudo build --path hello-spirit --release",
        _cfg_build,
    ),
    Command(
        "run",
        "run a Spirit in a sandbox and print its results and receipt",
        "vudo run examples/hello --fuel 1000000 -- 1 2\n"
        "  vudo run examples/upper --input notes.txt > NOTES.txt   (output bytes to stdout)\n"
        "  cat notes.txt | vudo run examples/upper --input - -q | wc -c\n"
        "  vudo run examples/upper --input notes.txt --env CASE=lower --json\n"
        "When the Spirit writes output (host_output_write), or --input is given, stdout\n"
        "carries only the output bytes, exactly as written, and the result line and receipt\n"
        'go to stderr (-q drops them); --json puts the output in the JSON ("output": text\n'
        'if UTF-8, else base64, per "output_encoding").'
        "\n"
        "  vudo run wc.wasm --ro-dir ./texts::/texts -- /texts/a.txt   (a WASI command)\n"
        "A WASI command (it imports wasi_snapshot_preview1 and exports _start) gets the\n"
        "words after -- as argv; its stdout and stderr are written here as it writes them,\n"
        "the receipt goes to stderr (-q drops it), and vudo exits with its proc_exit status.",
        _cfg_run,
    ),
    Command(
        "test",
        "run every test_* export in its own fresh sandbox",
        "vudo test --path hello-spirit greeting\n"
        "  vudo test --env MODE=fast --ro-dir ./fixtures::/fixtures --fuel 10_000_000",
        _cfg_test,
    ),
    Command("pack", "write dist/<name>-<version>.spirit", "vudo pack -o out.spirit", _cfg_pack),
    Command(
        "sign",
        "sign a package with your key, or --verify it",
        "vudo sign --key ~/.vudo/keys/private.key   |   vudo sign --verify dist/x.spirit",
        _cfg_sign,
    ),
    Command(
        "publish",
        "push a signed package to a registry",
        "vudo publish dist/hello-spirit-0.1.0.spirit --registry team",
        _cfg_publish,
    ),
    Command(
        "summon",
        "install a .spirit package or a project directory",
        "vudo summon ./dist/hello-spirit-0.1.0.spirit --yes",
        _cfg_summon,
    ),
    Command(
        "install",
        "resolve and install a Spirit and its dependencies from registries",
        "vudo install hello-spirit@^0.1 --yes",
        _cfg_install,
    ),
    Command(
        "uninstall",
        "remove an installed Spirit",
        "vudo uninstall hello-spirit@0.1.0",
        _cfg_name_version,
    ),
    Command("list", "list installed Spirits", "vudo list --json", _cfg_list),
    Command(
        "search",
        "search installed Spirits (or --available ones in registries)",
        "vudo search hello --capability actuator_log",
        _cfg_search,
    ),
    Command(
        "info",
        "show an installed Spirit, a .spirit file, or (--available) a Spirit in a "
        "registry: manifest, signer, grants",
        "vudo info hello-spirit   |   vudo info dist/hello-spirit-0.1.0.spirit   |   "
        "vudo info hello-spirit --available",
        _cfg_info,
    ),
    Command(
        "verify",
        "check a package's signature and every file's digest",
        "vudo verify dist/hello-spirit-0.1.0.spirit",
        _cfg_verify,
    ),
    Command(
        "upgrade",
        "upgrade installed Spirits, asking again if capabilities widen",
        "vudo upgrade hello-spirit",
        _cfg_upgrade,
    ),
    Command(
        "yank",
        "mark a published version so resolution skips it (--undo to revert)",
        "vudo yank hello-spirit@0.1.0 --registry team",
        _cfg_yank,
    ),
    Command(
        "registry",
        "add, list or remove named registries (~/.vudo/config.toml)",
        "vudo registry add team oci://ghcr.io/my-org --default",
        _cfg_registry,
    ),
    Command(
        "login",
        "store credentials for an OCI registry (~/.vudo/credentials.toml)",
        "vudo login team --username me --password-stdin < password.txt",
        _cfg_login,
    ),
    Command(
        "logout", "forget the stored credentials for a registry", "vudo logout team", _cfg_logout
    ),
    Command(
        "repair",
        "check the local store deeply and fix what it can",
        "vudo repair --json",
        _cfg_list,
    ),
    Command(
        "check",
        "lint manifest, dependencies, capabilities and package signature",
        "vudo check --path hello-spirit",
        _cfg_check,
    ),
    Command(
        "tree",
        "show the resolved dependency graph and why each version was chosen",
        "vudo tree --path app   |   vudo tree --json",
        _cfg_tree,
    ),
    Command(
        "why",
        "show which requirements pulled a dependency in",
        "vudo why lib   |   vudo why lib --path app --json",
        _cfg_why,
    ),
    Command("fmt", "format spirit.toml canonically (comments kept)", "vudo fmt --check", _cfg_fmt),
    Command("doc", "write Markdown and HTML documentation", "vudo doc -o site/", _cfg_doc),
    Command(
        "keys",
        "generate, show, rotate, export or import your key; trust signers",
        "vudo keys rotate   |   vudo keys trust <64 hex>",
        _cfg_keys,
    ),
    Command(
        "grant",
        "grant a capability to an installed Spirit",
        "vudo grant chat network_connect --scope 'domain:127.0.0.1:*' --expires 30d",
        _cfg_grant,
    ),
    Command(
        "revoke",
        "revoke a capability from an installed Spirit",
        "vudo revoke chat network_connect",
        _cfg_revoke,
    ),
    Command(
        "credit",
        "show Spirits' credit accounts and open reservations; fund a Spirit",
        "vudo credit balance wallet   |   vudo credit deposit 1000   |   "
        "vudo credit fund ./my-project 250   |   vudo credit history wallet --json",
        _cfg_credit,
    ),
    Command(
        "storage",
        "list, read or delete a Spirit's stored keys (what its runs saved)",
        "vudo storage list ./my-project   |   vudo storage get kv-counter count --json   |   "
        "vudo storage delete kv-counter count --yes",
        _cfg_storage,
    ),
    Command(
        "trust",
        "trust a project folder to build and run (or --list the trusted ones)",
        "vudo trust ./downloaded-spirit   |   vudo trust --list --json",
        _cfg_trust,
    ),
    Command(
        "untrust",
        "forget that a project folder is trusted",
        "vudo untrust ./downloaded-spirit",
        _cfg_untrust,
    ),
    Command(
        "capabilities",
        "list the capabilities, what each allows and the calls needing it",
        "vudo capabilities network_connect",
        _cfg_capabilities,
    ),
    Command(
        "cache",
        "show or clear the caches (compiled modules, run grants, git checkouts, downloads)",
        "vudo cache   |   vudo cache clear --json",
        _cfg_cache,
    ),
    Command("dol", "hand off to the DOL toolchain (`dol` on PATH)", "vudo dol build", _cfg_dol),
    Command("tui", "open the interactive workbench", "vudo tui hello-spirit", _cfg_tui),
)

_NAMES = frozenset(cmd.name for cmd in COMMANDS)


def _fuel(text: str) -> int:
    # the engine's config module (and its ABI tables) only when --fuel is given: `vudo
    # search` and the other commands that run no guest never load it
    # lazy: engine.config (~8 ms) only when --fuel is given
    from vudo.engine.config import parse_fuel

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
            f"expected a positive, finite number of seconds, got {text!r}"
        )
    # lazy: engine.config (~8 ms) only when --timeout is given
    from vudo.engine.config import MAX_TIMEOUT

    return min(value, MAX_TIMEOUT)  # 1e308 means "as long as vudo waits", not a crash


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
    _verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        if only is not None and cmd.name != only:
            continue
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help[0].upper() + cmd.help[1:] + ".",
            epilog=f"example:\n  {cmd.example}",
            formatter_class=functools.partial(argparse.RawDescriptionHelpFormatter, width=width),
        )
        if only is not None:
            cmd.configure(p)
            if cmd.name != "dol":  # dol's words all go to the toolchain
                _verbosity(p)
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
    return __version__


def split_guest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``vudo run ... -- ARGS``: the words after the first ``--`` go to the guest.

    Done before argparse so guest words like ``-5`` are never read as options. Every word
    after ``dol`` goes to the DOL toolchain the same way (``vudo dol --version``), except a
    lone ``--help``, which is vudo's help for ``dol``.
    """
    words = list(argv)
    if words[:1] == ["dol"] and words[1:] not in (["--help"], ["-h"]):
        return words[:1], words[1:]
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
        if (
            out[i] in _SIGNED_VALUE_OPTIONS
            and len(value) > 1
            and value[0] == "-"
            and value[1].isdigit()
        ):
            out[i : i + 2] = [f"{out[i]}={value}"]
    return out


#: Whether this process was asked for JSON (``--json`` among vudo's own words): then a
#: failure is also written to stdout as ``{"error": {...}}`` (DESIGN.md §4), whichever
#: command failed and however (argparse, a VudoError, an OS error, a bug).
_json_mode = False


def report_error(err: VudoError) -> int:
    """Print ``err`` as its one ``error:`` line (and as JSON in JSON mode); its exit code."""
    sys.stdout.flush()
    if _json_mode:
        # lazy: cli.render (~4 ms) only to print an error as JSON
        from vudo.cli.render import emit_error_json

        emit_error_json(err)
    details = getattr(err, "output", None)  # a compiler's full diagnostics
    if isinstance(details, str) and details.strip():
        sys.stderr.write(printable(details.rstrip()) + "\n")
    sys.stderr.write(err.one_line() + "\n")
    return err.exit_code


def run_cli(argv: Sequence[str]) -> int:
    """Parse ``argv``, run the command, render errors; returns the process exit code."""
    global _json_mode
    own, guest = split_guest_args(argv)
    own = attach_signed_values(own)
    _json_mode = "--json" in own
    parser = build_parser(_chosen_command(own))
    try:
        args = parser.parse_args(own)
        if args.command is None:
            if _json_mode:
                raise UsageError("no command given", hint=f"see `{PROG} --help`")
            parser.print_help()
            return 2
        args.guest_args = guest
        # lazy: the handlers (~40 ms) after parsing, never for --help or a usage error
        from vudo.cli import commands
        from vudo.cli.render import set_quiet  # lazy: cli.render (~4 ms) likewise after parsing

        set_quiet(args.quiet)

        handler: Callable[[argparse.Namespace], int] = getattr(
            commands, "cmd_" + args.command.replace("-", "_")
        )
        return handler(args)
    except VudoError as err:
        return report_error(err)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return report_error(Interrupted("interrupted", hint="run the command again to finish"))
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
        return report_error(
            UsageError(
                f'"{text}" is not valid UTF-8 text',
                hint="names, keys and queries must be UTF-8; check the terminal or file name "
                "encoding",
            )
        )
    except OSError as err:
        return report_error(from_os_error(err))
    except Exception as err:
        if os.environ.get("VUDO_DEBUG"):
            raise
        return report_error(
            VudoError(
                f"internal error: {type(err).__name__}: {err}",
                hint="this is a bug in vudo; run again with VUDO_DEBUG=1 for the traceback and "
                "report it",
            )
        )
