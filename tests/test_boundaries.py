"""One boundary per third-party library, and each one complete.

* wasmtime is imported, and its exceptions caught, only inside vudo.engine (whose
  translation is vudo.engine.traps.translate; WAT text goes through parse_wat);
* nacl's, sqlite3's and tomlkit's exceptions are named only in vudo.boundaries (an AST
  scan of every module under src/vudo: an ``except``, a ``contextlib.suppress``, an
  ``import`` of the exceptions module all count);
* each boundary covers every exception class the library defines, and turns real
  failures (a forged signature, a file that is not a database, a held lock, broken TOML)
  into the vudo errors a user sees.
"""

from __future__ import annotations

import ast
import inspect
import sqlite3
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
import tomlkit.exceptions

from vudo import boundaries
from vudo.boundaries import (
    DatabaseBusyError,
    DatabaseDamagedError,
    load_toml,
    nacl_errors,
    parse_toml_document,
    sqlite_errors,
    translate_nacl_error,
    translate_sqlite_error,
    verify_signature,
)
from vudo.errors import InvalidInputError, ManifestError, VerificationError, VudoError

SRC = Path(__file__).resolve().parent.parent / "src"


def _exception_names(module: object) -> frozenset[str]:
    return frozenset(
        name
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and issubclass(cls, BaseException)
    )


def _defined_exceptions(module: Any) -> list[type[BaseException]]:
    """The exception classes ``module`` itself defines (not the ones it imports)."""
    return [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == module.__name__
    ]


SQLITE_EXCEPTIONS = _exception_names(sqlite3)
WASMTIME_EXCEPTIONS = frozenset({"Trap", "WasmtimeError", "WasmtimeModuleExit", "ExitTrap"})


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "vudo").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _violations(module: str, tree: ast.AST) -> list[str]:
    """What in ``module`` names a third-party library's exceptions outside its boundary."""
    in_engine = module == "vudo.engine" or module.startswith("vudo.engine.")
    in_boundaries = module == "vudo.boundaries"
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] == "wasmtime" and not in_engine:
                found.append(f"{module}:{line} imports {name} (only the engine uses wasmtime)")
            if name.startswith(("nacl.exceptions", "tomlkit.exceptions")) and not in_boundaries:
                found.append(f"{module}:{line} imports {name} (use vudo.boundaries)")
            if name.startswith("sqlite3.") and name[8:] in SQLITE_EXCEPTIONS and not in_boundaries:
                found.append(f"{module}:{line} imports {name} (use vudo.boundaries)")
        if isinstance(node, ast.Attribute):
            base = ast.unparse(node.value)
            if base == "sqlite3" and node.attr in SQLITE_EXCEPTIONS and not in_boundaries:
                found.append(f"{module}:{line} names sqlite3.{node.attr} (use vudo.boundaries)")
            if base in ("nacl.exceptions", "tomlkit.exceptions") and not in_boundaries:
                found.append(f"{module}:{line} names {base}.{node.attr} (use vudo.boundaries)")
            if base == "wasmtime" and node.attr in WASMTIME_EXCEPTIONS and not in_engine:
                found.append(f"{module}:{line} names wasmtime.{node.attr} outside the engine")
    return found


