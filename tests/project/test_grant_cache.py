"""A run's signed grants are kept and re-used (vudo.project.grant_cache) only while they are
exactly what signing now would give: same key file, grantee and plan, each signature still
verifying, and not issued in the future. Anything else signs afresh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vudo.capabilities import Capability
from vudo.engine.grants import verify_grant
from vudo.home import keys_dir
from vudo.pkg.keys import ensure_keypair
from vudo.project.grant_cache import run_grants

GRANTEE = "c3" * 32
PLAN = [(Capability.SENSOR_TIME, "global"), (Capability.ACTUATOR_LOG, "global")]


@pytest.fixture
def signings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the real signer's calls (it still signs)."""
    import vudo.project.grants as grants_module

    real = grants_module.sign_grants
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(grants_module, "sign_grants", counted)
    return calls


def _files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "grants").glob("*"))


def test_a_repeat_run_reuses_the_signed_grants(tmp_path: Path, signings: list[int]) -> None:
    home = tmp_path / "home"
    first, granter = run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
    again, granter2 = run_grants(PLAN, home=home, now=2_000, grantee=GRANTEE)
    assert len(signings) == 1 and granter == granter2
    assert again == first  # the same signatures, the first issue time
    for grant in again:
        verify_grant(grant)
        assert grant.grantee == GRANTEE and grant.granter == granter
    assert [g.capability for g in again] == [c for c, _ in PLAN]


def test_another_plan_or_grantee_signs_afresh(tmp_path: Path, signings: list[int]) -> None:
    home = tmp_path / "home"
    run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
    run_grants(PLAN[:1], home=home, now=1_000, grantee=GRANTEE)
    run_grants(PLAN, home=home, now=1_000, grantee="d4" * 32)
    run_grants(list(reversed(PLAN)), home=home, now=1_000, grantee=GRANTEE)
    assert len(signings) == 4 and len(_files(home)) == 4


def test_a_tampered_or_garbled_entry_is_signed_again(tmp_path: Path, signings: list[int]) -> None:
    home = tmp_path / "home"
    run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
    (entry,) = _files(home)
    lines = entry.read_text().split()
    forged = ("0" if lines[1][0] != "0" else "1") + lines[1][1:]
    for text in (
        "\n".join([lines[0], forged, lines[2]]),  # a signature that does not verify
        "\n".join(["999", *lines[1:]]),  # another issue time: the signatures no longer fit
        "\n".join(lines[:2]),  # one grant short
        "not a number\n",
        "",
    ):
        entry.write_text(text)
        grants, _ = run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
        for grant in grants:
            verify_grant(grant)
    assert len(signings) == 6


def test_a_clock_that_went_back_is_not_trusted(tmp_path: Path, signings: list[int]) -> None:
    home = tmp_path / "home"
    run_grants(PLAN, home=home, now=5_000, grantee=GRANTEE)
    grants, _ = run_grants(PLAN, home=home, now=4_000, grantee=GRANTEE)
    assert len(signings) == 2 and {g.issued_at for g in grants} == {4_000}


def test_a_new_key_never_finds_the_old_keys_grants(tmp_path: Path, signings: list[int]) -> None:
    home = tmp_path / "home"
    _, old = run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
    keys = keys_dir(home)
    for name in ("private.key", "public.key"):
        os.remove(keys / name)
    ensure_keypair(home)
    grants, new = run_grants(PLAN, home=home, now=1_000, grantee=GRANTEE)
    assert new != old and len(signings) == 2
    assert {g.granter for g in grants} == {new}
