"""Selections (`--account`): nothing of the accounts left out is touched, locked or created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bfprov.cli import main
from tests.support.fleet import CliFleet

PROFILE = """\
version: 1
output_dir: {out}
defaults:
  app_key: {{env: BF_APP_KEY}}
  outputs: [key, crt]
accounts:
  - name: {name}
    username: {name}
    password: {{env: BF_PASSWORD}}
    subject: {{common_name: {name}}}
"""


@pytest.fixture
def two_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("alice", "bob"):
        text = PROFILE.format(out=f"../certs-{name}", name=name)
        (profiles / f"{name}.yaml").write_text(text)
    return profiles


def test_apply_of_one_account_leaves_other_profiles_output_dirs_alone(two_profiles: Path) -> None:
    root = two_profiles.parent
    code = main(["apply", "--yes", "--no-verify", "--account", "alice", "--profiles",
                 str(two_profiles)])  # fmt: skip
    assert code == 0
    assert (root / "certs-alice" / "alice" / "client-2048.key").is_file()
    assert not (root / "certs-bob").exists()  # neither created nor locked


def test_promote_of_one_account_leaves_other_profiles_output_dirs_alone(
    two_profiles: Path,
) -> None:
    root = two_profiles.parent
    assert main(["promote", "alice", "--no-verify", "--profiles", str(two_profiles)]) == 1
    assert not (root / "certs-bob").exists()


# --- labels: `--select KEY=VALUE` on every command that works on accounts -------------

FLEET = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  password: {env: BF_PASSWORD}
  outputs: [key, crt]
  labels: {team: trading}
accounts:
  - name: alice
    username: alice
    subject: {common_name: alice}
    labels: {tier: gold}
  - name: bob
    username: bob
    subject: {common_name: bob}
    labels: {tier: silver}
  - name: carol
    username: carol
    subject: {common_name: carol}
    labels: {tier: gold, team: research}
"""
GOLD = ["--select", "tier=gold"]


class Fleet(CliFleet):
    """Three accounts in one output directory: alice (gold, trading), bob (silver,
    trading), carol (gold, research)."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, FLEET)

    def json(self, *args: str) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def tree(self) -> dict[str, bytes]:
        """Every file under the root (but the profile), with its content."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file() and p != self.profile
        }


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES", "BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return Fleet(tmp_path, capsys)


def accounts_of(plan: dict[str, Any]) -> list[str]:
    return [c["account"] for c in plan["changes"]]


@pytest.mark.parametrize(
    ("selects", "expected"),
    [
        (["tier=gold"], ["alice", "carol"]),
        (["team=trading"], ["alice", "bob"]),  # bob's team comes from defaults
        (["tier=gold", "team=trading"], ["alice"]),  # all must match
        (["team=research"], ["carol"]),  # carol's own label wins over the defaults'
    ],
)
def test_plan_lists_only_the_accounts_whose_labels_match(
    fleet: Fleet, selects: list[str], expected: list[str]
) -> None:
    args = [a for s in selects for a in ("--select", s)]
    plan = fleet.json("plan", *args)
    assert accounts_of(plan) == expected
    assert plan["summary"]["create"] == len(expected) and plan["summary"]["noop"] == 0


def test_select_and_account_together_narrow(fleet: Fleet) -> None:
    plan = fleet.json("plan", "--account", "alice", "--account", "bob", *GOLD)
    assert accounts_of(plan) == ["alice"]


def test_a_selected_plan_leaves_orphans_out(fleet: Fleet) -> None:
    (fleet.out / "zed").mkdir(parents=True)
    assert "zed" in accounts_of(fleet.json("plan"))
    assert accounts_of(fleet.json("plan", *GOLD)) == ["alice", "carol"]


