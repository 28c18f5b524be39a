"""``vudo fmt``, ``vudo check`` and ``vudo doc``: keeping a project tidy and described.

Each returns a value (what changed, every problem found, which files were written) and
prints nothing, so the CLI and the TUI render the same result their own way.
"""

from __future__ import annotations

import functools
import html
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vudo.errors import VudoError
from vudo.files import write_all, write_atomic_with
from vudo.pkg.archive import PackageReader
from vudo.pkg.manifest import find_manifest, format_manifest, load_manifest, read_manifest_text
from vudo.pkg.signing import verify_package
from vudo.project.layout import Progress, no_progress, open_project

# --------------------------------------------------------------------------- fmt


@dataclass(frozen=True, slots=True)
class FmtResult:
    """Whether the manifest was (or, with ``check``, would be) rewritten."""

    path: Path
    changed: bool
    formatted: str
    written: bool = False  # changed, and not only checked: the file was rewritten

    def diff(self) -> str:
        """A unified diff from the manifest as it is on disk to ``formatted``."""
        import difflib  # lazy: difflib (~1.5 ms) only to show a manifest's diff

        before = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        after = self.formatted.splitlines(keepends=True)
        name = self.path.name
        return "".join(
            difflib.unified_diff(before, after, f"{name} (current)", f"{name} (formatted)")
        )

    def to_json(self) -> dict[str, Any]:
        pending = self.changed and not self.written
        return {"path": str(self.path), "changed": self.changed, "written": self.written} | (
            {"diff": self.diff()} if pending else {}
        )


def fmt_project(path: Path, *, check: bool = False) -> FmtResult:
    """Format the project's manifest canonically (comments kept); ``check`` only reports."""
    manifest_path = find_manifest(Path(path).absolute())
    text = read_manifest_text(manifest_path)
    formatted = format_manifest(text, filename=str(manifest_path))
    changed = formatted != text
    if changed and not check:
        # Replaced whole or not at all: an interrupted write must not cut the manifest.
        # The temp file takes the manifest's mode (it is created 0644).
        data = formatted.encode("utf-8")
        mode = stat.S_IMODE(manifest_path.stat().st_mode)

        def body(fd: int) -> None:
            os.fchmod(fd, mode)
            write_all(fd, data)

        write_atomic_with(manifest_path, body, what="manifest")
    return FmtResult(manifest_path, changed, formatted, written=changed and not check)


# --------------------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of ``vudo check``; errors fail the check, warnings do not."""

    area: str  # manifest | format | dependencies | capabilities | package
    severity: str  # "error" | "warning"
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    root: Path
    name: str | None
    problems: tuple[Problem, ...]
    checked: tuple[str, ...]
    package: Path | None
    signer: str | None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "name": self.name,
            "ok": self.ok,
            "checked": list(self.checked),
            "package": str(self.package) if self.package else None,
            "signer": self.signer,
            "problems": [p.to_json() for p in self.problems],
        }


def check_project(path: Path, *, home: Path, progress: Progress = no_progress) -> CheckReport:
    """Lint everything checkable without running the Spirit; collects every problem.

    Manifest validity and formatting, dependency resolution, the built module's imports
    against the declared capabilities, and the signature of the packed package if there
    is one. Missing optional things (not built, not packed) are warnings.
    """
    root = Path(path).absolute()
    problems: list[Problem] = []
    checked: list[str] = []
    manifest_path = find_manifest(root)
    progress("checking manifest")
    checked.append("manifest")
    try:
        manifest = load_manifest(manifest_path)
    except VudoError as err:
        problems.append(Problem("manifest", "error", err.message, err.hint))
        return CheckReport(root, None, tuple(problems), tuple(checked), None, None)
    text = read_manifest_text(manifest_path)
    if format_manifest(text, filename=str(manifest_path)) != text:
        problems.append(
            Problem("format", "warning", f"{manifest_path.name} is not formatted", "run `vudo fmt`")
        )
    if manifest.dependencies:
        progress("resolving dependencies")
        checked.append("dependencies")
        problems.extend(_check_dependencies(root, home))
    from vudo.project.build import inspect_module, lint_capabilities  # lazy: not in fmt

    wasm = root / "target" / f"{manifest.name}.wasm"
    if wasm.is_file():
        checked.append("capabilities")
        try:
            info = inspect_module(wasm.read_bytes(), capabilities=manifest.capabilities)
        except VudoError as err:
            problems.append(Problem("capabilities", "error", err.message, err.hint))
        else:
            for p in lint_capabilities(info.imports, manifest.capabilities):
                problems.append(
                    Problem("capabilities", "error" if p.error else "warning", p.message, p.hint)
                )
            problems.extend(_check_composition(info.imports, bool(manifest.dependencies), root))
        try:
            if open_project(root).is_stale():
                problems.append(
                    Problem(
                        "capabilities",
                        "warning",
                        f"{wasm.name} is older than the source",
                        "run `vudo build`",
                    )
                )
        except VudoError:
            pass
    else:
        problems.append(
            Problem(
                "capabilities",
                "warning",
                "the module is not built yet",
                "run `vudo build` so its imports can be checked",
            )
        )
    package = root / "dist" / f"{manifest.name}-{manifest.version}.spirit"
    signer = None
    if package.is_file():
        checked.append("package")
        progress("verifying package")
        signer = _check_package(package, manifest.author, problems)
    return CheckReport(
        root,
        manifest.name,
        tuple(problems),
        tuple(checked),
        package if package.is_file() else None,
        signer,
    )


#: The imports that reach another Spirit (vudo.engine.compose): only a dependency, locked.
_DEPENDENCY_CALLS = ("host_spirit_call", "host_sandbox_spawn")


