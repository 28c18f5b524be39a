"""`vudo storage`: a Spirit's keys and values as its runs left them, through real
subprocesses on a real SQLite store (what the workbench's storage pane shows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]

#: Counts its runs under the key "count" (a little-endian i32) and stores a binary key.
COUNTER = """(module
  (import "vudo" "host_storage_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "vudo" "host_storage_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "count")
  (data (i32.const 8) "\\01\\ff")
  (func (export "main") (result i32)
    (drop (call $read (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4)))
    (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
    (drop (call $write (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 4)))
    (drop (call $write (i32.const 8) (i32.const 2) (i32.const 0) (i32.const 5)))
    (i32.load (i32.const 16))))
"""


def test_list_get_and_delete_a_modules_keys(vudo_cli: Vudo, tmp_path: Path) -> None:
    (tmp_path / "counter.wat").write_text(COUNTER)
    r = vudo_cli("storage", "list", "counter.wat")
    assert r.code == 5 and "stored anything" in r.error_line  # no store yet
    for expected in ("1", "2"):
        r = vudo_cli(
            "run", "counter.wat", "--grant", "storage_read", "--grant", "storage_write", "-q"
        )
        assert r.code == 0, r.stderr
        assert r.stdout.strip() == expected
    listed = vudo_cli("storage", "list", "counter.wat", "--json").json()
    assert listed == [  # sorted bytewise: 0x01ff before "count"
        {"key": "hex:01ff", "size": 5, "preview": "count"},
        {"key": "count", "size": 4, "preview": "\\x02\\x00\\x00\\x00"},
    ]
    got = vudo_cli("storage", "get", "counter.wat", "hex:01ff", "--json").json()
    assert got == {"key": "hex:01ff", "size": 5, "value": "count"}
    r = vudo_cli("storage", "get", "counter.wat", "nope")
    assert r.code == 5 and "no key nope" in r.error_line
    # delete asks first; with no terminal to ask on it refuses rather than guess
    r = vudo_cli("storage", "delete", "counter.wat", "count")
    assert r.code == 2 and "--yes" in r.stderr
    r = vudo_cli("storage", "delete", "counter.wat", "count", "--yes", "--json")
    assert r.code == 0 and r.json() == {"key": "count", "deleted": True}
    keys = [e["key"] for e in vudo_cli("storage", "list", "counter.wat", "--json").json()]
    assert keys == ["hex:01ff"]
    # another Spirit sees none of it: storage belongs to the run's identity
    (tmp_path / "other.wat").write_text(COUNTER.replace('"count"', '"other"'))
    assert vudo_cli("storage", "list", "other.wat", "--json").json() == []
    r = vudo_cli("storage", "get", "counter.wat")
    assert r.code == 2 and "a NAME and a KEY" in r.error_line
