"""Manifests: parsing, round trips, every validation error, canonical formatting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vudo.capabilities import Capability, CustomCapability
from vudo.errors import ManifestError, NotFoundError
from vudo.pkg.manifest import (
    Dependency,
    Manifest,
    Pricing,
    canonical_manifest_bytes,
    find_manifest,
    format_manifest,
    load_manifest,
    manifest_from_dict,
    manifest_to_dict,
    parse_manifest,
)
from vudo.pkg.versions import Version, parse_requirement

AUTHOR = "ab" * 32

FULL = f"""\
name = "hello-spirit"
version = {{ major = 0, minor = 1, patch = 0 }}
author = "{AUTHOR}"
description = "A simple hello world Spirit"
license = "Apache-2.0"
repository = "https://example.org/hello"
capabilities = ["sensor_time", "actuator_log"]

[dependencies]
b = "^1.0"
c = {{ path = "../c" }}
d = {{ git = "https://example.org/d.git", rev = "v1.2.0" }}
e = {{ version = "~2.1", registry = "community", optional = true }}

[pricing]
base_cost = 100
per_fuel_cost = 1
"""


def minimal(**extra: str) -> str:
    lines = ['name = "x"', 'version = "1.0.0"', f'author = "{AUTHOR}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def error_of(text: str, filename: str = "spirit.toml") -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, filename=filename)
    assert info.value.exit_code == 3
    return info.value


def test_full_manifest_parses() -> None:
    m = parse_manifest(FULL)
    assert m.name == "hello-spirit"
    assert m.version == Version("0.1.0")
    assert m.author == AUTHOR
    assert m.description == "A simple hello world Spirit"
    assert m.license == "Apache-2.0"
    assert m.repository == "https://example.org/hello"
    assert m.capabilities == (Capability.SENSOR_TIME, Capability.ACTUATOR_LOG)
    assert [d.name for d in m.dependencies] == ["b", "c", "d", "e"]
    b, c, d, e = m.dependencies
    assert b == Dependency("b", parse_requirement("^1.0"))
    assert (c.kind, c.path, c.requirement.is_any) == ("path", "../c", True)
    assert (d.kind, d.git, d.rev) == ("git", "https://example.org/d.git", "v1.2.0")
    assert (e.kind, e.registry, e.optional, str(e.requirement)) == (
        "registry",
        "community",
        True,
        "~2.1",
    )
    assert m.pricing == Pricing(base_cost=100, per_fuel_cost=1)


def test_string_and_table_versions_agree() -> None:
    assert parse_manifest(minimal()).version == Version("1.0.0")
    table = minimal().replace(
        '"1.0.0"', '{ major = 1, minor = 0, patch = 0, pre = "rc.1", build = "b7" }'
    )
    assert parse_manifest(table).version == Version("1.0.0-rc.1+b7")


def test_to_toml_round_trip() -> None:
    m = parse_manifest(FULL)
    text = m.to_toml()
    assert parse_manifest(text) == m
    assert m.to_toml() == text
    assert "version = { major = 0, minor = 1, patch = 0 }" in text


def test_prerelease_version_round_trips_through_toml() -> None:
    m = parse_manifest(minimal().replace('"1.0.0"', '"2.0.0-beta.1+x"'))
    assert parse_manifest(m.to_toml()).version == Version("2.0.0-beta.1+x")


def test_json_manifest_round_trip(tmp_path: Path) -> None:
    m = parse_manifest(FULL)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest_to_dict(m), indent=2))
    assert load_manifest(tmp_path / "manifest.json") == m
    assert manifest_from_dict(manifest_to_dict(m)) == m
    table_form = manifest_to_dict(m, version_table=True)
    assert table_form["version"] == {"major": 0, "minor": 1, "patch": 0}
    assert manifest_from_dict(table_form) == m


def test_canonical_bytes_ignore_formatting() -> None:
    m = parse_manifest(FULL)
    reformatted = parse_manifest("# comment\n" + m.to_toml())
    from_json = parse_manifest(json.dumps(manifest_to_dict(m)), filename="manifest.json")
    assert canonical_manifest_bytes(m) == canonical_manifest_bytes(reformatted)
    assert canonical_manifest_bytes(m) == canonical_manifest_bytes(from_json)
    assert json.loads(canonical_manifest_bytes(m))["version"] == "0.1.0"
    other = m.replace(description="changed")
    assert canonical_manifest_bytes(other) != canonical_manifest_bytes(m)


def test_find_manifest_prefers_spirit_toml(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    assert find_manifest(tmp_path) == tmp_path / "manifest.json"
    (tmp_path / "manifest.toml").write_text("")
    assert find_manifest(tmp_path) == tmp_path / "manifest.toml"
    (tmp_path / "spirit.toml").write_text(minimal())
    assert find_manifest(tmp_path) == tmp_path / "spirit.toml"
    assert load_manifest(tmp_path).name == "x"


def test_find_manifest_missing_has_hint(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        find_manifest(tmp_path)
    assert info.value.hint is not None and "vudo new" in info.value.hint
    with pytest.raises(NotFoundError):
        load_manifest(tmp_path / "spirit.toml")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "spirit.toml").write_bytes(b'name = "\xff"\n')
    with pytest.raises(ManifestError, match="UTF-8"):
        load_manifest(tmp_path / "spirit.toml")


# ------------------------------------------------------------------ validation errors


def test_unknown_key_names_key_line_and_suggestion() -> None:
    text = minimal() + 'capabilites = ["sensor_time"]\n'
    err = error_of(text)
    assert str(err) == 'unknown key "capabilites" at spirit.toml:4'
    assert err.hint == 'did you mean "capabilities"?'
    assert err.one_line() == (
        'error: unknown key "capabilites" at spirit.toml:4 (hint: did you mean "capabilities"?)'
    )


def test_unknown_key_in_section_and_in_dependency_table() -> None:
    err = error_of(minimal() + "\n[pricing]\nbase_cost = 1\nper_fuel_cots = 2\n")
    assert str(err) == 'unknown key "per_fuel_cots" in [pricing] at spirit.toml:7'
    assert err.hint == 'did you mean "per_fuel_cost"?'
    err = error_of(minimal() + '\n[dependencies]\nb = { versoin = "1" }\n')
    assert str(err) == 'unknown key "versoin" in [dependencies.b] at spirit.toml:6'
    assert err.hint == 'did you mean "version"?'
    err = error_of(minimal() + "[pricing]\nzzz = 1\n")
    assert err.hint is not None and "allowed keys here" in err.hint


def test_unknown_key_in_json_names_line() -> None:
    text = (
        '{\n  "name": "x",\n  "version": "1.0.0",\n'
        f'  "author": "{AUTHOR}",\n  "licence": "MIT"\n}}'
    )
    err = error_of(text, "manifest.json")
    assert str(err) == 'unknown key "licence" at manifest.json:5'
    assert err.hint == 'did you mean "license"?'


@pytest.mark.parametrize(
    ("extra", "field", "line", "expected"),
    [
        ({"description": "5"}, "description", 4, "a string"),
        ({"license": "true"}, "license", 4, "a string"),
        ({"capabilities": '"sensor_time"'}, "capabilities", 4, "an array"),
        ({"dependencies": "3"}, "dependencies", 4, "a table"),
        ({"pricing": '"free"'}, "pricing", 4, "a table"),
    ],
)
def test_wrong_types_name_field_line_and_expected(
    extra: dict[str, str], field: str, line: int, expected: str
) -> None:
    err = error_of(minimal(**extra))
    assert f'"{field}" at spirit.toml:{line} must be {expected}' in str(err)


def test_wrong_types_in_tables() -> None:
    err = error_of(minimal() + '[pricing]\nbase_cost = "100"\n')
    assert str(err) == '"pricing.base_cost" at spirit.toml:5 must be an integer, not a string'
    err = error_of(minimal() + "[pricing]\nbase_cost = true\n")
    assert "must be an integer, not a boolean" in str(err)
    err = error_of(minimal() + "[pricing]\nbase_cost = -1\n")
    assert "must be at least 0" in str(err)
    err = error_of(minimal() + "[pricing]\nfuel_unit = 0\n")
    assert "must be at least 1" in str(err)
    err = error_of(minimal() + "[pricing]\nbase_cost = 1.5\n")
    assert "not a float" in str(err)
    err = error_of(minimal() + '[dependencies]\nb = { version = "1", optional = "yes" }\n')
    assert '"dependencies.b.optional" at spirit.toml:5 must be true or false' in str(err)
    err = error_of(minimal() + "[dependencies]\nb = 1\n")
    assert '"dependencies.b" at spirit.toml:5 must be a version requirement string' in str(err)
    err = error_of(minimal().replace('"1.0.0"', "1"))
    assert '"version" at spirit.toml:2 must be a string like "1.2.3"' in str(err)
    err = error_of(minimal().replace('"1.0.0"', '{ major = 1, minor = "0", patch = 0 }'))
    assert '"version.minor" at spirit.toml:2 must be an integer' in str(err)
    err = error_of(minimal().replace('"1.0.0"', "{ major = 1, minor = 0 }"))
    assert 'missing "patch"' in str(err)
    err = error_of(minimal().replace('"1.0.0"', "{ major = 1, minor = 0, patch = 0, x = 1 }"))
    assert 'unknown key "x" in [version]' in str(err)


def test_missing_required_keys() -> None:
    for key in ("name", "version", "author"):
        text = "\n".join(line for line in minimal().splitlines() if not line.startswith(key))
        err = error_of(text)
        assert f'missing required key "{key}"' in str(err)
        assert err.hint


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("Hello", "hello"),
        ("hello world", "hello-world"),
        ("1abc", "abc"),
        ("", None),
        ("a" * 65, None),
        ("a.b", "a-b"),
    ],
)
def test_bad_names(name: str, suggestion: str | None) -> None:
    err = error_of(minimal().replace('name = "x"', f'name = "{name}"'))
    assert str(err).startswith(f'invalid name "{name}" at spirit.toml:1')
    assert err.hint is not None
    if suggestion:
        assert f'"{suggestion}"' in err.hint


def test_name_limits() -> None:
    assert parse_manifest(minimal().replace('"x"', '"' + "a" * 64 + '"')).name == "a" * 64
    assert parse_manifest(minimal().replace('"x"', '"a-b_9"')).name == "a-b_9"


@pytest.mark.parametrize("author", ["ab" * 31, "zz" * 32, "ab" * 33, ""])
def test_bad_author(author: str) -> None:
    err = error_of(minimal().replace(AUTHOR, author))
    assert "invalid author at spirit.toml:3" in str(err)
    assert err.hint is not None and "public.key" in err.hint


def test_author_must_be_lowercase() -> None:
    # Issue 8: author keys are exactly 64 lowercase hex (one spelling per key).
    err = error_of(minimal().replace(AUTHOR, AUTHOR.upper()))
    assert "other characters than 0-9 and a-f" in str(err)


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0.0", "one"])
def test_bad_versions(version: str) -> None:
    err = error_of(minimal().replace('"1.0.0"', f'"{version}"'))
    assert f'invalid version "{version}" at spirit.toml:2' in str(err)
    assert err.hint


def test_bad_requirement_in_dependency() -> None:
    err = error_of(minimal() + '\n[dependencies]\nb = "^^1"\n')
    assert str(err) == 'invalid version requirement "^^1" at spirit.toml:6'


def test_unknown_capability_with_suggestion_and_line() -> None:
    text = minimal() + 'capabilities = [\n  "sensor_time",\n  "actuator_lgo",\n]\n'
    err = error_of(text)
    assert str(err) == 'unknown capability "actuator_lgo" at spirit.toml:6'
    assert err.hint == 'did you mean "actuator_log"?'


def test_unrestricted_is_refused() -> None:
    err = error_of(minimal(capabilities='["unrestricted"]'))
    assert 'capability "unrestricted" at spirit.toml:4' in str(err)
    assert err.hint is not None and "system Spirits" in err.hint


def test_custom_capabilities_of_an_application() -> None:
    """A plugin asks for its application's capabilities (x:APP.NAME), checked whole."""
    manifest = parse_manifest(minimal(capabilities='["sensor_time", "x:myapp.lookup"]'))
    assert [c.value for c in manifest.capabilities] == ["sensor_time", "x:myapp.lookup"]
    assert isinstance(manifest.capabilities[1], CustomCapability)
    err = error_of(minimal(capabilities='["x:MyApp"]'))
    assert str(err) == '"x:MyApp" is not a custom capability name at spirit.toml:4'
    assert err.hint is not None and "x:myapp.lookup" in err.hint
    dup = error_of(minimal(capabilities='["x:myapp.lookup", "x:myapp.lookup"]'))
    assert "listed twice" in str(dup)


