"""Hostile input through the real command line: each gets one ``error:`` line with a
hint and the documented exit code, never a crash, a traceback or a silent misreading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]


def _wat(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.wat"
    path.write_text(f'(module (memory (export "memory") 1) {body})')
    return path


def test_v128_in_an_exported_or_imported_signature_is_invalid_input(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    # wasmtime's C API aborts the process when asked for such a signature's types.
    export = _wat(tmp_path, "simd", '(func (export "main") (param v128))')
    result = _wat(
        tmp_path, "simdr", '(func (export "main") (result v128) (v128.const i32x4 1 2 3 4))'
    )
    imported = tmp_path / "simdi.wat"
    imported.write_text(
        '(module (import "vudo" "host_log" (func (param v128))) '
        '(memory (export "memory") 1) (func (export "main")))'
    )
    for path, where in (
        (export, 'export "main"'),
        (result, 'export "main"'),
        (imported, 'import "vudo" "host_log"'),
    ):
        r = vudo_cli("run", str(path))
        assert r.code == 3, r.stderr
        assert where in r.error_line and "v128" in r.error_line
        assert "(hint: " in r.error_line


def test_v128_inside_the_module_still_runs(vudo_cli: Vudo, tmp_path: Path) -> None:
    path = _wat(
        tmp_path,
        "inner",
        '(func $i (param v128)) (func (export "main") (result i32) '
        "(v128.const i64x2 0 0) call $i i32.const 3)",
    )
    r = vudo_cli("run", str(path), "-q")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "3"


def test_reference_parameter_is_refused_before_counting_arguments(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    path = _wat(tmp_path, "ref", '(func (export "main") (param externref))')
    r = vudo_cli("run", str(path))
    assert r.code == 2
    assert "cannot pass" in r.error_line and "1.5" not in r.error_line


@pytest.fixture
def installed(vudo_cli: Vudo, tmp_path: Path) -> str:
    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    assert vudo_cli("summon", str(root / "dist" / "demo-0.1.0.spirit"), "--yes").code == 0
    return "demo"


@pytest.mark.parametrize("expires", ["99999999999d", "9999999999999w", "0d", "0s"])
def test_grant_expiry_out_of_range_is_refused_and_stores_nothing(
    vudo_cli: Vudo, installed: str, expires: str
) -> None:
    r = vudo_cli("grant", installed, "sensor_time", "--expires", expires)
    assert r.code == 2, r.stderr
    assert "expiry" in r.error_line and "(hint: " in r.error_line
    info = vudo_cli("info", installed)  # used to crash on the stored year-273792727 grant
    assert info.code == 0, info.stderr
    assert "expires" not in info.stdout


@pytest.mark.parametrize(
    "words", [("--expires", "-5d"), ("--expires=-5d",), ("--expires", "-1h"), ("--expires", "0d")]
)
def test_grant_negative_or_zero_duration_is_a_usage_error(
    vudo_cli: Vudo, installed: str, words: tuple[str, ...]
) -> None:
    # `--expires -5d` was read as an unknown option: "argument --expires: expected one
    # argument", which did not say what was wrong with the value.
    r = vudo_cli("grant", installed, "sensor_time", *words)
    assert r.code == 2, r.stderr
    assert "expected one argument" not in r.error_line
    assert "positive duration" in r.error_line and "(hint: " in r.error_line
    assert "expires" not in vudo_cli("info", installed).stdout


def test_grant_expiry_at_the_calendar_end_is_kept(vudo_cli: Vudo, installed: str) -> None:
    r = vudo_cli("grant", installed, "sensor_time", "--expires", "9999-12-31T23:59:59")
    assert r.code == 0, r.stderr
    assert "9999-12-31 23:59 UTC" in vudo_cli("info", installed).stdout


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--fuel", "99999999999999999999999999"),  # used to wrap: "fuel 99,999,984,... used"
        ("--fuel", str(2**63)),
        ("--timeout", "nan"),  # used to mean "never time out"
        ("--timeout", "inf"),
        ("--timeout", "-inf"),
    ],
)
def test_run_limits_out_of_range_are_usage_errors(
    vudo_cli: Vudo, tmp_path: Path, flag: str, value: str
) -> None:
    path = _wat(tmp_path, "m", '(func (export "main") (result i32) i32.const 7)')
    r = vudo_cli("run", str(path), flag, value)
    assert r.code == 2, r.stdout + r.stderr
    assert flag in r.error_line and "(hint: " in r.error_line
    assert r.stdout == ""


def test_run_fuel_at_the_counter_limit_runs(vudo_cli: Vudo, tmp_path: Path) -> None:
    path = _wat(tmp_path, "m", '(func (export "main") (result i32) i32.const 7)')
    r = vudo_cli("run", str(path), "--fuel", str(2**63 - 1), "--json")
    assert r.code == 0, r.stderr
    receipt = r.json()["receipt"]
    assert receipt["fuel_budget"] == 2**63 - 1 and receipt["fuel_used"] < 100


def test_pack_into_a_directory_writes_the_usual_name_there(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "demo").code == 0
    out = tmp_path / "out"
    out.mkdir()
    r = vudo_cli("pack", "-o", str(out), cwd=tmp_path / "demo")
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["demo-0.1.0.spirit"]
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    "argv", [("list",), ("keys", "show"), ("run", "m.wat"), ("summon", "x.spirit", "--yes")]
)
def test_vudo_home_that_is_a_file_is_named(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path, argv: tuple[str, ...]
) -> None:
    _wat(tmp_path, "m", '(func (export "main"))')
    home = tmp_path / "home-file"
    home.write_text("not a directory\n")
    env["VUDO_HOME"] = str(home)
    r = vudo_cli(*argv)
    assert r.code == 1, r.stderr
    assert f"the vudo home {home} is not a directory" in r.error_line
    assert "VUDO_HOME" in r.error_line
    assert home.read_text() == "not a directory\n"


@pytest.mark.parametrize("content", [b"", bytes(100), b"(module)"])
def test_wasm_file_without_the_header_is_not_called_wat(
    vudo_cli: Vudo, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(content)
    r = vudo_cli("run", str(path))
    assert r.code == 3
    assert "is not a WebAssembly module" in r.error_line
    assert "WAT" not in r.error_line


def test_huge_module_file_is_refused_before_it_is_read(vudo_cli: Vudo, tmp_path: Path) -> None:
    for name in ("big.wasm", "big.wat"):
        path = tmp_path / name
        with path.open("wb") as f:
            f.truncate(200 * 1024 * 1024)  # sparse: costs no disk
        r = vudo_cli("run", str(path))
        assert r.code == 13, r.stderr
        assert "over the" in r.error_line and "limit for a module file" in r.error_line


@pytest.mark.parametrize(
    ("command", "content", "needle"),
    [
        ("fmt", b'name = "\xff"\n', "is not UTF-8"),  # was "internal error: UnicodeDecodeError"
        ("fmt", b'name = "x"\ndescription = "' + b"x" * 1_100_000 + b'"\n', "manifest limit"),
        ("check", b'name = "x"\ndescription = "' + b"x" * 1_100_000 + b'"\n', "manifest limit"),
    ],
    ids=["fmt-not-utf8", "fmt-huge", "check-huge"],
)
def test_fmt_and_check_refuse_unreadable_manifests_and_keep_them(
    vudo_cli: Vudo, tmp_path: Path, command: str, content: bytes, needle: str
) -> None:
    (tmp_path / "spirit.toml").write_bytes(content)
    r = vudo_cli(command)
    assert r.code == 3, r.stderr
    assert needle in r.stdout + r.stderr and "(hint: " in r.error_line
    assert (tmp_path / "spirit.toml").read_bytes() == content


def test_fmt_rewrites_the_manifest_in_one_step(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "demo").code == 0
    manifest = tmp_path / "demo" / "spirit.toml"
    manifest.write_text(manifest.read_text().replace('name = "demo"', 'name   =   "demo"'))
    r = vudo_cli("fmt", cwd=tmp_path / "demo")
    assert r.code == 0, r.stderr
    assert manifest.read_text().startswith('name = "demo"\n')
    assert sorted(p.name for p in manifest.parent.iterdir() if p.name.startswith(".")) == [
        ".gitignore"
    ]


@pytest.mark.parametrize("damage", ["not json", "[1, 2]", '{"a": 1}', "[" * 5000])
def test_unreadable_stored_grants_are_reported_and_repaired(
    vudo_cli: Vudo, installed: str, home: Path, damage: str
) -> None:
    import sqlite3

    conn = sqlite3.connect(home / "store" / "index.sqlite3")
    with conn:
        conn.execute("UPDATE grants SET grants = ? WHERE name = ?", (damage, installed))
    conn.close()
    r = vudo_cli("info", installed)  # was a JSONDecodeError traceback
    assert r.code == 1
    assert "grants of demo are unreadable" in r.error_line and "vudo repair" in r.error_line
    repaired = vudo_cli("repair", "--json")
    assert repaired.code == 0, repaired.stderr
    assert repaired.json()["dropped_grants"] == [installed]  # was "the store is healthy"
    info = vudo_cli("info", installed, "--json")
    assert info.code == 0, info.stderr
    assert info.json()["grants"] == []
    assert vudo_cli("grant", installed, "sensor_time").code == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scope", "sandboxed"),  # widened after signing: the signature no longer holds
        ("capability", "storage_write"),
        ("signature", "00" * 64),
        ("expires_at", "x"),  # info crashed: TypeError in the date formatting
    ],
)
def test_info_marks_forged_stored_grants_invalid(
    vudo_cli: Vudo, installed: str, home: Path, field: str, value: object
) -> None:
    import json
    import sqlite3

    conn = sqlite3.connect(home / "store" / "index.sqlite3")
    with conn:
        [raw] = conn.execute("SELECT grants FROM grants WHERE name = ?", (installed,)).fetchone()
        grants = json.loads(raw)
        forged = next(g for g in grants if g["capability"] == "sensor_time")
        forged[field] = value
        conn.execute("UPDATE grants SET grants = ? WHERE name = ?", (json.dumps(grants), installed))
    conn.close()
    info = vudo_cli("info", installed, "--json")
    assert info.code == 0, info.stderr
    rows = {g["capability"]: g for g in info.json()["grants"]}
    assert rows["actuator_log"]["valid"] is True
    bad = rows[forged["capability"]]
    assert bad["valid"] is False and bad["problem"]
    text = vudo_cli("info", installed)
    assert text.code == 0, text.stderr
    assert "INVALID, ignored" in text.stdout
    run = vudo_cli("run", installed, "--json", cwd=home).json()  # the sandbox refuses it too
    assert run["receipt"]["host_calls"]["sensor_time"] == {"allowed": 0, "denied": 1}


NOT_UTF8 = b"\xffbad".decode("utf-8", "surrogateescape")  # argv bytes as Python keeps them


@pytest.mark.parametrize(
    "argv",
    [
        ("info", NOT_UTF8),
        ("search", NOT_UTF8),
        ("uninstall", NOT_UTF8),
        ("run", NOT_UTF8),
        ("grant", NOT_UTF8, "sensor_time"),
        ("search", "--author", NOT_UTF8),
        ("upgrade", NOT_UTF8),
    ],
)
def test_non_utf8_argument_is_a_usage_error(
    vudo_cli: Vudo, installed: str, argv: tuple[str, ...]
) -> None:
    # The store raised UnicodeEncodeError ("surrogates not allowed") as a traceback.
    r = vudo_cli(*argv)
    assert r.code == 2, r.stderr
    assert '"\\xffbad" is not valid UTF-8 text' in r.error_line
    assert "(hint: " in r.error_line


def test_non_utf8_file_name_still_runs(vudo_cli: Vudo, tmp_path: Path) -> None:
    path = tmp_path / f"{NOT_UTF8}.wat"
    path.write_text(
        '(module (memory (export "memory") 1) (func (export "main") (result i32) i32.const 7))'
    )
    r = vudo_cli("run", str(path), "-q")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "7"


@pytest.mark.parametrize("size", ["18446744073709551616B", "99999999999999999999GiB"])
def test_run_memory_size_too_large_is_a_usage_error(
    vudo_cli: Vudo, tmp_path: Path, size: str
) -> None:
    path = _wat(tmp_path, "m", '(func (export "main"))')
    r = vudo_cli("run", str(path), "--memory", size)
    assert r.code == 2, r.stderr  # 2**64 wrapped to a 0-byte limit: exit 13
    assert "too large" in r.error_line and "(hint: " in r.error_line


def test_run_memory_at_the_wasm32_maximum_runs(vudo_cli: Vudo, tmp_path: Path) -> None:
    path = _wat(tmp_path, "m", '(func (export "main") (result i32) i32.const 7)')
    r = vudo_cli("run", str(path), "--memory", "4GiB", "-q")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "7"


def test_hostile_export_names_and_descriptions_print_escaped(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    path = tmp_path / "esc.wat"
    path.write_text(
        '(module (memory (export "memory") 1) (func (export "m\\1b[31mred\\0aerror: x")))'
    )
    r = vudo_cli("run", str(path), "-f", "nope")
    assert r.code == 5
    assert "\x1b" not in r.stderr and "m\\x1b[31mred error: x" in r.error_line

    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    manifest = root / "spirit.toml"
    manifest.write_text(
        "\n".join(
            'description = "one\\nerror: two"' if line.startswith("description") else line
            for line in manifest.read_text().splitlines()
        )
        + "\n"
    )
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    assert vudo_cli("summon", str(root / "dist" / "demo-0.1.0.spirit"), "--yes").code == 0
    found = vudo_cli("search", "demo")
    assert found.code == 0, found.stderr
    assert found.stdout.splitlines()[1].split()[-3:] == ["one", "error:", "two"]  # one row


MANY_CAPS = [
    "sensor_time",
    "actuator_log",
    "sensor_random",
    "storage_read",
    "storage_write",
    "storage_delete",
    "network_connect",
    "network_listen",
]


def test_concurrent_grants_all_stay(vudo_cli: Vudo, env: dict[str, str], tmp_path: Path) -> None:
    # grant read the list, then wrote it back: of 7 grants at once, 3 to 5 survived.
    import json
    import subprocess
    import sys

    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    manifest = root / "spirit.toml"
    manifest.write_text(
        "\n".join(
            f"capabilities = {json.dumps(MANY_CAPS)}" if line.startswith("capabilities") else line
            for line in manifest.read_text().splitlines()
        )
        + "\n"
    )
    assert vudo_cli("pack", cwd=root).code == 0
    assert vudo_cli("sign", cwd=root).code == 0
    package = str(root / "dist" / "demo-0.1.0.spirit")
    assert vudo_cli("summon", package, "--grant", "sensor_time").code == 0
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vudo", "grant", "demo", cap],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cap in MANY_CAPS[1:]
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    info = vudo_cli("info", "demo", "--json").json()
    assert sorted(g["capability"] for g in info["grants"]) == sorted(MANY_CAPS)
    assert vudo_cli("revoke", "demo", "storage_read").code == 0
    info = vudo_cli("info", "demo", "--json").json()
    assert sorted(g["capability"] for g in info["grants"]) == sorted(
        c for c in MANY_CAPS if c != "storage_read"
    )


@pytest.mark.parametrize("command", ["build", "run", "test"])
def test_wat_source_that_is_not_utf8_is_a_build_error(
    vudo_cli: Vudo, tmp_path: Path, command: str
) -> None:
    assert vudo_cli("new", "demo").code == 0
    root = tmp_path / "demo"
    (root / "src" / "main.wat").write_bytes(
        b';; caf\xe9 in Latin-1\n(module (memory (export "memory") 1) (func (export "main")))'
    )
    r = vudo_cli(command, cwd=root)  # was a UnicodeDecodeError traceback
    assert r.code == 7, r.stderr
    assert "error: src/main.wat: not UTF-8 text (byte 6)" in r.error_line
    assert "(hint: " in r.error_line


def test_keys_show_without_a_key_names_the_key_file(vudo_cli: Vudo, home: Path) -> None:
    r = vudo_cli("keys", "show")  # said "no private key at <home>/keys", the directory
    assert r.code == 5
    assert f"no private key at {home / 'keys' / 'private.key'}" in r.error_line


def test_json_output_stays_strict_json_for_non_finite_floats(
    vudo_cli: Vudo, tmp_path: Path
) -> None:
    import json

    path = _wat(tmp_path, "f", '(func (export "f") (param f64) (result f64) local.get 0)')
    for word, shown in (("nan", "nan"), ("inf", "inf"), ("-inf", "-inf")):
        r = vudo_cli("run", str(path), "-f", "f", "--json", "--", word)
        assert r.code == 0, r.stderr

        def refuse(token: str) -> None:
            raise AssertionError(f"not JSON: {token}")  # json.loads accepts NaN by default

        data = json.loads(r.stdout, parse_constant=refuse)
        assert data["args"] == [shown] and data["results"] == [shown]


def test_run_a_manifest_path_runs_its_project(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "demo").code == 0
    r = vudo_cli("run", "demo/spirit.toml", "-q")  # was read as WAT: "expected `(`"
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "25"


def test_wat_with_a_utf8_bom_runs_and_builds(vudo_cli: Vudo, tmp_path: Path) -> None:
    wat = '(module (memory (export "memory") 1) (func (export "main") (result i32) i32.const 7))'
    loose = tmp_path / "bom.wat"
    loose.write_bytes(b"\xef\xbb\xbf" + wat.encode())
    r = vudo_cli("run", str(loose), "-q")  # was "unexpected character '\u{feff}'"
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "7"
    assert vudo_cli("new", "demo").code == 0
    (tmp_path / "demo" / "src" / "main.wat").write_bytes(b"\xef\xbb\xbf" + wat.encode())
    r = vudo_cli("run", "-q", cwd=tmp_path / "demo")
    assert r.code == 0, r.stderr
    assert r.stdout.strip() == "7"


@pytest.mark.parametrize("make", ["symlink", "dangling", "fifo"])
def test_pack_refuses_odd_assets_with_a_hint(vudo_cli: Vudo, tmp_path: Path, make: str) -> None:
    import os

    assert vudo_cli("new", "demo").code == 0
    assets = tmp_path / "demo" / "assets"
    assets.mkdir()
    odd = assets / "odd"
    if make == "symlink":
        (tmp_path / "secret").write_text("not for the package")
        odd.symlink_to(tmp_path / "secret")
    elif make == "dangling":
        odd.symlink_to(tmp_path / "nowhere")
    else:
        os.mkfifo(odd)
    r = vudo_cli("pack", cwd=tmp_path / "demo")  # said only "is not a regular file"
    assert r.code == 3, r.stderr
    assert str(odd) in r.error_line and "(hint: " in r.error_line
    assert not (tmp_path / "demo" / "dist" / "demo-0.1.0.spirit").exists()


def test_git_dependency_resolves_from_the_command_line(
    vudo_cli: Vudo, env: dict[str, str], tmp_path: Path
) -> None:
    # build/check said "no git cache was given to the resolver (hint: pass
    # git=GitSource(cache_dir) to resolve())": an API message, and no way to use git deps.
    import subprocess

    assert vudo_cli("new", "lib").code == 0
    git = ["git", "-c", "user.email=qa@example.com", "-c", "user.name=qa"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run([*git, *args], cwd=tmp_path / "lib", env=env, check=True)
    assert vudo_cli("new", "app").code == 0
    manifest = tmp_path / "app" / "spirit.toml"
    manifest.write_text(
        manifest.read_text() + "\n[dependencies]\n"
        f'lib = {{ git = "file://{tmp_path / "lib"}", rev = "HEAD" }}\n'
    )
    r = vudo_cli("build", cwd=tmp_path / "app")
    assert r.code == 0, r.stderr
    assert (
        f'source = "git+file://{tmp_path / "lib"}#'
        in (tmp_path / "app" / "spirit.lock").read_text()
    )
    manifest.write_text(manifest.read_text().replace('rev = "HEAD"', 'rev = "no-such-rev"'))
    (tmp_path / "app" / "spirit.lock").unlink()
    r = vudo_cli("build", cwd=tmp_path / "app")
    assert r.code != 0 and "GitSource" not in r.stderr and "(hint: " in r.error_line


@pytest.mark.parametrize("action", ["show", "list", "generate"])
def test_keys_action_refuses_a_stray_key_argument(vudo_cli: Vudo, action: str) -> None:
    r = vudo_cli("keys", action, "ab" * 32)  # show printed your own key as if it were this
    assert r.code == 2
    assert "takes no KEY argument" in r.error_line and "keys trust" in r.error_line
