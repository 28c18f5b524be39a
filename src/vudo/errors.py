"""One error tree for all of vudo.

Every failure a user can cause ends as a :class:`VudoError` subclass. Each class carries
the process exit code the command line uses (DESIGN.md §4) and a short title the CLI and
the TUI show. Third-party exceptions are translated into this tree at one boundary each:
wasmtime in :mod:`vudo.engine.traps`, nacl, sqlite3 and tomlkit in :mod:`vudo.boundaries`
(``tests/test_boundaries.py`` keeps it that way).

Raise with a message that says what went wrong and, where one helps, a ``hint`` that says
what to do about it::

    raise ManifestError('unknown key "capabilites" (line 4)',
                        hint='did you mean "capabilities"?')
"""

from __future__ import annotations

import errno
import os
import re
import unicodedata

TYPE_CHECKING = False  # typing's constant, without importing typing (see vudo/__init__)
if TYPE_CHECKING:
    from typing import ClassVar

# Text vudo prints may come from a hostile module or package (export names, manifest
# fields, log lines, registry names): its control characters are shown escaped, so it
# cannot move the cursor, recolour or retitle the terminal, and so are the invisible
# format characters (bidi overrides and isolates, zero-width characters, BOM, tags), so
# it cannot reorder or hide what the user reads. Newline and tab are kept (callers that
# need one line, like VudoError.one_line, collapse whitespace themselves).
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e]")  # fast path: plain ASCII needs no lookup
_ASCII_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in (0x09, 0x0A)}
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with control characters other than newline and tab, and invisible format
    characters (bidi overrides U+202A-202E and U+2066-2069, zero-width U+200B-200F,
    U+2060, U+FEFF, unassigned and private-use code points, line and paragraph
    separators) escaped as ``\\x1b`` / ``\\u202e``: the one terminal escaper."""
    if text.isascii():
        return text.translate(_ASCII_ESCAPES)
    return _SUSPECT.sub(_escape, text)


class VudoError(Exception):
    """Base of every error vudo reports to a user."""

    exit_code: ClassVar[int] = 1
    title: ClassVar[str] = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The single line the CLI prints: ``error: <message> (hint: <hint>)``."""
        text = printable(" ".join(self.message.split()))
        if self.hint:
            return f"error: {text} (hint: {printable(' '.join(self.hint.split()))})"
        return f"error: {text}"

    def to_json(self) -> dict[str, object]:
        """The error's JSON form (DESIGN.md §4): title, message, hint, exit_code."""
        return {
            "title": self.title,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class DiskFullError(VudoError):
    """A write failed because the disk (or the user's quota) is full."""

    title = "disk full"


def from_os_error(err: OSError, doing: str = "") -> VudoError:
    """The one translation of an OSError into this tree (the CLI's last boundary, and
    code that says what it was doing). A full disk or quota says so, with what to do:
    "No space left on device (hint: check the path and its permissions)" misled."""
    name = os.fsdecode(err.filename) if err.filename is not None else ""
    if len(name) > 240:  # a path argument of 100,000 characters is not echoed back whole
        name = f"{name[:200]}... ({len(name)} characters)"
    where = f" ({name})" if name else ""
    prefix = f"{doing}: " if doing else ""
    if err.errno == errno.ENAMETOOLONG:
        return InvalidInputError(
            f"{prefix}the path is too long{where}", hint="pass a shorter path or name"
        )
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full" if err.errno == errno.ENOSPC else "the disk quota is used up"
        return DiskFullError(
            f"{prefix}{what}{where}",
            hint="free some space (or raise the quota) and run it again; "
            "nothing half-written was kept",
        )
    return VudoError(
        f"{prefix}{err.strerror or err}{where}", hint="check the path and its permissions"
    )


class UsageError(VudoError):
    """The command line was used wrongly (bad flag, bad argument type)."""

    exit_code = 2
    title = "usage error"


class InvalidInputError(VudoError):
    """A manifest, module, grant or other input is malformed."""

    exit_code = 3
    title = "invalid input"


class ManifestError(InvalidInputError):
    """A Spirit manifest is malformed or fails validation."""

    title = "invalid manifest"


class ModuleError(InvalidInputError):
    """A WebAssembly module is malformed, or does not fit the Spirit ABI."""

    title = "invalid module"


class VerificationError(VudoError):
    """A signature, digest or trust check failed."""

    exit_code = 4
    title = "verification failed"


class NotFoundError(VudoError):
    """A file, package, function, key or installed Spirit does not exist."""

    exit_code = 5
    title = "not found"


class RegistryError(VudoError):
    """A remote registry refused a request, failed, or could not be reached."""

    exit_code = 1
    title = "registry error"


class DependencyConflictError(VudoError):
    """Dependency requirements cannot all be satisfied."""

    exit_code = 6
    title = "dependency conflict"


class BuildError(VudoError):
    """Compiling a Spirit from source failed."""

    exit_code = 7
    title = "build failed"


class RuntimeFailure(VudoError):
    """Base for ways a running Spirit can stop abnormally."""

    exit_code = 10
    title = "run failed"


class GuestTrap(RuntimeFailure):
    """The guest trapped (unreachable, out-of-bounds access, stack overflow, ...)."""

    exit_code = 10
    title = "guest trapped"


class FuelExhausted(RuntimeFailure):
    """The run used up its fuel budget."""

    exit_code = 11
    title = "fuel exhausted"


class TimeoutExceeded(RuntimeFailure):
    """The run passed its wall-clock deadline."""

    exit_code = 12
    title = "timeout"


class ResourceLimitExceeded(RuntimeFailure):
    """A memory, table, instance, module-size or payload limit was hit."""

    exit_code = 13
    title = "resource limit exceeded"


class TestsFailed(VudoError):
    """One or more Spirit tests failed."""

    __test__ = False  # not a pytest test class
    exit_code = 14
    title = "tests failed"


class Interrupted(VudoError):
    """The user pressed Ctrl-C: exit 130, as a shell reports a death by SIGINT."""

    exit_code = 130
    title = "interrupted"


EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "error",
    2: "usage",
    3: "invalid manifest or input",
    4: "signature or verification failed",
    5: "not found",
    6: "dependency conflict",
    7: "build failed",
    10: "guest trapped",
    11: "fuel exhausted",
    12: "timeout",
    13: "resource limit exceeded",
    14: "tests failed",
    130: "interrupted",
}