def test_apply_by_labels_creates_the_selected_accounts_and_nothing_else(fleet: Fleet) -> None:
    code, _, err = fleet.run("apply", "--yes", "--no-verify", *GOLD, "--select", "team=trading")
    assert code == 0, err
    created = set(fleet.tree())
    assert {"certs/alice/client-2048.key", "certs/alice/client-2048.crt"} <= created
    # Nothing of bob's or carol's: only alice's directory and the output dir's own records.
    others = {p for p in created if not p.startswith("certs/alice/")}
    assert not any("bob" in p or "carol" in p for p in created)
    assert all(p.startswith("certs/.bfprov") for p in others), others
    assert not (fleet.out / "bob").exists() and not (fleet.out / "carol").exists()

    before = fleet.tree()
    assert fleet.run("apply", "--yes", "--no-verify", "--select", "tier=silver")[0] == 0
    after = fleet.tree()
    assert {k: v for k, v in after.items() if k.startswith("certs/alice/")} == {
        k: v for k, v in before.items() if k.startswith("certs/alice/")
    }
    assert "certs/bob/client-2048.key" in after and not (fleet.out / "carol").exists()


def test_status_reports_only_the_selected_accounts(fleet: Fleet) -> None:
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    (fleet.out / "zed").mkdir()
    assert {r["account"] for r in fleet.json("status")} == {"alice", "bob", "carol", "zed"}
    assert [r["account"] for r in fleet.json("status", *GOLD)] == ["alice", "carol"]
    assert [r["account"] for r in fleet.json("status", "--account", "bob")] == ["bob"]
    code, out, _ = fleet.run("status", "--prometheus", "--select", "tier=silver")
    assert code == 0 and 'account="bob"' in out
    assert 'account="alice"' not in out and 'account="zed"' not in out


def test_history_shows_only_the_selected_accounts(fleet: Fleet) -> None:
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert {e["account"] for e in fleet.json("history")} == {"alice", "bob", "carol"}
    assert {e["account"] for e in fleet.json("history", "--select", "tier=silver")} == {"bob"}
    assert {e["account"] for e in fleet.json("history", "carol", *GOLD)} == {"carol"}


