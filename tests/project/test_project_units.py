"""The pure parts of vudo.project: names, sizes, argument conversion, capability lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from vudo.capabilities import Capability
from vudo.engine.config import parse_fuel
from vudo.engine.grants import parse_grant_spec
from vudo.errors import InvalidInputError, UsageError
from vudo.project.build import lint_capabilities
from vudo.project.new import render_template, validate_name
from vudo.project.runner import convert_args, parse_size
from vudo.project.workflow import markdown_to_html


@pytest.mark.parametrize("name", ["a", "hello-spirit", "x1_y2", "a" * 64])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "1a", "a--b", "a-", "a b", "é", "a" * 65])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_name(name)


def test_invalid_name_suggests_a_fix() -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_name("My Spirit")
    assert '"my-spirit"' in (info.value.hint or "")


def test_render_template_replaces_only_known_placeholders() -> None:
    assert render_template("{{name}} {{other}}", {"name": "x"}) == "x {{other}}"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64MiB", 64 << 20),
        ("512k", 512 << 10),
        ("1GB", 10**9),
        ("65536", 65536),
        ("1.5 MiB", int(1.5 * (1 << 20))),
        ("2m", 2 << 20),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "12 parsecs", "-1MiB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_convert_args_types() -> None:
    assert convert_args("f", ("i32", "i64", "f32", "f64"), ["7", "0x10", "1.5", "-2"]) == [
        7,
        16,
        1.5,
        -2.0,
    ]


def test_convert_args_unsigned_wraps_to_signed() -> None:
    assert convert_args("f", ("i32",), ["4294967295"]) == [-1]
    assert convert_args("f", ("i64",), [str(2**64 - 1)]) == [-1]


def test_convert_args_errors_are_usage_errors_with_hints() -> None:
    with pytest.raises(UsageError) as info:
        convert_args("add", ("i32", "i32"), ["1"])
    assert "add(i32, i32) takes 2 arguments, got 1" in info.value.message
    assert "-- 1 1" in (info.value.hint or "")
    with pytest.raises(UsageError) as info:
        convert_args("add", ("i32", "i32"), ["1", "two"])
    assert 'argument 2 of add(i32, i32) must be an integer (i32), got "two"' in info.value.message
    with pytest.raises(UsageError):
        convert_args("f", ("i32",), [str(2**32)])
    with pytest.raises(UsageError):
        convert_args("f", ("f64",), ["x"])
    with pytest.raises(UsageError):
        convert_args("f", ("externref",), ["x"])


def test_parse_grant_spec() -> None:
    assert parse_grant_spec("actuator_log") == (Capability.ACTUATOR_LOG, "global")
    assert parse_grant_spec("network_connect=domain:127.0.0.1:*") == (
        Capability.NETWORK_CONNECT,
        "domain:127.0.0.1:*",
    )
    with pytest.raises(InvalidInputError):
        parse_grant_spec("actuator_lgo")
    with pytest.raises(UsageError):
        parse_grant_spec("unrestricted")


def test_lint_names_the_import_and_the_missing_capability() -> None:
    problems = lint_capabilities(
        [("vudo", "host_storage_write"), ("vudo", "host_log")],
        [Capability.ACTUATOR_LOG, Capability.SENSOR_TIME],
    )
    errors = [p for p in problems if p.error]
    warnings = [p for p in problems if not p.error]
    assert len(errors) == 1
    assert "host_storage_write" in errors[0].message and "storage_write" in errors[0].message
    assert len(warnings) == 1 and "sensor_time" in warnings[0].message


def test_lint_rejects_foreign_and_unknown_imports() -> None:
    problems = lint_capabilities([("env", "f"), ("vudo", "host_teleport")], [])
    assert [p.error for p in problems] == [True, True]
    assert '"env"' in problems[0].message and "host_teleport" in problems[1].message


def test_lint_handle_calls_need_no_capability() -> None:
    assert lint_capabilities([("vudo", "host_network_send")], []) == []


def test_markdown_to_html_escapes_and_structures(tmp_path: Path) -> None:
    page = markdown_to_html(
        "# T <x>\n\n- `a()` item\n\n| k | v |\n|---|---|\n| a | b |\n\n"
        "```\n<code>\n```\npara\nline",
        title="t",
    )
    flat = page.replace("\n", "")
    assert "<h1>T &lt;x&gt;</h1>" in flat
    assert "<li><code>a()</code> item</li>" in flat
    assert "<tr><th>k</th><th>v</th></tr>" in flat and "<tr><td>a</td><td>b</td></tr>" in flat
    assert "---" not in page
    assert "<pre><code>&lt;code&gt;</code></pre>" in flat
    assert "<p>paraline</p>" in flat


def test_markdown_to_html_never_passes_the_authors_markup_through() -> None:
    page = markdown_to_html(
        '<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror="y">',
        title="<b>t</b>",
    )
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert 'href="javascript:' not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_fmt_keeps_the_manifest_mode(tmp_path: Path, mode: int) -> None:
    # fmt rewrote spirit.toml through a temp file created 0644, whatever the mode was.
    import stat

    from vudo.project.workflow import fmt_project

    manifest = tmp_path / "spirit.toml"
    manifest.write_text(
        'name="demo"\nversion = "0.1.0"\nauthor = "' + "ab" * 32 + '"\n'
        'description = "d"\nlicense = "MIT"\ncapabilities = []\n'
    )
    manifest.chmod(mode)
    assert fmt_project(tmp_path).changed
    assert 'name = "demo"' in manifest.read_text()
    assert stat.S_IMODE(manifest.stat().st_mode) == mode


@pytest.mark.parametrize(
    "text,value", [("1", 1), ("1_000_000", 1_000_000), (" 42 ", 42), (str(2**63 - 1), 2**63 - 1)]
)
def test_parse_fuel(text: str, value: int) -> None:
    assert parse_fuel(text) == value


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "whole number"),
        ("1e9", "whole number"),
        ("0", "positive"),
        ("-5", "positive"),
        (str(2**63), "at most"),
    ],
)
def test_parse_fuel_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fuel(text)


def test_lint_groups_undeclared_wasi_functions_by_capability() -> None:
    """A standard library links many functions it may never call: one warning per
    capability asked for, naming its functions, not one per function."""
    wasi = "wasi_snapshot_preview1"
    problems = lint_capabilities(
        [
            (wasi, "clock_time_get"),
            (wasi, "fd_write"),
            (wasi, "clock_res_get"),
            (wasi, "random_get"),
            (wasi, "environ_get"),
        ],
        [Capability.SENSOR_ENVIRONMENT],
    )
    assert not any(p.error for p in problems)
    assert [p.message for p in problems] == [
        "the module imports WASI clock_time_get, clock_res_get but spirit.toml declares none "
        'of "sensor_time"',
        'the module imports WASI random_get but spirit.toml declares none of "sensor_random"',
    ]
