"""The audit trail (`<output_dir>/.bfprov/events.jsonl`) and `bfprov history`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bfprov import crypto
from bfprov.cli import main

P12_PASSWORD = "hist-p12-secret"
APP_KEY = "hist-app-key-secret"
PASSWORD = "hist-password-secret"

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
    subject: {common_name: alice}
  - name: bob
    username: bob
    password: {env: BF_PASSWORD}
    subject: {common_name: bob}
"""


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    monkeypatch.setenv("BF_P12_PASSWORD", P12_PASSWORD)
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    return path


def _history(profile: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, str]]:
    capsys.readouterr()
    assert main(["history", "--json", "--profiles", str(profile), *args]) == 0
    events: list[dict[str, str]] = json.loads(capsys.readouterr().out)
    return events


def _fingerprint(path: Path) -> str:
    return crypto.inspect_certificate(path.read_bytes()).fingerprint_sha256


def test_every_change_is_in_the_history_oldest_first(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = profile.parent / "certs"
    apply = ["apply", "--yes", "--no-verify", "--profiles", str(profile)]
    assert main(apply) == 0
    first = _fingerprint(out / "alice" / "client-2048.crt")
    profile.write_text(PROFILE.replace("common_name: alice", "common_name: alice two"))
    assert main(apply) == 0
    staged = _fingerprint(out / "alice" / "staged" / "client-2048.crt")
    assert main(["promote", "alice", "--no-verify", "--profiles", str(profile)]) == 0
    assert main(["rollback", "alice", "--profiles", str(profile)]) == 0

    events = _history(profile, capsys)
    # Each account's change is logged when its files are written: alice and bob are
    # made at the same time, in either order.
    pairs = [(e["account"], e["event"]) for e in events]
    assert sorted(pairs[:2]) == [("alice", "created"), ("bob", "created")]
    assert pairs[2:] == [("alice", "staged"), ("alice", "promoted"), ("alice", "rolled_back")]
    assert [e["fingerprint"] for e in events if e["account"] == "alice"] == [
        first, staged, staged, first,
    ]  # fmt: skip
    assert "subject" in events[2]["detail"]  # the plan's reason comes along
    for e in events:
        assert e["user"] and e["host"] and e["version"] and e["time"].endswith("+00:00")
    assert [e["account"] for e in _history(profile, capsys, "bob")] == ["bob"]
    assert [e["account"] for e in _history(profile, capsys, "--account", "bob")] == ["bob"]
    capsys.readouterr()
    assert main(["history", "alice", "--profiles", str(profile)]) == 0
    table = capsys.readouterr()
    assert "rolled_back" in table.out and "4 events" in table.err


def test_the_trail_holds_no_secret_and_is_private(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    trail = profile.parent / "certs" / ".bfprov" / "events.jsonl"
    assert trail.stat().st_mode & 0o777 == 0o600
    text = trail.read_text()
    key = (profile.parent / "certs" / "alice" / "client-2048.key").read_text()
    for secret in (PASSWORD, APP_KEY, P12_PASSWORD, "PRIVATE KEY", key.splitlines()[1]):
        assert secret not in text


def test_a_torn_last_line_is_skipped_and_the_next_events_stay_whole(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply = ["apply", "--yes", "--no-verify", "--profiles", str(profile)]
    assert main(apply) == 0
    trail = profile.parent / "certs" / ".bfprov" / "events.jsonl"
    with trail.open("ab") as fh:
        fh.write(b'{"time": "2026-11-30T10:00:00+00:00", "account": "al')  # a crash mid-line
    assert len(_history(profile, capsys)) == 2
    (profile.parent / "certs" / "bob" / "client-2048.pem").unlink()
    assert main(apply) == 0
    events = _history(profile, capsys)
    assert [(e["account"], e["event"]) for e in events][-1] == ("bob", "updated")
    assert len(events) == 3


def test_history_with_no_trail_yet_is_empty(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _history(profile, capsys) == []


def test_login_checks_are_in_the_history(
    profile: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bfprov.sandbox import Emulator

    with Emulator(profile.parent / "sandbox") as emu:
        for name in ("alice", "bob"):
            emu.add_account(name, PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
        crt = profile.parent / "certs" / "alice" / "client-2048.crt"
        emu.upload("alice", crt.read_bytes())
        assert main(["verify", "--profiles", str(profile)]) == 1  # bob is not uploaded
        checks = [e for e in _history(profile, capsys) if e["event"] == "login_check"]
    assert {(e["account"], e["pair"], e["login_status"]) for e in checks} == {
        ("alice", "live", "SUCCESS"),
        ("bob", "live", "CERT_AUTH_REQUIRED"),
    }
    assert checks[0]["fingerprint"] == _fingerprint(crt) or checks[1]["fingerprint"] == (
        _fingerprint(crt)
    )
    text = (profile.parent / "certs" / ".bfprov" / "events.jsonl").read_text()
    assert PASSWORD not in text and APP_KEY not in text
