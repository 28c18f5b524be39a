"""Generated-module fuzz: random valid modules through `vudo run`, each in a child process.

Run: ``python benches/fuzz_modules.py --count 500 --seed 1``. binaryen's ``wasm-opt -ttf``
(Debian package ``binaryen``) turns random bytes into a valid module using the features
it is given (SIMD, GC, exception handling, tail calls, memory64, ...); its
"fuzzing-support" function imports are turned into defined functions that return zeros in
most modules (:func:`stub_imports`; binaryen's own ``--remove-imports`` breaks modules that
take a ``ref.func`` of an import), so they get past the import check and actually run.
Each module runs as ``vudo run M.wasm -f F -- 0 ..`` for one of its exported functions,
under a small fuel and time budget.

Prints how many modules it tried, the exit-code histogram, and every module whose child
died by a signal or exited with an undocumented code (those are saved under --keep DIR).
Exits 1 if there was any. tests/engine/test_fuzz_modules.py runs a small seeded batch.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from _common import sized

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from vudo.engine.binary import _Reader, _types, scan  # noqa: E402  (after the path is set)
from vudo.errors import EXIT_CODES, VudoError  # noqa: E402

DOCUMENTED = frozenset(EXIT_CODES)
RUNNABLE = [
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-bulk-memory",
    "--enable-multivalue",
]
#: Feature sets, used in turn. The first has everything (threads too: shared memory is
#: refused at instantiation) and keeps the fuzzing imports (refused by the import check).
#: binaryen 108 (Debian 12) writes reference types and GC in their pre-standard encoding,
#: which wasmtime rejects as invalid; those sets still check that refusing is clean.
FEATURES: list[tuple[list[str], bool]] = [
    (["-all"], False),
    ([*RUNNABLE], True),
    ([*RUNNABLE, "--enable-simd"], True),
    ([*RUNNABLE, "--enable-exception-handling", "--enable-tail-call"], True),
    (["-all", "--disable-threads"], True),
    ([*RUNNABLE, "--enable-simd", "--enable-relaxed-simd"], True),
    ([*RUNNABLE, "--enable-memory64", "--enable-extended-const"], True),
    ([*RUNNABLE, "--enable-reference-types", "--enable-gc", "--enable-simd"], True),
    ([*RUNNABLE, "--enable-tail-call", "--enable-simd"], True),
]
ZERO = {"i32": "0", "i64": "0", "f32": "0", "f64": "0"}


class Outcome(NamedTuple):
    index: int
    wasm: Path
    argv: tuple[str, ...]
    code: int  # negative: killed by that signal
    stderr: str


def generate(seed: int, index: int, workdir: Path) -> tuple[Path, list[str]] | None:
    """Module ``index`` of run ``seed`` and the `vudo run` arguments to call it with."""
    rng = random.Random(seed * 1_000_003 + index)
    features, remove_imports = FEATURES[index % len(FEATURES)]
    raw = workdir / f"m{index}.dat"
    wasm = workdir / f"m{index}.wasm"
    raw.write_bytes(rng.randbytes(rng.randint(64, 6000)))
    cmd = ["wasm-opt", str(raw), "-ttf", *features, "-o", str(wasm)]
    made = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if made.returncode != 0 or not wasm.exists():
        return None
    if remove_imports:
        wasm.write_bytes(stub_imports(wasm.read_bytes()))
    argv: list[str] = []
    try:
        shape = scan(wasm.read_bytes())
    except VudoError:
        return wasm, argv  # the engine refuses it too; still run it
    funcs = [e for e in shape.exports if e.kind == "func"]
    # binaryen's hang-limit helper does nothing interesting; call the generated code
    funcs = [e for e in funcs if e.name != "hangLimitInitializer"] or funcs
    if funcs:
        chosen = funcs[rng.randrange(len(funcs))]
        argv = ["-f", chosen.name, "--", *(ZERO.get(p, "0") for p in chosen.params)]
    return wasm, argv


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


#: The zero value of each value type the stubs return, as a constant instruction.
_ZERO_CONST = {
    "i32": b"\x41\x00",
    "i64": b"\x42\x00",
    "f32": b"\x43" + bytes(4),
    "f64": b"\x44" + bytes(8),
    "v128": b"\xfd\x0c" + bytes(16),
    "funcref": b"\xd0\x70",
    "anyref": b"\xd0\x6f",
}


def stub_imports(wasm: bytes) -> bytes:
    """``wasm`` with every function import turned into a defined function returning zeros.

    The stubs become the first defined functions, so every function index stays the same.
    A module whose imports cannot be stubbed this way is returned unchanged.
    """
    try:
        sections: list[tuple[int, bytes]] = []
        r = _Reader(wasm, 8, len(wasm))
        while r.pos < r.end:
            sid, size = r.byte(), r.uleb()
            sections.append((sid, wasm[r.pos : r.pos + size]))
            r.skip(size)
        by_id = {sid: body for sid, body in sections if sid}
        sigs = _types(_Reader(by_id[1], 0, len(by_id[1]))) if 1 in by_id else []
        imports = by_id.get(2)
        if imports is None:
            return wasm
        r = _Reader(imports, 0, len(imports))
        stubs: list[int] = []
        for _ in range(r.uleb()):
            r.name(), r.name()
            if r.byte() != 0:
                return wasm  # a table, memory, global or tag import: leave it to refusal
            stubs.append(r.uleb())
        bodies = []
        for index in stubs:
            sig = sigs[index]
            if sig is None or any(t not in _ZERO_CONST for t in sig[1]):
                return wasm
            code = b"\x00" + b"".join(_ZERO_CONST[t] for t in sig[1]) + b"\x0b"
            bodies.append(_uleb(len(code)) + code)
        funcs = by_id.get(3, b"\x00")
        fr = _Reader(funcs, 0, len(funcs))
        defined = fr.uleb()
        new_funcs = _uleb(len(stubs) + defined) + b"".join(map(_uleb, stubs)) + funcs[fr.pos :]
        code_sec = by_id.get(10, b"\x00")
        cr = _Reader(code_sec, 0, len(code_sec))
        cr.uleb()
        new_code = _uleb(len(stubs) + defined) + b"".join(bodies) + code_sec[cr.pos :]
        out = bytearray(wasm[:8])
        for sid, body in sections:
            if sid == 2:
                continue
            if sid == 3:
                body = new_funcs
            elif sid == 10:
                body = new_code
            out += bytes([sid]) + _uleb(len(body)) + body
            if sid == 1 and 3 not in by_id:  # no function section yet: add one
                out += bytes([3]) + _uleb(len(new_funcs)) + new_funcs
        if 10 not in by_id:
            return wasm
        return bytes(out)
    except Exception:
        return wasm


def run(wasm: Path, argv: list[str], home: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), VUDO_HOME=str(home), HOME=str(home.parent))
    env.pop("VUDO_DEBUG", None)
    own, guest = (
        (argv[: argv.index("--")], argv[argv.index("--") :]) if "--" in argv else (argv, [])
    )
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "vudo",
            "run",
            str(wasm),
            "--fuel",
            "20000000",
            "--timeout",
            "5",
            *own,
            *guest,
        ],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
        env=env,
    )
    return child.returncode, child.stderr


def fuzz(count: int, seed: int, workdir: Path) -> Iterator[Outcome]:
    home = workdir / "home" / ".vudo"
    home.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        made = generate(seed, index, workdir)
        if made is None:
            continue
        wasm, argv = made
        code, stderr = run(wasm, argv, home)
        yield Outcome(index, wasm, tuple(argv), code, stderr)


def bad(outcome: Outcome) -> bool:
    """Killed by a signal, an undocumented exit code, or a traceback."""
    return (
        outcome.code < 0
        or outcome.code not in DOCUMENTED
        or "Traceback" in outcome.stderr
        or "internal error" in outcome.stderr
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=sized(200, 3), help="modules to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, default=Path("fuzz-failures"), help="where to copy modules that failed"
    )
    args = parser.parse_args()
    if shutil.which("wasm-opt") is None:
        print("wasm-opt not found: apt-get install binaryen", file=sys.stderr)
        return 2
    histogram: Counter[int] = Counter()
    failures: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="vudo-fuzz-") as tmp:
        for outcome in fuzz(args.count, args.seed, Path(tmp)):
            histogram[outcome.code] += 1
            if bad(outcome):
                failures.append(outcome)
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(outcome.wasm, args.keep / f"seed{args.seed}-{outcome.wasm.name}")
                print(
                    f"FAIL module {outcome.index} (exit {outcome.code}) "
                    f"{' '.join(outcome.argv)}: {outcome.stderr.strip()[-300:]}"
                )
    tried = sum(histogram.values())
    print(f"tried {tried} modules (seed {args.seed}, {args.count} requested)")
    for code, n in sorted(histogram.items()):
        name = EXIT_CODES.get(code, "UNDOCUMENTED" if code >= 0 else f"signal {-code}")
        print(f"  exit {code:>3}  {n:>5}  {name}")
    print(f"{len(failures)} failures" + (f" (saved under {args.keep})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
