"""Import contracts, checked by parsing every module under src/vudo with ast.

* core (engine, pkg, errors, boundaries, capabilities, home, files, resources) never imports
  vudo.project, vudo.cli or vudo.tui;
* engine and pkg never import each other (shared values live in capabilities.py and
  errors.py);
* nothing but the CLI imports the TUI, and only inside a function (lazily);
* no import cycles, counting imports inside functions and ``if TYPE_CHECKING:`` blocks;
* a function-level import says why it is not at the top (``# lazy: <reason>``): any
  import (vudo, standard library or third-party) in any module.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
CORE = (
    "vudo.engine",
    "vudo.pkg",
    "vudo.errors",
    "vudo.boundaries",
    "vudo.capabilities",
    "vudo.home",
    "vudo.files",
    "vudo.resources",
)
FACES = ("vudo.project", "vudo.cli", "vudo.tui")


class Import(NamedTuple):
    importer: str
    imported: str
    line: int
    in_function: bool
    lazy_reason: bool  # a "# lazy:" comment on the line or the line before


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports_of(name: str, path: Path) -> list[Import]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[Import] = []

    def add(target: str, node: ast.stmt, in_function: bool) -> None:
        here = lines[node.lineno - 1]
        before = lines[node.lineno - 2] if node.lineno > 1 else ""
        lazy = "# lazy:" in here or before.strip().startswith("# lazy:")
        found.append(Import(name, target, node.lineno, in_function, lazy))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("vudo"):
                        add(alias.name, child, in_function)
            elif (
                isinstance(child, ast.ImportFrom)
                and child.module
                and child.level == 0
                and child.module.startswith("vudo")
            ):
                for alias in child.names:  # `from vudo.cli import commands`: a module
                    sub = f"{child.module}.{alias.name}"
                    add(sub if sub in MODULES else child.module, child, in_function)
            visit(child, inner)

    visit(ast.parse(source), False)
    return [i for i in found if i.imported in MODULES and i.imported != name]


ALL = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def test_the_parser_sees_the_imports() -> None:
    """The contracts below are only as good as this: known edges must be found."""
    edges = {(i.importer, i.imported) for i in ALL}
    assert ("vudo.project.installing", "vudo.project.consent") in edges
    assert ("vudo.cli.commands", "vudo.tui.app") in edges
    assert ("vudo.project.runner", "vudo.project.build") in edges  # inside a function


def test_core_never_imports_the_faces() -> None:
    bad = [i for i in ALL if within(i.importer, CORE) and within(i.imported, FACES)]
    assert bad == []


@pytest.mark.parametrize(("a", "b"), [("vudo.engine", "vudo.pkg"), ("vudo.pkg", "vudo.engine")])
def test_engine_and_pkg_never_import_each_other(a: str, b: str) -> None:
    assert [i for i in ALL if within(i.importer, a) and within(i.imported, b)] == []


def test_only_the_cli_imports_the_tui_and_lazily() -> None:
    outside = [
        i
        for i in ALL
        if within(i.imported, "vudo.tui") and not within(i.importer, ("vudo.tui", "vudo.cli"))
    ]
    assert outside == []
    eager = [
        i
        for i in ALL
        if within(i.importer, "vudo.cli") and within(i.imported, "vudo.tui") and not i.in_function
    ]
    assert eager == []


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in ALL:
        # `import vudo.x.y` runs the package vudo.x first, but a package importing its own
        # submodule is how packages work, not a cycle: only count module-to-module edges.
        if within(imp.importer, imp.imported) and imp.imported != imp.importer:
            continue
        graph[imp.importer].add(imp.imported)
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert cycles == []


def function_level_imports(name: str, path: Path) -> list[Import]:
    """Every import inside a function of ``path``, of any module (``if TYPE_CHECKING:``
    blocks sit at module level, so they are not counted)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                here = lines[child.lineno - 1]
                before = lines[child.lineno - 2] if child.lineno > 1 else ""
                lazy = "# lazy:" in here or before.strip().startswith("# lazy:")
                targets = (
                    [a.name for a in child.names]
                    if isinstance(child, ast.Import)
                    else ["." * child.level + (child.module or "")]
                )
                found.extend(Import(name, t, child.lineno, True, lazy) for t in targets)
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def test_function_level_imports_say_why() -> None:
    """A function-level import keeps start-up fast (or breaks a cycle) and says so; an
    import that saves nothing goes to the top of its module (issue 9)."""
    silent = [
        f"{i.importer}:{i.line} imports {i.imported}"
        for name, path in MODULES.items()
        for i in function_level_imports(name, path)
        if not i.lazy_reason
    ]
    assert silent == []


