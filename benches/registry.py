"""OCI registry throughput and remote search latency against a loopback CNCF Distribution.

Starts ``docker-registry`` (htpasswd Basic auth, storage in a temp dir) as the tests do,
then measures:

* push: ``OciRegistry.publish`` of a signed 100 MB package (verify the signature, hash,
  HEAD checks, upload, manifest) against a bare httpx monolithic upload of the same bytes
  (POST + streamed PUT) to another repository; the ratio is bare time / vudo time
  (target at least 0.7);
* pull: ``OciRegistry.fetch`` into an empty cache (manifest, streamed download with the
  layer and every member hashed as it arrives, then the signature checked from those
  digests) against a bare httpx streamed GET of the blob into a file; same ratio;
* install: the whole ``vudo install NAME@=V`` into a fresh home (resolution, the pull
  checked as it arrives, the file moved into the store and synced, the index, signed
  grants), for reference against the same bare GET;
* search: ``browse`` (what ``vudo search --available`` runs) over a registry holding
  1,000 Spirits: cold (catalog, 1,000 tag lists and manifests, fetched 16 at a time) and
  warm (the local cache within its freshness bound; target under 300 ms), plus the
  whole ``vudo search --available`` process, warm, for reference.

Run: ``.venv/bin/python benches/registry.py [--quick]`` (``--quick``: 10 MB, 100 Spirits).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import sized

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from oci_helpers import REGISTRY_PASSWORD, REGISTRY_USER, start_registry  # noqa: E402
from vudo.pkg.archive import pack  # noqa: E402
from vudo.pkg.config import save_credentials  # noqa: E402
from vudo.pkg.keys import generate_keypair, save_keypair  # noqa: E402
from vudo.pkg.oci import Credentials  # noqa: E402
from vudo.pkg.registry import OciRegistry  # noqa: E402
from vudo.pkg.signing import sign_package  # noqa: E402
from vudo.project.consent import decide_consent  # noqa: E402
from vudo.project.installing import install  # noqa: E402

KEY = generate_keypair(lambda n: b"\x07" * n)
WORDS = ["telemetry", "weather", "ledger", "chat", "storage", "oracle", "clock", "dice"]


def make_package(work: Path, name: str, version: str, module_bytes: int) -> Path:
    root = work / f"{name}-{version}"
    root.mkdir(parents=True, exist_ok=True)
    words = " ".join(WORDS[(hash(name) + i) % len(WORDS)] for i in range(3))
    (root / "spirit.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nauthor = "{KEY.public_hex}"\n'
        f'description = "a {words} Spirit"\ncapabilities = ["sensor_time"]\n'
    )
    module = root / "module.wasm"
    with open(module, "wb") as f:
        f.write(b"\x00asm\x01\x00\x00\x00")
        if module_bytes:
            # one custom section of incompressible bytes: section id 0, LEB128 size, name
            payload = b"\x04blob" + os.urandom(module_bytes)
            size, leb = len(payload), bytearray()
            while True:
                byte = size & 0x7F
                size >>= 7
                leb.append(byte | (0x80 if size else 0))
                if not size:
                    break
            f.write(b"\x00" + bytes(leb) + payload)
    out = pack(root / "spirit.toml", module, root / f"{name}-{version}.spirit")
    sign_package(out, KEY)
    return out


def bare_push(base: str, repo: str, path: Path, auth: tuple[str, str]) -> float:
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    with httpx.Client(auth=auth, timeout=60) as client:
        started = time.perf_counter()
        r = client.post(f"{base}/v2/{repo}/blobs/uploads/")
        location = httpx.URL(base).join(r.headers["location"])

        def body() -> object:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        r = client.put(
            location.copy_merge_params({"digest": digest}),
            content=body(),
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        return time.perf_counter() - started


def bare_pull(base: str, repo: str, digest: str, dest: Path, auth: tuple[str, str]) -> float:
    with httpx.Client(auth=auth, timeout=60) as client:
        started = time.perf_counter()
        with client.stream("GET", f"{base}/v2/{repo}/blobs/{digest}") as r, open(dest, "wb") as f:
            for chunk in r.iter_raw(1 << 20):
                f.write(chunk)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 MB package, 100 Spirits")
    parser.add_argument("--runs", type=int, default=sized(3, 1), help="transfers timed (best of)")
    parser.add_argument(
        "--only", choices=["transfers", "search"], help="run one half of the benchmark"
    )
    args = parser.parse_args()
    megabytes = 10 if args.quick else sized(100, 1)
    spirits = 100 if args.quick else sized(1000, 10)

    with tempfile.TemporaryDirectory(prefix="vudo-bench-registry-") as tmp:
        work = Path(tmp)
        server = start_registry(work / "registry")
        try:
            base = f"http://{server.host}"
            auth = (REGISTRY_USER, REGISTRY_PASSWORD)
            creds = Credentials(REGISTRY_USER, REGISTRY_PASSWORD)

            # ---------------------------------------------------------- push and pull
            print(f"push / pull of a {megabytes} MB package (best of {args.runs})")
            vudo_push, vudo_pull, raw_push, raw_pull, vudo_install = [], [], [], [], []
            for run in range(args.runs if args.only != "search" else 0):
                pkg = make_package(work / "big", "big", f"1.0.{run}", megabytes << 20)
                digest = "sha256:" + hashlib.sha256(pkg.read_bytes()).hexdigest()
                raw_push.append(bare_push(base, f"bare/b{run}", pkg, auth))
                with OciRegistry(
                    server.url("bench"), cache_dir=work / f"c{run}", credentials=creds
                ) as reg:
                    started = time.perf_counter()
                    reg.publish(pkg)
                    vudo_push.append(time.perf_counter() - started)
                raw_pull.append(bare_pull(base, "bench/big", digest, work / f"raw{run}", auth))
                with OciRegistry(
                    server.url("bench"), cache_dir=work / f"p{run}", credentials=creds
                ) as reg:
                    started = time.perf_counter()
                    reg.fetch("big", f"1.0.{run}")
                    vudo_pull.append(time.perf_counter() - started)
                home = work / f"h{run}"
                home.mkdir()
                save_keypair(KEY, home / "keys")
                save_credentials(home, server.host, creds)
                started = time.perf_counter()
                install(
                    f"big@=1.0.{run}",
                    home=home,
                    consent=lambda request, root: decide_consent(request, yes=True),
                    registries=[server.url("bench")],
                )
                vudo_install.append(time.perf_counter() - started)
                (work / f"raw{run}").unlink()
                pkg.unlink()
            size_mb = megabytes * 1.048576
            for label, vudo_t, raw_t in (
                (
                    ("push", vudo_push, raw_push),
                    ("pull", vudo_pull, raw_pull),
                    ("install", vudo_install, raw_pull),
                )
                if vudo_push
                else ()
            ):
                v, r = min(vudo_t), min(raw_t)
                print(
                    f"  {label}: vudo {v * 1000:7.0f} ms ({size_mb / v:6.0f} MB/s)   bare "
                    f"httpx {r * 1000:7.0f} ms ({size_mb / r:6.0f} MB/s)   ratio "
                    f"{r / v:.2f}" + (" (target >= 0.7)" if label != "install" else "")
                )

            # ---------------------------------------------------------- search
            if args.only == "transfers":
                return 0
            print(f"search --available over {spirits} Spirits")
            small = [make_package(work / "small", f"s{i:04d}", "1.0.0", 0) for i in range(spirits)]
            started = time.perf_counter()
            with (
                OciRegistry(server.url("many"), cache_dir=work / "pub", credentials=creds) as reg,
                ThreadPoolExecutor(8) as pool,
            ):
                list(pool.map(reg.publish, small))
            print(f"  (published {spirits} in {time.perf_counter() - started:.1f} s)")

            home = work / "home"
            home.mkdir()
            save_keypair(KEY, home / "keys")
            save_credentials(home, server.host, creds)
            from vudo.project.registries import browse

            started = time.perf_counter()
            found = browse("", home=home, registries=[server.url("many")])
            cold = time.perf_counter() - started
            assert len(found) == spirits, len(found)
            warm = []
            for _ in range(sized(5, 1)):
                started = time.perf_counter()
                found = browse("weather", home=home, registries=[server.url("many")])
                warm.append(time.perf_counter() - started)
            print(
                f"  cold {cold * 1000:7.0f} ms   warm (cached) median "
                f"{statistics.median(warm) * 1000:6.1f} ms (target < 300 ms)"
            )
            env = {
                **os.environ,
                "VUDO_HOME": str(home),
                "HOME": str(work),
                "PYTHONPATH": str(ROOT / "src"),
                "PYTHONPYCACHEPREFIX": str(work / "pyc"),
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            procs = []
            for _ in range(sized(4, 2)):  # the first run compiles vudo's bytecode: not counted
                started = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "vudo",
                        "search",
                        "--available",
                        "weather",
                        "--registry",
                        server.url("many"),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                procs.append(time.perf_counter() - started)
            print(
                f"  `vudo search --available weather` process, warm: median "
                f"{statistics.median(procs[1:]) * 1000:6.0f} ms"
            )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
