"""One JSON protocol: every result type the CLI prints with --json has ``to_json()``
(vudo.display.JsonResult), and vudo.cli.render.emit_json calls it.

No command hands emit_json a dict or list it builds itself: it passes the result object
(or a list of them).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from vudo.cli.render import _json_form

CLI = Path(__file__).resolve().parent.parent / "src" / "vudo" / "cli"
#: The JSON mechanism itself (it writes the error document): every other CLI module only
#: hands it results.
MECHANISM = CLI / "render.py"

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
    ("vudo.project.caches", "CacheReport"),
    ("vudo.project.caches", "CachePart"),
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
    ("vudo.project.grants", "GrantRow"),
    ("vudo.project.installed", "InstalledInfo"),
    ("vudo.project.remote", "AvailableSpirit"),
    ("vudo.pkg.config", "RegistryConfig"),
    ("vudo.pkg.config", "RegistryAdded"),
    ("vudo.pkg.config", "RegistryRemoved"),
    ("vudo.project.packaging", "PackageFacts"),
    ("vudo.project.storage", "StoredEntry"),
    ("vudo.project.storage", "StoredValue"),
    ("vudo.project.storage", "KeyDeleted"),
    ("vudo.project.credit", "CreditStatus"),
    ("vudo.project.credit", "CreditHistory"),
    ("vudo.engine.ledger", "Reservation"),
    ("vudo.engine.ledger", "Movement"),
]


@pytest.mark.parametrize("module,name", RESULT_TYPES)
def test_each_result_type_knows_its_json_form(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, "to_json", None)), f"{name} has no to_json()"


def _is_dict_form(value: ast.expr | None) -> bool:
    """A dict literal or comprehension, or a list of them: a JSON form built by hand (a
    list of result objects, filtered or not, is not)."""
    if isinstance(value, ast.Dict | ast.DictComp):
        return True
    if isinstance(value, ast.ListComp):
        return isinstance(value.elt, ast.Dict)
    return isinstance(value, ast.List) and any(isinstance(e, ast.Dict) for e in value.elts)


def _hand_built() -> set[str]:
    """``module:function`` of every emit_json call given something built on the spot: a
    literal, a comprehension, a call (``x.to_json()`` too: emit_json calls it), or a name
    bound to a dict (or a list of dicts) in the same function."""
    found: set[str] = set()
    for path in sorted(CLI.glob("*.py")):
        if path == MECHANISM:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in tree.body:
            if not isinstance(func, ast.FunctionDef):
                continue
            literal_names = {
                target.id
                for node in ast.walk(func)
                if isinstance(node, ast.Assign | ast.AnnAssign) and _is_dict_form(node.value)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(func):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "emit_json"
                    and node.args
                ):
                    continue
                arg = node.args[0]
                if not isinstance(arg, ast.Name | ast.Attribute) or (
                    isinstance(arg, ast.Name) and arg.id in literal_names
                ):
                    found.add(f"{path.stem}:{func.name}")
    return found


def test_no_command_builds_its_json_by_hand() -> None:
    found = _hand_built()
    assert not found, f"build these with a result type's to_json(): {sorted(found)}"


def test_emit_json_calls_to_json_on_results_and_lists_of_them() -> None:
    class Result:
        def to_json(self) -> dict[str, int]:
            return {"n": 1}

    assert _json_form(Result()) == {"n": 1}
    assert _json_form([Result(), Result()]) == [{"n": 1}, {"n": 1}]
    assert _json_form({"plain": True}) == {"plain": True}