def test_the_reason_check_sees_every_kind_of_import() -> None:
    """The check above is only as good as its parser: stdlib, third-party and vudo
    imports inside functions are all found, in the CLI too."""
    found = {
        (i.importer, i.imported)
        for name in ("vudo.boundaries", "vudo.tui.session", "vudo.pkg.oci", "vudo.cli.commands")
        for i in function_level_imports(name, MODULES[name])
    }
    assert ("vudo.boundaries", "sqlite3") in found  # standard library
    assert ("vudo.pkg.oci", "httpx") in found  # third-party
    assert ("vudo.tui.session", "vudo.project.runner") in found  # vudo
    assert ("vudo.cli.commands", "vudo.tui.app") in found  # inside a try, in the CLI


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (the graph is small; recursion would do too)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
    return out


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [sorted(c) for c in _strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]


RUN_PATH_PROBE = """
import contextlib, io, sys
from vudo.cli.app import run_cli
for _ in range(2):  # the first run may compile and write the module cache
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_cli(["run", sys.argv[1]]) == 0
print(" ".join(m for m in ("dataclasses", "inspect", "tomlkit", "sqlite3", "textual")
               if m in sys.modules))
"""


def test_a_plain_run_keeps_dataclasses_out(tmp_path: Path) -> None:
    """The value-style exception (see the vudo package docstring): a `vudo run` of a
    module imports no dataclasses (nor the other heavy modules its path once paid for)."""
    wat = tmp_path / "seven.wat"
    wat.write_text('(module (func (export "main") (result i32) (i32.const 7)))')
    env = dict(
        os.environ,
        VUDO_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-c", RUN_PATH_PROBE, str(wat)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


#: What the start-up of `vudo run DIR` (a trusted, built project) and of `vudo search` no
#: longer pays for (benches/cli.py measures both against their targets): the store and
#: manifest machinery, dataclasses (inspect), and PyNaCl's signing module (a project run
#: re-uses its signed grants and verifies them with nacl.bindings alone).
LEAN_PROBE = """
import contextlib, io, sys
from vudo.cli.app import run_cli
with contextlib.redirect_stdout(io.StringIO()):
    assert run_cli(sys.argv[1:]) == 0
print(" ".join(m for m in ("dataclasses", "inspect", "tomlkit", "textual", "nacl.signing",
                           "vudo.pkg.keys", "vudo.pkg.store", "vudo.pkg.manifest",
                           "vudo.pkg.versions", "vudo.project.grants", "vudo.project.build")
               if m in sys.modules))
"""


def _vudo(argv: list[str], env: dict[str, str], code: str | None = None) -> str:
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "vudo"]
    proc = subprocess.run(
        [*head, *argv], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _lean_env(tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        VUDO_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )


def test_a_project_run_stays_lean(tmp_path: Path) -> None:
    """`vudo run DIR` of a trusted project built before (the README's quick start, run a
    second time) imports no dataclasses, no store, and no nacl signer: its grants come
    signed from the grant cache and are verified."""
    import shutil

    project = tmp_path / "hello"
    shutil.copytree(
        SRC.parent / "examples" / "hello", project, ignore=shutil.ignore_patterns("target", "dist")
    )
    env = _lean_env(tmp_path)
    _vudo(["trust", str(project)], env)
    _vudo(["run", str(project)], env)  # builds, signs the run's grants and keeps them
    assert _vudo(["run", str(project)], env, LEAN_PROBE).split() == []


def test_search_reads_the_index_alone(tmp_path: Path) -> None:
    """`vudo search` queries the store's index with sqlite3 (vudo.pkg.index) alone."""
    env = _lean_env(tmp_path)
    _vudo(["search", "hello"], env)  # the first one creates the store
    assert _vudo(["search", "hello"], env, LEAN_PROBE).split() == []


def test_no_two_classes_share_a_name() -> None:
    """A class name means one thing across src/vudo (issue 9): two ``Manifest``s or two
    ``Dependency``s with different meanings are how imports pick the wrong one."""
    where: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(name)
    twice = {cls: mods for cls, mods in where.items() if len(mods) > 1}
    assert not twice, twice


#: What `vudo search` and `vudo --help` (which never load wasmtime, and so never typing
#: through it) keep out: `typing` itself (~4 ms of a ~50 ms search, see the vudo package
#: docstring). The modules they import spell TYPE_CHECKING as a constant of their own.
NO_TYPING_PROBE = """
import contextlib, io, sys
from vudo.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:  # --help
        code = exit.code
assert code == 0 and out.getvalue(), code
print("imported:", *(m for m in ("typing", "dataclasses") if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["search", "hello"], ["search", "--json", "hello"], ["--help"]])
def test_short_commands_never_import_typing(tmp_path: Path, argv: list[str]) -> None:
    env = _lean_env(tmp_path)
    _vudo(["search", "hello"], env)  # the first one creates the store
    assert _vudo(argv, env, NO_TYPING_PROBE).split() == ["imported:"]
