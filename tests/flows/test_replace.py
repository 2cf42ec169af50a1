"""Forced replacement (`plan/apply --replace NAME`): a new key whatever the account's state,
staged like any rotation, live only through the usual promotion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bfprov import crypto
from tests.support.fleet import CliFleet

FLEET = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  password: {env: BF_PASSWORD}
  outputs: [key, crt, pem]
accounts:
  - name: alice
    username: alice
    subject: {common_name: alice}
  - name: bob
    username: bob
    subject: {common_name: bob}
"""
LIVE = ("client-2048.key", "client-2048.crt", "client-2048.pem")


class Fleet(CliFleet):
    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, FLEET)

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, err
        return out

    def plan(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.ok("plan", "--json", *args))
        return result

    def files(self, name: str, *paths: str) -> dict[str, bytes]:
        return {p: (self.out / name / p).read_bytes() for p in paths}

    def spki(self, name: str, path: str) -> str:
        return crypto.inspect_key((self.out / name / path).read_bytes()).spki_sha256

    def fingerprint(self, name: str, path: str) -> str:
        facts = crypto.inspect_certificate((self.out / name / path).read_bytes())
        return facts.fingerprint_sha256


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES", "BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    f = Fleet(tmp_path, capsys)
    f.ok("apply", "--yes", "--no-verify")
    return f


def test_replace_stages_a_new_pair_for_a_healthy_account(fleet: Fleet) -> None:
    assert fleet.plan()["changes"] == []
    plan = fleet.plan("--replace", "alice")
    assert plan["changes"] == [
        {
            "account": "alice",
            "action": "rotate",
            "reasons": ["replacement requested"],
            "requires_upload": True,
        }
    ]
    assert plan["summary"]["noop"] == 1  # bob

    live = fleet.files("alice", *LIVE)
    bob = fleet.files("bob", *LIVE)
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "alice")
    assert fleet.files("alice", *LIVE) == live  # the live pair is untouched
    assert fleet.files("bob", *LIVE) == bob
    assert not (fleet.out / "bob" / "staged").exists()
    new_key = fleet.spki("alice", "staged/client-2048.key")
    assert new_key != fleet.spki("alice", "client-2048.key")
    assert fleet.fingerprint("alice", "staged/client-2048.crt") != fleet.fingerprint(
        "alice", "client-2048.crt"
    )
    facts = crypto.inspect_certificate((fleet.out / "alice/staged/client-2048.crt").read_bytes())
    assert facts.spki_sha256 == new_key

    # From now on the staged pair awaits its upload, like any rotation.
    (change,) = fleet.plan()["changes"]
    assert change["account"] == "alice" and change["action"] == "promote"

    staged_crt = (fleet.out / "alice/staged/client-2048.crt").read_bytes()
    fleet.ok("promote", "alice", "--no-verify")
    assert (fleet.out / "alice/client-2048.crt").read_bytes() == staged_crt
    assert fleet.spki("alice", "client-2048.key") == new_key
    assert not (fleet.out / "alice" / "staged").exists()
    archived = list((fleet.out / "alice" / "archive").rglob("client-2048.crt"))
    assert [p.read_bytes() for p in archived] == [live["client-2048.crt"]]
    assert fleet.plan()["changes"] == []


def test_replace_discards_a_staged_pair_and_stages_a_fresh_one(fleet: Fleet) -> None:
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "alice")
    first = fleet.spki("alice", "staged/client-2048.key")
    (change,) = fleet.plan("--replace", "alice")["changes"]
    assert change["action"] == "rotate"
    assert change["reasons"] == [
        "replacement requested",
        "the staged pair is archived and a new one staged in its place",
    ]
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "alice")
    second = fleet.spki("alice", "staged/client-2048.key")
    assert second not in (first, fleet.spki("alice", "client-2048.key"))
    archived = list((fleet.out / "alice" / "archive").rglob("client-2048.key"))
    assert [crypto.inspect_key(p.read_bytes()).spki_sha256 for p in archived] == [first]


def test_replace_of_a_missing_account_creates_it(fleet: Fleet) -> None:
    fleet.profile.write_text(
        FLEET + "  - name: carol\n    username: carol\n    subject: {common_name: carol}\n"
    )
    (change,) = fleet.plan("--replace", "carol")["changes"]
    assert change["action"] == "create"
    assert change["reasons"][-1] == "replacement requested"
    assert change["reasons"] == ["new account: nothing on disk yet", "replacement requested"]
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "carol")
    assert (fleet.out / "carol" / "client-2048.crt").is_file()
    assert not (fleet.out / "carol" / "staged").exists()


@pytest.mark.parametrize("command", [["plan"], ["apply", "--yes", "--no-verify"]])
def test_an_unknown_replace_is_refused(fleet: Fleet, command: list[str]) -> None:
    before = sorted(fleet.out.rglob("*"))
    code, _, err = fleet.run(*command, "--replace", "zed")
    assert code == 1
    assert err.count("\n") == 1 and "--replace: no account named zed in the profiles" in err
    code, _, err = fleet.run(*command, "--account", "bob", "--replace", "alice")
    assert code == 1 and "--replace alice: not among the selected accounts" in err
    assert sorted(fleet.out.rglob("*")) == before


def test_a_saved_plan_records_its_replacements_and_apply_file_honours_them(
    fleet: Fleet,
) -> None:
    saved = fleet.root / "replace.plan.json"
    fleet.ok("plan", "--out", str(saved), "--replace", "bob")
    data = json.loads(saved.read_text())
    assert data["replace"] == ["bob"]
    assert [(c["account"], c["action"]) for c in data["changes"]] == [("bob", "rotate")]

    for other in (["--replace", "alice"], ["--account", "bob"]):
        code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify", *other)
        assert code == 1 and "was made for every account --replace bob" in err
    assert not (fleet.out / "bob" / "staged").exists()

    fleet.ok("apply", str(saved), "--yes", "--no-verify")
    assert (fleet.out / "bob" / "staged" / "client-2048.key").is_file()
    assert not (fleet.out / "alice" / "staged").exists()


def test_apply_file_refuses_a_replacement_the_plan_did_not_hold(fleet: Fleet) -> None:
    saved = fleet.root / "noop.plan.json"
    fleet.ok("plan", "--out", str(saved))
    code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify", "--replace", "alice")
    assert code == 1 and "drop --account/--select/--replace, or plan again" in err
    assert not (fleet.out / "alice" / "staged").exists()
