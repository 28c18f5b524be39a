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
