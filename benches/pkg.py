"""Package-core benchmarks: store search/install latency and pack+sign+verify throughput.

Run: ``python benches/pkg.py`` (about 1-2 minutes). Prints, for local stores of 1,000,
10,000 and 100,000 Spirit versions, the median search latency of several queries and the
median install latency of a real signed package; and the throughput of pack, sign and
verify of a 100 MB module as a ratio of a plain streaming ``hashlib.sha256`` of the same
file (measured in this process). Then runs PKG-META's ``benches/pkg_resolve.py`` if present.

The big stores are filled through ``LocalStore.bulk_index`` (index rows only, no package
files: installing 100,000 real packages would take minutes); the installs measured on
top of them are real (copy, verify, commit).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from semantic_version import Version  # noqa: E402

from vudo.capabilities import Capability  # noqa: E402
from vudo.pkg.archive import pack  # noqa: E402
from vudo.pkg.keys import KeyPair, generate_keypair  # noqa: E402
from vudo.pkg.manifest import Manifest  # noqa: E402
from vudo.pkg.signing import pack_and_sign, sign_package, verify_package  # noqa: E402
from vudo.pkg.store import IndexEntry, LocalStore  # noqa: E402

WORDS = ["telemetry", "weather", "ledger", "chat", "storage", "oracle", "clock", "dice",
         "mirror", "router", "beacon", "vault", "counter", "timer", "echo", "relay",
         "gossip", "market", "auction", "escrow", "lottery", "poll", "quorum", "cache",
         "indexer", "crawler", "parser", "compiler", "renderer", "scheduler"]
CAPS = [c for c in Capability if c is not Capability.UNRESTRICTED]
VERSIONS_PER_NAME = 10


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def synthetic_entries(start: int, count: int, author: str) -> list[IndexEntry]:
    entries = []
    for i in range(start, start + count):
        n, v = divmod(i, VERSIONS_PER_NAME)
        words = f"{WORDS[n % len(WORDS)]} {WORDS[(n * 7 + 3) % len(WORDS)]}"
        caps = (CAPS[n % len(CAPS)], CAPS[(n * 3 + 1) % len(CAPS)])
        m = Manifest(name=f"spirit-{n:06d}", version=Version(major=1, minor=v, patch=0),
                     author=author, description=f"Synthetic spirit {n}: {words} service",
                     capabilities=caps)
        entries.append(IndexEntry(m, digest=hashlib.sha256(f"{i}".encode()).hexdigest(),
                                  signer=author, size=1000, installed_at=0.0))
    return entries


def make_package(tmp: Path, name: str, version: str, kp: KeyPair, module: bytes) -> Path:
    root = tmp / f"{name}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{kp.public_hex}"\n'
        'description = "A real package installed during the benchmark"\n'
        'capabilities = ["sensor_time", "actuator_log"]\n')
    (root / "module.wasm").write_bytes(module)
    out = pack(root / "spirit.toml", root / "module.wasm", root / f"{name}.spirit")
    sign_package(out, kp)
    return out


def bench_store(tmp: Path) -> None:
    kp = generate_keypair()
    module = b"\x00asm\x01\x00\x00\x00" + os.urandom(16 * 1024)
    packages = [make_package(tmp / "pkgs", f"bench-real-{i}", "1.0.0", kp, module)
                for i in range(3 * 8)]
    print("store latency (index bulk-filled with synthetic rows; installs are real packages,"
          " 16 KiB module)")
    header = (f"{'versions':>9} {'fill s':>7} {'exact':>7} {'prefix':>7} {'substr':>7} "
              f"{'descr':>7} {'+cap':>7} {'broad':>7} {'get':>7} {'install':>8}  (ms, median)")
    print(header)
    results: dict[int, dict[str, float]] = {}
    with LocalStore(tmp / "store") as store:
        filled = 0
        for size_index, target in enumerate((1_000, 10_000, 100_000)):
            t = time.perf_counter()
            while filled < target:
                step = min(20_000, target - filled)
                store.bulk_index(synthetic_entries(filled, step, kp.public_hex))
                filled += step
            fill = time.perf_counter() - t
            probe = f"spirit-{(target // VERSIONS_PER_NAME) // 2:06d}"
            row = {
                "exact": median_ms(lambda p=probe: store.search(p), 25),
                "prefix": median_ms(lambda p=probe: store.search(p[:-1]), 25),
                "substr": median_ms(lambda p=probe: store.search(p[-5:]), 25),
                "descr": median_ms(lambda: store.search("auction"), 25),
                "+cap": median_ms(lambda: store.search("auction", capability="sensor_time"), 25),
                "broad": median_ms(lambda: store.search("spirit", limit=20), 5),
                "get": median_ms(lambda p=probe: store.get(p, "^1.3"), 50),
            }
            batch = packages[size_index * 8:(size_index + 1) * 8]
            installs = []
            for p in batch:
                t = time.perf_counter()
                store.install(p)
                installs.append(time.perf_counter() - t)
            row["install"] = statistics.median(installs) * 1000
            results[target] = row
            print(f"{target:>9,} {fill:>7.1f} " + " ".join(
                f"{row[k]:>7.2f}" for k in ("exact", "prefix", "substr", "descr", "+cap",
                                            "broad", "get")) + f" {row['install']:>8.2f}")
    small, big = results[1_000], results[100_000]
    print("growth 1,000 -> 100,000 versions (store grew 100x): " + ", ".join(
        f"{k} {big[k] / small[k]:.1f}x" for k in ("exact", "prefix", "descr", "install")))
    print(f"target: search at 100,000 under 50 ms -> exact {big['exact']:.2f} ms, "
          f"description {big['descr']:.2f} ms "
          f"({'met' if max(big['exact'], big['descr'], big['prefix']) < 50 else 'MISSED'}); "
          f"'broad' = a query matching every row (top 20 of 10,000 names)")


def stream_sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def bench_throughput(tmp: Path) -> None:
    size = 100 * 1024 * 1024
    kp = generate_keypair()
    src = tmp / "big"
    src.mkdir()
    (src / "spirit.toml").write_text(
        f'name = "big"\nversion = "1.0.0"\nauthor = "{kp.public_hex}"\n')
    module = src / "module.wasm"
    module.write_bytes(b"\x00asm\x01\x00\x00\x00" + os.urandom(size - 8))
    out = tmp / "big.spirit"
    base, t_pack, t_sign, t_verify, t_one = [], [], [], [], []
    for _ in range(3):
        t = time.perf_counter()
        stream_sha256(module)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        pack(src / "spirit.toml", module, out)
        t_pack.append(time.perf_counter() - t)
        t = time.perf_counter()
        sign_package(out, kp)
        t_sign.append(time.perf_counter() - t)
        t = time.perf_counter()
        verified = verify_package(out)
        t_verify.append(time.perf_counter() - t)
        assert len(verified.module) == size
        del verified
        t = time.perf_counter()
        pack_and_sign(src / "spirit.toml", module, tmp / "one.spirit", kp)
        t_one.append(time.perf_counter() - t)
    b, p, s, v, one = (min(x) for x in (base, t_pack, t_sign, t_verify, t_one))
    mb = size / 1e6
    print("\npack+sign+verify of a 100 MB module (best of 3)")
    print(f"  baseline streaming hashlib.sha256 of the file: {b * 1000:7.1f} ms "
          f"({mb / b:7.0f} MB/s)")
    for label, t, what in (("pack", p, "read + CRC-32 + write"),
                           ("sign", s, "read + SHA-256 + CRC-32, kernel copy, atomic rename"),
                           ("verify", v, "read into memory + SHA-256 + Ed25519")):
        print(f"  {label:<7} {t * 1000:7.1f} ms ({mb / t:7.0f} MB/s)  ratio {b / t:4.2f}"
              f"   [{what}]")
    print(f"  {'pack_and_sign':<7} {one * 1000:7.1f} ms ({mb / one:7.0f} MB/s)  ratio "
          f"{b / one:4.2f}   [one pass: read + SHA-256 + CRC-32 + write]")
    total = p + s + v
    print(f"  pack, sign, verify in sequence: {total * 1000:.1f} ms, ratio {b / total:.2f}; "
          f"pack_and_sign + verify: {(one + v) * 1000:.1f} ms, ratio {b / (one + v):.2f} "
          "(target 0.7)")


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vudo-bench-pkg-") as tmp:
        bench_store(Path(tmp))
        bench_throughput(Path(tmp))
    resolve = ROOT / "benches" / "pkg_resolve.py"
    if resolve.exists():
        print("\n--- benches/pkg_resolve.py (PKG-META) ---", flush=True)
        subprocess.run([sys.executable, str(resolve)], check=False)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
