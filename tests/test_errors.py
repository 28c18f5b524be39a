"""The error tree: every documented exit code has a class, and messages fit one line."""

from __future__ import annotations

import vudo.errors as errors
from vudo.errors import EXIT_CODES, ManifestError, VudoError


def all_error_classes() -> list[type[VudoError]]:
    return [
        obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, VudoError)
    ]


def test_every_documented_nonzero_exit_code_has_an_error_class() -> None:
    codes = {cls.exit_code for cls in all_error_classes()}
    assert codes == set(EXIT_CODES) - {0}


def test_every_class_has_a_title() -> None:
    for cls in all_error_classes():
        assert cls.title and cls.title == cls.title.strip()


def test_one_line_folds_newlines_and_carries_the_hint() -> None:
    err = ManifestError('unknown key "capabilites"\n(line 4)', hint='did you mean\n"capabilities"?')
    line = err.one_line()
    assert "\n" not in line
    assert line == 'error: unknown key "capabilites" (line 4) (hint: did you mean "capabilities"?)'
    assert err.exit_code == 3


def test_without_hint() -> None:
    assert VudoError("boom").one_line() == "error: boom"


def test_printable_escapes_bidi_zero_width_and_other_invisible_characters() -> None:
    from vudo.errors import printable

    hostile = (
        "pay\u202eevil\u202c \u2066x\u2069 a\u200bb\u200fc\u2060d\ufeffe "
        "\U000e0041tag \u2028ls\u2029 \x85nel \ue000pua \x1b[2J"
    )
    shown = printable(hostile)
    for (
        char
    ) in "\u202e\u202c\u2066\u2069\u200b\u200f\u2060\ufeff\U000e0041\u2028\u2029\x85\ue000\x1b":
        assert char not in shown
    assert "\\u202e" in shown and "\\U000e0041" in shown and "\\x1b[2J" in shown
    # Text people write stays as written: accents, CJK, emoji, tab and newline.
    kept = "café 日本語 👍\tcol\nline"
    assert printable(kept) == kept


def test_a_full_disk_is_translated_once_with_a_hint() -> None:
    import errno

    from vudo.errors import DiskFullError, from_os_error

    for code in (errno.ENOSPC, errno.EDQUOT):
        err = from_os_error(OSError(code, "no space", "/x/y"), "writing the package")
        assert isinstance(err, DiskFullError) and err.exit_code == 1
        assert "writing the package" in err.message and "/x/y" in err.message
        assert err.hint and "free some space" in err.hint
    long = from_os_error(OSError(errno.ENAMETOOLONG, "File name too long", "a" * 100_000))
    assert long.exit_code == 3 and len(long.one_line()) < 400
    other = from_os_error(PermissionError(errno.EACCES, "Permission denied", "/z"))
    assert type(other) is VudoError and "Permission denied (/z)" in other.message
