"""The host-function tables in docs/ say what the ABI table (vudo.engine.abi.ABI) says:
each row's parameter count and types, result type and capability. The docs are written by
hand; this is what keeps them from drifting from the one table the engine links."""

from __future__ import annotations

import re
from pathlib import Path

from vudo.engine.abi import ABI

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: | host_name | (a, b, c i64) -> i32 | capability or none ... | meaning |
ROW = re.compile(
    r"^\|\s*`?(?P<name>host_\w+)`?\s*\|\s*`?\((?P<params>[^)]*)\)\s*->\s*(?P<result>i32|i64)`?"
    r"\s*\|\s*`?(?P<cap>[a-z_:.]+)`?[^|]*\|"
)


def _rows() -> list[tuple[str, re.Match[str]]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        for line in doc.read_text(encoding="utf-8").splitlines():
            match = ROW.match(line)
            if match:
                found.append((doc.name, match))
    return found


def test_the_docs_tables_are_found() -> None:
    names = {m["name"] for _, m in _rows()}
    assert {"host_input_read", "host_notify", "host_spirit_call", "host_sandbox_call"} <= names


def test_each_documented_host_function_matches_the_abi() -> None:
    wrong = []
    for doc, m in _rows():
        row = ABI.get(m["name"])
        if row is None:
            wrong.append((doc, m["name"], "not in the ABI"))
            continue
        words = [p.split() for p in m["params"].split(",") if p.strip()]
        params = tuple(w[1] if len(w) > 1 else "i32" for w in words)
        cap = None if m["cap"] == "none" else m["cap"]
        have = (tuple(row.params), row.results[0], row.capability.value if row.capability else None)
        said = (params, m["result"], cap)
        if have != said:
            wrong.append((doc, m["name"], f"docs {said}, ABI {have}"))
    assert not wrong, wrong
