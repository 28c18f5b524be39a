"""``vudo build``: compile a project's source to ``target/<name>.wasm``, really.

WAT goes through the engine (``vudo.engine.traps.parse_wat``); C and Zig through the
``ziglang`` wheel (a dependency, so a fresh machine can build); Rust through cargo when
the wasm32 target is installed. After compiling, the module's imports are checked
against the manifest's capabilities, so a Spirit cannot quietly depend on a capability it
never asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.capabilities import AnyCapability, Capability, CustomCapability
from vudo.engine.abi import IMPORT_CAPABILITIES
from vudo.engine.engine import check_module
from vudo.engine.traps import WatError, parse_wat
from vudo.engine.wasi_abi import WASI_CAPABILITIES, WASI_MODULE, WASI_SIGNATURES
from vudo.errors import BuildError, ModuleError
from vudo.project.layout import (
    BuildStamp,
    Progress,
    Project,
    current_build,
    input_digest,
    no_progress,
    open_project,
    stamp_path,
    wasm_path,
    write_stamp,
)

RUST_TARGET = "wasm32-unknown-unknown"
#: A Rust WASI command (``vudo new --template rust``, a ``src/main.rs`` binary crate).
RUST_WASI_TARGET = "wasm32-wasip1"


class CompileError(BuildError):
    """The compiler rejected the source; ``output`` holds its full diagnostics."""

    def __init__(self, message: str, *, output: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.output = output


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """What a compiled module imports and exports (read by vudo.engine.binary.scan)."""

    imports: tuple[tuple[str, str], ...]  # (module, name)
    exports: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (name, params, results)


@dataclass(frozen=True, slots=True)
class CapabilityProblem:
    """One mismatch between the module's imports and the manifest's capabilities."""

    message: str
    hint: str
    error: bool  # False: a warning (declared but unused)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A finished build."""

    root: Path
    name: str
    language: str
    wasm_path: Path
    size: int
    release: bool
    seconds: float
    info: ModuleInfo
    warnings: tuple[CapabilityProblem, ...]
    lockfile: Path | None = None
    up_to_date: bool = False  # nothing changed since the last build: nothing was compiled

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "language": self.language,
            "wasm": str(self.wasm_path),
            "size": self.size,
            "release": self.release,
            "seconds": round(self.seconds, 3),
            "imports": [f"{m}.{n}" for m, n in self.info.imports],
            "exports": [
                {"name": n, "params": list(p), "results": list(r)} for n, p, r in self.info.exports
            ],
            "warnings": [w.message for w in self.warnings],
            "lockfile": str(self.lockfile) if self.lockfile else None,
            "up_to_date": self.up_to_date,
        }


def inspect_module(
    data: bytes, *, source: str | None = None, capabilities: Iterable[AnyCapability] = ()
) -> ModuleInfo:
    """Imports and exported functions of a wasm binary, through the checks
    ``Engine.load`` makes (:func:`vudo.engine.engine.check_module`: validation, the
    boundary-type guard, host import names and signatures from the ABI table), without
    compiling: a module that builds also loads. Otherwise BuildError (exit 7) when the
    binary is not valid wasm, ModuleError (exit 3) when it does not fit the ABI, naming
    ``source`` (the file it was built from) and keeping the engine's message.
    ``capabilities`` (the manifest's) admit imports from the applications its custom
    capabilities name (:func:`plugin_modules`)."""
    try:
        shape, _, exports = check_module(
            data, source or "the module", foreign=plugin_modules(capabilities)
        )
    except ModuleError as err:
        message = err.message
        where = f"{source}: " if source and not message.startswith(f"{source}: ") else ""
        if message.startswith("not a valid WebAssembly"):  # the source does not compile
            raise BuildError(
                where + message, hint="fix the source and run `vudo build` again"
            ) from None
        # valid wasm that does not fit the Spirit ABI (an import's signature, a boundary
        # type): invalid input, exactly as `vudo run` would say (exit 3)
        raise ModuleError(where + message, hint=err.hint) from None
    return ModuleInfo(
        tuple((imp.module, imp.name) for imp in shape.imports),
        tuple((f.name, f.params, f.results) for f in exports),
    )


