"""Hostile key files and manifests against the package core: a clear error with a hint."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError, ManifestError, VerificationError, printable
from vudo.files import write_atomic_with
from vudo.pkg.archive import open_regular, prepare_pack
from vudo.pkg.keys import (
    PRIVATE_KEY_FILE,
    ensure_keypair,
    generate_keypair,
    load_keypair,
    save_keypair,
)
from vudo.pkg.lockfile import read_lockfile, write_lockfile
from vudo.pkg.manifest import format_manifest, load_manifest, parse_manifest
from vudo.pkg.registry import DirectoryRegistry, open_registry
from vudo.pkg.signing import Envelope


def _bad_key(keys: Path, make: str) -> None:
    keys.mkdir(mode=0o700)
    private = keys / PRIVATE_KEY_FILE
    if make == "directory":
        private.mkdir(mode=0o700)
    elif make == "fifo":
        os.mkfifo(private, 0o600)
    else:
        private.write_bytes(
            {"binary": bytes(range(200, 232)), "empty": b"", "short": b"ab" * 31 + b"\n"}[make]
        )
        private.chmod(0o600)


@pytest.mark.parametrize("make", ["directory", "fifo", "binary", "empty", "short"])
def test_private_key_that_is_not_a_key_says_so(tmp_path: Path, make: str) -> None:
    keys = tmp_path / "keys"
    _bad_key(keys, make)
    with pytest.raises(InvalidInputError) as info:
        load_keypair(keys)  # a fifo must not block the read either
    err = info.value
    assert "is not a vudo private key" in err.message
    assert "codec" not in err.message and "mode" not in err.message
    assert err.hint and "vudo keys generate" in err.hint


def test_good_key_still_loads_and_group_readable_is_refused(tmp_path: Path) -> None:
    kp = generate_keypair()
    path = save_keypair(kp, tmp_path / "keys")
    assert load_keypair(tmp_path / "keys").public_hex == kp.public_hex
    path.chmod(0o644)
    with pytest.raises(InvalidInputError, match="accessible by other users"):
        load_keypair(path)


AUTHOR = "ab" * 32
TOML = f'name = "demo"\nversion = "0.1.0"\nauthor = "{AUTHOR}"\n'
JSON = f'{{"name": "demo", "version": "0.1.0", "author": "{AUTHOR}"}}'


@pytest.mark.parametrize(("filename", "text"), [("spirit.toml", TOML), ("manifest.json", JSON)])
def test_manifest_with_a_utf8_bom_loads(tmp_path: Path, filename: str, text: str) -> None:
    # Windows editors add one; it used to be 'malformed TOML at 1:0: Empty key'.
    path = tmp_path / filename
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_manifest(path).name == "demo"
    assert format_manifest("\ufeff" + text, filename=filename).startswith(("name", "{"))


def test_toml_cut_short_says_end_of_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="unexpected end of file") as info:
        parse_manifest("name = ")
    assert "\\x00" not in info.value.message


def test_writing_a_package_over_a_directory_is_refused_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # `vudo pack -o /tmp` used to write "/.tmp.<pid>.partial" beside it and leave it there.
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InvalidInputError, match="is a directory") as info:
        write_atomic_with(target, lambda fd: None)
    assert info.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list(target.iterdir()) == []


def _first_runs_at_once(home: Path, count: int) -> list[str]:
    barrier = threading.Barrier(count)
    got: list[str] = []

    def first_run() -> None:
        barrier.wait()
        got.append(ensure_keypair(home).public_hex)

    threads = [threading.Thread(target=first_run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    # Every process that found no key used to write its own: the last rename won, the
    # others went on signing with a key that no longer existed, and public.key could end
    # up belonging to another process's private.key (every later command then failed).
    for trial in range(10):
        home = tmp_path / str(trial)
        got = _first_runs_at_once(home, 8)
        assert len(got) == 8
        assert set(got) == {load_keypair(home / "keys").public_hex}
        assert sorted(p.name for p in (home / "keys").iterdir()) == [PRIVATE_KEY_FILE, "public.key"]


def test_generate_never_replaces_a_different_key_without_overwrite(tmp_path: Path) -> None:
    first, second = generate_keypair(), generate_keypair()
    save_keypair(first, tmp_path)
    with pytest.raises(InvalidInputError, match="different private key"):
        save_keypair(second, tmp_path)
    assert load_keypair(tmp_path).public_hex == first.public_hex
    save_keypair(second, tmp_path, overwrite=True)
    assert load_keypair(tmp_path).public_hex == second.public_hex


def test_oversized_manifest_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    # A 50 MB description took 18 s and 600 MB of memory to reject (or accept).
    path = tmp_path / "spirit.toml"
    path.write_text(TOML + 'description = "' + "x" * (2 * 1024 * 1024) + '"\n')
    with pytest.raises(ManifestError, match="over the 1048576-byte manifest limit") as info:
        load_manifest(path)
    assert info.value.hint


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def test_deeply_nested_signature_envelope_is_malformed_not_a_crash() -> None:
    # json raised RecursionError, which nothing caught: a traceback for a forged package.
    with pytest.raises(VerificationError, match="envelope is malformed"):
        Envelope.parse(DEEP_JSON)


def test_deeply_nested_manifest_json_is_a_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b'{"name": ' + DEEP_JSON + b"}")
    with pytest.raises(ManifestError, match="nested too deeply"):
        load_manifest(path)


def test_deeply_nested_registry_index_is_a_damaged_registry(tmp_path: Path) -> None:
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "demo.json").write_bytes(DEEP_JSON)
    (tmp_path / "index.json").write_bytes(DEEP_JSON)
    with DirectoryRegistry(tmp_path) as registry:
        with pytest.raises(VerificationError, match="malformed"):
            registry.names()
        with pytest.raises(VerificationError, match="malformed"):
            registry.entries("demo")


def test_lock_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    # Reading said "Is a directory" (exit 1, generic hint); writing named the temp file.
    path = tmp_path / "spirit.lock"
    path.mkdir()
    for action in (lambda: read_lockfile(path), lambda: write_lockfile(path, [])):
        with pytest.raises(InvalidInputError, match=r"spirit\.lock is a directory") as info:
            action()
        assert info.value.hint
    assert path.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["spirit.lock"]


@pytest.mark.parametrize("char", ["\x1b", "\r", "\x07", "\x9b", "\x00", "\x7f"])
def test_manifest_text_with_terminal_control_characters_is_refused(char: str) -> None:
    # list/info/search print these fields: "\x1b]0;..." retitled the user's terminal.
    text = TOML + f'description = "nice{char}[2J"\n'.replace(char, f"\\u{ord(char):04x}")
    with pytest.raises(ManifestError, match=f"control character \\(U\\+{ord(char):04X}\\)"):
        parse_manifest(text)
    assert parse_manifest(TOML + 'description = "two\\nlines\\tand a tab"\n').description


def test_printable_escapes_control_characters_but_not_newlines() -> None:
    assert printable("a\x1b[31mb\x07\r\x9b\tc\nd") == "a\\x1b[31mb\\x07\\x0d\\x9b\tc\nd"
    err = ManifestError("bad \x1b]0;title\x07 name\nsecond", hint="fix \x1b[2J it")
    assert err.one_line() == ("error: bad \\x1b]0;title\\x07 name second (hint: fix \\x1b[2J it)")


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://host:99999/",
        "http://host:abc/",
        "http://a b/",
        "http://a\x07b/",
        "file://[::1",
    ],
)
def test_malformed_registry_url_is_invalid_input(tmp_path: Path, url: str) -> None:
    # urlparse's ValueError ("Invalid IPv6 URL") escaped as a traceback.
    with pytest.raises(InvalidInputError, match="invalid registry URL") as info:
        open_registry(url, cache_dir=tmp_path)
    assert info.value.hint


def test_file_registry_url_with_a_space_still_opens(tmp_path: Path) -> None:
    (tmp_path / "my reg").mkdir()
    with open_registry(f"file://{tmp_path}/my reg") as registry:
        assert registry.names() == []


def test_package_errors_reachable_from_the_cli_carry_hints(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"not a regular file|is a directory") as info:
        open_regular(tmp_path)
    assert info.value.hint
    manifest = tmp_path / "spirit.toml"
    manifest.write_bytes(b'name = "\xff"\n')
    (tmp_path / "m.wasm").write_bytes(b"\0asm\1\0\0\0")
    with pytest.raises(InvalidInputError, match="not UTF-8") as bad:
        prepare_pack(manifest, tmp_path / "m.wasm")
    assert bad.value.hint
