"""build, pack, sign, check, fmt and doc through a real `vudo` subprocess."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Vudo = Callable[..., Any]


@pytest.fixture
def project(vudo_cli: Vudo, tmp_path: Path) -> Path:
    r = vudo_cli("new", "demo")
    assert r.code == 0, r.stderr
    return tmp_path / "demo"


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------- build


def test_build_wat(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("build", "--path", str(project))
    assert r.code == 0, r.stderr
    wasm = project / "target" / "demo.wasm"
    assert wasm.read_bytes().startswith(b"\0asm")
    assert f"built {wasm}" in r.stdout


def test_build_json_shape(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("build", "--json", cwd=project)
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["language"] == "wat" and data["size"] > 8
    assert "vudo.host_log" in data["imports"]
    add = next(e for e in data["exports"] if e["name"] == "add")
    assert add == {"name": "add", "params": ["i32", "i32"], "results": ["i32"]}


def test_build_missing_project_exits_5(vudo_cli: Vudo, tmp_path: Path) -> None:
    r = vudo_cli("build", "--path", str(tmp_path / "nope"))
    assert r.code == 5
    assert "no Spirit project" in r.error_line and "hint:" in r.error_line
    r = vudo_cli("build")  # tmp_path exists but has no spirit.toml
    assert r.code == 5 and "spirit.toml" in r.error_line


def test_build_wat_syntax_error_names_file_and_line(vudo_cli: Vudo, project: Path) -> None:
    _rewrite(project / "src" / "main.wat", "(i32.add (local.get $a)", "(i32.plus (local.get $a)")
    r = vudo_cli("build", cwd=project)
    assert r.code == 7
    assert re.search(r"^error: src/main\.wat:\d+:\d+: ", r.error_line), r.stderr
    assert r.error_line.count("error:") == 1  # it said "error: src/main.wat:1:2: error: "


def test_build_undeclared_capability_names_import_and_capability(
    vudo_cli: Vudo, project: Path
) -> None:
    _rewrite(
        project / "src" / "main.wat",
        "(memory (export",
        '(import "vudo" "host_storage_write" (func (param i32 i32 i32 i32) (result i32)))\n'
        "  (memory (export",
    )
    r = vudo_cli("build", cwd=project)
    assert r.code == 7
    assert "host_storage_write" in r.error_line and '"storage_write"' in r.error_line
    assert not (project / "target" / "demo.wasm").exists()


def test_build_warns_about_unused_capability(vudo_cli: Vudo, project: Path) -> None:
    _rewrite(
        project / "spirit.toml",
        '["sensor_time", "actuator_log"]',
        '["sensor_time", "actuator_log", "sensor_random"]',
    )
    r = vudo_cli("build", cwd=project)
    assert r.code == 0
    assert 'warning: spirit.toml declares "sensor_random"' in r.stderr


def test_build_invalid_manifest_exits_3(vudo_cli: Vudo, project: Path) -> None:
    _rewrite(project / "spirit.toml", "capabilities =", "capabilites =")
    r = vudo_cli("build", cwd=project)
    assert r.code == 3
    assert "capabilites" in r.error_line


@pytest.mark.slow
@pytest.mark.parametrize("template", ["c", "zig"])
def test_build_c_and_zig_templates_build_run_and_test(
    vudo_cli: Vudo, tmp_path: Path, template: str
) -> None:
    assert vudo_cli("new", "native", "--template", template, "--target", "freestanding").code == 0
    root = tmp_path / "native"
    r = vudo_cli("build", "--release", cwd=root)
    assert r.code == 0, r.stderr
    assert (root / "target" / "release" / "native.wasm").is_file()  # debug: target/
    assert not (root / ".zig-cache").exists()
    r = vudo_cli("run", cwd=root)
    assert r.code == 0, r.stderr
    assert r.stdout.startswith("result: 25") and "Hello from a vudo Spirit!" in r.stderr
    r = vudo_cli("run", "-f", "add", "-q", "--", "40", "2", cwd=root)
    assert r.stdout.strip() == "42"
    r = vudo_cli("test", cwd=root)
    assert r.code == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.slow
def test_build_c_compiler_error_shows_file_and_line(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("new", "broken", "--template", "c", "--target", "freestanding").code == 0
    root = tmp_path / "broken"
    _rewrite(root / "src" / "main.c", "return a + b;", "return a + undefined_thing;")
    r = vudo_cli("build", cwd=root)
    assert r.code == 7
    assert re.search(r"src/main\.c:\d+:\d+: error: .*undefined_thing", r.error_line), r.stderr
    assert "undefined_thing" in r.stderr.split("error: src/")[0]  # full diagnostics first


def test_build_rust_without_wasm_target_says_how_to_fix(
    vudo_cli: Vudo, tmp_path: Path, env: dict[str, str]
) -> None:
    assert vudo_cli("new", "rusty", "--template", "rust", "--target", "freestanding").code == 0
    root = tmp_path / "rusty"
    assert (root / "Cargo.toml").is_file() and (root / "src" / "lib.rs").is_file()
    # With no cargo on PATH the message says how to get Rust.
    env["PATH"] = str(Path(shutil.which("python3") or "/usr/bin/python3").parent)
    if shutil.which("cargo", path=env["PATH"]):
        pytest.skip("cargo is in the same directory as python")
    r = vudo_cli("build", cwd=root)
    assert r.code == 7
    assert "cargo is not on PATH" in r.error_line and "rustup" in r.error_line


# ---------------------------------------------------------------- pack / sign


def test_pack_sign_verify(vudo_cli: Vudo, project: Path, home: Path) -> None:
    r = vudo_cli("pack", "--json", cwd=project)
    assert r.code == 0, r.stderr
    data = r.json()
    package = project / "dist" / "demo-0.1.0.spirit"
    assert Path(data["path"]) == package and data["built"] is True
    assert data["version"] == "0.1.0"

    r = vudo_cli("sign", "--json", cwd=project)
    assert r.code == 0, r.stderr
    signed = r.json()
    public = (home / "keys" / "public.key").read_text().strip()
    assert signed["signer"] == public and signed["author_matches"] is True

    r = vudo_cli("sign", "--verify", str(package), "--json", cwd=project)
    assert r.code == 0, r.stderr
    assert r.json()["valid"] is True and r.json()["signer"] == public
    r = vudo_cli("sign", "--verify", cwd=project)
    assert r.code == 0 and "every file matches" in r.stdout


def test_sign_with_another_key_says_author_differs(
    vudo_cli: Vudo, project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-home"
    other.mkdir()
    from vudo.pkg.keys import ensure_keypair

    kp = ensure_keypair(other)
    assert vudo_cli("pack", cwd=project).code == 0
    r = vudo_cli("sign", "--key", str(other / "keys" / "private.key"), cwd=project)
    assert r.code == 0, r.stderr
    assert f"signer  {kp.public_hex}" in r.stdout
    assert "is not the signing key" in r.stdout


def test_tampered_package_fails_verification_exit_4(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("pack", cwd=project).code == 0
    assert vudo_cli("sign", cwd=project).code == 0
    package = project / "dist" / "demo-0.1.0.spirit"
    data = bytearray(package.read_bytes())
    at = data.index(b"Hello from a vudo Spirit!")
    data[at] = ord("J")
    package.write_bytes(bytes(data))
    r = vudo_cli("sign", "--verify", str(package))
    assert r.code == 4
    assert "hint:" in r.error_line
    r = vudo_cli("check", cwd=project)
    assert r.code == 3
    assert "error: [package]" in r.stdout


def test_sign_without_package_exits_5(vudo_cli: Vudo, project: Path) -> None:
    r = vudo_cli("sign", cwd=project)
    assert r.code == 5 and "vudo pack" in r.error_line
    r = vudo_cli("sign", "--verify", "missing.spirit", cwd=project)
    assert r.code == 5


def test_unsigned_package_fails_verify_exit_4(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("pack", cwd=project).code == 0
    r = vudo_cli("sign", "--verify", cwd=project)
    assert r.code == 4 and "not signed" in r.error_line


def test_pack_missing_project_exits_5(vudo_cli: Vudo, tmp_path: Path) -> None:
    r = vudo_cli("pack", "--path", str(tmp_path / "nothing"))
    assert r.code == 5


# ---------------------------------------------------------------- check / fmt / doc


def test_check_clean_project(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("build", cwd=project).code == 0
    r = vudo_cli("check", "--json", cwd=project)
    assert r.code == 0, r.stdout + r.stderr
    data = r.json()
    assert data["ok"] is True and data["problems"] == []
    assert data["checked"] == ["manifest", "capabilities"]


def test_check_lists_every_problem_and_exits_3(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("build", cwd=project).code == 0
    _rewrite(project / "spirit.toml", '["sensor_time", "actuator_log"]', '["sensor_random"]')
    r = vudo_cli("check", cwd=project)
    assert r.code == 3
    assert r.stdout.count("error: [capabilities]") == 2  # host_time_now and host_log
    assert "warning: [capabilities]" in r.stdout  # sensor_random unused
    assert "2 problems found" in r.error_line


def test_check_invalid_manifest(vudo_cli: Vudo, project: Path) -> None:
    _rewrite(project / "spirit.toml", 'name = "demo"', 'name = "demo"\ncolour = "red"')
    r = vudo_cli("check", "--json", cwd=project)
    assert r.code == 3
    problems = r.json()["problems"]
    assert problems[0]["area"] == "manifest" and "colour" in problems[0]["message"]


def test_fmt_rewrites_and_keeps_comments(vudo_cli: Vudo, project: Path) -> None:
    manifest = project / "spirit.toml"
    text = manifest.read_text()
    messy = "# my spirit\n" + text.replace('name = "demo"', 'name="demo"   # the name')
    manifest.write_text(messy)
    r = vudo_cli("fmt", "--check", cwd=project)
    assert r.code == 1 and "not formatted" in r.error_line
    assert r.stdout.startswith("--- spirit.toml (current)\n+++ spirit.toml (formatted)\n")
    assert manifest.read_text() == messy
    r = vudo_cli("fmt", cwd=project)
    assert r.code == 0 and "formatted" in r.stdout
    out = manifest.read_text()
    assert "# my spirit" in out and "# the name" in out and 'name = "demo"' in out
    assert vudo_cli("fmt", "--check", cwd=project).code == 0
    assert vudo_cli("fmt", "--json", cwd=project).json() == {
        "path": str(manifest),
        "changed": False,
        "written": False,
    }


def test_fmt_missing_manifest_exits_5(vudo_cli: Vudo) -> None:
    r = vudo_cli("fmt")
    assert r.code == 5


def test_doc_writes_markdown_and_html(vudo_cli: Vudo, project: Path, tmp_path: Path) -> None:
    r = vudo_cli("doc", "-o", str(tmp_path / "site"), "--json", cwd=project)
    assert r.code == 0, r.stderr
    data = r.json()
    assert "add(i32, i32) -> i32" in data["exports"]
    md = Path(data["markdown"]).read_text()
    assert "# demo 0.1.0" in md and "`actuator_log`: write log messages" in md
    assert "## README" in md
    page = Path(data["html"]).read_text()
    assert page.startswith("<!DOCTYPE html>") and "<code>add(i32, i32) -&gt; i32</code>" in page


def test_doc_missing_project_exits_5(vudo_cli: Vudo, tmp_path: Path) -> None:
    assert vudo_cli("doc", "--path", str(tmp_path / "x")).code == 5


@pytest.mark.slow
def test_build_rust_with_the_toolchain_on_path(vudo_cli: Vudo, tmp_path: Path) -> None:
    from vudo.project.build import rust_target_installed

    cargo, rustc = shutil.which("cargo"), shutil.which("rustc")
    if cargo is None or rustc is None:
        pytest.skip("no Rust toolchain on this machine (the no-cargo case is tested above)")
    assert vudo_cli("new", "rusty", "--template", "rust", "--target", "freestanding").code == 0
    r = vudo_cli("build", cwd=tmp_path / "rusty", timeout=600)
    if rust_target_installed(rustc):
        assert r.code == 0, r.stderr
        r = vudo_cli("test", cwd=tmp_path / "rusty", timeout=600)
        assert r.code == 0 and "2 passed, 0 failed" in r.stdout
    else:
        assert r.code == 7
        assert "wasm32-unknown-unknown target is not installed" in r.error_line
        assert "rustup target add wasm32-unknown-unknown" in r.error_line


def test_package_tampered_after_pack_is_refused_by_sign(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("pack", cwd=project).code == 0
    package = project / "dist" / "demo-0.1.0.spirit"
    data = bytearray(package.read_bytes())
    data[data.index(b"Hello from")] = ord("J")
    package.write_bytes(bytes(data))
    r = vudo_cli("sign", cwd=project)
    assert r.code == 4 and "CRC" in r.error_line and "hint:" in r.error_line


# ---------------------------------------------------------------- build: the edges


def test_build_is_incremental_and_release_is_its_own_file(vudo_cli: Vudo, project: Path) -> None:
    assert vudo_cli("build", cwd=project).code == 0
    debug = project / "target" / "demo.wasm"
    built_at = debug.stat().st_mtime_ns
    r = vudo_cli("build", "--json", cwd=project)
    assert r.code == 0 and r.json()["up_to_date"] is True
    assert "vudo.host_log" in r.json()["imports"]  # the same facts, without compiling
    r = vudo_cli("build", cwd=project)
    assert re.fullmatch(
        rf"{re.escape(str(debug))} is up to date \(debug; nothing changed "
        r"since it was built, checked in \d+ ms\)\n",
        r.stdout,
    ), r.stdout
    assert debug.stat().st_mtime_ns == built_at
    r = vudo_cli("build", "--release", "--json", cwd=project)
    assert r.code == 0 and r.json()["up_to_date"] is False  # the profile is an input
    release = project / "target" / "release" / "demo.wasm"
    assert r.json()["wasm"] == str(release) and release.is_file()
    assert debug.stat().st_mtime_ns == built_at  # the debug build was not overwritten
    assert vudo_cli("build", "--release", "--json", cwd=project).json()["up_to_date"] is True
    # any input changes: the manifest, a source, or the output itself
    _rewrite(project / "spirit.toml", 'description = "', 'description = "Changed. ')
    assert vudo_cli("build", "--json", cwd=project).json()["up_to_date"] is False
    (project / "src" / "extra.txt").write_text("x")
    assert vudo_cli("build", "--json", cwd=project).json()["up_to_date"] is False
    debug.write_bytes(debug.read_bytes() + b"\0")
    assert vudo_cli("build", "--json", cwd=project).json()["up_to_date"] is False
    assert vudo_cli("run", "-q", cwd=project).stdout == "25\n"


WRONG_SIGNATURE = '(import "vudo" "host_time_now" (func $time_now (result i32)))'


def test_build_and_check_reject_a_host_import_with_the_wrong_signature(
    vudo_cli: Vudo, project: Path
) -> None:
    _rewrite(
        project / "src" / "main.wat",
        '(import "vudo" "host_time_now" (func $time_now (result i64)))',
        WRONG_SIGNATURE,
    )
    r = vudo_cli("build", cwd=project)
    assert r.code == 3, r.stderr  # it built, and then `vudo run` failed (with exit 3)
    assert r.error_line == (
        'error: src/main.wat: import "vudo" "host_time_now" has signature '
        "() -> (i32), expected () -> (i64) (hint: fix the import's "
        "declared type)"
    )
    assert not (project / "target" / "demo.wasm").exists()
    # a module built elsewhere with the wrong signature: check says so too
    (project / "target").mkdir(exist_ok=True)
    import wasmtime

    (project / "target" / "demo.wasm").write_bytes(
        wasmtime.wat2wasm((project / "src" / "main.wat").read_text())
    )
    r = vudo_cli("check", cwd=project)
    assert r.code == 3
    assert "error: [capabilities]" in r.stdout and "host_time_now" in r.stdout


def test_build_wat_type_error_keeps_wasmtimes_message(vudo_cli: Vudo, project: Path) -> None:
    _rewrite(project / "src" / "main.wat", "(i32.const 25))", "(i64.const 25))")
    r = vudo_cli("build", cwd=project)
    assert r.code == 7
    assert r.error_line.startswith("error: src/main.wat: ")
    assert "type mismatch" in r.error_line and "wasm[0]::function" not in r.error_line
    assert "compiler flags" not in r.error_line and r.error_line.count("error:") == 1


def test_fmt_keeps_a_leading_comment_at_the_top(vudo_cli: Vudo, project: Path) -> None:
    manifest = project / "spirit.toml"
    lines = manifest.read_text().splitlines()
    name = next(ln for ln in lines if ln.startswith("name ="))
    rest = [ln for ln in lines if ln != name]
    # the first key (version) moves below name; the file's comment must not move with it
    manifest.write_text("# demo: a Spirit that says hello\n" + "\n".join(rest) + "\n" + name + "\n")
    r = vudo_cli("fmt", "--check", cwd=project)
    assert r.code == 1 and "+name = " in r.stdout
    assert vudo_cli("fmt", cwd=project).code == 0
    out = manifest.read_text().splitlines()
    assert out[0] == "# demo: a Spirit that says hello"
    assert next(ln for ln in out if ln and not ln.startswith("#")) == name
    assert vudo_cli("fmt", "--check", cwd=project).code == 0
