"""Fleet lifecycle on real files: renewal windows, archive and rollback, strays, orphans."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bfprov import crypto
from bfprov.desired.models import Subject
from tests.support.fleet import CliFleet

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt, pem, p12]
  p12: {password: {env: BF_P12_PASSWORD}}
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice gen 1}
"""


class Fleet(CliFleet):
    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, PROFILE)
        self.alice = self.out / "alice"

    def plan(self) -> dict[str, Any]:
        code, out, err = self.run("plan", "--json")
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        return result

    def rotate_to(self, generation: int) -> None:
        """Change the subject, stage the new pair, promote it (the operator vouches)."""
        text = self.profile.read_text()
        self.profile.write_text(text.replace(f"gen {generation - 1}", f"gen {generation}"))
        assert self.run("apply", "--yes", "--no-verify")[0] == 0
        code, _, err = self.run("promote", "alice", "--no-verify")
        assert code == 0, err

    def common_name(self) -> str:
        facts = crypto.inspect_certificate((self.alice / "client-2048.crt").read_bytes())
        return dict(facts.subject)["common_name"]

    def archive(self) -> list[Path]:
        return sorted((self.alice / "archive").iterdir())


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_P12_PASSWORD", "p12-secret")
    monkeypatch.setenv("BF_PASSWORD", "pw")
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    f = Fleet(tmp_path, capsys)
    assert f.run("apply", "--yes", "--no-verify")[0] == 0
    return f


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_promotion_archives_the_old_generation_safely(fleet: Fleet) -> None:
    first = (fleet.alice / "client-2048.crt").read_bytes()
    fleet.rotate_to(2)
    assert fleet.common_name() == "alice gen 2"
    [generation] = fleet.archive()
    assert mode(fleet.alice / "archive") == 0o700 and mode(generation) == 0o700
    assert (generation / "client-2048.crt").read_bytes() == first
    assert mode(generation / "client-2048.key") == 0o600
    assert mode(generation / "client-2048.p12") == 0o600
    assert fleet.plan()["changes"] == []


def test_archive_keeps_the_last_generations_configurably(fleet: Fleet) -> None:
    for generation in (2, 3, 4, 5):
        fleet.rotate_to(generation)
    assert len(fleet.archive()) == 3  # the default
    fleet.profile.write_text(
        fleet.profile.read_text().replace("version: 1", "version: 1\narchive_keep: 1")
    )
    fleet.rotate_to(6)
    [kept] = fleet.archive()
    kept_cn = dict(crypto.inspect_certificate((kept / "client-2048.crt").read_bytes()).subject)
    assert kept_cn["common_name"] == "alice gen 5"


def test_rollback_restores_the_newest_archived_generation(fleet: Fleet) -> None:
    first = {n: (fleet.alice / n).read_bytes() for n in ("client-2048.key", "client-2048.crt")}
    fleet.rotate_to(2)
    second = (fleet.alice / "client-2048.crt").read_bytes()
    code, out, err = fleet.run("rollback", "alice", "--yes")
    assert code == 0, err
    for name, data in first.items():
        assert (fleet.alice / name).read_bytes() == data
    assert "upload the restored one again" in out
    assert str(fleet.alice / "client-2048.crt") in out
    assert "https://myaccount.betfair.com/accountdetails/mysecurity?showAPI=1" in out
    # The replaced generation is kept in the archive, and derived files follow the pair.
    [kept] = fleet.archive()
    assert (kept / "client-2048.crt").read_bytes() == second
    pem = (fleet.alice / "client-2048.pem").read_bytes()
    assert pem == first["client-2048.crt"] + first["client-2048.key"]
    assert mode(fleet.alice / "client-2048.key") == 0o600
    # The profile still asks for generation 2: the plan says so, nothing else is off.
    change = fleet.plan()["changes"][0]
    assert change["action"] == "rotate"
    assert change["reasons"] == ["subject differs: CN 'alice gen 1' -> 'alice gen 2'"]
    # Rolling back again swaps the generations once more.
    assert fleet.run("rollback", "alice", "--yes")[0] == 0
    assert (fleet.alice / "client-2048.crt").read_bytes() == second
    assert fleet.plan()["changes"] == []


