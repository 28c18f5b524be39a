"""One handler per ``vudo`` command: parse the Namespace, call one core function, render.

Handlers return the exit code; failures are raised as VudoError and rendered by
:func:`vudo.cli.app.run_cli`. Each handler imports what it needs inside its body, so a
command pays only for its own dependencies (``vudo run`` never imports textual).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from vudo.cli.render import ProgressLine, emit_json, human_bytes, note, out
from vudo.errors import NotFoundError, VudoError
from vudo.home import vudo_home


def _home() -> Path:
    return vudo_home()


# --------------------------------------------------------------------------- new / build


def cmd_new(args: argparse.Namespace) -> int:
    from vudo.project.new import new_project

    created = new_project(args.name, template=args.template, parent=Path(args.path),
                          home=_home())
    if args.json:
        emit_json({
            "name": created.name, "path": str(created.root), "template": created.template,
            "author": created.author, "files": [str(f) for f in created.files],
        })
        return 0
    out(f"created {created.template} Spirit \"{created.name}\" in {created.root}")
    out(f"author  {created.author}")
    out(f"next:   cd {created.root} && vudo build && vudo run && vudo test")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from vudo.project.build import CompileError, build_project

    bar = ProgressLine()
    try:
        result = build_project(Path(args.path), release=args.release, progress=bar)
    except CompileError as err:
        bar.clear()
        note(err.output)
        raise
    finally:
        bar.clear()
    for warning in result.warnings:
        note(f"warning: {warning.message} (hint: {warning.hint})")
    if args.json:
        emit_json({
            "name": result.name, "language": result.language, "wasm": str(result.wasm_path),
            "size": result.size, "release": result.release, "seconds": round(result.seconds, 3),
            "imports": [f"{m}.{n}" for m, n in result.info.imports],
            "exports": [
                {"name": n, "params": list(p), "results": list(r)}
                for n, p, r in result.info.exports
            ],
            "warnings": [w.message for w in result.warnings],
        })
        return 0
    mode = "release" if result.release else "debug"
    out(f"built {result.wasm_path} ({human_bytes(result.size)}, {result.language}, {mode}, "
        f"{result.seconds:.2f}s)")
    return 0


# --------------------------------------------------------------------------- dol / tui


def cmd_dol(args: argparse.Namespace) -> int:
    exe = shutil.which("dol")
    if exe is None:
        raise NotFoundError(
            "DOL is not available: no `dol` executable on PATH",
            hint="install the DOL toolchain with `cargo install dol` "
            "(https://github.com/univrs/dol), then run `vudo dol` again",
        )
    words = list(args.args)
    if words[:1] == ["--"]:
        words = words[1:]
    return subprocess.call([exe, *words])


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from vudo.tui.app import run_tui
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("vudo"):
            raise VudoError("the TUI is not part of this vudo build",
                            hint="use the headless commands (`vudo --help`)") from err
        raise
    return int(run_tui(Path(args.path)) or 0)
