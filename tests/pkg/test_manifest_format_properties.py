"""``vudo fmt`` on generated manifests: whatever the key order, spacing, comments, dotted
keys, inline or sub-tables and line endings, the formatted text is a manifest with the same
meaning, formatting it again changes nothing, and every comment is still there."""

from __future__ import annotations

import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vudo.pkg.manifest import format_manifest, manifest_to_dict, parse_manifest

AUTHOR = "ab" * 32
CAPS = ["sensor_time", "actuator_log", "sensor_random", "storage_read", "network_connect"]
DEPS = ["a", "b", "c", "zz"]
PRICING = ["base_cost", "per_fuel_cost", "fuel_unit", "per_byte_cost"]


class Writer:
    """Writes one manifest's lines in a random style; numbers every comment it writes."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.comments = 0

    def comment(self) -> str:
        self.comments += 1
        return f"# c{self.comments}" + self.r.choice(["", " ✓", "#", " x = 1", ' "q"'])

    def eq(self) -> str:
        return self.r.choice([" = ", "=", "  =   ", " =\t", "= "])

    def after(self) -> str:
        """Maybe a comment after a value, on its line."""
        return self.r.choice(["  ", " ", "\t"]) + self.comment() if self.r.random() < 0.25 else ""

    def above(self) -> list[str]:
        """Maybe blank lines and comments on their own lines."""
        out = []
        while self.r.random() < 0.3:
            out.append("" if self.r.random() < 0.5 else self.comment())
        return out

    def text(self, value: str) -> str:
        return self.r.choice([f'"{value}"', f"'{value}'"])


def generated_manifest(r: random.Random) -> tuple[str, int]:
    """A valid manifest in a random style, and how many comments it holds."""
    w = Writer(r)
    root: list[list[str]] = [
        [f"name{w.eq()}{w.text('demo')}{w.after()}"],
        [f"author{w.eq()}{w.text(AUTHOR)}{w.after()}"],
    ]
    tables: list[list[str]] = []
    style = r.random()
    if style < 0.5:
        root.append([f"version{w.eq()}{w.text('1.2.3-rc.1')}{w.after()}"])
    elif style < 0.75:
        root.append([f"version{w.eq()}{{ major = 1, minor = 2, patch = 3 }}{w.after()}"])
    else:
        root.append(["version.major = 1", f"version.minor = 0{w.after()}", "version.patch = 0"])
    if r.random() < 0.5:
        root.append([f"description{w.eq()}" + r.choice(['"héllo \\"w\\""', "'lit'", '"tab\\t"'])])
    caps = r.sample(CAPS, r.randint(0, 4))
    if caps and r.random() < 0.5:  # a multi-line array with comments inside
        lines = [f"capabilities{w.eq()}[{w.after()}"]
        for cap in caps:
            if r.random() < 0.3:
                lines.append("  " + w.comment())
            lines.append(f'  "{cap}",{w.after()}')
        root.append([*lines, "]"])
    else:
        root.append([f"capabilities{w.eq()}[{', '.join(w.text(c) for c in caps)}]{w.after()}"])
    names = r.sample(DEPS, r.randint(0, 3))
    plain = [n for n in names if r.random() < 0.6]
    subs = [n for n in names if n not in plain]
    body: list[str] = []
    for n in plain:
        body += [*w.above(), f'{n}{w.eq()}"^1.{r.randint(0, 9)}"{w.after()}']
    if plain or r.random() < 0.3:
        tables.append([*w.above(), f"[dependencies]{w.after()}", *body])
    for n in subs:
        tables.append([*w.above(), f"[dependencies.{n}]", f'path = "../{n}"{w.after()}'])
    if r.random() < 0.5:
        keys = r.sample(PRICING, r.randint(1, 3))
        if r.random() < 0.3:
            root.append([f"pricing.{k} = {r.randint(1, 9)}{w.after()}" for k in keys])
        else:
            lines = [f"{k}{w.eq()}{r.randint(1, 9)}{w.after()}" for k in keys]
            tables.append([*w.above(), "[pricing]", *lines])
    r.shuffle(root)
    r.shuffle(tables)
    lines = w.above()
    for group in root:
        lines += w.above() + group
    for table in tables:
        lines += table
    lines += w.above()
    text = "\n".join(lines) + r.choice(["\n", "", "\n\n"])
    if r.random() < 0.1:
        text = text.replace("\n", "\r\n")
    return text, w.comments


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32))
def test_fmt_keeps_meaning_and_comments_and_is_idempotent(seed: int) -> None:
    text, comments = generated_manifest(random.Random(seed))
    before = manifest_to_dict(parse_manifest(text))
    formatted = format_manifest(text)
    assert manifest_to_dict(parse_manifest(formatted)) == before
    assert format_manifest(formatted) == formatted
    written = re.findall(r"# c\d+[^\n\r]*", text)
    assert len(written) == comments  # (the generator's own check)
    assert sorted(re.findall(r"# c\d+[^\n]*", formatted)) == sorted(c.rstrip() for c in written)
