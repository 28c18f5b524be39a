"""One JSON protocol: every result type the CLI prints with --json has ``to_json()``
(vudo.display.JsonResult), and vudo.cli.render.emit_json calls it.

The commands still building a dict by hand are listed in ``HAND_BUILT``: the list may
only shrink (a new command, or a changed one, passes a result object instead).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from vudo.cli.render import _json_form

COMMANDS = Path(__file__).resolve().parent.parent / "src" / "vudo" / "cli" / "commands.py"

#: (module, class) of every result type a command hands to emit_json.
RESULT_TYPES = [
    ("vudo.project.new", "NewProject"),
    ("vudo.project.build", "BuildResult"),
    ("vudo.project.testing", "TestReport"),
    ("vudo.project.testing", "TestCase"),
    ("vudo.project.packaging", "PackResult"),
    ("vudo.pkg.signing", "SignResult"),
    ("vudo.project.workflow", "CheckReport"),
    ("vudo.project.workflow", "Problem"),
    ("vudo.project.workflow", "FmtResult"),
    ("vudo.project.workflow", "DocResult"),
    ("vudo.project.installing", "SummonResult"),
    ("vudo.pkg.store", "InstalledSpirit"),
    ("vudo.project.registries", "BrowseEntry"),
    ("vudo.project.repair", "RepairOutcome"),
    ("vudo.project.workspace", "TrustedFolder"),
    ("vudo.project.runner", "RunResult"),
    ("vudo.project.packaging", "PublishOutcome"),
    ("vudo.project.remote", "LoginResult"),
    ("vudo.project.remote", "LogoutResult"),
    ("vudo.project.remote", "YankResult"),
    ("vudo.project.grants", "Revoked"),
    ("vudo.engine.engine", "CacheUsage"),
    ("vudo.engine.engine", "CacheCleared"),
    ("vudo.project.installing", "Uninstalled"),
    ("vudo.project.installing", "UpgradeOutcome"),
    ("vudo.errors", "VudoError"),
    ("vudo.pkg.resolve", "Resolution"),
    ("vudo.pkg.resolve", "WhyChosen"),
    ("vudo.pkg.resolve", "RequiredBy"),
    ("vudo.project.grants", "CapabilityInfo"),
    ("vudo.pkg.keys", "KeyFile"),
    ("vudo.pkg.keys", "KeyExport"),
    ("vudo.project.grants", "KeyRotation"),
    ("vudo.project.grants", "KnownKey"),
    ("vudo.project.grants", "SignerTrust"),
]

#: Commands that still pass emit_json a dict or list they build themselves.
HAND_BUILT = {
    "_info_available",
    "cmd_info",
    "cmd_registry",
}


@pytest.mark.parametrize("module,name", RESULT_TYPES)
def test_each_result_type_knows_its_json_form(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, "to_json", None)), f"{name} has no to_json()"


def _hand_built() -> set[str]:
    tree = ast.parse(COMMANDS.read_text(encoding="utf-8"))
    found: set[str] = set()
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "emit_json"
                and node.args
                and not isinstance(node.args[0], ast.Name | ast.Attribute)
            ):
                found.add(func.name)
    return found


def test_no_new_hand_built_json_in_commands() -> None:
    found = _hand_built()
    assert found <= HAND_BUILT, f"build these with a result type's to_json(): {found - HAND_BUILT}"
    # keep the list honest: a command that was converted leaves it
    assert not HAND_BUILT - found, HAND_BUILT - found


def test_emit_json_calls_to_json_on_results_and_lists_of_them() -> None:
    class Result:
        def to_json(self) -> dict[str, int]:
            return {"n": 1}

    assert _json_form(Result()) == {"n": 1}
    assert _json_form([Result(), Result()]) == [{"n": 1}, {"n": 1}]
    assert _json_form({"plain": True}) == {"plain": True}