def test_duplicate_capability_and_non_string() -> None:
    assert "listed twice" in str(error_of(minimal(capabilities='["sensor_time", "sensor_time"]')))
    assert "must be strings" in str(error_of(minimal(capabilities="[1]")))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('{ path = "a", git = "b", rev = "c" }', "has both path and git"),
        ('{ git = "https://x" }', "has no rev"),
        ('{ rev = "abc", version = "1" }', "has a rev but no git URL"),
        ('{ path = "a", registry = "r" }', "has a registry and a path"),
        ("{ optional = true }", "needs a version, path or git"),
    ],
)
def test_dependency_source_errors(spec: str, message: str) -> None:
    err = error_of(minimal() + f"[dependencies]\nb = {spec}\n")
    assert message in str(err)
    assert "spirit.toml:5" in str(err)


def test_bad_dependency_name() -> None:
    err = error_of(minimal() + '[dependencies]\nBad = "1"\n')
    assert str(err) == 'invalid dependency name "Bad" at spirit.toml:5'


def test_sub_table_dependency_and_dotted_keys() -> None:
    m = parse_manifest(minimal() + '[dependencies.b]\nversion = "1"\noptional = true\n')
    assert m.dependencies == (Dependency("b", parse_requirement("1"), optional=True),)
    m = parse_manifest(minimal() + "pricing.base_cost = 5\n")
    assert m.pricing == Pricing(base_cost=5)


