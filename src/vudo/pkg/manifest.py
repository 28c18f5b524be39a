"""Spirit manifests: ``spirit.toml`` (or ``manifest.toml`` / ``manifest.json``).

A manifest says what a Spirit is (name, version, author key), what it may do
(capabilities), what it needs (dependencies) and what a run costs (pricing). It is read
by every part of vudo, so parsing is strict and errors point at the line to fix: an
unknown key is refused (never silently dropped) with a did-you-mean, a value of the
wrong type names the field, the line and the expected type.

TOML is parsed with the standard library's tomllib (tomlkit, which ``vudo fmt`` needs to
keep comments, costs several times as much to import, and reading a manifest is on the
``vudo run`` path); a text tomllib refuses is parsed again by tomlkit, whose messages
name the line and column. JSON uses the standard library. Their exceptions become
:class:`ManifestError` at :mod:`vudo.boundaries` (TOML) and :func:`_load_json`.

Format (DESIGN.md §3)::

    name = "hello-spirit"                          # [a-z][a-z0-9_-]*, at most 64 chars
    version = { major = 0, minor = 1, patch = 0 }  # or "0.1.0"; table may add pre/build
    author = "<64 hex chars: Ed25519 public key>"
    description = "A simple hello world Spirit"    # optional
    license = "Apache-2.0"                         # optional
    repository = "https://example.org/hello"       # optional
    capabilities = ["sensor_time", "actuator_log"] # optional; never "unrestricted"

    [dependencies]                                  # optional
    b = "^1.0"
    c = { path = "../c" }
    d = { git = "https://example.org/d.git", rev = "v1.2.0" }
    e = { version = "~2.1", registry = "community", optional = true }

    [pricing]                                       # optional; see vudo.pkg.pricing
    base_cost = 100
    per_fuel_cost = 1
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vudo.boundaries import load_toml, parse_toml_document, without_bom
from vudo.capabilities import AnyCapability, Capability, CustomCapability
from vudo.errors import InvalidInputError, ManifestError, NotFoundError
from vudo.pkg import MANIFEST_FILENAMES
from vudo.pkg.pricing import PRICING_KEYS, Pricing
from vudo.pkg.versions import ANY, Requirement, parse_requirement, parse_version

if TYPE_CHECKING:
    import tomlkit

    from vudo.pkg.versions import Version

__all__ = [
    "DEPENDENCY_KEYS",
    "MANIFEST_FILENAMES",
    "PRICING_KEYS",
    "TOP_LEVEL_KEYS",
    "Dependency",
    "Manifest",
    "Pricing",
    "canonical_manifest_bytes",
    "find_manifest",
    "format_manifest",
    "load_manifest",
    "manifest_from_dict",
    "manifest_to_dict",
    "parse_manifest",
    "validate_name",
]

#: Looked up in this order by :func:`find_manifest`.

#: Canonical order of the top-level keys (also the order ``vudo fmt`` writes).
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name",
    "version",
    "author",
    "description",
    "license",
    "repository",
    "capabilities",
    "directories",
    "dependencies",
    "pricing",
)
#: A ``directories`` entry: one plain name (a WASI program's own data directory).
_DIRECTORY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_DIRECTORIES = 16
VERSION_KEYS: tuple[str, ...] = ("major", "minor", "patch", "pre", "build")
DEPENDENCY_KEYS: tuple[str, ...] = ("version", "path", "git", "rev", "registry", "optional")
_SECTIONS = ("dependencies", "pricing")

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # always fullmatch: "$" lets "\n" through
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
#: Longest Spirit name; longer input is shown cut in messages, not echoed whole.
MAX_NAME_CHARS = 64
_NAME_HINT = 'use lowercase letters, digits, "-" and "_", starting with a letter, at most 64'


@dataclass(frozen=True, slots=True)
class Dependency:
    """One entry of ``[dependencies]``.

    Exactly one source applies: ``path`` (a directory, relative to the manifest's),
    ``git`` (a repository URL, pinned to ``rev``), or a registry (``registry`` names
    one; None means the default sources). ``requirement`` constrains the version from
    any source (``*`` when a path or git dependency gives none). Optional dependencies
    are only resolved when asked for.
    """

    name: str
    requirement: Requirement = ANY
    path: str | None = None
    git: str | None = None
    rev: str | None = None
    registry: str | None = None
    optional: bool = False

    @property
    def kind(self) -> str:
        """``"path"``, ``"git"`` or ``"registry"``."""
        if self.path is not None:
            return "path"
        if self.git is not None:
            return "git"
        return "registry"

    def to_value(self) -> str | dict[str, Any]:
        """The manifest value: a bare requirement string when that says everything."""
        if self.kind == "registry" and self.registry is None and not self.optional:
            return str(self.requirement)
        out: dict[str, Any] = {}
        if self.kind == "registry" or not self.requirement.is_any:
            out["version"] = str(self.requirement)
        for key in ("path", "git", "rev", "registry"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.optional:
            out["optional"] = True
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated Spirit manifest (build one with :func:`parse_manifest`)."""

    name: str
    version: Version
    author: str
    description: str = ""
    license: str | None = None
    repository: str | None = None
    capabilities: tuple[AnyCapability, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    pricing: Pricing | None = None
    #: WASI data directories the Spirit wants (plain names): each is a directory of its
    #: own under the store, preopened as ``/<name>`` (see docs/wasi.md)
    directories: tuple[str, ...] = ()

    def dependency(self, name: str) -> Dependency | None:
        for dep in self.dependencies:
            if dep.name == name:
                return dep
        return None

    def to_dict(self) -> dict[str, Any]:
        return manifest_to_dict(self)

    def to_toml(self) -> str:
        """Canonical ``spirit.toml`` text (what ``vudo new`` writes; stable across runs)."""
        return _render_sections(_sections_from_data(manifest_to_dict(self, version_table=True)))

    def replace(self, **changes: Any) -> Manifest:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------- line locator


def _scan_code(line: str) -> tuple[int, int, str | None]:
    """Bracket balance of one TOML line outside strings, the column of a comment (or -1),
    and the triple quote left open at the end of the line (if any)."""
    depth = 0
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if line.startswith('"""', i) or line.startswith("'''", i):
            quote = line[i : i + 3]
            end = line.find(quote, i + 3)
            if end < 0:
                return depth, -1, quote
            i = end + 3
            continue
        if ch == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            continue
        if ch == "'":
            end = line.find("'", i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "#":
            return depth, i, None
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        i += 1
    return depth, -1, None


_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_RE = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=(.*)$")
_HEADER_RE = re.compile(
    rf"^\s*\[\[?\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*\]\]?\s*(?:#.*)?$"
)
_INLINE_KEY_RE = re.compile(rf"[{{,]\s*({_BARE_OR_QUOTED})\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(_BARE_OR_QUOTED, text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class _Locator:
    """Finds the line a key (or a string value) sits on, for error messages.

    tomlkit keeps no line numbers on parsed items, so this scans the text once; it only
    has to be right for well-formed input (malformed input fails earlier with the
    parser's own position).
    """

    def __init__(self, text: str, filename: str, *, is_json: bool) -> None:
        self.filename = filename
        self.text = text
        self.lines = text.splitlines()
        self.is_json = is_json
        self.positions: dict[tuple[str, ...], int] = {}
        if not is_json:
            self._scan_toml()

    def _scan_toml(self) -> None:
        header: tuple[str, ...] = ()
        depth = 0
        open_quote: str | None = None
        for lineno, line in enumerate(self.lines, 1):
            if open_quote is not None:
                if line.count(open_quote) % 2 == 1:
                    open_quote = None
                continue
            if depth > 0:
                delta, _, open_quote = _scan_code(line)
                depth += delta
                continue
            header_match = _HEADER_RE.match(line)
            if header_match:
                header = _split_key(header_match.group(1))
                self.positions.setdefault(header, lineno)
                continue
            key_match = _KEY_RE.match(line)
            if key_match:
                path = header + _split_key(key_match.group(1))
                for i in range(len(header) + 1, len(path) + 1):
                    self.positions.setdefault(path[:i], lineno)
                rest = key_match.group(2)
                if rest.lstrip().startswith("{"):
                    for sub in _INLINE_KEY_RE.finditer(rest):
                        self.positions.setdefault(path + _split_key(sub.group(1)), lineno)
                delta, _, open_quote = _scan_code(rest)
                depth += delta

    def _json_offset(self, path: tuple[str, ...]) -> int | None:
        offset = 0
        for key in path:
            match = re.compile(rf"{re.escape(json.dumps(key))}\s*:").search(self.text, offset)
            if match is None:
                return None
            offset = match.start()
        return offset

    def line(self, path: tuple[str, ...]) -> int | None:
        if self.is_json:
            offset = self._json_offset(path)
            return None if offset is None else self.text.count("\n", 0, offset) + 1
        for i in range(len(path), 0, -1):
            if path[:i] in self.positions:
                return self.positions[path[:i]]
        return None

    def value_line(self, path: tuple[str, ...], value: str) -> int | None:
        """The line of string ``value`` at or after the line of ``path``."""
        start = self.line(path)
        if start is None:
            return None
        needles = (json.dumps(value), f"'{value}'")
        for lineno in range(start, len(self.lines) + 1):
            if any(n in self.lines[lineno - 1] for n in needles):
                return lineno
        return start

    def where(self, path: tuple[str, ...] = (), *, value: str | None = None) -> str:
        line = self.value_line(path, value) if value is not None else self.line(path)
        return f"{self.filename}:{line}" if line is not None else self.filename


# ---------------------------------------------------------------- parsing boundaries


def _load_toml(text: str, filename: str) -> dict[str, Any]:
    """Parse TOML into plain values (:func:`vudo.boundaries.load_toml`: tomllib first,
    tomlkit for the message with line and column); malformed text is ManifestError."""
    return _plain(load_toml(text, filename, error=ManifestError))  # type: ignore[no-any-return]


def _load_toml_document(text: str, filename: str) -> tomlkit.TOMLDocument:
    """Parse TOML with tomlkit (its comments and layout kept, for ``vudo fmt``)."""
    return parse_toml_document(text, filename, error=ManifestError)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _load_json(text: str, filename: str) -> Any:
    """Parse JSON; the one place json's exceptions become ManifestError."""
    try:
        return json.loads(without_bom(text), object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"malformed JSON at {filename}:{exc.lineno}:{exc.colno}: {exc.msg}",
            hint="check the JSON syntax on that line (commas, quotes, braces)",
        ) from None
    except _DuplicateKey as exc:
        raise ManifestError(
            f'key "{exc.key}" appears twice in {filename}', hint="keep one of them"
        ) from None
    except RecursionError:  # "[[[[..." deeper than the parser's stack
        raise ManifestError(
            f"malformed JSON in {filename}: nested too deeply",
            hint="a manifest is a flat table of fields",
        ) from None


# ---------------------------------------------------------------- validation


# What a value is called in "must be ..., not ..." messages. First match wins: bool
# before int (a bool is an int).
_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    ((datetime, date, time), "a date/time"),
    (type(None), "null"),
)


def _type_name(value: object) -> str:
    for kinds, name in _TYPE_NAMES:
        if isinstance(value, kinds):
            return name
    return type(value).__name__


def shown_name(name: str) -> str:
    """``name`` as an error message may quote it: cut to a screenful when it is far too
    long (a 100,000-character argument is not echoed back whole)."""
    if len(name) <= MAX_NAME_CHARS + 16:
        return name
    return f"{name[:MAX_NAME_CHARS]}... ({len(name)} characters)"


def validate_name(name: str, *, what: str = "name") -> str:
    """Check a Spirit name; raise InvalidInputError suggesting a valid spelling.

    The whole string must match (``re.fullmatch``): ASCII lowercase letters, digits, "-"
    and "_", starting with a letter, at most 64 characters.
    """
    if _NAME_RE.fullmatch(name):
        return name
    fixed = re.sub(r"[^a-z0-9_-]+", "-", name[: 4 * MAX_NAME_CHARS].lower()).strip("-_")
    fixed = re.sub(r"^[^a-z]+", "", fixed)[:MAX_NAME_CHARS]
    hint = _NAME_HINT + (
        f' (e.g. "{fixed}")'
        if fixed and _NAME_RE.fullmatch(fixed) and len(name) <= MAX_NAME_CHARS
        else ""
    )
    raise InvalidInputError(f'invalid {what} "{shown_name(name)}"', hint=hint)


def canonical_name(name: str) -> str:
    """The form two Spirit names are compared in: without regard to case and to "-" vs
    "_" (as crates.io does), so ``my_x`` and ``My-X`` are one name and cannot belong to
    two signers. The store indexes it; registries check it on publish."""
    return name.lower().replace("_", "-")


class _Validator:
    def __init__(self, locator: _Locator) -> None:
        self.loc = locator

    def fail(self, message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(message, hint=hint)

    def _dotted(self, path: tuple[str, ...]) -> str:
        return ".".join(path)

    def wrong_type(self, path: tuple[str, ...], value: object, expected: str) -> ManifestError:
        return self.fail(
            f'"{self._dotted(path)}" at {self.loc.where(path)} must be {expected}, '
            f"not {_type_name(value)}",
            hint=f"write {self._dotted(path)} as {expected}",
        )

    def check_keys(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], path: tuple[str, ...]
    ) -> None:
        for key in table:
            if key in allowed:
                continue
            import difflib  # lazy: difflib only for a misspelt key's hint

            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = (
                f'did you mean "{close[0]}"?'
                if close
                else "allowed keys here: " + ", ".join(allowed)
            )
            section = f" in [{self._dotted(path)}]" if path else ""
            raise self.fail(
                f'unknown key "{key}"{section} at {self.loc.where((*path, key))}', hint=hint
            )

    def string(self, data: Mapping[str, Any], key: str, path: tuple[str, ...] = ()) -> str:
        value = data[key]
        if not isinstance(value, str):
            raise self.wrong_type((*path, key), value, "a string")
        control = _CONTROL_RE.search(value)
        if control:
            # Shown in terminals by list/info/search: escape sequences and newlines in a
            # published manifest could restyle the screen or fake vudo's own output.
            raise self.fail(
                f'"{self._dotted((*path, key))}" at {self.loc.where((*path, key))} '
                f"contains a control character (U+{ord(control.group()):04X})",
                hint="use plain text (newlines and tabs are fine)",
            )
        return value

    def optional_string(self, data: Mapping[str, Any], key: str) -> str | None:
        return self.string(data, key) if key in data else None

    def non_negative_int(self, value: object, path: tuple[str, ...], minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong_type(path, value, "an integer")
        if value < minimum:
            raise self.fail(
                f'"{self._dotted(path)}" at {self.loc.where(path)} must be at least '
                f"{minimum}, not {value}",
                hint=f"use a whole number >= {minimum}",
            )
        return value

    def manifest(self, data: object) -> Manifest:
        if not isinstance(data, dict):
            raise self.fail(
                f"{self.loc.filename} must hold a table of keys, not {_type_name(data)}",
                hint='start with name = "my-spirit"',
            )
        self.check_keys(data, TOP_LEVEL_KEYS, ())
        for required in ("name", "version", "author"):
            if required not in data:
                hints = {
                    "name": 'add name = "my-spirit"',
                    "version": 'add version = "0.1.0"',
                    "author": 'add author = "<your public key: ~/.vudo/keys/public.key>"',
                }
                raise self.fail(
                    f'missing required key "{required}" in {self.loc.filename}',
                    hint=hints[required],
                )
        name = self.string(data, "name")
        try:
            validate_name(name)
        except InvalidInputError as exc:
            raise self.fail(
                f'invalid name "{shown_name(name)}" at {self.loc.where(("name",))}', hint=exc.hint
            ) from None
        version = self.version(data["version"])
        author = self.string(data, "author")
        if not _HEX64_RE.fullmatch(author):
            got = (
                f"{len(author)} characters"
                if len(author) != 64
                else "other characters than 0-9 and a-f"
            )
            raise self.fail(
                f"invalid author at {self.loc.where(('author',))}: expected 64 "
                f"lowercase hex characters (an Ed25519 public key), got {got}",
                hint="use the contents of ~/.vudo/keys/public.key",
            )
        description = self.string(data, "description") if "description" in data else ""
        return Manifest(
            name=name,
            version=version,
            author=author,
            description=description,
            license=self.optional_string(data, "license"),
            repository=self.optional_string(data, "repository"),
            capabilities=self.capabilities(data.get("capabilities", [])),
            directories=self.directories(data.get("directories", [])),
            dependencies=self.dependencies(data.get("dependencies", {})),
            pricing=self.pricing(data["pricing"]) if "pricing" in data else None,
        )

    def version(self, value: object) -> Version:
        path = ("version",)
        expected = 'a string like "1.2.3" or a { major, minor, patch } table'
        if isinstance(value, str):
            try:
                return parse_version(value)
            except InvalidInputError as exc:
                raise self.fail(
                    f'invalid version "{value}" at {self.loc.where(path)}', hint=exc.hint
                ) from None
        if not isinstance(value, dict):
            raise self.wrong_type(path, value, expected)
        self.check_keys(value, VERSION_KEYS, path)
        numbers: list[int] = []
        for key in ("major", "minor", "patch"):
            if key not in value:
                raise self.fail(
                    f'version table at {self.loc.where(path)} is missing "{key}"',
                    hint="write version = { major = 0, minor = 1, patch = 0 }",
                )
            numbers.append(self.non_negative_int(value[key], (*path, key)))
        text = ".".join(str(n) for n in numbers)
        for key, sep in (("pre", "-"), ("build", "+")):
            if key in value:
                text += sep + self.string(value, key, path)
        try:
            return parse_version(text)
        except InvalidInputError as exc:
            raise self.fail(
                f"invalid version {text} at {self.loc.where(path)}", hint=exc.hint
            ) from None

    def directories(self, value: object) -> tuple[str, ...]:
        path = ("directories",)
        if not isinstance(value, list):
            raise self.wrong_type(path, value, "an array of directory names")
        if len(value) > MAX_DIRECTORIES:
            raise self.fail(
                f"{len(value)} directories at {self.loc.where(path)}; at most "
                f"{MAX_DIRECTORIES} are allowed",
                hint="keep the data in fewer directories",
            )
        seen: list[str] = []
        for item in value:
            if not isinstance(item, str) or not _DIRECTORY_RE.fullmatch(item):
                shown = item if isinstance(item, str) and len(item) <= 64 else _type_name(item)
                raise self.fail(
                    f'directory "{shown}" at {self.loc.where(path)} is not a plain name',
                    hint='lowercase letters, digits, - and _, e.g. directories = ["data"]',
                )
            if item in seen:
                raise self.fail(
                    f'directory "{item}" is listed twice at {self.loc.where(path)}',
                    hint="remove the duplicate",
                )
            seen.append(item)
        return tuple(seen)

    def capabilities(self, value: object) -> tuple[AnyCapability, ...]:
        path = ("capabilities",)
        if not isinstance(value, list):
            raise self.wrong_type(path, value, "an array of capability names")
        seen: list[AnyCapability] = []
        names = [c.value for c in Capability if c.manifest_grantable]
        for item in value:
            if not isinstance(item, str):
                raise self.fail(
                    f"capabilities at {self.loc.where(path)} must be strings, "
                    f"not {_type_name(item)}",
                    hint=f'e.g. "{names[0]}"',
                )
            where = self.loc.where(path, value=item)
            if item == Capability.UNRESTRICTED.value:
                raise self.fail(
                    f'capability "unrestricted" at {where} cannot be requested by a manifest',
                    hint="it is reserved for system Spirits; list the specific "
                    "capabilities the Spirit needs",
                )
            try:
                # an application's own capability (x:APP.NAME), guarding host functions the
                # application APP defines when it embeds vudo (vudo.engine.custom)
                cap = CustomCapability(item) if item.startswith("x:") else Capability(item)
            except InvalidInputError as exc:
                raise self.fail(f"{exc.message} at {where}", hint=exc.hint) from None
            except ValueError:
                import difflib  # lazy: difflib only for a misspelt key's hint

                close = difflib.get_close_matches(item, names, n=1, cutoff=0.5)
                hint = (
                    f'did you mean "{close[0]}"?'
                    if close
                    else "known capabilities: " + ", ".join(names)
                )
                raise self.fail(f'unknown capability "{item}" at {where}', hint=hint) from None
            if cap in seen:
                raise self.fail(
                    f'capability "{item}" is listed twice at {where}', hint="remove the duplicate"
                )
            seen.append(cap)
        return tuple(seen)

    def dependencies(self, value: object) -> tuple[Dependency, ...]:
        path = ("dependencies",)
        if not isinstance(value, dict):
            raise self.wrong_type(path, value, "a table")
        deps = [self.dependency(name, spec) for name, spec in value.items()]
        return tuple(sorted(deps, key=lambda d: d.name))

    def dependency(self, name: str, spec: object) -> Dependency:
        path = ("dependencies", name)
        where = self.loc.where(path)
        try:
            validate_name(name, what="dependency name")
        except InvalidInputError as exc:
            raise self.fail(f'invalid dependency name "{name}" at {where}', hint=exc.hint) from None
        if isinstance(spec, str):
            return Dependency(name=name, requirement=self.requirement(spec, path))
        if not isinstance(spec, dict):
            raise self.wrong_type(path, spec, "a version requirement string or a table")
        self.check_keys(spec, DEPENDENCY_KEYS, path)
        fields: dict[str, str | None] = {}
        for key in ("path", "git", "rev", "registry"):
            fields[key] = self.string(spec, key, path) if key in spec else None
        optional = spec.get("optional", False)
        if not isinstance(optional, bool):
            raise self.wrong_type((*path, "optional"), optional, "true or false")
        if fields["path"] is not None and fields["git"] is not None:
            raise self.fail(
                f'dependency "{name}" at {where} has both path and git', hint="keep one source"
            )
        if fields["registry"] is not None and (fields["path"] or fields["git"]):
            raise self.fail(
                f'dependency "{name}" at {where} has a registry and a path or git source',
                hint="keep one source",
            )
        if fields["git"] is not None and fields["rev"] is None:
            raise self.fail(
                f'git dependency "{name}" at {where} has no rev',
                hint='pin it: add rev = "<commit, tag or branch>"',
            )
        if fields["rev"] is not None and fields["git"] is None:
            raise self.fail(
                f'dependency "{name}" at {where} has a rev but no git URL',
                hint='add git = "<repository URL>" or remove rev',
            )
        if "version" in spec:
            requirement = self.requirement(self.string(spec, "version", path), (*path, "version"))
        elif fields["path"] is None and fields["git"] is None:
            raise self.fail(
                f'dependency "{name}" at {where} needs a version, path or git',
                hint=f'e.g. {name} = "^1.0"',
            )
        else:
            requirement = ANY
        return Dependency(
            name=name,
            requirement=requirement,
            path=fields["path"],
            git=fields["git"],
            rev=fields["rev"],
            registry=fields["registry"],
            optional=optional,
        )

    def requirement(self, text: str, path: tuple[str, ...]) -> Requirement:
        try:
            return parse_requirement(text)
        except InvalidInputError as exc:
            raise self.fail(
                f'invalid version requirement "{text}" at {self.loc.where(path)}', hint=exc.hint
            ) from None

    def pricing(self, value: object) -> Pricing:
        path = ("pricing",)
        if not isinstance(value, dict):
            raise self.wrong_type(path, value, "a table")
        self.check_keys(value, PRICING_KEYS, path)
        numbers = {
            key: self.non_negative_int(v, (*path, key), 1 if key == "fuel_unit" else 0)
            for key, v in value.items()
        }
        return Pricing(**numbers)


# ---------------------------------------------------------------- public API


def _is_json(filename: str, text: str) -> bool:
    if filename.endswith(".json"):
        return True
    if filename.endswith(".toml"):
        return False
    return text.lstrip().startswith("{")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_data(text: str, filename: str) -> tuple[Any, _Locator]:
    json_input = _is_json(filename, text)
    locator = _Locator(text, filename, is_json=json_input)
    if json_input:
        return _load_json(text, filename), locator
    return _load_toml(text, filename), locator


def parse_manifest(text: str, *, filename: str = "spirit.toml") -> Manifest:
    """Parse and validate manifest text; ``filename`` picks TOML or JSON and is named in
    errors (``spirit.toml:4``)."""
    data, locator = _read_data(text, filename)
    return _Validator(locator).manifest(data)


def manifest_from_dict(data: Mapping[str, Any], *, filename: str = "<manifest>") -> Manifest:
    """Validate an already-decoded manifest (e.g. the JSON a package or index stores)."""
    text = json.dumps(data, indent=1, default=str)
    return _Validator(_Locator(text, filename, is_json=True)).manifest(_plain(dict(data)))


#: The largest manifest file read (the same bound packages put on their manifest member).
MAX_MANIFEST_BYTES = 1024 * 1024


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file (or the manifest in a directory)."""
    path = Path(path)
    if path.is_dir():
        path = find_manifest(path)
    return parse_manifest(read_manifest_text(path), filename=str(path))


def read_manifest_text(path: Path) -> str:
    """The text of manifest file ``path``: NotFoundError if absent, ManifestError if it
    is not UTF-8 or is bigger than any manifest needs to be (checked before reading)."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{path} is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte manifest limit",
                hint="a manifest holds metadata only; move long text to README.md",
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"manifest {path} does not exist",
            hint="run `vudo new <name>` to create a Spirit project",
        ) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="save the manifest as UTF-8"
        ) from None


def find_manifest(directory: Path) -> Path:
    """The manifest file in ``directory`` (``spirit.toml`` first), or NotFoundError."""
    directory = Path(directory)
    for name in MANIFEST_FILENAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise NotFoundError(
        f"no spirit.toml in {directory}",
        hint="run `vudo new <name>` to create a Spirit project, or cd into one",
    )


def manifest_to_dict(manifest: Manifest, *, version_table: bool = False) -> dict[str, Any]:
    """Plain data in canonical key order; optional fields are left out when unset.

    ``version`` is a string unless ``version_table`` asks for the ``{major, minor,
    patch}`` table form.
    """
    out: dict[str, Any] = {"name": manifest.name}
    if version_table:
        table: dict[str, Any] = {
            "major": manifest.version.major,
            "minor": manifest.version.minor,
            "patch": manifest.version.patch,
        }
        if manifest.version.prerelease:
            table["pre"] = ".".join(manifest.version.prerelease)
        if manifest.version.build:
            table["build"] = ".".join(manifest.version.build)
        out["version"] = table
    else:
        out["version"] = str(manifest.version)
    out["author"] = manifest.author
    if manifest.description:
        out["description"] = manifest.description
    if manifest.license is not None:
        out["license"] = manifest.license
    if manifest.repository is not None:
        out["repository"] = manifest.repository
    if manifest.capabilities:
        out["capabilities"] = [c.value for c in manifest.capabilities]
    if manifest.directories:
        out["directories"] = list(manifest.directories)
    if manifest.dependencies:
        out["dependencies"] = {d.name: d.to_value() for d in manifest.dependencies}
    if manifest.pricing is not None:
        out["pricing"] = manifest.pricing.to_dict()
    return out


def canonical_manifest_bytes(manifest: Manifest) -> bytes:
    """A stable encoding for signing: compact JSON with sorted keys, UTF-8.

    Two manifests that parse to the same value give the same bytes, whatever their
    formatting, comments or file type.
    """
    return json.dumps(
        manifest_to_dict(manifest), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


# ---------------------------------------------------------------- canonical formatting


@dataclass(slots=True)
class _TomlEntry:
    key: str
    value: Any
    comments: list[str] = field(default_factory=list)
    inline_comment: str = ""
    rendered: str | None = None  # the value's text when it must keep comments inside


@dataclass(slots=True)
class _Section:
    name: str  # "" for the top level
    entries: list[_TomlEntry] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)  # above the [header]
    inline_comment: str = ""
    trailing: list[str] = field(default_factory=list)  # after the last entry
    present: bool = True


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _render_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _render_value(value: Any, order: tuple[str, ...] = ()) -> str:
    import tomlkit  # lazy: tomlkit (~10 ms) only to render TOML, never to read a manifest

    if isinstance(value, dict):
        # tomlkit would write {a = 1}, in insertion order (and a dict as a [table])
        keys = sorted(value, key=lambda k: (order.index(k) if k in order else len(order), k))
        pairs = ", ".join(f"{_render_key(k)} = {_render_value(value[k], order)}" for k in keys)
        return f"{{ {pairs} }}" if pairs else "{}"
    return str(tomlkit.item(value).as_string())  # strings, integers, booleans, arrays


def _entry_order(section: str, key: str) -> tuple[int, str]:
    if section == "":
        return (TOP_LEVEL_KEYS.index(key) if key in TOP_LEVEL_KEYS else len(TOP_LEVEL_KEYS), key)
    if section == "pricing":
        return (PRICING_KEYS.index(key) if key in PRICING_KEYS else len(PRICING_KEYS), key)
    return (0, key)


def _render_sections(
    sections: list[_Section], header: list[str] | None = None, footer: list[str] | None = None
) -> str:
    out: list[str] = []
    if header:
        out.extend(header)
        out.append("")
    value_order = {"": VERSION_KEYS, "dependencies": DEPENDENCY_KEYS}
    for section in sections:
        if not section.present:
            continue
        if section.name:
            if out:
                out.append("")
            out.extend(section.comments)
            line = f"[{section.name}]"
            out.append(f"{line}  {section.inline_comment}" if section.inline_comment else line)
        for entry in sorted(section.entries, key=lambda e: _entry_order(section.name, e.key)):
            out.extend(entry.comments)
            value = entry.rendered or _render_value(entry.value, value_order.get(section.name, ()))
            line = f"{_render_key(entry.key)} = {value}"
            out.append(f"{line}  {entry.inline_comment}" if entry.inline_comment else line)
        out.extend(section.trailing)
    if footer:
        out.append("")
        out.extend(footer)
    return "\n".join(out) + "\n"


def _sections_from_data(data: Mapping[str, Any]) -> list[_Section]:
    root = _Section("", [_TomlEntry(k, v) for k, v in data.items() if k not in _SECTIONS])
    sections = [root]
    for name in _SECTIONS:
        if name in data:
            sections.append(_Section(name, [_TomlEntry(k, v) for k, v in data[name].items()]))
    return sections


def _comments_inside(text: str) -> list[str]:
    """Comment lines inside a multi-line value (arrays may carry them)."""
    found: list[str] = []
    for line in text.splitlines():
        _, col, _ = _scan_code(line)
        if col >= 0:
            found.append(line[col:].rstrip())
    return found


def _render_commented_array(text: str) -> str | None:
    """A multi-line array with comments inside, one element per line, each comment kept
    beside the element it was written next to; None if the layout is too unusual (an
    element spanning lines), in which case the comments move above the key instead."""
    lines = text.splitlines()
    if len(lines) < 2:
        return None
    out = ["["]
    for index, line in enumerate(lines):
        _, col, _ = _scan_code(line)
        code = (line if col < 0 else line[:col]).strip()
        comment = "" if col < 0 else line[col:].strip()
        if index == 0:
            if not code.startswith("["):
                return None
            code = code[1:]
        if index == len(lines) - 1:
            if not code.endswith("]"):
                return None
            code = code[:-1]
        code = code.strip().rstrip(",").strip()
        try:
            elements = parse_toml_document(f"x = [{code}]\n", "").unwrap()["x"] if code else []
        except InvalidInputError:
            return None
        rendered = [f"    {_render_value(_plain(e))}," for e in elements]
        if comment and rendered:
            rendered[-1] += f"  {comment}"
        elif comment:
            rendered.append(f"    {comment}")
        out.extend(rendered)
    out.append("]")
    return "\n".join(out)


def _value_entry(key: str, item: Any, comments: list[str]) -> _TomlEntry:
    """An entry for a plain key = value item, keeping comments written inside it."""
    from tomlkit.items import Array  # lazy: tomlkit (~10 ms) only for `vudo fmt`

    text = item.as_string()
    inside = _comments_inside(text)
    rendered = None
    if inside and isinstance(item, Array):
        rendered = _render_commented_array(text)
    if rendered is None:
        comments = comments + inside
    inline = item.trivia.comment.strip() if item.trivia.comment else ""
    return _TomlEntry(key, _plain(item.unwrap()), comments, inline, rendered)


def _add_entry(entries: list[_TomlEntry], entry: _TomlEntry) -> None:
    """Add ``entry`` to ``entries``; the lines of one dotted key (version.major = 1 then
    version.minor = 0) merge into one entry, their comments above it (written as one
    entry each, the key would be defined twice)."""
    known = next((e for e in entries if e.key == entry.key), None)
    if known is None:
        entries.append(entry)
        return
    known.value = known.value | entry.value  # TOML defines a key twice only as tables
    known.comments += entry.comments
    if entry.inline_comment:
        known.comments.append(entry.inline_comment)


def _split_at_blank(lines: list[tuple[str, bool]]) -> tuple[list[str], list[str]]:
    """Split collected (comment, blank-line-marker) items at the last blank line."""
    last_blank = max((i for i, (_, blank) in enumerate(lines) if blank), default=-1)
    before = [text for text, blank in lines[:last_blank] if not blank] if last_blank >= 0 else []
    after = [text for text, blank in lines[last_blank + 1 :] if not blank]
    return before, after


def _keep_trivia(item: Any, pending: list[tuple[str, bool]]) -> None:
    """Add a keyless body item to ``pending``: a comment as ``(text, False)``, each
    blank line as ``("", True)``, so it can move with the entry that follows."""
    from tomlkit.items import Comment, Whitespace  # lazy: tomlkit (~10 ms) only for `vudo fmt`

    if isinstance(item, Comment):
        pending.append((item.as_string().strip(), False))
    elif isinstance(item, Whitespace) and "\n" in item.as_string():
        pending.extend([("", True)] * item.as_string().count("\n"))


def _walk_body(
    body: Iterable[tuple[Any, Any]], entries: list[_TomlEntry], pending: list[tuple[str, bool]]
) -> list[tuple[str, bool]]:
    """Collect entries of one table body with the comments above them; return the comment
    lines left after the last entry."""
    from tomlkit.items import Table  # lazy: tomlkit (~10 ms) only for `vudo fmt`

    for key, item in body:
        if key is None:
            _keep_trivia(item, pending)
            continue
        comments = [text for text, blank in pending if not blank]
        pending = []
        if isinstance(item, Table):
            # [dependencies.c] sub-table: becomes an inline table, comments move above it
            if item.trivia.comment:
                comments.append(item.trivia.comment.strip())
            inner: list[_TomlEntry] = []
            rest = _walk_body(item.value.body, inner, [])
            for sub in inner:
                comments.extend(sub.comments)
                if sub.inline_comment:
                    comments.append(sub.inline_comment)
            comments.extend(text for text, blank in rest if not blank)
            _add_entry(entries, _TomlEntry(key.key, _plain(item.unwrap()), comments))
            continue
        _add_entry(entries, _value_entry(key.key, item, comments))
    return pending


def _first_key(doc: Any) -> str | None:
    """The key ``vudo fmt`` writes first: the first top-level key in canonical order, or
    the first table when there are none."""
    keys: list[str] = [str(k.key) for k, _ in doc.body if k is not None]
    plain = [k for k in keys if k not in _SECTIONS]
    if plain:
        return min(plain, key=lambda k: _entry_order("", k))
    tables = [k for k in _SECTIONS if k in keys]
    return tables[0] if tables else None


def format_manifest(text: str, *, filename: str = "spirit.toml") -> str:
    """Canonical formatting for ``vudo fmt``: keys in canonical order (name, version,
    author, description, license, repository, capabilities, then [dependencies] sorted
    by name, then [pricing]), ``key = value`` spacing, one blank line before each table,
    values written one way. Every comment is kept (a comment above a key moves with it;
    a multi-line array keeps its comments beside their elements, one element per line;
    other comments inside a value move above its key). Idempotent.

    The text must be a valid manifest (ManifestError otherwise). JSON manifests have no
    comments: they come back as indented JSON in canonical order.
    """
    parse_manifest(text, filename=filename)
    if _is_json(filename, text):
        data = _load_json(text, filename)
        ordered = {k: data[k] for k in sorted(data, key=lambda k: _entry_order("", k))}
        return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"
    from tomlkit.items import Table  # lazy: tomlkit (~10 ms) only for `vudo fmt`

    # tomllib reads a CRLF inside a multi-line string as "\n", tomlkit keeps the "\r" (which,
    # written back escaped, the manifest would refuse as a control character)
    doc = _load_toml_document(text.replace("\r\n", "\n"), filename)
    root = _Section("")
    by_name: dict[str, _Section] = {name: _Section(name, present=False) for name in _SECTIONS}
    pending: list[tuple[str, bool]] = []
    header: list[str] = []
    seen_entry = False
    last = root
    for key, item in doc.body:
        if key is None:
            _keep_trivia(item, pending)
            continue
        if not seen_entry:
            header, after = _split_at_blank(pending)
            if not header and key.key != _first_key(doc):
                # The file's first key moves (e.g. version above name): the comments at
                # the top of the file stay there, as its header.
                header, after = after, []
            pending = [(text, False) for text in after]
            seen_entry = True
        if isinstance(item, Table) and key.key in by_name:
            section = by_name[key.key]
            section.present = True
            if not item.is_super_table():  # [dependencies], not [dependencies.c] alone
                section.comments.extend(text for text, blank in pending if not blank)
                pending = []
                if item.trivia.comment:
                    section.inline_comment = item.trivia.comment.strip()
            rest = _walk_body(item.value.body, section.entries, pending)
            stay, carry = _split_at_blank(rest)
            section.trailing.extend(stay)
            blank = [("", True)] if any(b for _, b in rest) else []
            pending = blank + [(text, False) for text in carry]
            last = section
        else:
            comments = [text for text, blank in pending if not blank]
            pending = []
            entry = _value_entry(key.key, item, comments)
            comments, inline, value = entry.comments, entry.inline_comment, entry.value
            if key.key in by_name and isinstance(value, dict):
                # dotted keys (pricing.base_cost = 1) or an inline table for a section
                section = by_name[key.key]
                section.present = True
                section.comments.extend(comments)
                for sub_key, sub_value in value.items():
                    _add_entry(section.entries, _TomlEntry(sub_key, sub_value, [], inline))
                    inline = ""
                last = section  # so comments right under it stay with it
            else:
                _add_entry(root.entries, entry)
    # comments at the end of the file: right under the last entry they stay with its
    # section; after a blank line they are a footer
    footer = [text for text, blank in pending if not blank]
    if footer and not next(blank for text, blank in pending if blank or text):
        last.trailing.extend(footer)
        footer = []
    return _render_sections([root, *(by_name[name] for name in _SECTIONS)], header, footer)