def test_verify_logs_in_only_the_selected_accounts(
    fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfprov.sandbox import Emulator

    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    with Emulator(tmp_path_factory.mktemp("sandbox")) as emulator:
        for name in ("alice", "bob", "carol"):
            emulator.add_account(name, "p", "k")
            emulator.upload(name, (fleet.out / name / "client-2048.crt").read_bytes())
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
        code, out, err = fleet.run("verify", "--json", *GOLD)
        assert code == 0, err
        results = json.loads(out)
        assert [(r["account"], r["loginStatus"]) for r in results] == [
            ("alice", "SUCCESS"),
            ("carol", "SUCCESS"),
        ]
        tried = {e.username for e in emulator.events if e.path == "/api/certlogin"}
        assert tried == {"alice", "carol"}
    rows = {r["account"]: r for r in fleet.json("status")}
    assert rows["bob"]["last_check"] is None  # bob was never tried
    assert rows["alice"]["last_check"]["loginStatus"] == "SUCCESS"


def test_promote_by_labels_promotes_only_the_selected_staged_pairs(fleet: Fleet) -> None:
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    replace_all = [a for n in ("alice", "bob", "carol") for a in ("--replace", n)]
    assert fleet.run("apply", "--yes", "--no-verify", *replace_all)[0] == 0
    staged = {
        n: (fleet.out / n / "staged" / "client-2048.crt").read_bytes()
        for n in ("alice", "bob", "carol")
    }

    # Positional accounts and --select together: the named accounts that match.
    code, _, err = fleet.run("promote", "alice", "bob", "--no-verify", *GOLD)
    assert code == 0, err
    assert (fleet.out / "alice" / "client-2048.crt").read_bytes() == staged["alice"]
    assert (fleet.out / "bob" / "staged" / "client-2048.crt").is_file()
    assert (fleet.out / "carol" / "staged" / "client-2048.crt").is_file()

    # --select alone: every selected account with a staged pair (alice has none left).
    code, _, err = fleet.run("promote", "--no-verify", *GOLD)
    assert code == 0, err
    assert "alice has no staged pair" in err
    assert (fleet.out / "carol" / "client-2048.crt").read_bytes() == staged["carol"]
    assert (fleet.out / "bob" / "staged" / "client-2048.crt").read_bytes() == staged["bob"]


def test_promote_needs_accounts_or_a_selection(fleet: Fleet) -> None:
    code, _, err = fleet.run("promote", "--no-verify")
    assert code == 1
    assert "promote needs ACCOUNT... or --select" in err and len(err.strip().splitlines()) == 1


ON_ACCOUNTS = [
    ["plan"],
    ["apply", "--yes", "--no-verify"],
    ["verify"],
    ["status"],
    ["promote", "--no-verify"],
    ["history"],
]


@pytest.mark.parametrize("command", ON_ACCOUNTS, ids=lambda c: c[0])
@pytest.mark.parametrize("value", ["tier", "=gold", "ti er=gold", "tier=gold\x07"])
def test_a_bad_select_is_refused_on_one_line(fleet: Fleet, command: list[str], value: str) -> None:
    code, _, err = fleet.run(*command, "--select", value)
    assert code == 1
    assert err.count("\n") == 1
    assert f"--select {value!r}" in err  # names the value, quoted
    assert not fleet.out.exists()


@pytest.mark.parametrize("command", ON_ACCOUNTS, ids=lambda c: c[0])
def test_a_selection_that_matches_no_account_is_an_error(fleet: Fleet, command: list[str]) -> None:
    code, _, err = fleet.run(*command, "--select", "tier=platinum")
    assert code == 1
    assert "no account matches --select tier=platinum" in err and err.count("\n") == 1
    code, _, err = fleet.run(*command, "--account", "bob", *GOLD)
    assert code == 1 and "no account among bob matches --select tier=gold" in err
    assert not fleet.out.exists()


def test_two_values_for_one_key_are_refused(fleet: Fleet) -> None:
    code, _, err = fleet.run("plan", *GOLD, "--select", "tier=silver")
    assert code == 1 and "cannot both match" in err


# --- a saved plan records its selection ------------------------------------------------


def test_a_saved_plan_records_its_selection_and_apply_file_applies_exactly_it(
    fleet: Fleet,
) -> None:
    saved = fleet.root / "gold.plan.json"
    code, _, err = fleet.run("plan", "--out", str(saved), *GOLD, "--account", "carol")
    assert code == 0, err
    data = json.loads(saved.read_text())
    assert data["selection"] == {"accounts": ["carol"], "labels": {"tier": "gold"}}
    assert data["replace"] == []
    assert accounts_of(data) == ["carol"]

    code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify", "--select", "tier=silver")
    assert code == 1 and "was made for --account carol --select tier=gold" in err
    assert not fleet.out.exists()

    code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify")
    assert code == 0, err
    assert (fleet.out / "carol" / "client-2048.crt").is_file()
    assert sorted(p.name for p in fleet.out.iterdir() if not p.name.startswith(".")) == ["carol"]


def test_apply_file_accepts_the_same_selection_given_again(fleet: Fleet) -> None:
    saved = fleet.root / "gold.plan.json"
    assert fleet.run("plan", "--out", str(saved), *GOLD)[0] == 0
    code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify", *GOLD)
    assert code == 0, err
    assert sorted(p.name for p in fleet.out.iterdir() if not p.name.startswith(".")) == [
        "alice",
        "carol",
    ]


def test_a_saved_plan_of_the_whole_fleet_refuses_a_selection(fleet: Fleet) -> None:
    saved = fleet.root / "all.plan.json"
    assert fleet.run("plan", "--out", str(saved))[0] == 0
    assert json.loads(saved.read_text())["selection"] == {"accounts": [], "labels": {}}
    code, _, err = fleet.run("apply", str(saved), "--yes", "--no-verify", "--account", "alice")
    assert code == 1 and "was made for every account" in err
    assert not fleet.out.exists()