def plugin_modules(capabilities: Iterable[AnyCapability]) -> frozenset[str]:
    """The applications a Spirit is a plugin of: ``APP`` of each ``x:APP.NAME`` it
    declares. It may import that application's host functions (module ``APP``)."""
    return frozenset(
        cap.value[2:].split(".", 1)[0] for cap in capabilities if isinstance(cap, CustomCapability)
    )


def lint_capabilities(
    imports: Iterable[tuple[str, str]], declared: Iterable[AnyCapability]
) -> list[CapabilityProblem]:
    """Compare a module's host imports with the manifest's capabilities.

    Errors: an import from outside the ``vudo`` module, an unknown host function, or a host
    function whose capability is not declared. Warnings: a declared capability that no
    import uses (the Spirit asks users for more than it needs).
    """
    declared = tuple(declared)
    wanted = set(declared)
    listed = ", ".join(f'"{c.value}"' for c in declared)
    used: set[AnyCapability] = set()
    problems: list[CapabilityProblem] = []
    apps = plugin_modules(declared)
    undeclared_wasi: dict[tuple[Capability, ...], list[str]] = {}  # caps -> functions
    for module, name in imports:
        if module in apps:  # the application's own host function: its x:APP.* guard it
            used.update(c for c in declared if c.value.startswith(f"x:{module}."))
            continue
        if module == WASI_MODULE:
            if name not in WASI_SIGNATURES:
                problems.append(
                    CapabilityProblem(
                        f'the module imports unknown WASI preview1 function "{name}"',
                        "vudo implements wasi_snapshot_preview1 as its witx defines it",
                        True,
                    )
                )
                continue
            caps = WASI_CAPABILITIES.get(name, ())
            used.update(caps)
            if caps and not wanted.intersection(caps):
                undeclared_wasi.setdefault(caps, []).append(name)
            continue
        if module != "vudo":
            problems.append(
                CapabilityProblem(
                    f'the module imports "{module}"."{name}"; Spirits import only from "vudo" '
                    f'and "{WASI_MODULE}"',
                    "remove the import, or use a vudo host function (a plugin of the "
                    f'application "{module}" declares its capability "x:{module}.NAME")',
                    True,
                )
            )
            continue
        if name not in IMPORT_CAPABILITIES:
            problems.append(
                CapabilityProblem(
                    f'the module imports unknown host function "{name}"',
                    "see the Spirit ABI for the host_* functions",
                    True,
                )
            )
            continue
        cap: AnyCapability | None = IMPORT_CAPABILITIES[name]
        if cap is None:
            continue
        used.add(cap)
        if cap not in wanted:
            problems.append(
                CapabilityProblem(
                    f'the module imports {name} but spirit.toml does not declare "{cap.value}"',
                    f"declare it in spirit.toml: capabilities = [{listed}{', ' if listed else ''}"
                    f'"{cap.value}"], or stop importing {name}',
                    True,
                )
            )
    # Warnings, not errors: standard libraries link functions a program may never call
    # (Zig's debug panic handler opens files); a call made without the grant is denied at
    # run time (EACCES) all the same. One line per capability asked for, not per function.
    for needed, names in undeclared_wasi.items():
        need = " or ".join(f'"{c.value}"' for c in needed)
        problems.append(
            CapabilityProblem(
                f"the module imports WASI {', '.join(names)} but spirit.toml declares none "
                f"of {need}",
                f"declare it in spirit.toml: capabilities = "
                f'[{listed}{", " if listed else ""}"{needed[0].value}"] if the program '
                "uses it (its calls are denied otherwise)",
                False,
            )
        )
    for cap in sorted(wanted - used, key=lambda c: c.value):
        problems.append(
            CapabilityProblem(
                f'spirit.toml declares "{cap.value}" but the module imports no host function '
                "that needs it",
                f'remove "{cap.value}" so users are not asked for it',
                False,
            )
        )
    return problems


