"""The error tree: every documented exit code has a class, and messages fit one line."""

from __future__ import annotations

import vudo.errors as errors
from vudo.errors import EXIT_CODES, ManifestError, VudoError


def all_error_classes() -> list[type[VudoError]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type) and issubclass(obj, VudoError)
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