def test_each_library_is_translated_at_one_boundary() -> None:
    problems = []
    for module, path in _modules().items():
        problems += _violations(module, ast.parse(path.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_the_scan_catches_a_second_boundary() -> None:
    """The scan is not vacuous: each kind of second boundary is reported."""
    second = ast.parse(
        "import sqlite3, wasmtime\n"
        "from tomlkit.exceptions import TOMLKitError\n"
        "try:\n    pass\nexcept sqlite3.OperationalError:\n    pass\n"
        "with contextlib.suppress(nacl.exceptions.CryptoError):\n    pass\n"
        "try:\n    pass\nexcept wasmtime.Trap:\n    pass\n"
    )
    found = _violations("vudo.project.somewhere", second)
    assert len(found) == 5, found
    assert not _violations("vudo.boundaries", ast.parse("import sqlite3\nsqlite3.Error\n"))


# --------------------------------------------------------------------------- nacl


def test_every_nacl_exception_is_caught_and_mapped() -> None:
    classes = _defined_exceptions(nacl.exceptions)
    assert len(classes) >= 8
    table = boundaries._nacl_table()
    for cls in classes:
        assert issubclass(cls, nacl.exceptions.CryptoError), cls  # what nacl_errors catches
        assert cls in table, f"{cls.__name__} has no translation"
        with pytest.raises(VudoError, match="doing it"), nacl_errors("doing it"):
            raise cls("boom")
    err = translate_nacl_error(nacl.exceptions.BadSignatureError("x"), "c", mismatch_hint="h")
    assert isinstance(err, VerificationError) and err.hint == "h"


def test_a_forged_signature_and_a_bad_key_become_vudo_errors() -> None:
    key = nacl.signing.SigningKey(bytes(range(32)))
    signed = key.sign(b"message")
    mismatch = pytest.raises(VerificationError, match="verify it: signature does not match")
    with mismatch, nacl_errors("verify it"):
        key.verify_key.verify(b"massage", signed.signature)
    with pytest.raises(InvalidInputError, match="load key"), nacl_errors("load key"):
        nacl.signing.VerifyKey(b"short")


# ------------------------------------------------------------------------ sqlite3


def test_every_sqlite3_exception_is_caught_and_mapped() -> None:
    classes = [getattr(sqlite3, name) for name in SQLITE_EXCEPTIONS]
    assert len(classes) >= 10
    for cls in classes:
        assert cls in boundaries._sqlite_table(), f"sqlite3.{cls.__name__} has no translation"
        with pytest.raises(VudoError, match="doing"), sqlite_errors("doing"):
            raise cls("x")


def test_sqlite_errors_on_real_files(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sqlite3"
    bogus.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(DatabaseDamagedError) as info, sqlite_errors("open", damaged_hint="fix"):
        sqlite3.connect(bogus).execute("SELECT * FROM sqlite_master").fetchall()
    assert info.value.hint == "fix" and "is damaged" in info.value.message

    db = tmp_path / "real.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    busy = pytest.raises(DatabaseBusyError, match="write: the store is busy")
    with busy, sqlite_errors("write", what="the store"):
        other.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(KeyError), sqlite_errors("write", into=lambda e: KeyError(e.message)):
        other.execute("INSERT INTO t VALUES (1)")
    holder.execute("ROLLBACK")
    holder.close()
    other.close()


def test_the_store_keeps_its_own_error_classes() -> None:
    from vudo.pkg.store import REPAIR_HINT, StoreBusyError, StoreDamagedError, _sqlite_errors

    with pytest.raises(StoreDamagedError) as info, _sqlite_errors("reading"):
        raise sqlite3.DatabaseError("file is not a database")
    assert info.value.hint == REPAIR_HINT
    with pytest.raises(StoreBusyError), _sqlite_errors("writing"):
        raise sqlite3.OperationalError("database is locked")
    busy = translate_sqlite_error(sqlite3.OperationalError("database is locked"), "x")
    assert isinstance(busy, DatabaseBusyError) and not isinstance(busy, StoreBusyError)


# ------------------------------------------------------------------------- tomlkit


def test_every_tomlkit_exception_derives_from_the_caught_root() -> None:
    classes = _defined_exceptions(tomlkit.exceptions)
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, tomlkit.exceptions.TOMLKitError), cls


@pytest.mark.parametrize(
    "text",
    ['name = "x"\nversion = [1, 2\n', "[table\n", 'a = "unterminated\n', "a = 1\na = 2\n"],
)
def test_broken_toml_names_the_place(text: str) -> None:
    with pytest.raises(ManifestError, match=r"malformed TOML at spirit\.toml:\d+:\d+: "):
        parse_toml_document(text, "spirit.toml", error=ManifestError)
    with pytest.raises(InvalidInputError, match=r"malformed TOML at config\.toml") as info:
        load_toml(text, "config.toml", hint="fix it")
    assert info.value.hint == "fix it"


def test_load_toml_reads_plain_values_and_ignores_a_bom() -> None:
    assert load_toml('\ufeffa = 1\n[b]\nc = ["x"]\n', "f") == {"a": 1, "b": {"c": ["x"]}}
    doc = parse_toml_document("# kept\na = 1 # too\n", "f")
    assert tomlkit.dumps(doc) == "# kept\na = 1 # too\n"


def test_the_boundaries_module_loads_no_library_itself() -> None:
    """The run path imports vudo.boundaries (through the grants): it must not pull in
    sqlite3, nacl or tomlkit on its own."""
    import subprocess
    import sys

    code = (
        "import sys, vudo.boundaries\n"
        "print(sorted(m for m in ('sqlite3', 'nacl', 'tomlkit') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def test_verify_signature_agrees_with_nacl_signing() -> None:
    """The signature check every run makes (through nacl._sodium, not nacl.bindings)
    accepts exactly what nacl.signing accepts."""
    key = nacl.signing.SigningKey(bytes(range(32)))
    other = nacl.signing.SigningKey(bytes(range(1, 33)))
    public = bytes(key.verify_key)
    message = b"grant: actuator_log"
    signature = key.sign(message).signature
    verify_signature(signature, message, public, context="check")  # holds
    nacl.signing.VerifyKey(public).verify(message, signature)
    tampered = [
        (signature, message + b"!", public),  # the message changed
        (bytes([signature[0] ^ 1]) + signature[1:], message, public),  # the signature
        (signature, message, bytes(other.verify_key)),  # another key
        (other.sign(message).signature, message, public),  # another signer
        (bytes(64), message, public),  # zero
    ]
    for sig, msg, pub in tampered:
        with pytest.raises(nacl.exceptions.BadSignatureError):
            nacl.signing.VerifyKey(pub).verify(msg, sig)
        with pytest.raises(VerificationError, match="check: signature does not match"):
            verify_signature(sig, msg, pub, context="check")
    with pytest.raises(InvalidInputError, match="public key must be 32 bytes"):
        verify_signature(signature, message, public[:31], context="check")
    with pytest.raises(VerificationError, match="signature must be 64 bytes"):
        verify_signature(signature[:63], message, public, context="check")
