"""``vudo new``: a project that builds, runs and passes its tests as created.

Templates live in ``vudo/project/templates/<language>/`` as ordinary files with
``{{name}}``-style placeholders, so they can be read and edited like any project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from vudo.errors import InvalidInputError, UsageError, from_os_error
from vudo.pkg.keys import ensure_keypair
from vudo.pkg.manifest import MAX_NAME_CHARS
from vudo.project.layout import SOURCES

TEMPLATES: tuple[str, ...] = ("wat", "c", "zig", "rust")
#: What a template builds: ``wasi`` (a WASI command using the language's standard
#: library: printf, std.debug.print, println!) or ``freestanding`` (a Spirit that imports
#: only vudo's host functions and exports main). WAT is always freestanding.
TARGETS: tuple[str, ...] = ("wasi", "freestanding")

# Stricter than a package name (pkg.manifest.validate_name): a new project also gets no
# doubled or trailing "-"/"_". Always fullmatch ("$" lets a trailing newline through).
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class NewProject:
    """What ``new_project`` created."""

    root: Path
    name: str
    template: str
    author: str
    files: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.root),
            "template": self.template,
            "author": self.author,
            "files": [str(f) for f in self.files],
        }


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a Spirit, else raise InvalidInputError saying why."""
    if not name:
        raise InvalidInputError("a Spirit name cannot be empty", hint="e.g. `vudo new hello`")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInputError(
            f'Spirit name "{name[:MAX_NAME_CHARS]}..." is {len(name)} characters long; at most '
            f"{MAX_NAME_CHARS} are allowed",
            hint="choose a shorter name",
        )
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_NAME_CHARS]
        if suggestion and not suggestion[0].isalpha():
            suggestion = "spirit-" + suggestion
        hint = (
            "use lowercase letters, digits and single - or _ between them, starting with a letter"
        )
        if suggestion and _NAME.fullmatch(suggestion):
            hint += f', e.g. "{suggestion}"'
        raise InvalidInputError(f'invalid Spirit name "{name}"', hint=hint)
    return name


def _template_root(template: str, target: str = "wasi") -> Traversable:
    if template not in TEMPLATES:
        raise UsageError(
            f'unknown template "{template}"', hint="choose one of: " + ", ".join(TEMPLATES)
        )
    if target not in TARGETS:
        raise UsageError(f'unknown target "{target}"', hint="choose one of: " + ", ".join(TARGETS))
    folder = template if template == "wat" or target == "wasi" else f"{template}-{target}"
    return resources.files("vudo.project").joinpath("templates", folder)


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda t: t.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                out.extend(_walk(child, rel + "/"))
        else:
            out.append((rel, child))
    return out


def render_template(text: str, values: dict[str, str]) -> str:
    """Replace every ``{{key}}`` with its value (no other syntax: templates stay readable)."""
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def new_project(
    name: str, *, template: str = "wat", target: str = "wasi", parent: Path, home: Path
) -> NewProject:
    """Create ``parent/name`` from a template (``target``: see :data:`TARGETS`).

    The user's key pair under ``home/keys`` is created if there is none, and its public key
    becomes the manifest's ``author``. Refuses to write into an existing path.
    """
    validate_name(name)
    root_template = _template_root(template, target)
    where = (Path(parent) / name).absolute()
    if where.exists():
        raise InvalidInputError(
            f"{where} already exists", hint="choose another name, or --path another directory"
        )
    if not Path(parent).is_dir():
        raise InvalidInputError(
            f"{parent} is not a directory", hint="create it first, or pass another --path"
        )

    author = ensure_keypair(home).public_hex
    values = {
        "name": name,
        "author": author,
        "crate": name.replace("-", "_"),
        "source": "src/main.rs" if template == "rust" and target == "wasi" else SOURCES[template],
    }
    written: list[Path] = []
    try:
        where.mkdir()
        for rel, node in _walk(root_template):
            dest = where / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(render_template(node.read_text(encoding="utf-8"), values), "utf-8")
            written.append(dest)
        (where / ".gitignore").write_text("target/\ndist/\ndoc/\n", encoding="utf-8")
        written.append(where / ".gitignore")
    except OSError as err:
        raise from_os_error(err, f"cannot create {where}") from err
    from vudo.project.workspace import remember_created  # lazy: only `vudo new` records

    remember_created(where, home=home)  # made here by the user: trusted to build and run
    return NewProject(where, name, template, author, tuple(written))
