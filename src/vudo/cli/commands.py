"""One handler per ``vudo`` command: parse the Namespace, call one core function, render.

Handlers return the exit code; failures are raised as VudoError and rendered by
:func:`vudo.cli.app.run_cli`. Each handler imports what it needs inside its body, so a
command pays only for its own dependencies (``vudo run`` never imports textual).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vudo.cli.render import (
    ProgressLine,
    emit_json,
    human_bytes,
    note,
    out,
    stderr_is_tty,
    table,
)
from vudo.display import digest as show_digest
from vudo.errors import (
    InvalidInputError,
    NotFoundError,
    ResourceLimitExceeded,
    TestsFailed,
    UsageError,
    VudoError,
    printable,
)
from vudo.home import keys_dir, vudo_home

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import Any

    from vudo.engine.events import Event
    from vudo.engine.receipt import Receipt
    from vudo.pkg.keys import KeyFile, KeyPair
    from vudo.pkg.resolve import Resolution
    from vudo.pkg.store import InstalledSpirit
    from vudo.project.consent import ConsentDecision, ConsentRequest
    from vudo.project.grants import KeyRotation
    from vudo.project.installing import SummonResult
    from vudo.project.runner import RunControl, RunOptions, RunTarget


def _home() -> Path:
    home = vudo_home()
    if home.exists() and not home.is_dir():
        # Otherwise each command fails its own way ("Not a directory: .../registry").
        raise VudoError(
            f"the vudo home {home} is not a directory",
            hint="point VUDO_HOME at a directory, or unset it to use ~/.vudo",
        )
    return home


# --------------------------------------------------------------------------- new / build


def cmd_new(args: argparse.Namespace) -> int:
    from vudo.project.new import new_project  # lazy: project.new (~110 ms) only for `vudo new`

    created = new_project(
        args.name,
        template=args.template,
        target=getattr(args, "target", "wasi"),
        parent=Path(args.path),
        home=_home(),
    )
    if args.json:
        emit_json(created)
        return 0
    out(f'created {created.template} Spirit "{created.name}" in {created.root}')
    out(f"author  {created.author}")
    wasi = created.template != "wat" and getattr(args, "target", "wasi") == "wasi"
    then = "vudo build && vudo run -- ARGS" if wasi else "vudo build && vudo run && vudo test"
    out(f"next:   cd {created.root} && {then}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    # lazy: cli.trust (~15 ms) only for commands that run project code
    from vudo.cli.trust import ensure_trusted
    from vudo.project.build import build_project  # lazy: project.build (~95 ms) only to build

    ensure_trusted(Path(args.path), yes=args.yes)
    bar = ProgressLine()
    try:
        result = build_project(
            Path(args.path), release=args.release, progress=bar, home=_home(), locked=args.locked
        )
    finally:
        bar.clear()
    for warning in result.warnings:
        note(f"warning: {warning.message} (hint: {warning.hint})")
    if args.json:
        emit_json(result)
        return 0
    mode = "release" if result.release else "debug"
    if result.lockfile is not None:
        out(f"locked dependencies in {result.lockfile}")
    if result.up_to_date:
        out(
            f"{result.wasm_path} is up to date ({mode}; nothing changed since it was built, "
            f"checked in {result.seconds * 1000:.0f} ms)"
        )
        return 0
    out(
        f"built {result.wasm_path} ({human_bytes(result.size)}, {result.language}, {mode}, "
        f"{result.seconds:.2f}s)"
    )
    return 0


# --------------------------------------------------------------------------- dol / tui


def cmd_dol(args: argparse.Namespace) -> int:
    import shutil  # lazy: shutil (~4 ms) only for `vudo dol`
    import subprocess  # lazy: subprocess (~7 ms) only for `vudo dol`

    exe = shutil.which("dol")
    if exe is None:
        raise NotFoundError(
            "DOL is not available: no `dol` executable on PATH",
            hint="install the DOL toolchain with `cargo install dol` "
            "(https://github.com/univrs/dol), then run `vudo dol` again",
        )
    words = list(args.guest_args)  # every word after `dol`, options included
    if words[:1] == ["--"]:
        words = words[1:]
    try:
        return subprocess.call([exe, *words])
    except OSError as err:
        raise VudoError(
            f"could not start the DOL toolchain at {exe}: {err.strerror or err}",
            hint="reinstall it with `cargo install dol`",
        ) from None


# --------------------------------------------------------------------------- capabilities


def cmd_capabilities(args: argparse.Namespace) -> int:
    # lazy: the capability names (~1 ms) load only where a command takes a capability
    from vudo.capabilities import Capability, parse_capability

    # lazy: project.grants (~50 ms) only for `vudo capabilities`
    from vudo.project.grants import capability_info

    if args.name is not None:
        with _typed_by_user():
            chosen = [parse_capability(args.name)]
    else:
        chosen = list(Capability)
    infos = capability_info(chosen)
    if args.json:
        emit_json(infos)
        return 0
    width = max(len(cap.value) for cap in chosen) + 2
    for info in infos:
        cap = info.capability
        out(f"{cap.value:<{width}}{cap.description}")
        out(
            " " * width
            + "calls: "
            + (", ".join(info.host_calls) or "none yet")
            + "; scopes: "
            + ", ".join(info.scopes)
            + ("" if cap.manifest_grantable else "; never asked for by a manifest")
        )
        if info.wasi_calls:
            out(" " * width + "WASI: " + ", ".join(info.wasi_calls))
    if args.name is None:
        out(
            "grant one: `vudo grant NAME CAP [--scope SCOPE]`, or `vudo run --grant CAP[=SCOPE]`;"
            " ask for one: capabilities = [...] in spirit.toml"
        )
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    path = Path(_target_word(args))
    if not path.is_dir():
        raise NotFoundError(
            f"no project directory at {path}",
            hint="pass a Spirit project: `vudo tui --path DIR` (create one with `vudo new NAME`)",
        )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "vudo tui needs a terminal (stdin or stdout is not one)",
            hint="run it in a terminal; in scripts use the headless commands "
            "(`vudo run`, `vudo test`, `vudo build`)",
        )
    try:
        from vudo.tui.app import run_tui  # lazy: textual and the TUI (~500 ms) only for `vudo tui`
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("vudo"):
            raise VudoError(
                "the TUI is not part of this vudo build",
                hint="use the headless commands (`vudo --help`)",
            ) from err
        raise
    # lazy: cli.trust (~15 ms) only for commands that run project code
    from vudo.cli.trust import ensure_trusted
    from vudo.pkg import MANIFEST_FILENAMES  # lazy: the package core only for `vudo tui`

    if any((path / n).is_file() for n in MANIFEST_FILENAMES):
        ensure_trusted(path, yes=args.yes)  # a project: ask before it is built
    return int(run_tui(path, watch=args.watch) or 0)


# --------------------------------------------------------------------------- run / test


def _receipt_lines(receipt: Receipt) -> list[str]:
    calls = (
        ", ".join(
            f"{cap} {c.get('allowed', 0)} allowed"
            + (f" {c['denied']} denied" if c.get("denied") else "")
            for cap, c in sorted(receipt.host_calls.items())
        )
        or "none"
    )
    lines = [
        f"receipt   {receipt.module}.{receipt.function}: {receipt.outcome}"
        + (f" ({receipt.error})" if receipt.error else ""),
        f"  fuel        {receipt.fuel_used:,} of {receipt.fuel_budget:,}",
        f"  wall time   {receipt.wall_time * 1000:.1f} ms",
        f"  memory      {human_bytes(receipt.peak_memory)} peak",
        f"  host calls  {calls}",
        f"  bytes       {receipt.bytes_out:,} out, {receipt.bytes_in:,} in",
    ]
    if receipt.io:
        streams = ", ".join(f"{name} {count:,}" for name, count in sorted(receipt.io.items()))
        lines.append(f"  i/o         {streams}")
    lines.append(f"  digest      {show_digest(receipt.digest, short=True)}")
    if receipt.price is not None:
        lines.append(f"  price       {receipt.price:,}")
    lines.extend(_nested_call_lines(receipt, "  "))
    return lines


def _nested_call_lines(receipt: Receipt, indent: str) -> list[str]:
    """The Spirits ``receipt``'s sandbox called (host_spirit_call, host_sandbox_spawn),
    each indented under its caller with its own fuel and host calls."""
    lines: list[str] = []
    for call in receipt.calls:
        counts = (
            ", ".join(
                f"{cap} {c.get('allowed', 0)}"
                + (f"/{c['denied']} denied" if c.get("denied") else "")
                for cap, c in sorted(call.host_calls.items())
            )
            or "no host calls"
        )
        lines.append(
            f"{indent}called      {call.module}.{call.function}: {call.outcome}"
            + (f" ({call.error})" if call.error else "")
            + f"; fuel {call.fuel_used:,}; {counts}"
        )
        lines.extend(_nested_call_lines(call, indent + "  "))
    return lines


#: The host calls that reach a dependency; a refusal's reason is worth a note after the run.
_DEPENDENCY_CALLS = frozenset({"host_spirit_call", "host_sandbox_spawn", "host_sandbox_call"})


def _callee_name(sandbox_id: str) -> str:
    """The dependency name in a callee's sandbox id (``caller-1/lowercase#3``)."""
    return sandbox_id.rpartition("/")[2].partition("#")[0]