def test_malformed_toml_names_line_and_column() -> None:
    err = error_of(minimal() + 'capabilities = ["a"\nx = = 1\n')
    assert str(err).startswith("malformed TOML at spirit.toml:")
    err = error_of('name = "x"\nname = "y"\n')
    assert str(err).startswith("malformed TOML at spirit.toml:2")
    err = error_of('name = "x\n')
    assert "spirit.toml:1" in str(err)


def test_malformed_json_names_line_and_column() -> None:
    err = error_of('{\n  "name": "x",\n  "version": 1.0.0\n}', "manifest.json")
    assert str(err).startswith("malformed JSON at manifest.json:3:")
    err = error_of('{"name": "x", "name": "y"}', "manifest.json")
    assert 'key "name" appears twice' in str(err)
    err = error_of("[1, 2]", "manifest.json")
    assert "must hold a table of keys, not an array" in str(err)


def test_every_tomlkit_error_is_translated() -> None:
    # _load_toml catches TOMLKitError: that covers every exception tomlkit defines
    import inspect

    import tomlkit.exceptions as tk

    classes = [c for c in vars(tk).values() if inspect.isclass(c) and issubclass(c, Exception)]
    assert len(classes) > 10
    assert all(issubclass(c, tk.TOMLKitError) for c in classes)