def test_rollback_without_an_archive_is_refused(fleet: Fleet) -> None:
    before = (fleet.alice / "client-2048.crt").read_bytes()
    code, _, err = fleet.run("rollback", "alice", "--yes")
    assert code == 1
    assert "no archived generation" in err
    assert (fleet.alice / "client-2048.crt").read_bytes() == before


@pytest.mark.parametrize(
    "name", ["old.crt", "other.cert", "spare.key", "bundle.pem", "client-1024.key"]
)
def test_strays_are_reported_and_archived(fleet: Fleet, name: str) -> None:
    (fleet.alice / name).write_text("stray")
    change = fleet.plan()["changes"][0]
    assert change["action"] == "update" and change["requires_upload"] is False
    assert any(name in r and "betfairlightweight" in r for r in change["reasons"])
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert not (fleet.alice / name).exists()
    assert [p.read_text() for p in (fleet.alice / "archive").glob(f"*/{name}")] == ["stray"]
    assert fleet.plan()["changes"] == []


def test_orphans_stay_without_prune_and_are_archived_with_it(fleet: Fleet) -> None:
    ghost = fleet.out / "ghost"
    ghost.mkdir()
    (ghost / "client-2048.key").write_text("key material")
    change = fleet.plan()["changes"][0]
    assert change == {
        "account": "ghost",
        "action": "orphan",
        "reasons": [f"{ghost} is not named by any profile (archived only with --prune)"],
        "requires_upload": False,
    }
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert (ghost / "client-2048.key").exists()
    code, _, err = fleet.run("apply", "--yes", "--no-verify", "--prune")
    assert code == 0, err
    assert not ghost.exists()
    [moved] = list((fleet.out / ".orphans").iterdir())
    assert moved.name.startswith("ghost-")
    assert (moved / "client-2048.key").read_text() == "key material"  # never deleted
    assert fleet.plan()["changes"] == []


def _age_live_certificate(fleet: Fleet, days_old: int, lifetime: int) -> None:
    """Reissue the live certificate for the live key as if made `days_old` days ago."""
    key = crypto.load_private_key((fleet.alice / "client-2048.key").read_bytes())
    then = datetime.now(UTC) - timedelta(days=days_old)
    crt = crypto.self_signed_certificate(key, Subject(common_name="alice gen 1"), lifetime, then)
    (fleet.alice / "client-2048.crt").write_bytes(crt)
    (fleet.alice / "client-2048.pem").write_bytes(
        crt + (fleet.alice / "client-2048.key").read_bytes()
    )


@pytest.mark.parametrize(
    ("window", "rule"),
    [("renew_before: 30d", "renew_before 30d"), ("renew_before: 10%", "renew_before 10%")],
)
def test_renewal_windows_through_the_cli(fleet: Fleet, window: str, rule: str) -> None:
    text = PROFILE.replace("  outputs:", f"  validity: {{days: 365, {window}}}\n  outputs:")
    fleet.profile.write_text(text)
    _age_live_certificate(fleet, days_old=300, lifetime=365)  # 65 days left: not yet due
    reasons = " ".join(c for ch in fleet.plan()["changes"] for c in ch["reasons"])
    assert "expires" not in reasons
    _age_live_certificate(fleet, days_old=340, lifetime=365)  # 25 days left: due by both rules
    change = fleet.plan()["changes"][0]
    assert change["action"] == "rotate"
    assert any("expires in 24 days" in r and f"({rule})" in r for r in change["reasons"]), change
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert (fleet.alice / "staged" / "client-2048.crt").exists()


def test_a_window_as_long_as_the_validity_is_refused(fleet: Fleet) -> None:
    fleet.profile.write_text(
        PROFILE.replace("  outputs:", "  validity: {days: 30, renew_before: 30d}\n  outputs:")
    )
    code, _, err = fleet.run("validate")
    assert code == 1
    assert "is as long as the validity" in err and "fleet.yaml:" in err
