"""Process time of ``vudo run`` against a bare wasmtime-py script, and of ``vudo search``
against a bare SQLite query.

Both runs execute the same module (examples/hello/src/main.wat) in a fresh Python process: the
baseline imports wasmtime, compiles the WAT, links the two host functions as plain Python
callables and calls ``main``; vudo does all of that plus argument parsing, the module
cache, capability grants, fuel metering, the epoch monitor and the receipt. The ratio is
what a user pays for the sandbox on every command-line run. Target: at most 1.5x, for the
loose ``.wat`` and for the project directory (``vudo run examples/hello``, the README's
quick start: its manifest read, staleness checked, its declared capabilities granted).
``vudo search`` (the local store's index) is compared with a process that opens the same
SQLite file and runs one query. Target: at most 2x.

Run: ``.venv/bin/python benches/cli.py [--runs N]`` (VUDO_HOME is a temp dir).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import sized

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello" / "src" / "main.wat"

BASELINE = """
import time, wasmtime
engine = wasmtime.Engine()
store = wasmtime.Store(engine)
module = wasmtime.Module(engine, open({path!r}).read())
linker = wasmtime.Linker(engine)
i64 = wasmtime.ValType.i64()
i32 = wasmtime.ValType.i32()
linker.define_func("vudo", "host_time_now", wasmtime.FuncType([], [i64]),
                   lambda: time.time_ns())
def host_log(caller, level, ptr, length):
    memory = caller["memory"]
    data = bytes(memory.read(caller, ptr, ptr + length))
    print(data.decode())
    return 0
linker.define_func("vudo", "host_log", wasmtime.FuncType([i32, i32, i32], [i32]), host_log,
                   access_caller=True)
instance = linker.instantiate(store, module)
print(instance.exports(store)["main"](store))
"""


SQLITE_BASELINE = """
import sqlite3
conn = sqlite3.connect({path!r})
print(conn.execute("SELECT name, version FROM packages WHERE name LIKE ?", ("%hello%",))
      .fetchall())
"""


BREAKDOWN = """
import time
t0 = time.perf_counter()
import io, contextlib, sys
from vudo.cli.app import run_cli
t1 = time.perf_counter()
import vudo.cli.commands, vudo.project.runner
t2 = time.perf_counter()
import wasmtime
t3 = time.perf_counter()
import vudo.engine.sandbox, vudo.engine.engine  # (grants load only for runs with grants)
t4 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    run_cli(["run", {path!r}])
t5 = time.perf_counter()
print(*(f"{{1000 * x:.2f}}" for x in (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))
"""


#: Modules that once cost a plain ``vudo run`` several ms each and are no longer needed on
#: its path; the bench names any that creep back.
HEAVY = (
    "dataclasses",
    "inspect",
    "nacl",
    "shutil",
    "tempfile",
    "json",
    "sqlite3",
    "vudo.engine.grants",
    "vudo.pkg",
    "textual",
    "tomlkit",
    "semantic_version",
    "importlib.metadata",
    "vudo.project.build",
)

IMPORTS = """
import io, contextlib, sys
from vudo.cli.app import run_cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    run_cli({argv!r})
print(*sorted(m for m in {heavy!r} if m in sys.modules))
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=sized(15, 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["VUDO_HOME"] = str(Path(tmp) / "home")
        # Bytecode caching on, as for an installed vudo (pip compiles site-packages, so
        # the wasmtime baseline already has it); the cache goes to the temp dir.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        src = str(ROOT / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        baseline_argv = [sys.executable, "-c", BASELINE.format(path=str(HELLO))]
        plain = [sys.executable, "-m", "vudo", "run", str(HELLO)]
        granted = [*plain, "--grant", "actuator_log", "--grant", "sensor_time"]
        project = Path(tmp) / "hello"
        shutil.copytree(
            HELLO.parent.parent, project, ignore=shutil.ignore_patterns("target", "dist", "doc")
        )
        in_project = [sys.executable, "-m", "vudo", "run", str(project)]
        vudo = [sys.executable, "-m", "vudo"]
        # the copy is a folder the user did not write: trust it once, as the README says
        subprocess.run([*vudo, "trust", str(project)], env=env, check=True, capture_output=True)
        # a store with the example installed, for `vudo search`
        subprocess.run(
            [*vudo, "summon", str(project), "--yes"], env=env, check=True, capture_output=True
        )
        index = next(Path(env["VUDO_HOME"]).rglob("index.sqlite3"))
        sqlite_argv = [sys.executable, "-c", SQLITE_BASELINE.format(path=str(index))]
        runs = {
            "base": baseline_argv,
            "wat": plain,
            "granted": granted,
            "project": in_project,
            "sqlite": sqlite_argv,
            "search": [*vudo, "search", "hello"],
        }
        # warm up: OS file cache, vudo's key pair, the build and the compiled-module cache
        for argv in runs.values():
            timed(argv, env)
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.runs):  # interleaved so background load hits all alike
            for key, argv in runs.items():
                times[key].append(timed(argv, env))
        med = {k: statistics.median(v) for k, v in times.items()}
        b, q = med["base"], med["sqlite"]
        print(f"bare wasmtime-py script               median {b * 1000:7.1f} ms  (n={args.runs})")
        print(
            f"vudo run hello.wat                    median {med['wat'] * 1000:7.1f} ms  "
            f"ratio {med['wat'] / b:.2f}x  (target <= 1.5x)"
        )
        print(
            f"vudo run hello.wat --grant x2 (signed) median {med['granted'] * 1000:7.1f} ms  "
            f"ratio {med['granted'] / b:.2f}x"
        )
        print(
            f"vudo run <project dir> (quick start)  median {med['project'] * 1000:7.1f} ms  "
            f"ratio {med['project'] / b:.2f}x  (target <= 1.5x)"
        )
        print(f"bare sqlite3 query process            median {q * 1000:7.1f} ms")
        print(
            f"vudo search hello                     median {med['search'] * 1000:7.1f} ms  "
            f"ratio {med['search'] / q:.2f}x  (target <= 2x)"
        )
        # where vudo's time goes, measured inside one warm process
        breakdown = [sys.executable, "-c", BREAKDOWN.format(path=str(HELLO))]
        rows = [
            subprocess.run(
                breakdown, env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            for _ in range(sized(7, 1))
        ]
        names = [
            "vudo.cli import",
            "project.runner",
            "wasmtime",
            "vudo.engine",
            "run (load, sandbox, call, receipt)",
        ]
        medians = [statistics.median(float(r[k]) for r in rows) for k in range(len(names))]
        print(
            "breakdown (ms): "
            + ", ".join(f"{n} {m:.1f}" for n, m in zip(names, medians, strict=True))
        )
        for label, argv in (
            ("a plain run", ["run", str(HELLO)]),
            ("a project run", ["run", str(project)]),
            ("vudo search", ["search", "hello"]),
        ):
            imports = [sys.executable, "-c", IMPORTS.format(argv=argv, heavy=HEAVY)]
            heavy = subprocess.run(
                imports, env=env, check=True, capture_output=True, text=True
            ).stdout.split()
            print(f"heavy modules {label} imports: " + (", ".join(heavy) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