def test_json_bool_is_not_an_integer() -> None:
    data = {"name": "x", "version": "1.0.0", "author": AUTHOR, "pricing": {"base_cost": True}}
    err = error_of(json.dumps(data), "manifest.json")
    assert "must be an integer, not a boolean" in str(err)


# ------------------------------------------------------------------ formatting

MESSY = f"""\
# Project header comment.

# The name comes first.
capabilities = [
  "sensor_time", # clock
  # and logs
  "actuator_log",
]
name="hello"      # inline on name
author   =   "{AUTHOR}"
version = {{patch=0, major=0, minor=1}}

# Pricing, per run.
[pricing] # section comment
per_fuel_cost=1
base_cost    = 100 # base
[dependencies]
zeta = "1"
# alpha comment
alpha = {{ optional = true, version = "^2" }}
# trailing deps comment

# before sub table
[dependencies.mid]
path = "../mid"
# final comment
"""


def test_format_orders_keys_and_keeps_every_comment() -> None:
    out = format_manifest(MESSY)
    for line in MESSY.splitlines():
        if "#" in line:
            comment = line[line.index("#") :].strip()
            assert comment in out, comment
    assert parse_manifest(out) == parse_manifest(MESSY)
    lines = out.splitlines()
    assert lines[0] == "# Project header comment."
    assert lines[1] == ""
    keys = [line.split(" = ")[0] for line in lines if " = " in line and not line.startswith("#")]
    assert keys == [
        "name",
        "version",
        "author",
        "capabilities",
        "alpha",
        "mid",
        "zeta",
        "base_cost",
        "per_fuel_cost",
    ]
    assert 'name = "hello"  # inline on name' in lines
    assert '    "sensor_time",  # clock' in lines
    assert lines[lines.index('    "sensor_time",  # clock') + 1] == "    # and logs"
    assert "version = { major = 0, minor = 1, patch = 0 }" in lines
    assert 'alpha = { version = "^2", optional = true }' in lines
    assert "[pricing]  # section comment" in lines
    assert lines.index("[dependencies]") < lines.index("[pricing]  # section comment")
    assert lines[lines.index("[dependencies]") - 1] == ""