def _run_compiler(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as err:
        raise BuildError(f"compiler not found: {argv[0]}", hint="install it and retry") from err
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        first = _first_error(output) or f"{Path(argv[0]).name} exited with {proc.returncode}"
        raise CompileError(first, output=output, hint="fix the source and run `vudo build` again")
    return output


_DIAG = re.compile(r"^\S+:\d+:\d+: (?:fatal )?error: .*$", re.MULTILINE)


def _first_error(output: str) -> str | None:
    match = _DIAG.search(output)
    if match:
        return match.group(0)
    for line in output.splitlines():
        if "error" in line.lower():
            return line.strip()
    return None


def _require_ziglang() -> None:
    """C and Zig need the ``ziglang`` wheel (a vudo dependency); say so if it is gone."""
    import importlib.util  # lazy: only for Zig projects

    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(
            "the Zig toolchain (Python package ziglang) is not installed",
            hint="install it with `pip install ziglang` into vudo's environment",
        )


def _zig_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ZIG_LOCAL_CACHE_DIR", str(root / "target" / "zig-cache"))
    return env


def compile_wat(project: Project, out: Path) -> None:
    rel = project.source.relative_to(project.root)
    try:
        text = project.source.read_text(encoding="utf-8-sig")  # BOM: not WAT
    except UnicodeDecodeError as err:
        raise CompileError(
            f"{rel}: not UTF-8 text (byte {err.start})", output="", hint="save the source as UTF-8"
        ) from None
    try:
        wasm = parse_wat(text, str(rel))
    except WatError as err:
        raise CompileError(
            err.message, output=err.output, hint="fix the source and run `vudo build` again"
        ) from err
    out.write_bytes(wasm)


#: A C source with a hosted ``main`` (``int main(`` at the start of a line) is a WASI
#: command; a Zig source with ``pub fn main`` likewise. Anything else is a freestanding
#: Spirit that exports its functions (``vudo new --target freestanding``).
_C_HOSTED_MAIN = re.compile(r"^\s*int\s+main\s*\(", re.MULTILINE)
_ZIG_PUB_MAIN = re.compile(r"^\s*pub\s+fn\s+main\s*\(", re.MULTILINE)


def is_wasi_source(project: Project) -> bool:
    """Whether the project builds a WASI command (see :data:`_C_HOSTED_MAIN`)."""
    if project.language == "rust":
        return project.source.name == "main.rs"
    if project.language not in ("c", "zig"):
        return False
    try:
        text = project.source.read_text("utf-8", errors="replace")
    except OSError:
        return False
    return bool((_C_HOSTED_MAIN if project.language == "c" else _ZIG_PUB_MAIN).search(text))


def compile_c(project: Project, out: Path, *, release: bool) -> None:
    _require_ziglang()
    rel = project.source.relative_to(project.root)
    opt = ["-O2", "-Wl,--strip-debug"] if release else ["-O1", "-g"]
    if is_wasi_source(project):
        # a WASI command: wasi-libc (inside the ziglang wheel) and its _start
        target = ["--target=wasm32-wasi"]
    else:
        target = [
            "--target=wasm32-freestanding",
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,--export-dynamic",
        ]
    _run_compiler(
        [sys.executable, "-m", "ziglang", "cc", *target, *opt, "-o", str(out), str(rel)],
        cwd=project.root,
        env=_zig_env(project.root),
    )


def compile_zig(project: Project, out: Path, *, release: bool) -> None:
    _require_ziglang()
    rel = project.source.relative_to(project.root)
    opt = ["-O", "ReleaseSmall"] if release else ["-O", "Debug"]
    _run_compiler(
        [
            sys.executable,
            "-m",
            "ziglang",
            "build-exe",
            "-target",
            *(
                ["wasm32-wasi"]
                if is_wasi_source(project)
                else ["wasm32-freestanding", "-fno-entry", "-rdynamic"]
            ),
            *opt,
            f"-femit-bin={out}",
            str(rel),
        ],
        cwd=project.root,
        env=_zig_env(project.root),
    )


def rust_target_installed(rustc: str, target: str = "wasm32-unknown-unknown") -> bool:
    """Whether the Rust toolchain has the standard library for ``target``."""
    proc = subprocess.run(
        [rustc, "--print", "sysroot"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return False
    return (Path(proc.stdout.strip()) / "lib" / "rustlib" / target).is_dir()


def compile_rust(project: Project, out: Path, *, release: bool) -> None:
    cargo = shutil.which("cargo")
    rustc = shutil.which("rustc")
    if cargo is None or rustc is None:
        raise BuildError(
            "Rust is not installed: cargo is not on PATH",
            hint="install Rust from https://rustup.rs, or use --template c|zig|wat",
        )
    rust_target = RUST_WASI_TARGET if is_wasi_source(project) else RUST_TARGET
    if not rust_target_installed(rustc, rust_target):
        raise BuildError(
            f"the Rust {rust_target} target is not installed",
            hint=f"run `rustup target add {rust_target}`, then `vudo build` again",
        )
    argv = [cargo, "build", "--quiet", "--target", rust_target]
    if release:
        argv.append("--release")
    _run_compiler(argv, cwd=project.root)
    import tomllib  # lazy: only for Rust projects

    crate = tomllib.loads((project.root / "Cargo.toml").read_text("utf-8"))["package"]["name"]
    built = (
        project.root
        / "target"
        / rust_target
        / ("release" if release else "debug")
        / f"{crate.replace('-', '_')}.wasm"
    )
    if not built.is_file():
        raise BuildError(
            f"cargo did not produce {built}",
            hint='Cargo.toml needs crate-type = ["cdylib"] (or a [[bin]] for src/main.rs)',
        )
    shutil.copyfile(built, out)


def build_project(
    path: Path,
    *,
    release: bool = False,
    progress: Progress = no_progress,
    home: Path | None = None,
    locked: bool = False,
) -> BuildResult:
    """Compile the project at ``path``; BuildError (exit 7) when anything fails.

    Capability errors (an import whose capability the manifest does not declare) fail the
    build; declared-but-unused capabilities come back as warnings. With ``home``, a
    project with dependencies has them resolved first and ``spirit.lock`` written
    (DependencyConflictError, exit 6, when they cannot all be satisfied; with ``locked``
    when they would not reproduce the existing lock exactly).

    Incremental: when the inputs (sources, manifest, lock, toolchain, profile, vudo
    version) and the output are what the last build of this profile recorded, nothing is
    compiled and the result says ``up_to_date``. Debug builds write
    ``target/<name>.wasm``, release builds ``target/release/<name>.wasm``.
    """
    started = time.perf_counter()
    project = open_project(path)
    lockfile = None
    if home is not None and project.manifest.dependencies:
        # lazy: resolvelib and tomlkit only for a project with dependencies
        from vudo.project.dependencies import lock_project

        progress("resolving dependencies")
        lockfile = lock_project(project.root, home=home, locked=locked)
    out = wasm_path(project.root, project.name, release=release)
    previous = current_build(project.root, release=release)
    if previous is not None:
        return BuildResult(
            root=project.root,
            name=project.name,
            language=project.language,
            wasm_path=out,
            size=len(previous.data),
            release=release,
            seconds=time.perf_counter() - started,
            info=ModuleInfo(previous.imports, previous.exports),
            warnings=tuple(CapabilityProblem(m, h, False) for m, h in previous.warnings),
            lockfile=lockfile,
            up_to_date=True,
        )
    inputs = input_digest(project.root, release=release)
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp_path(project.root, release=release).unlink(missing_ok=True)
    tmp = out.with_suffix(".wasm.tmp")
    progress(f"compiling {project.source.relative_to(project.root)} ({project.language})")
    try:
        if project.language == "wat":
            compile_wat(project, tmp)
        elif project.language == "c":
            compile_c(project, tmp, release=release)
        elif project.language == "zig":
            compile_zig(project, tmp, release=release)
        else:
            compile_rust(project, tmp, release=release)
        data = tmp.read_bytes()
        info = inspect_module(
            data,
            source=str(project.source.relative_to(project.root)),
            capabilities=project.manifest.capabilities,
        )
        progress("checking imports against capabilities")
        problems = lint_capabilities(info.imports, project.manifest.capabilities)
        errors = [p for p in problems if p.error]
        if errors:
            more = f" (and {len(errors) - 1} more: see `vudo check`)" if len(errors) > 1 else ""
            raise BuildError(errors[0].message + more, hint=errors[0].hint)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    warnings = tuple(p for p in problems if not p.error)
    if inputs is not None:
        m = project.manifest
        write_stamp(
            project.root,
            BuildStamp(
                inputs,
                project.name,
                out,
                data,
                tuple(c.value for c in m.capabilities),
                m.pricing.to_dict() if m.pricing is not None else None,
                info.imports,
                info.exports,
                tuple((w.message, w.hint) for w in warnings),
                m.directories,
            ),
            release=release,
        )
    return BuildResult(
        root=project.root,
        name=project.name,
        language=project.language,
        wasm_path=out,
        size=len(data),
        release=release,
        seconds=time.perf_counter() - started,
        info=info,
        warnings=warnings,
        lockfile=lockfile,
    )
