"""`vudo cache` shows the compiled-module cache and `vudo cache clear` empties it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]


def test_cache_show_and_clear(vudo_cli: Vudo, home: Path, tmp_path: Path) -> None:
    wat = tmp_path / "seven.wat"
    wat.write_text('(module (func (export "main") (result i32) (i32.const 7)))')
    empty = vudo_cli("cache", "--json")
    assert empty.code == 0, empty.stderr
    assert empty.json()["entries"] == 0 and empty.json()["location"] == str(home / "cache")
    assert vudo_cli("run", str(wat)).code == 0
    shown = vudo_cli("cache", "--json").json()
    assert shown["entries"] == 1 and 0 < shown["bytes"] <= shown["bound"]
    text = vudo_cli("cache")
    assert "entries       1" in text.stdout and str(home / "cache") in text.stdout
    cleared = vudo_cli("cache", "clear", "--json")
    assert cleared.code == 0 and cleared.json()["removed"] == 1
    assert vudo_cli("cache", "--json").json()["entries"] == 0
    assert "removed 0 compiled modules" in vudo_cli("cache", "clear").stdout


def test_cache_bad_action_is_a_usage_error(vudo_cli: Vudo) -> None:
    result = vudo_cli("cache", "purge")
    assert result.code == 2
    assert "invalid choice" in result.error_line and "(hint: " in result.error_line


def test_cache_shows_and_clears_every_part(vudo_cli: Vudo, home: Path, tmp_path: Path) -> None:
    """Signed run grants, git checkouts and registry downloads are caches too: `vudo
    cache` lists each with its entries and bytes, `vudo cache clear` empties them all,
    and a repeat run signs its grants again."""
    wat = tmp_path / "timed.wat"
    wat.write_text(
        '(module (import "vudo" "host_time_now" (func $now (result i64)))'
        ' (func (export "main") (result i32) (drop (call $now)) (i32.const 3)))'
    )
    assert vudo_cli("run", str(wat), "--grant", "sensor_time", "-q").code == 0
    for name in ("git", "registries"):
        (home / "cache" / name / "some-entry").mkdir(parents=True)
        (home / "cache" / name / "some-entry" / "blob").write_bytes(b"x" * 1000)
    parts = {p["name"]: p for p in vudo_cli("cache", "--json").json()["parts"]}
    assert set(parts) == {"signed grants", "git checkouts", "registry downloads"}
    assert parts["signed grants"]["entries"] == 1 and parts["signed grants"]["bytes"] > 0
    assert parts["git checkouts"]["entries"] == 1 and parts["git checkouts"]["bytes"] == 1000
    assert parts["registry downloads"]["location"] == str(home / "cache" / "registries")
    text = vudo_cli("cache").stdout
    assert "signed grants:" in text and "git checkouts:" in text
    cleared = vudo_cli("cache", "clear", "--json").json()
    assert cleared["removed"] == 1 and len(cleared["parts"]) == 3
    after = vudo_cli("cache", "--json").json()
    assert after["entries"] == 0 and all(p["entries"] == 0 for p in after["parts"])
    assert not (home / "cache" / "git").exists()
    # the next run compiles and signs again, and keeps them again
    assert vudo_cli("run", str(wat), "--grant", "sensor_time", "-q").stdout.strip() == "3"
    again = {p["name"]: p["entries"] for p in vudo_cli("cache", "--json").json()["parts"]}
    assert again["signed grants"] == 1