def test_format_is_idempotent() -> None:
    once = format_manifest(MESSY)
    assert format_manifest(once) == once
    canonical = parse_manifest(FULL).to_toml()
    assert format_manifest(canonical) == canonical
    assert format_manifest(FULL) == FULL


def test_format_refuses_invalid_manifest() -> None:
    with pytest.raises(ManifestError, match="unknown key"):
        format_manifest(minimal() + "bogus = 1\n")


def test_format_json() -> None:
    m = parse_manifest(FULL)
    data = manifest_to_dict(m)
    shuffled = json.dumps(dict(reversed(list(data.items()))))
    out = format_manifest(shuffled, filename="manifest.json")
    assert list(json.loads(out)) == list(data)
    assert format_manifest(out, filename="manifest.json") == out


def test_manifest_is_frozen() -> None:
    m = parse_manifest(FULL)
    with pytest.raises(AttributeError):
        m.name = "y"  # type: ignore[misc]
    assert isinstance(m, Manifest)


EDGE_CASES = [
    f'name = "x"\nauthor = "{AUTHOR}"\n[version] # v\nmajor = 1 # m\nminor = 0\npatch = 0\n',
    f'name = "x"\nversion = "1.0.0"\nauthor = "{AUTHOR}"\npricing.base_cost = 3 # dotted\n',
    f'name = "x"\r\nversion = "1.0.0"\r\nauthor = "{AUTHOR}"\r\n# crlf\r\n',
    f'name = "x"\nversion = "1.0.0"\nauthor = "{AUTHOR}"\n[dependencies]\n# nothing yet\n',
    f'name = "x"\nversion = "1.0.0"\nauthor = "{AUTHOR}" # no newline at end',
    f'# top\nname = "x"\nversion = "1.0.0"\nauthor = "{AUTHOR}"\n\n\n# footer\n',
    f'name = "x"\nversion = "1.0.0"\nauthor = "{AUTHOR}"\ndescription = """multi\nline"""\n',
    f'name = \'x\'\nversion = "1.0.0"\nauthor = "{AUTHOR}"\n[dependencies]\n'
    '"quoted-dep" = "1"\nb = {path="../b"}\n',
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_format_edge_cases_keep_meaning_and_comments(text: str) -> None:
    out = format_manifest(text)
    assert format_manifest(out) == out
    assert parse_manifest(out) == parse_manifest(text)
    for line in text.splitlines():
        if "#" in line:
            assert line[line.index("#") :].strip() in out
    assert "\r" not in out and out.endswith("\n")


def test_format_keeps_end_comment_with_its_section() -> None:
    out = format_manifest(EDGE_CASES[3])
    assert out.endswith("[dependencies]\n# nothing yet\n")
    out = format_manifest(EDGE_CASES[5])
    assert out.startswith("# top\nname") and out.endswith('"\n\n# footer\n')


def test_format_merges_the_lines_of_a_dotted_key() -> None:
    # each line used to become an entry of its own: version = { major = 1 }, then
    # version = { minor = 0 }: a key defined twice, a manifest that no longer parsed
    text = (
        f'name = "x"\nversion.major = 1\nversion.minor = 0 # m\nversion.patch = 0\n'
        f'author = "{AUTHOR}"\n[dependencies]\nb.version = "1"\nb.optional = true\n'
    )
    out = format_manifest(text)
    assert parse_manifest(out) == parse_manifest(text) and format_manifest(out) == out
    assert "# m\nversion = { major = 1, minor = 0, patch = 0 }\n" in out
    assert 'b = { version = "1", optional = true }' in out


def test_format_reads_crlf_in_a_multi_line_string_as_tomllib_does() -> None:
    # tomlkit kept the "\r", written back as an escape the manifest then refused
    text = (minimal() + 'description = """two\nlines"""\n').replace("\n", "\r\n")
    out = format_manifest(text)
    assert 'description = "two\\nlines"' in out
    assert parse_manifest(out) == parse_manifest(text)


def test_format_keeps_a_comment_under_an_inline_section_with_it() -> None:
    # it used to land above [pricing] on the first run and move again on the second
    out = format_manifest(minimal() + "pricing = { base_cost = 1 }\n# about pricing\n")
    assert out.endswith("[pricing]\nbase_cost = 1\n# about pricing\n")
    assert format_manifest(out) == out