class _HostCallWatch:
    """Watches a run's events: fuel and host calls on one stderr line while a long run goes
    on (TTY only), each host call on stderr with ``-v``, and the denied calls, to say
    afterwards what would have allowed each one."""

    def __init__(
        self,
        line: ProgressLine | None,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.line = line
        self.verbose = verbose
        self.clock = clock
        self.started = clock()
        self.last = 0.0
        self.fuel = 0
        self.budget = 0
        self.calls = 0
        self.denied: list[tuple[str, str | None, str]] = []  # function, capability, detail
        self.denied_count = 0
        #: (dependency, capability) denied to a Spirit this one called: its own grants
        self.callee_denied: dict[tuple[str, str], None] = {}
        #: why a call to a dependency was refused (not locked, not installed, a cycle...)
        self.refused_calls: dict[str, None] = {}

    def __call__(self, event: Event) -> None:
        # lazy: engine.events (~6 ms) only once a run sends events
        from vudo.engine.events import FuelSample, HostCall

        if isinstance(event, FuelSample):
            self.fuel, self.budget = event.used, event.budget
        elif isinstance(event, HostCall):
            self.calls += 1
            cap = event.capability.value if event.capability is not None else None
            detail = getattr(event, "reason", None) or event.args
            depth = getattr(event, "depth", 0)
            if not event.allowed:
                self.denied_count += 1
                if depth:  # a callee's own grants decided: the caller's cannot help
                    if cap is not None and len(self.callee_denied) < _MAX_DENIALS_KEPT:
                        self.callee_denied[(_callee_name(event.sandbox_id), cap)] = None
                elif len(self.denied) < _MAX_DENIALS_KEPT:  # a guest can make millions
                    self.denied.append((event.function, cap, detail[:200]))
            elif (
                event.result < 0
                and event.function in _DEPENDENCY_CALLS
                and event.reason
                and len(self.refused_calls) < _MAX_DENIALS_KEPT
            ):
                self.refused_calls[f"{event.function}: {event.reason[:200]}"] = None
            if self.verbose:
                if self.line is not None:
                    self.line.clear()
                where = f"{'  ' * depth}[{_callee_name(event.sandbox_id)}] " if depth else ""
                note(
                    f"host call  {where}{event.function}({event.args}) -> {event.result}  "
                    f"{'allowed' if event.allowed else 'DENIED'}" + (f" [{cap}]" if cap else "")
                )
        if self.line is None:
            return
        now = self.clock()
        if now - self.started < 0.5 or now - self.last < 0.1:
            return
        self.last = now
        share = f" ({100 * self.fuel / self.budget:.0f}%)" if self.budget else ""
        self.line(
            f"running {now - self.started:5.1f}s  fuel {self.fuel:,}{share}  "
            f"host calls {self.calls:,} ({self.denied_count} denied)"
        )

    def denial_notes(
        self, target: RunTarget, granted: Sequence[tuple[str, str]], withheld: Sequence[str] = ()
    ) -> list[str]:
        """For each capability denied in this run: what was denied, and what allows it."""
        scopes = dict(granted)
        first: dict[str, tuple[str, str]] = {}
        for function, cap, detail in self.denied:
            if cap is not None and cap not in first:
                first[cap] = (function, detail)
        lines = [f"note: {refusal}" for refusal in self.refused_calls]
        lines += [
            f"note: {name}, which this Spirit called, was denied {cap} (its own grant; to "
            f"allow it: `vudo grant {name} {cap}`)"
            for name, cap in self.callee_denied
        ]
        if not first:
            return lines
        lines.append("note: host calls needing " + ", ".join(sorted(first)) + " were denied")
        for cap, (function, detail) in sorted(first.items()):
            lines.append(
                f"  {function}"
                + (f" ({detail})" if detail else "")
                + "; to allow it: "
                + _how_to_allow(target, cap, scopes.get(cap), detail, withheld)
            )
        return lines


_MAX_DENIALS_KEPT = 100

#: The engine's reason for a call outside a grant's scope (vudo.engine.grants).
_OUT_OF_SCOPE = re.compile(
    r"'(?P<target>[^'\n]{1,200})' is outside the grant's scope "
    r"(?P<scope>[^\s)]{1,200})"
)


def _how_to_allow(
    target: RunTarget, cap: str, scope: str | None, detail: str, withheld: Sequence[str] = ()
) -> str:
    """The exact command or manifest line that would let ``cap`` through next time."""
    if cap in {w.strip() for w in withheld}:
        return f"run without --deny {cap}"
    outside = _OUT_OF_SCOPE.search(detail)
    wanted = ""
    if outside is not None:
        host_port = outside.group("target")
        wanted = f"domain:{host_port}" if cap.startswith("network_") else ""
    prefix = ""
    if scope is not None and scope != "global":
        where = f" does not cover {outside.group('target')}" if outside else " did not cover it"
        prefix = f"the grant's scope {scope}{where}; "
    scope_flag = f" --scope '{wanted}'" if wanted else ""
    if target.kind == "installed":
        return prefix + f"vudo grant {target.name} {cap}{scope_flag}"
    if target.kind == "project" and cap not in {c.value for c in target.asked_capabilities}:
        listed = ", ".join(f'"{c.value}"' for c in target.asked_capabilities)
        line = f'capabilities = [{listed + ", " if listed else ""}"{cap}"]'
        return prefix + f"declare it in the project's manifest: {line}"
    return prefix + f"pass --grant {cap}" + (f"={wanted}" if wanted else "")


def _target_word(args: argparse.Namespace) -> str:
    """The run/tui target: the positional word or ``--path`` (one of them, default .)."""
    if args.spirit is not None and args.path is not None:
        raise UsageError(
            f"both {args.spirit!r} and --path {args.path!r} name the Spirit",
            hint="pass one of them",
        )
    if args.spirit is not None:
        return str(args.spirit)
    path = str(args.path or ".")
    # --path names a directory, never an installed Spirit: give it a path's form
    # (a bare word like "demo" is an installed name to `vudo run`).
    return path if Path(path).is_absolute() or path.startswith(".") else f"./{path}"


def _run_options(
    args: argparse.Namespace, *, function: str | None, words: tuple[str, ...] = ()
) -> RunOptions:
    """The run limits and grants ``run`` and ``test`` share (--fuel/--timeout/--memory,
    --grant/--deny); a malformed capability or scope is a usage error, as in every command."""
    # lazy: project.runner (~150 ms) only for commands that run a guest
    from vudo.project.runner import RunOptions, parse_dir_spec, parse_size

    _check_grant_words(args.grant, args.deny)
    dirs = tuple(parse_dir_spec(w) for w in getattr(args, "dir", ())) + tuple(
        parse_dir_spec(w, read_only=True) for w in getattr(args, "ro_dir", ())
    )
    stdin = getattr(args, "stdin", False)
    if stdin and getattr(args, "input", None) is not None:
        raise UsageError(
            "--stdin and --input both say what the program reads",
            hint="pass --stdin to stream this terminal's stdin, or --input FILE (- for stdin)",
        )
    return RunOptions(
        function=function,
        args=words,
        fuel=args.fuel,
        timeout=args.timeout,
        memory=parse_size(args.memory) if args.memory else None,
        grant=tuple(args.grant),
        deny=tuple(args.deny),
        input=_input_bytes(getattr(args, "input", None)),
        env=tuple(_env_word(word) for word in getattr(args, "env", ())),
        dirs=dirs,
        stdin_fd=sys.stdin.fileno() if stdin else None,
        interactive=sys.stdout.isatty(),
    )


def _input_bytes(source: str | None) -> bytes:
    """``--input FILE`` (``-``: all of stdin) as bytes; a missing file is exit 5. At most
    the input limit is read (one byte more tells it was passed: exit 13, before the
    Spirit runs), so a huge file or an endless pipe never fills the host's memory."""
    from vudo.engine.config import Limits  # lazy: engine.config (~5 ms) only when --input is given

    if source is None:
        return b""
    limit = Limits().max_input_bytes
    try:
        if source == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(limit + 1)
    except FileNotFoundError:
        raise NotFoundError(
            f"no input file {source}", hint="pass an existing file, or - for stdin"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot read input file {source}: {exc.strerror}", hint="pass a readable file"
        ) from None
    if len(data) > limit:
        raise ResourceLimitExceeded(
            f"input of more than {limit} bytes is over the {limit}-byte input limit",
            hint="give the Spirit less input",
        )
    return data


def _env_word(word: str) -> tuple[str, str]:
    """``--env NAME=VALUE`` as (name, value); usage error (exit 2) otherwise."""
    from vudo.engine.config import check_env  # lazy: engine.config (~5 ms) only when --env is given

    name, eq, value = word.partition("=")
    if not eq:
        raise UsageError(
            f"--env {word}: expected NAME=VALUE",
            hint="give the value too (the host's environment is never passed to a Spirit)",
        )
    try:
        check_env({name: value})
    except ValueError as exc:
        raise UsageError(f"--env {word}: {exc}", hint="use NAME=VALUE") from None
    return name, value


def _check_grant_words(grant: Sequence[str], deny: Sequence[str] = ()) -> None:
    """``--grant CAP[=SCOPE]``/``--deny CAP`` words checked up front: a word typed on the
    command line that does not parse is a usage error (exit 2) in every command, while
    the same mistake inside a manifest or package stays invalid input (exit 3)."""
    if not grant and not deny:
        return
    from vudo.capabilities import parse_any_capability  # lazy: as in cmd_capabilities

    with _typed_by_user():
        for word in deny:
            parse_any_capability(word.strip())
        if grant:
            from vudo.engine.grants import parse_grant_spec  # lazy: only with --grant

            for word in grant:
                parse_grant_spec(word)  # the scope is validated whole too


@contextlib.contextmanager
def _typed_by_user() -> Iterator[None]:
    """Within: an invalid value is one the user typed, so a usage error (exit 2)."""
    try:
        yield
    except InvalidInputError as err:
        raise UsageError(err.message, hint=err.hint) from None


def cmd_run(args: argparse.Namespace) -> int:
    # lazy: project.runner (~150 ms) only to run
    from vudo.project.runner import RunControl, resolve_target, run_spirit

    home = _home()
    bar = ProgressLine()
    options = _run_options(args, function=args.function, words=tuple(args.guest_args))
    control = RunControl()
    watch = _HostCallWatch(bar if bar.enabled else None, verbose=args.verbose and not args.json)
    stream = _OutputStream(bar)  # host_output_write's bytes, and a WASI program's stdout
    sinks = {"output": stream, "stdout": stream, "stderr": _OutputStream(bar, sys.stderr)}
    try:
        from vudo.cli.trust import gate  # lazy: cli.trust (~15 ms) only to run

        target = resolve_target(
            _target_word(args), cwd=Path.cwd(), home=home, progress=bar, trust=gate(args.yes)
        )
        with _interrupts_terminate(control):
            result = run_spirit(
                target,
                options,
                home=home,
                on_event=watch,
                control=control,
                notice=note,
                # --json carries the output in the document; otherwise it streams
                sinks=None if args.json else sinks,
            )
    finally:
        bar.clear()
    if target.built:
        note(f"built {target.label} first (its module was missing or older than the source)")
    if not args.json:
        for line in watch.denial_notes(target, result.granted, args.deny):
            note(line)
    if args.json:
        emit_json(result)
    elif result.wasi:
        # stdout is the program's: vudo's own receipt is a remark (stderr)
        for line in _receipt_lines(result.receipt):
            note(line)
    elif stream.written or args.input is not None:
        # stdout is the Spirit's output: the result line and receipt are remarks (stderr)
        if result.error is None:
            shown = " ".join(str(v) for v in result.results) if result.results else "(none)"
            note(f"result: {shown}")
        for line in _receipt_lines(result.receipt):
            note(line)
    else:
        if result.error is None:
            shown = " ".join(str(v) for v in result.results) if result.results else "(none)"
            out(f"result: {shown}" if not args.quiet else shown)
        if not args.quiet:
            for line in _receipt_lines(result.receipt):
                out(line)
    if control.reason == "interrupted":
        raise KeyboardInterrupt
    # lazy: engine.traps (~30 ms) off the quick commands; a run has loaded it by now
    from vudo.engine.traps import ProcessExit

    if isinstance(result.error, ProcessExit):
        return result.error.code  # the WASI program's own exit status passes through
    if result.error is not None:
        raise result.error
    return 0


class _OutputStream:
    """The sink of a run's ``"output"`` stream and a WASI program's ``"stdout"`` (or, given
    ``sys.stderr``, its ``"stderr"``): the bytes go to vudo's own stream exactly as the
    Spirit writes them (binary, unescaped: they are the data, as in `cat` and the wasmtime
    CLI), flushed at once so `vudo run` streams in a pipe and a prompt shows before the
    program reads. The progress line is cleared first."""

    def __init__(self, bar: ProgressLine, stream: Any = None) -> None:
        self.bar = bar
        self.stream = stream
        self.written = 0

    def __call__(self, data: bytes) -> None:
        if not self.written:
            self.bar.clear()
        self.written += len(data)
        stream = self.stream if self.stream is not None else sys.stdout
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()


@contextlib.contextmanager
def _interrupts_terminate(control: RunControl) -> Iterator[None]:
    """While a guest runs, Ctrl-C terminates the sandbox (the guest is inside wasm, where
    Python cannot raise KeyboardInterrupt); the receipt is still printed, then exit 130."""
    import _signal  # type: ignore[import-not-found]  # lazy: only while a guest runs; C core, no enums
    import threading  # lazy: not for `vudo search` and the other quick commands

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if not control.attached:
            raise KeyboardInterrupt
        control.terminate("interrupted")

    previous = _signal.signal(_signal.SIGINT, handler)
    try:
        yield
    finally:
        _signal.signal(_signal.SIGINT, previous)


def cmd_test(args: argparse.Namespace) -> int:
    from vudo.cli.trust import ensure_trusted  # lazy: cli.trust (~15 ms) only for `vudo test`

    # lazy: project.testing (~150 ms) only for `vudo test`
    from vudo.project.testing import (
        DEFAULT_TEST_FUEL,
        DEFAULT_TEST_TIMEOUT,
        TestCase,
        run_tests,
    )

    ensure_trusted(Path(args.path), yes=args.yes)
    bar = ProgressLine()
    width = [0]

    def plan(names: list[str]) -> None:
        width[0] = max((len(n) for n in names), default=0)

    def show(case: TestCase) -> None:
        bar.clear()
        if args.json:
            return
        status = "PASS" if case.passed else "FAIL"
        extra = f"  ({case.outcome}: {case.detail})" if not case.passed else ""
        out(
            f"{status}  {case.name:<{width[0]}}  {case.fuel_used:>13,} fuel  "
            f"{_duration(case.seconds):>9}{extra}"
        )

    try:
        report = run_tests(
            Path(args.path),
            home=_home(),
            filter=args.filter,
            fuel=DEFAULT_TEST_FUEL,
            timeout=DEFAULT_TEST_TIMEOUT,
            progress=bar,
            on_case=show,
            options=_run_options(args, function=None),
            on_plan=plan,
        )
    finally:
        bar.clear()
    error = (
        TestsFailed(f"{report.summary} in {report.name}", hint="see the FAIL lines above")
        if report.failed
        else None
    )
    if args.json:
        emit_json(report, error=error)
    else:
        if not report.cases:
            note(
                "note: no test_* functions found"
                + (f" matching {args.filter!r}" if args.filter else "")
            )
        out(report.summary)
    if error is not None:
        raise error
    return 0


def _duration(seconds: float) -> str:
    """``0.8 ms``, ``12.3 ms``, ``1.25 s``: a test's wall time, in the unit that reads best."""
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --------------------------------------------------------------------------- pack / sign


def cmd_pack(args: argparse.Namespace) -> int:
    # lazy: project.packaging (~260 ms) only to pack
    from vudo.project.packaging import pack_project

    bar = ProgressLine()
    try:
        result = pack_project(
            Path(args.path), output=Path(args.output) if args.output else None, progress=bar
        )
    finally:
        bar.clear()
    if args.json:
        emit_json(result)
        return 0
    out(f"packed {result.path} ({human_bytes(result.size)}, unsigned)")
    out("next:   vudo sign")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    # lazy: project.packaging (~260 ms) only to sign
    from vudo.project.packaging import newest_package, sign_project_package

    if args.verify:
        target = Path(args.package) if args.package else newest_package(Path(args.path))
        return _show_package(target, args, full=False)
    result = sign_project_package(
        Path(args.package) if args.package else None,
        project_dir=Path(args.path),
        home=_home(),
        key=Path(args.key) if args.key else None,
    )
    if args.json:
        emit_json(result)
        return 0
    out(f"signed {result.path}")
    out(f"signer  {result.signer}")
    out(f"digest  {show_digest(result.digest)}")
    if not result.author_matches:
        out(
            f"note: the manifest's author ({result.author}) is not the signing key; "
            "the package records the real signer"
        )
    return 0


# --------------------------------------------------------------------------- check / fmt / doc


def cmd_check(args: argparse.Namespace) -> int:
    # lazy: project.workflow (~90 ms) only for `vudo check`
    from vudo.project.workflow import check_project

    bar = ProgressLine()
    try:
        report = check_project(Path(args.path), home=_home(), progress=bar)
    finally:
        bar.clear()
    error = None
    if not report.ok:
        n = len(report.errors)
        error = InvalidInputError(
            f"{n} problem{'s' if n != 1 else ''} found in {report.root}",
            hint=report.errors[0].hint or "see the lines above",
        )
    if args.json:
        emit_json(report, error=error)
    else:
        for p in report.problems:
            hint = f" (hint: {p.hint})" if p.hint else ""
            out(f"{p.severity}: [{p.area}] {p.message}{hint}")
        checked = ", ".join(report.checked)
        if report.ok:
            out(
                f"ok: {report.name} ({checked}; {len(report.problems)} warning"
                f"{'' if len(report.problems) == 1 else 's'})"
            )
    if error is not None:
        raise error
    return 0


def _resolved(args: argparse.Namespace) -> Resolution:
    # lazy: project.dependencies (~230 ms) only to resolve a project's dependencies
    from vudo.project.dependencies import resolve_project_dependencies

    return resolve_project_dependencies(Path(args.path), home=_home(), registries=args.registry)


def cmd_tree(args: argparse.Namespace) -> int:
    res = _resolved(args)
    if args.json:
        emit_json(res)
        return 0
    out(res.root)
    for row in res.tree():
        c = res[row.name]
        why = "shown above" if row.repeat else f"{row.requirement}; {res.reason(row.name)}"
        out(f"{'  ' * row.depth}{c.name} {c.version} ({why})")
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    chosen = _resolved(args).why(args.name)
    if args.json:
        emit_json(chosen)
        return 0
    out(f"{chosen.name} {chosen.version} ({chosen.reason})")
    for r in chosen.required_by:
        via = f" (via {' > '.join(r.path)})" if len(r.path) > 1 else ""
        out(f"  {r.dependent} needs {r.requirement}{via}")
    return 0


def cmd_fmt(args: argparse.Namespace) -> int:
    # lazy: project.workflow (~90 ms) only for `vudo fmt`
    from vudo.project.workflow import fmt_project

    result = fmt_project(Path(args.path), check=args.check)
    error = None
    if args.check and result.changed:
        # Exit 1, as `ruff format --check` and `gofmt -l` do: not an invalid input, just
        # a file that would change (the diff says how).
        error = VudoError(f"{result.path} is not formatted", hint="run `vudo fmt`")
    if args.json:
        emit_json(result, error=error)
    elif error is not None:
        sys.stdout.write(printable(result.diff()))
    elif args.check:
        out(f"{result.path} is formatted")
    else:
        out(f"formatted {result.path}" if result.changed else f"{result.path} already formatted")
    if error is not None:
        raise error
    return 0


def cmd_doc(args: argparse.Namespace) -> int:
    # lazy: project.workflow (~90 ms) only for `vudo doc`
    from vudo.project.workflow import doc_project

    bar = ProgressLine()
    try:
        result = doc_project(
            Path(args.path), output=Path(args.output) if args.output else None, progress=bar
        )
    finally:
        bar.clear()
    if args.json:
        emit_json(result)
        return 0
    out(f"wrote {result.markdown}")
    out(f"wrote {result.html}")
    return 0


# --------------------------------------------------------------------------- consent


def _show_request(request: ConsentRequest) -> None:
    note(f"{request.name} {request.version}, signed by {request.signer[:16]}..., asks for:")
    previous = set(request.previous or ())
    for cap in request.capabilities:
        mark = "+" if request.previous is not None and cap not in previous else " "
        note(f" {mark} {cap.value:<20} {cap.description}")
    for cap in request.removed:
        note(f" - {cap.value:<20} (no longer asked for)")
    if request.directories:
        names = ", ".join(f"/{d}" for d in request.directories)
        note(f"   and directories of its own (WASI, under ~/.vudo/data/wasi/): {names}")


def _ask(question: str) -> str:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not stderr_is_tty():
        sys.stderr.write("\n")  # the terminal's echo of Enter is not in this stream
    if not answer:
        raise UsageError("no answer (end of input)", hint="pass --yes or --grant CAP")
    return answer.strip().lower()


def _consent(request: ConsentRequest, args: argparse.Namespace) -> ConsentDecision:
    """The user's decision: from the flags, else asked on the terminal, else refused."""
    # lazy: project.consent (~20 ms) only when a command asks for consent
    from vudo.project.consent import ConsentDecision, decide_consent

    decision = decide_consent(request, yes=args.yes, grant=args.grant, deny=args.deny)
    if decision is not None:
        return decision
    _show_request(request)
    if not sys.stdin.isatty():
        raise UsageError(
            f"{request.name} asks for {len(request.capabilities)} capabilities and stdin is "
            "not a terminal to ask for consent",
            hint="pass --yes to grant them all, or --grant CAP for each one you allow",
        )
    from vudo.capabilities import parse_any_capability  # lazy: as in cmd_capabilities

    denied_now = {parse_any_capability(d) for d in args.deny}
    answer = _ask("grant these? [y]es, [n]o (cancel), [c]hoose each: ")
    if answer in ("y", "yes"):
        granted = [(c, "global") for c in request.capabilities if c not in denied_now]
    elif answer in ("c", "choose"):
        granted = []
        for cap in request.capabilities:
            if cap not in denied_now and _ask(f"  grant {cap.value}? [y/N]: ") in ("y", "yes"):
                granted.append((cap, "global"))
    else:
        raise VudoError(
            f"cancelled: {request.name} was not installed",
            hint="run again and answer y, or pass --grant CAP",
        )
    chosen = {c for c, _ in granted}
    return ConsentDecision(
        tuple(granted), tuple(c for c in request.capabilities if c not in chosen)
    )


def cmd_summon(args: argparse.Namespace) -> int:
    # lazy: project.installing (~320 ms) only for `vudo summon`
    from vudo.project.installing import install_prepared, prepare_summon

    _check_grant_words(args.grant, args.deny)
    home = _home()
    bar = ProgressLine()
    try:
        prepared = prepare_summon(Path(args.source), home=home, progress=bar)
    finally:
        bar.clear()
    decision = _consent(prepared.request, args)
    result = install_prepared(prepared, decision, home=home, trust_signer=args.trust_signer)
    return _render_install(result, args)


def _render_install(result: SummonResult, args: argparse.Namespace) -> int:
    if args.json:
        emit_json(result)
        return 0
    s = result.spirit
    verb = "already installed" if result.already_installed else "installed"
    out(
        f"{verb} {s.name} {s.version} (signer {s.signer[:16]}..., "
        f"{show_digest(s.digest, short=True)})"
    )
    for note_line in result.notes:
        out(f"note: {note_line}")
    out(
        "granted: "
        + (", ".join(c if sc == "global" else f"{c}={sc}" for c, sc in result.granted) or "nothing")
    )
    if result.denied:
        out("denied:  " + ", ".join(result.denied))
    out(f"run it:  vudo run {s.name}")
    return 0


# --------------------------------------------------------------------------- store queries


def cmd_list(args: argparse.Namespace) -> int:
    # lazy: project.installed (~10 ms) only for `vudo list`
    from vudo.project.installed import list_installed

    spirits = list_installed(_home())
    if args.json:
        emit_json(spirits)
        return 0
    if not spirits:
        out("no Spirits installed (install one with `vudo summon FILE.spirit`)")
        return 0
    for line in table(
        [
            (
                s.name,
                str(s.version),
                ", ".join(c.value for c in s.capabilities) or "-",
                s.signer[:16],
            )
            for s in spirits
        ],
        ("NAME", "VERSION", "CAPABILITIES", "SIGNER"),
    ):
        out(line)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    # lazy: project.installed (~10 ms) only for `vudo search`
    from vudo.project.installed import search_installed

    if args.capability is not None:
        from vudo.capabilities import parse_capability  # lazy: as in cmd_capabilities

        with _typed_by_user():
            parse_capability(args.capability)
    if args.available:
        # lazy: project.registries, http and OCI clients (~200 ms) only with --available
        from vudo.project.registries import browse

        entries = browse(
            args.query, home=_home(), registries=args.registry, capability=args.capability
        )
        if args.author:
            entries = [
                e
                for e in entries
                if e.author.startswith(args.author.lower())
                or e.signer.startswith(args.author.lower())
            ]
        if args.json:
            emit_json(entries)
            return 0
        if not entries:
            out(f"no published Spirit matches {args.query!r}")
            return 0
        for line in table(
            [(e.name, e.version, e.installed_version or "-", e.description) for e in entries],
            ("NAME", "LATEST", "INSTALLED", "DESCRIPTION"),
        ):
            out(line)
        return 0
    found = search_installed(
        args.query, home=_home(), capability=args.capability, author=args.author
    )
    if args.json:
        emit_json(found)
        return 0
    if not found:
        out(f"no installed Spirit matches {args.query!r}")
        return 0
    for line in table(
        [(s.name, str(s.version), s.description) for s in found], ("NAME", "VERSION", "DESCRIPTION")
    ):
        out(line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    return _show_package(Path(args.package), args, full=False)


def _show_package(target: Path, args: argparse.Namespace, *, full: bool) -> int:
    """A package file, verified before anything is shown (`verify`, `sign --verify`, and
    `info FILE.spirit` with ``full``: manifest, files and whether it is installed)."""
    # lazy: project.packaging (~260 ms) only to show a package file
    from vudo.project.packaging import inspect_package

    facts = inspect_package(target, home=_home() if full else None)
    verified, m = facts.verified, facts.verified.manifest
    installed = facts.installed_versions or ()
    if args.json:
        emit_json(facts)
        return 0
    if not full:
        out(f"verified {target}: every file matches the signature")
        out(f"signer  {verified.signer}")
        if not verified.author_matches:
            out(f"note: the manifest's author is {m.author}, not the signer")
        return 0
    out(
        f"{m.name} {m.version}  (package {target}: signature valid, "
        + (f"installed: {', '.join(installed)})" if installed else "not installed)")
    )
    if m.description:
        out(f"  {m.description}")
    out(f"author        {m.author}")
    out(
        f"signer        {verified.signer}"
        + ("" if verified.author_matches else "  (not the author)")
    )
    out(f"digest        {show_digest(verified.digest)}")
    out("capabilities  " + (", ".join(c.value for c in m.capabilities) or "none"))
    if m.dependencies:
        out("dependencies  " + ", ".join(f"{d.name} {d.to_value()}" for d in m.dependencies))
    out("files")
    for line in table(
        [(f.path, human_bytes(f.size), show_digest(f.sha256, short=True)) for f in verified.files],
        ("  PATH", "SIZE", "SHA-256"),
    ):
        out(line if line.startswith("  ") else "  " + line)
    out(f"install it:   vudo summon {target}")
    return 0


def _info_available(args: argparse.Namespace) -> int:
    # lazy: project.installed (~10 ms) only for `vudo info`
    from vudo.project.installed import split_spec

    # lazy: project.remote (~190 ms) only for a package not installed
    from vudo.project.remote import info_available

    name, version = split_spec(args.name)
    available = info_available(name, home=_home(), registry=args.registry).describe(version)
    if args.json:
        emit_json(available)
        return 0
    m, shown = available.manifest, available.shown
    out(f"{name} {shown.version}  (in {available.remote.registry}, not installed)")
    if m.description:
        out(f"  {m.description}")
    out(f"author        {m.author}")
    out(
        f"signer        {shown.signer}" + ("" if shown.signer == m.author else "  (not the author)")
    )
    out(f"digest        {show_digest(shown.digest)}  ({human_bytes(shown.size)})")
    out(
        "versions      "
        + ", ".join(
            f"{e.version}{' (yanked)' if e.yanked else ''}" for e in available.remote.versions
        )
    )
    out("capabilities  " + (", ".join(c.value for c in m.capabilities) or "none"))
    if m.dependencies:
        out("depends on    " + ", ".join(f"{d.name} {d.requirement}" for d in m.dependencies))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    # lazy: project.installed (~10 ms) only for `vudo info`
    from vudo.project.installed import info_installed

    if args.available:
        return _info_available(args)
    if args.registry:
        raise UsageError(
            "--registry goes with --available",
            hint=f"vudo info {args.name} --available --registry NAME|URL",
        )
    if args.name.endswith(".spirit") or "/" in args.name:
        return _show_package(Path(args.name), args, full=True)
    details = info_installed(args.name, home=_home())
    if args.json:
        emit_json(details)
        return 0
    s = details.info.spirit
    out(f"{s.name} {s.version}")
    if s.description:
        out(f"  {s.description}")
    out(f"author        {s.author}")
    out(f"signer        {s.signer}" + ("" if s.signer == s.author else "  (not the author)"))
    out(f"digest        {show_digest(s.digest)}")
    out(f"versions      {', '.join(str(v) for v in details.info.versions)}")
    out("capabilities  " + (", ".join(c.value for c in s.capabilities) or "none"))
    for g in details.grants:
        exp = g.expires_at
        out(
            f"  granted     {g.capability} ({g.scope})"
            + (f", expires {_when(exp)}" if exp else "")
            + ("" if g.valid else f"  INVALID, ignored: {g.problem}")
        )
    return 0


def _when(iso: str) -> str:
    """An ISO 8601 time (:func:`vudo.display.iso_time`) as people read it."""
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) == 20 else f"at Unix time {iso}"


def cmd_uninstall(args: argparse.Namespace) -> int:
    # lazy: project.installing (~320 ms) only for `vudo uninstall`
    from vudo.project.installing import uninstall

    result = uninstall(args.name, home=_home())
    for line in result.broken_dependents:
        note(f"warning: {line}; it will not run until that is installed again")
    if args.json:
        emit_json(result)
        return 0
    for s in result.removed:
        out(f"uninstalled {s.name} {s.version}")
    return 0


def cmd_grant(args: argparse.Namespace) -> int:
    # lazy: project.grants (~50 ms) only for `vudo grant`
    from vudo.project.grants import grant_capability, grant_rows

    words = [args.capability]  # CAP or CAP=SCOPE; --scope is checked as CAP=SCOPE too
    if args.scope is not None:
        words.append(f"{args.capability.partition('=')[0]}={args.scope}")
    _check_grant_words(words)
    grant = grant_capability(
        args.name, args.capability, home=_home(), scope=args.scope, expires=args.expires
    )
    [row] = grant_rows([grant.to_dict()])
    if args.json:
        emit_json(row)
        return 0
    exp = f", expires {_when(row.expires_at)}" if row.expires_at else ""
    out(f"granted {grant.capability.value} ({grant.scope}) to {args.name}{exp}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    # lazy: project.grants (~50 ms) only for `vudo revoke`
    from vudo.project.grants import revoke_capability

    _check_grant_words([], [args.capability])
    revoked = revoke_capability(args.name, args.capability, home=_home())
    if args.json:
        emit_json(revoked)
        return 0
    out(f"revoked {args.capability} from {args.name}")
    return 0


def cmd_credit(args: argparse.Namespace) -> int:
    from vudo.cli.credit import run  # lazy: cli.credit (~10 ms) only for `vudo credit`

    return run(args)


def cmd_storage(args: argparse.Namespace) -> int:
    from vudo.cli.storage import run  # lazy: cli.storage (~15 ms) only for `vudo storage`

    return run(args)


def cmd_trust(args: argparse.Namespace) -> int:
    from vudo.cli.trust import run_trust  # lazy: cli.trust (~15 ms) only for `vudo trust`

    return run_trust(args)


def cmd_untrust(args: argparse.Namespace) -> int:
    from vudo.cli.trust import run_untrust  # lazy: cli.trust (~15 ms) only for `vudo untrust`

    return run_untrust(args)


# --------------------------------------------------------------------------- keys


def cmd_keys(args: argparse.Namespace) -> int:
    # lazy: pkg.keys and nacl (~30 ms) only for `vudo keys`
    from vudo.pkg.keys import PRIVATE_KEY_FILE, KeyFile, load_keypair

    if args.key is not None and args.action not in ("trust", "untrust", "import"):
        # `vudo keys show KEY` would otherwise show *your* key, as if it were KEY's.
        raise UsageError(
            f"keys {args.action} takes no KEY argument (got {args.key!r})",
            hint="KEY is only for `vudo keys trust KEY`, `untrust KEY` and `import FILE`",
        )
    if args.output is not None and args.action != "export":
        raise UsageError(f"keys {args.action} takes no --output", hint="it is for `keys export`")
    home = _home()
    keys = keys_dir(home)
    exists = (keys / PRIVATE_KEY_FILE).exists()
    if args.action == "generate" and exists and not args.force:
        raise InvalidInputError(
            f"a key already exists in {keys}",
            hint="`vudo keys rotate` (or generate --force) replaces it: your grants are "
            "re-signed by the new key and the old key is kept as a backup",
        )
    if args.action in ("rotate", "import") or (args.action == "generate" and exists):
        return _replace_key(args, home)
    if args.action == "generate":
        # lazy: pkg.keys and nacl (~30 ms) only for `vudo keys`
        from vudo.pkg.keys import generate_keypair, save_keypair

        kp = generate_keypair()
        _show_key("generated", KeyFile(kp.public_hex, save_keypair(kp, keys)), args)
        return 0
    if args.action == "show":
        kp = load_keypair(keys / PRIVATE_KEY_FILE)  # NotFoundError with a hint
        if args.json:
            shown = KeyFile(kp.public_hex, keys / PRIVATE_KEY_FILE)
            emit_json(shown)
        else:
            out(kp.public_hex)
            out(f"fingerprint  {kp.fingerprint}")
        return 0
    if args.action == "export":
        return _export_key(args, load_keypair(keys / PRIVATE_KEY_FILE))
    if args.action == "trust":
        # lazy: project.grants (~50 ms) only to trust a signer
        from vudo.project.grants import trust_signer

        if not args.key:
            raise UsageError(
                "keys trust needs the signer's public key", hint="vudo keys trust <64 hex chars>"
            )
        trusted = trust_signer(home, args.key)
        if args.json:
            emit_json(trusted)
        else:
            out(f"trusted signer {trusted.key}")
        return 0
    if args.action == "untrust":
        # lazy: pkg.keys and nacl (~30 ms) only for `vudo keys`
        from vudo.pkg.keys import parse_public_key

        # lazy: project.grants (~50 ms) only to untrust a signer
        from vudo.project.grants import untrust_signer

        if not args.key:
            raise UsageError(
                "keys untrust needs the signer's public key",
                hint="vudo keys untrust <64 hex chars> (`vudo keys list` shows the trusted ones)",
            )
        with _typed_by_user():
            key = parse_public_key(args.key)
        untrusted = untrust_signer(home, key)
        if args.json:
            emit_json(untrusted)
        else:
            out(f"no longer trusted: signer {key} (Spirits pinned to it stay installed)")
        return 0
    # list: the user's own key and the signer keys the store trusts or pins
    # lazy: project.grants (~50 ms) only to list known keys
    from vudo.project.grants import known_keys

    rows = known_keys(home)
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        out("no keys (create yours with `vudo keys generate`)")
    for line in table(
        [(r.fingerprint, r.role, r.key) for r in rows], ("FINGERPRINT", "ROLE", "KEY")
    ):
        out(line)
    return 0


def _show_key(verb: str, key: KeyFile | KeyRotation, args: argparse.Namespace) -> None:
    if args.json:
        emit_json(key)
        return
    out(f"{verb} {key.private_key}")
    out(f"public key   {key.public_key}")
    out(f"fingerprint  {key.fingerprint}")


def _replace_key(args: argparse.Namespace, home: Path) -> int:
    """rotate, import over an existing key, generate --force: one rotation."""
    # lazy: pkg.keys and nacl (~30 ms) only to replace a key
    from vudo.pkg.keys import (
        PRIVATE_KEY_FILE,
        KeyFile,
        keypair_from_seed_hex,
        load_keypair,
        save_keypair,
    )
    from vudo.project.grants import rotate_key  # lazy: project.grants (~50 ms) only to rotate a key

    keys = keys_dir(home)
    new = None
    if args.action == "import":
        if not args.key:
            raise UsageError(
                "keys import needs the key file",
                hint="vudo keys import FILE (written by `vudo keys export -o FILE`)",
            )
        source = Path(args.key)
        try:
            if source.stat().st_size > 1024:
                raise InvalidInputError(
                    f"{source} is not a vudo private key (too big)",
                    hint="pass the file `vudo keys export -o` wrote",
                )
            text = source.read_text(encoding="ascii")
        except FileNotFoundError:
            raise NotFoundError(f"no key file at {source}", hint="check the path") from None
        except UnicodeDecodeError:
            text = ""
        new = keypair_from_seed_hex(text, source=str(source))
        if not (keys / PRIVATE_KEY_FILE).exists():
            _show_key("imported", KeyFile(new.public_hex, save_keypair(new, keys)), args)
            return 0
    rotation = rotate_key(home, new)
    _show_key("imported" if args.action == "import" else "rotated to", rotation, args)
    if args.json:
        return 0
    count = sum(rotation.resigned.values())
    out(f"old key      {rotation.old} (kept in {rotation.backup})")
    out(
        f"re-signed    {count} grant{'s' if count != 1 else ''} of "
        f"{len(rotation.resigned)} installed Spirit{'s' if len(rotation.resigned) != 1 else ''}"
    )
    load_keypair(keys)  # the new key reads back
    return 0


def _export_key(args: argparse.Namespace, kp: KeyPair) -> int:
    """The private key's one-line hex seed (the format of ``keys/private.key``)."""
    # lazy: pkg.keys and nacl (~30 ms) only to export a key
    from vudo.pkg.keys import export_keypair

    exported = export_keypair(kp, Path(args.output) if args.output is not None else None)
    if exported.file is not None:
        if args.json:
            emit_json(exported)
        else:
            out(f"exported your private key to {exported.file} (mode 0600)")
            out(f"import it elsewhere with `vudo keys import {exported.file}`")
        return 0
    note("note: this is your private key; anyone who has it can sign as you")
    if args.json:
        emit_json(exported)
    else:
        out(str(exported.seed_hex))
    return 0


# --------------------------------------------------------------------------- registries


def _consent_callback(
    args: argparse.Namespace,
) -> Callable[[ConsentRequest, bool], ConsentDecision]:
    """--grant/--deny choose for the named Spirit; dependencies need --yes or a terminal."""

    def consent(request: ConsentRequest, is_root: bool) -> ConsentDecision:
        if is_root:
            return _consent(request, args)
        deps_args = argparse.Namespace(yes=args.yes, grant=[], deny=[])
        return _consent(request, deps_args)

    return consent


def cmd_install(args: argparse.Namespace) -> int:
    # lazy: project.installing (~320 ms) only for `vudo install`
    from vudo.project.installing import install

    _check_grant_words(args.grant, args.deny)
    bar = ProgressLine()
    try:
        results = install(
            args.name,
            home=_home(),
            consent=_consent_callback(args),
            registries=args.registry,
            trust_signer=args.trust_signer,
            progress=bar,
        )
    finally:
        bar.clear()
    if args.json:
        emit_json(results)
        return 0
    for result in results:
        _render_install(result, argparse.Namespace(json=False))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from vudo.project.packaging import publish  # lazy: project.packaging (~260 ms) only to publish

    bar = ProgressLine()
    try:
        result = publish(
            Path(args.package) if args.package else None,
            project_dir=Path(args.path),
            home=_home(),
            registry=args.registry,
            allow_new_signer=args.allow_new_signer,
            dry_run=args.dry_run,
            progress=bar,
        )
    finally:
        bar.clear()
    if args.json:
        emit_json(result)
        return 0
    if args.dry_run:
        out(f"would publish {result.name} {result.version} to {result.registry}")
        out(f"  package  {result.path}  sha256:{result.digest}")
        out(f"  signer   {result.signer}")
        out("nothing was pushed (--dry-run)")
        return 0
    verb = "already published" if result.already_published else "published"
    out(f"{verb} {result.name} {result.version} to {result.registry}")
    out(f"install it with: vudo install {result.name}@{result.version}")
    return 0


def cmd_yank(args: argparse.Namespace) -> int:
    from vudo.project.remote import yank  # lazy: project.remote (~190 ms) only for `vudo yank`

    result = yank(args.name, home=_home(), registry=args.registry, undo=args.undo)
    if args.json:
        emit_json(result)
        return 0
    if args.undo:
        out(f"un-yanked {args.name}" if result.changed else f"{args.name} was not yanked")
    else:
        out(
            f"yanked {args.name} (installs skip it unless a lock names it)"
            if result.changed
            else f"{args.name} was already yanked"
        )
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    # lazy: pkg.config (~90 ms) only for `vudo registry`
    from vudo.pkg.config import add_registry, load_config, remove_registry

    home = _home()
    if args.action == "list":
        if args.name or args.url or args.default or args.ca_file:
            raise UsageError(
                "registry list takes no arguments", hint="`vudo registry list [--json]`"
            )
        config = load_config(home)
        if args.json:
            emit_json(config)
            return 0
        if not config.registries:
            out(
                "no registries configured; the default is the directory registry under "
                f"{home} (add one with `vudo registry add NAME URL --default`)"
            )
            return 0
        for line in table(
            [
                (r.name, r.url, "default" if r.name == config.default else "")
                for r in config.registries
            ],
            ("NAME", "URL", ""),
        ):
            out(line)
        return 0
    if not args.name:
        raise UsageError(
            f"registry {args.action} needs a NAME",
            hint="e.g. vudo registry add team oci://ghcr.io/my-org",
        )
    if args.action == "add":
        if not args.url:
            raise UsageError(
                "registry add needs NAME and URL",
                hint="e.g. vudo registry add team oci://ghcr.io/my-org",
            )
        added = add_registry(
            home,
            args.name,
            args.url,
            default=args.default,
            ca_file=Path(args.ca_file) if args.ca_file else None,
        )
        if args.json:
            emit_json(added)
        else:
            entry = added.entry
            out(f"added registry {entry.name} {entry.url}" + (" (default)" if args.default else ""))
        return 0
    if args.url or args.default or args.ca_file:
        raise UsageError("registry remove takes only NAME", hint="vudo registry remove NAME")
    removed = remove_registry(home, args.name)
    if args.json:
        emit_json(removed)
    else:
        out(f"removed registry {removed.entry.name} ({removed.entry.url})")
    return 0


def _read_secret(what: str) -> str:
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            f"--{what}-stdin reads the {what} from standard input",
            hint=f'pipe it in: echo "$SECRET" | vudo login ... --{what}-stdin',
        )
    text = sys.stdin.read(64 * 1024 + 1)
    secret = text[:-1] if text.endswith("\n") else text
    secret = secret[:-1] if secret.endswith("\r") else secret
    if not secret or len(secret) > 64 * 1024 or "\n" in secret:
        raise UsageError(
            f"standard input holds no usable {what} (empty, several lines or over 64 KiB)",
            hint=f"pipe exactly one {what} line",
        )
    return secret


def cmd_login(args: argparse.Namespace) -> int:
    from vudo.project.remote import login  # lazy: project.remote (~190 ms) only for `vudo login`

    if args.password_stdin == args.token_stdin:
        raise UsageError(
            "login needs exactly one of --password-stdin and --token-stdin",
            hint='echo "$PASSWORD" | vudo login REGISTRY --username U --password-stdin',
        )
    if args.password_stdin and not args.username:
        raise UsageError(
            "--password-stdin needs --username",
            hint="vudo login REGISTRY --username U --password-stdin",
        )
    if args.token_stdin and args.username:
        raise UsageError(
            "--token-stdin takes no --username", hint="vudo login REGISTRY --token-stdin"
        )
    secret = _read_secret("password" if args.password_stdin else "token")
    result = login(
        args.registry,
        home=_home(),
        username=args.username,
        password=secret if args.password_stdin else None,
        token=secret if args.token_stdin else None,
        ca_file=Path(args.ca_file) if args.ca_file else None,
    )
    if args.json:
        emit_json(result)
    else:
        out(f"logged in to {result.registry}" + (f" as {args.username}" if args.username else ""))
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from vudo.project.remote import logout  # lazy: project.remote (~190 ms) only for `vudo logout`

    result = logout(args.registry, home=_home())
    if args.json:
        emit_json(result)
    elif result.removed:
        out(f"logged out of {result.registry}")
    else:
        out(f"no stored credentials for {result.registry}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    # lazy: project.installing (~320 ms) only for `vudo upgrade`
    from vudo.project.installing import upgrade

    consent_args = argparse.Namespace(yes=args.yes, grant=[], deny=[])

    def consent(request: ConsentRequest, _is_root: bool) -> ConsentDecision:
        note(f"{request.name} {request.version} asks for more than the installed version:")
        return _consent(request, consent_args)

    bar = ProgressLine()
    try:
        outcomes = upgrade(
            args.name, home=_home(), consent=consent, registries=args.registry, progress=bar
        )
    finally:
        bar.clear()
    pruned: list[InstalledSpirit] = []
    kept: list[str] = []
    if args.prune:
        # lazy: project.installing (~320 ms) only with --prune
        from vudo.project.installing import prune

        pruned, kept = prune(args.name, home=_home())
        outcomes = [o.with_pruned(pruned) for o in outcomes]
    for line in kept:
        note(f"note: {line}")
    if args.json:
        emit_json(outcomes)
        return 0
    if not outcomes:
        out("no Spirits installed")
    for o in outcomes:
        if not o.upgraded:
            out(f"{o.name} {o.old_version} is up to date")
            continue
        out(f"upgraded {o.name} {o.old_version} -> {o.new_version}")
        if o.added:
            out("  new capabilities:     " + ", ".join(o.added))
        if o.removed:
            out("  dropped capabilities: " + ", ".join(o.removed))
    for p in pruned:
        out(f"pruned {p.name} {p.version} (superseded)")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    # lazy: project.caches, engine.engine and wasmtime (~90 ms) only for `vudo cache`
    from vudo.project.caches import cache_report, clear_caches

    if args.action == "clear":
        cleared = clear_caches(_home())
        if args.json:
            emit_json(cleared)
            return 0
        out(
            f"removed {cleared.removed} compiled modules ({human_bytes(cleared.modules.bytes)}) "
            f"from {cleared.modules.location}"
        )
        for part in cleared.parts:
            if part.entries:
                out(f"removed {part.name} ({part.entries}, {human_bytes(part.bytes)})")
        return 0
    report = cache_report(_home())
    if args.json:
        emit_json(report)
        return 0
    usage = report.modules
    out(f"module cache  {usage.location}")
    out(f"entries       {usage.entries}")
    out(
        f"size          {human_bytes(usage.bytes)} of {human_bytes(usage.bound)} "
        "(least recently used modules are evicted beyond it)"
    )
    for part in report.parts:
        size = human_bytes(part.bytes)
        out(f"{part.name + ':':<21} {part.entries:>5}  {size:>10}  {part.location}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    from vudo.pkg.keys import fingerprint  # lazy: pkg.keys and nacl (~30 ms) only for `vudo repair`
    from vudo.project.repair import repair  # lazy: project.repair (~140 ms) only for `vudo repair`

    outcome = repair(_home())
    for r in outcome.released:
        note(
            f"released reservation #{r.id} ({r.amount:,} credits) of a run that ended "
            f"(pid {r.pid or '?'})"
        )
    if args.json:
        emit_json(outcome)
        return 0
    if outcome.rebuilt:
        out(f"rebuilt the store index from the package files ({outcome.packages} packages)")
    fixed = (
        outcome.removed_orphans
        + outcome.removed_temp_files
        + len(outcome.dropped_rows)
        + len(outcome.dropped_grants)
    )
    if fixed:
        out(
            f"removed {outcome.removed_orphans} orphaned package files and "
            f"{outcome.removed_temp_files} stale temp files"
        )
    for row in outcome.dropped_rows:
        out(f"dropped {row} (its package file was missing or damaged)")
    for name in outcome.dropped_grants:
        out(f"dropped the unreadable grants of {name} (grant them again: `vudo grant {name} CAP`)")
    for name, count in outcome.resigned_grants:
        out(f"re-signed {count} grant(s) of {name} made by your earlier key with your current key")
    for g in outcome.foreign_grants:
        out(
            f"the {g.capability} grant of {g.name} was made by key {fingerprint(g.granter)}, "
            f"not yours, so runs ignore it; to give it with your key: `{g.regrant}`"
        )
    if not (outcome.rebuilt or fixed or outcome.resigned_grants or outcome.foreign_grants):
        out(f"the store is healthy ({outcome.packages} packages)")
    return 0
