"""Names and keys mean what they say: whole-string validation, and Spirit names unique
without regard to case and to "-" versus "_" in the store and in a registry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_store import make_package

from vudo.errors import InvalidInputError, ManifestError, NotFoundError
from vudo.pkg import store as store_module
from vudo.pkg.keys import KeyPair, generate_keypair
from vudo.pkg.manifest import canonical_name, parse_manifest, validate_name
from vudo.pkg.registry import DirectoryRegistry
from vudo.pkg.sources import _FULL_SHA
from vudo.pkg.store import LocalStore
from vudo.pkg.versions import parse_requirement
from vudo.project.new import validate_name as validate_new_name

AUTHOR = "ab" * 32


def keypair(byte: int) -> KeyPair:
    return generate_keypair(lambda n: bytes([byte]) * n)


def manifest(name: str = "x", author: str = AUTHOR) -> str:
    return f'name = "{name}"\nversion = "1.0.0"\nauthor = "{author}"\n'


@pytest.mark.parametrize("name", ["ok\n", "ok\r", "a" * 64 + "\n", "ok\x00"])
def test_a_trailing_newline_is_not_part_of_a_valid_name(name: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_name(name)
    with pytest.raises(InvalidInputError):
        validate_new_name(name)
    with pytest.raises(ManifestError):
        parse_manifest(
            manifest(name.replace("\n", "\\n").replace("\r", "\\r").replace("\x00", "\\u0000"))
        )


def test_a_huge_name_is_invalid_and_not_echoed_whole() -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_name("a" * 100_000)
    assert len(info.value.one_line()) < 400
    assert "100000 characters" in info.value.message
    with pytest.raises(InvalidInputError) as info:
        validate_new_name("b" * 100_000)
    assert len(info.value.one_line()) < 400


@pytest.mark.parametrize("author", [AUTHOR + "\n", AUTHOR.upper(), "AB" + AUTHOR[2:]])
def test_author_keys_are_exactly_64_lowercase_hex(author: str) -> None:
    with pytest.raises(ManifestError, match="invalid author"):
        parse_manifest(manifest(author=author.replace("\n", "\\n")))


def test_version_requirements_and_git_revs_match_whole_strings() -> None:
    with pytest.raises(InvalidInputError):
        parse_requirement("^1.2\n\n\x00")
    assert _FULL_SHA.fullmatch("a" * 40 + "\n") is None


@pytest.mark.parametrize(("a", "b"), [("my_x", "my-x"), ("My-X", "my_x"), ("a_b-c", "a-b_c")])
def test_canonical_name_ignores_case_and_dash_underscore(a: str, b: str) -> None:
    assert canonical_name(a) == canonical_name(b)
    assert canonical_name("my-x") != canonical_name("myx")


def test_store_refuses_a_name_that_differs_only_in_dash_or_underscore(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "registry") as store:
        store.install(make_package(tmp_path, "my-x", signer=keypair(1)))
        for signer in (keypair(2), keypair(1)):
            with pytest.raises(InvalidInputError) as info:
                store.install(make_package(tmp_path, "my_x", signer=signer))
            assert '"my-x"' in info.value.message and info.value.hint
        assert [s.name for s in store.list()] == ["my-x"]
        with pytest.raises(NotFoundError) as missing:
            store.get("my_x")
        assert missing.value.hint == 'did you mean "my-x"?'
        store.uninstall("my-x")
        store.install(make_package(tmp_path, "my_x", signer=keypair(2)))
        assert [s.name for s in store.list()] == ["my_x"]


def test_migration_to_v3_fills_the_canonical_column(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    conn = sqlite3.connect(root / "index.sqlite3")
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (2)")
        for script in store_module._MIGRATIONS[:2]:
            for statement in store_module._split_sql(script):
                if statement != "REFRESH_ALL_SPIRITS":
                    conn.execute(statement)
        # An old store may hold both spellings: it still opens.
        conn.execute(
            "INSERT INTO packages (name, version, major, minor, patch, prerelease, digest, "
            "signer, author, description, capabilities, manifest, size, installed_at) VALUES "
            "('my_x', '1.0.0', 1, 0, 0, '', 'd', 's', 'a', '', '', '{}', 1, 0), "
            "('My-X', '1.0.0', 1, 0, 0, '', 'e', 's', 'a', '', '', '{}', 1, 0)"
        )
        conn.commit()
    finally:
        conn.close()
    with LocalStore(root) as s:
        assert s.conn.execute("SELECT DISTINCT canonical FROM packages").fetchall() == [("my-x",)]
        assert s.conn.execute("SELECT version FROM schema_version").fetchone()[0] == (
            store_module.SCHEMA_VERSION
        )  # v3, then v4 (the registry column)


def test_registry_refuses_publishing_a_name_taken_in_another_spelling(tmp_path: Path) -> None:
    registry = DirectoryRegistry(tmp_path / "reg", create=True)
    registry.publish(make_package(tmp_path, "my-x", signer=keypair(1)))
    with pytest.raises(InvalidInputError) as info:
        registry.publish(make_package(tmp_path, "my_x", signer=keypair(2)))
    assert '"my-x" is already published' in info.value.message
    assert registry.names() == ["my-x"]
    with pytest.raises(InvalidInputError):
        registry.entries("my-x\n")


def test_registry_index_digests_and_signers_match_whole_strings(tmp_path: Path) -> None:
    from vudo.errors import VerificationError

    registry = DirectoryRegistry(tmp_path / "reg", create=True)
    registry.publish(make_package(tmp_path, "my-x", signer=keypair(1)))
    index = tmp_path / "reg" / "index" / "my-x.json"
    text = index.read_text()
    digest = registry.entries("my-x")[0].digest
    index.write_text(text.replace(f'"{digest}"', f'"{digest}\\n"'))
    with pytest.raises(VerificationError, match="malformed"):
        registry.entries("my-x")
