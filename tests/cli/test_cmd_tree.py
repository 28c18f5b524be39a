"""vudo tree and vudo why, via subprocess, against the default directory registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Vudo = Callable[..., Any]


def _project(vudo_cli: Vudo, tmp_path: Path, name: str, deps: str = "") -> Path:
    assert vudo_cli("new", name).code == 0
    root = tmp_path / name
    if deps:
        manifest = root / "spirit.toml"
        manifest.write_text(manifest.read_text() + f"\n[dependencies]\n{deps}")
    return root


def _publish(vudo_cli: Vudo, root: Path) -> None:
    for cmd in (["pack"], ["sign"], ["publish"]):
        r = vudo_cli(*cmd, cwd=root)
        assert r.code == 0, (cmd, r.stderr)


def test_tree_and_why(vudo_cli: Vudo, tmp_path: Path) -> None:
    _publish(vudo_cli, _project(vudo_cli, tmp_path, "lib"))
    _publish(vudo_cli, _project(vudo_cli, tmp_path, "mid", 'lib = ">=0.1"\n'))
    app = _project(vudo_cli, tmp_path, "app", 'lib = "^0.1"\nmid = "*"\n')

    r = vudo_cli("tree", cwd=app)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "app 0.1.0",
        "  lib 0.1.0 (lib ^0.1; newest that fits every requirement)",
        "  mid 0.1.0 (mid *; newest that fits every requirement)",
        "    lib 0.1.0 (shown above)",
    ]
    data = vudo_cli("tree", "--json", cwd=app).json()
    assert data["root"] == "app 0.1.0"
    assert data["dependencies"] == [
        {"name": "lib", "requirement": "lib ^0.1"},
        {"name": "mid", "requirement": "mid *"},
    ]
    assert [(p["name"], p["version"]) for p in data["packages"]] == [
        ("lib", "0.1.0"),
        ("mid", "0.1.0"),
    ]
    assert data["packages"][1]["dependencies"] == [{"name": "lib", "requirement": "lib >=0.1"}]

    r = vudo_cli("why", "lib", cwd=app)
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "lib 0.1.0 (newest that fits every requirement)",
        "  app 0.1.0 needs lib ^0.1",
        "  mid 0.1.0 needs lib >=0.1 (via app 0.1.0 > mid 0.1.0)",
    ]
    data = vudo_cli("why", "lib", "--json", "--path", str(app)).json()
    assert data["name"] == "lib" and data["reason"] == "newest that fits every requirement"
    assert data["required_by"][1] == {
        "dependent": "mid 0.1.0",
        "requirement": "lib >=0.1",
        "path": ["app 0.1.0", "mid 0.1.0"],
    }

    r = vudo_cli("why", "nope\x1b[31m", cwd=app)
    assert r.code == 5
    assert r.error_line == (
        'error: "nope\\x1b[31m" is not a dependency of app 0.1.0 '
        "(hint: `vudo tree` lists the packages it depends on)"
    )
    r = vudo_cli("why", "nope", "--json", cwd=app)
    assert r.code == 5 and r.json()["error"]["exit_code"] == 5

    r = vudo_cli("tree", "--help")
    assert r.code == 0 and "vudo tree --json" in r.stdout
    assert "vudo why lib" in vudo_cli("why", "--help").stdout


def test_tree_on_a_conflict_explains_it(vudo_cli: Vudo, tmp_path: Path) -> None:
    _publish(vudo_cli, _project(vudo_cli, tmp_path, "lib"))
    _publish(vudo_cli, _project(vudo_cli, tmp_path, "mid", 'lib = ">=0.2"\n'))
    app = _project(vudo_cli, tmp_path, "app", 'lib = "^0.1"\nmid = "*"\n')
    r = vudo_cli("tree", cwd=app)
    assert r.code == 6
    assert r.error_line.startswith("error: cannot resolve lib: ")
    assert "mid 0.1.0 needs lib >=0.2" in r.error_line
    r = vudo_cli("why", "lib", "--json", cwd=app)
    assert r.code == 6 and "mid 0.1.0 needs lib >=0.2" in r.json()["error"]["message"]