def _check_composition(
    imports: tuple[tuple[str, str], ...], has_dependencies: bool, root: Path
) -> list[Problem]:
    """A module that calls other Spirits reaches only the locked dependencies of its
    manifest: say so when there are none, or no ``spirit.lock`` pins them yet."""
    calls = sorted({name for module, name in imports if module == "vudo"} & set(_DEPENDENCY_CALLS))
    if not calls:
        return []
    if not has_dependencies:
        return [
            Problem(
                "dependencies",
                "warning",
                f"the module imports {', '.join(calls)} but spirit.toml has no [dependencies]: "
                "every such call will be NOT_FOUND",
                "list the Spirits it calls under [dependencies]",
            )
        ]
    if not (root / "spirit.lock").is_file():
        return [
            Problem(
                "dependencies",
                "warning",
                f"the module imports {', '.join(calls)} but there is no spirit.lock: a call "
                "reaches only the dependencies the lock pins",
                "run `vudo build` (it writes spirit.lock)",
            )
        ]
    return []


def _check_package(package: Path, author: str, problems: list[Problem]) -> str | None:
    try:
        with PackageReader(package) as reader:
            signed = reader.signature_member is not None
    except VudoError as err:
        problems.append(Problem("package", "error", err.message, err.hint))
        return None
    if not signed:
        problems.append(
            Problem("package", "warning", f"{package.name} is not signed", "run `vudo sign`")
        )
        return None
    try:
        verified = verify_package(package)
    except VudoError as err:
        problems.append(Problem("package", "error", err.message, err.hint))
        return None
    if not verified.author_matches:
        problems.append(
            Problem(
                "package",
                "warning",
                f"{package.name} is signed by {verified.signer[:16]}..., not by the manifest's "
                f"author {author[:16]}...",
                "fine if a team member signs; installers pin the real signer",
            )
        )
    return verified.signer


def _check_dependencies(root: Path, home: Path) -> list[Problem]:
    from vudo.project.dependencies import resolve_project_dependencies  # lazy: resolvelib

    try:
        resolve_project_dependencies(root, home=home)
    except VudoError as err:
        return [Problem("dependencies", "error", err.message, err.hint)]
    return []


# --------------------------------------------------------------------------- doc


@dataclass(frozen=True, slots=True)
class DocResult:
    markdown: Path
    html: Path
    exports: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "markdown": str(self.markdown),
            "html": str(self.html),
            "exports": list(self.exports),
        }


def doc_project(
    path: Path, *, output: Path | None = None, progress: Progress = no_progress
) -> DocResult:
    """Write ``<name>.md`` and ``index.html`` describing the Spirit, into ``output``
    (default ``doc/``): manifest facts, exported functions with their signatures, the
    capabilities it asks for and what each allows, and the README. Builds first if stale.
    """
    from vudo.project.build import build_project, inspect_module  # lazy: not in fmt

    project = open_project(path)
    if project.is_stale():
        build_project(project.root, progress=progress)
    info = inspect_module(
        project.wasm_path.read_bytes(), capabilities=project.manifest.capabilities
    )
    m = project.manifest
    lines = [f"# {m.name} {m.version}", ""]
    if m.description:
        lines += [m.description, ""]
    lines += ["| | |", "|---|---|", f"| author | `{m.author}` |"]
    if m.license:
        lines.append(f"| license | {m.license} |")
    if m.repository:
        lines.append(f"| repository | {m.repository} |")
    lines.append(f"| module | `target/{m.name}.wasm` ({project.language}) |")
    lines += ["", "## Functions", ""]
    exported = []
    for name, params, results in info.exports:
        sig = f"{name}({', '.join(params)})" + (f" -> {', '.join(results)}" if results else "")
        kind = " (test)" if name.startswith("test_") else ""
        lines.append(f"- `{sig}`{kind}")
        exported.append(sig)
    if not info.exports:
        lines.append("(none)")
    lines += ["", "## Capabilities", ""]
    if m.capabilities:
        lines += [f"- `{c.value}`: {c.description}" for c in m.capabilities]
    else:
        lines.append("This Spirit asks for no capabilities.")
    if m.dependencies:
        lines += ["", "## Dependencies", ""]
        lines += [f"- `{d.name}` {d.to_value()}" for d in m.dependencies]
    if m.pricing is not None:
        lines += ["", "## Pricing", ""]
        lines += [f"- {k}: {v}" for k, v in m.pricing.to_dict().items()]
    readme = project.root / "README.md"
    if readme.is_file():
        body = readme.read_text(encoding="utf-8").strip()
        body = re.sub(r"^#", "##", body, flags=re.MULTILINE)
        lines += ["", "## README", "", body]
    markdown = "\n".join(lines).rstrip() + "\n"
    out_dir = Path(output) if output is not None else project.root / "doc"
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / f"{m.name}.md"
    html_path = out_dir / "index.html"
    page = markdown_to_html(markdown, title=f"{m.name} {m.version}")
    for target, text in ((md_path, markdown), (html_path, page)):
        write_atomic_with(
            target,
            functools.partial(write_all, data=text.encode("utf-8")),
            what="documentation file",
        )
    return DocResult(md_path, html_path, tuple(exported))


def markdown_to_html(markdown: str, *, title: str) -> str:
    """``vudo doc``'s Markdown as a standalone HTML page, rendered by markdown-it-py
    (CommonMark plus tables). Raw HTML in the text is escaped, not passed through: export
    names and descriptions come from the Spirit's author, and the page must not run
    their markup; markdown-it-py also refuses ``javascript:`` and similar link targets."""
    from markdown_it import MarkdownIt  # lazy: only `vudo doc` renders HTML

    body: str = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n" + body + "</body></html>\n"
    )
