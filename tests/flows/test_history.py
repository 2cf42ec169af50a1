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
    assert main(["rollback", "alice", "--yes", "--profiles", str(profile)]) == 0

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


# --- the trail's limits: line size, links, streaming -----------------------------------


def _trail(profile: Path) -> Path:
    return profile.parent / "certs" / ".bfprov" / "events.jsonl"


def test_a_long_field_is_cut_and_its_line_stays_at_most_16_kib(tmp_path: Path) -> None:
    from bfprov.apply.events import append_events, event
    from bfprov.observed.events import read_events

    out = tmp_path / "certs"
    out.mkdir()
    long = "why " * 30_000  # 120 KB of server text, say
    append_events(out, [event("alice", "publish_failed", target="t " * 9000, detail=long)])
    append_events(out, [event("alice", "published", target="vault x")])
    lines = (out / ".bfprov" / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == 2
    assert all(len(line) <= 16 * 1024 for line in lines)
    first, second = list(read_events([out]))  # the cut line is still whole JSON
    assert first.event == "publish_failed" and first.detail is not None
    assert first.detail.startswith("why why") and first.detail.endswith("...")
    assert second.event == "published"


def test_the_trail_is_never_read_through_a_link(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = profile.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "events.jsonl").write_text(
        '{"time": "2026-01-01T00:00:00+00:00", "account": "alice", "event": "created"}\n'
    )
    (profile.parent / "certs").mkdir()
    (profile.parent / "certs" / ".bfprov").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["history", "--json", "--profiles", str(profile)]) == 1
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err


def _write_trail(profile: Path, times: list[str]) -> None:
    trail = _trail(profile)
    trail.parent.mkdir(parents=True, exist_ok=True)
    with trail.open("w") as fh:
        for i, t in enumerate(times):
            fh.write(json.dumps({"time": t, "account": "alice", "event": "hook", "detail": str(i)}))
            fh.write("\n")


def test_history_limit_shows_the_newest_events(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_trail(profile, [f"2026-01-{d:02d}T00:00:00+00:00" for d in range(1, 21)])
    events = _history(profile, capsys, "--limit", "3")
    assert [e["detail"] for e in events] == ["17", "18", "19"]
    capsys.readouterr()
    assert main(["history", "--limit", "0", "--profiles", str(profile)]) == 1
    assert "--limit" in capsys.readouterr().err


def test_history_since_takes_a_duration_or_a_date(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    times = [(now - timedelta(days=d)).isoformat(timespec="seconds") for d in (30, 10, 2, 0)]
    _write_trail(profile, times)
    assert [e["detail"] for e in _history(profile, capsys, "--since", "7d")] == ["2", "3"]
    since = (now - timedelta(days=15)).date().isoformat()
    assert [e["detail"] for e in _history(profile, capsys, "--since", since)] == ["1", "2", "3"]
    capsys.readouterr()
    assert main(["history", "--since", "last tuesday", "--profiles", str(profile)]) == 1
    err = capsys.readouterr().err
    assert "'last tuesday'" in err and "Traceback" not in err


def test_history_streams_a_large_trail(profile: Path) -> None:
    """A 40 MB trail: `history --limit` keeps a few events in memory, not the trail."""
    import subprocess
    import sys

    trail = _trail(profile)
    trail.parent.mkdir(parents=True)
    line = json.dumps({
        "time": "2026-01-01T00:00:00+00:00", "account": "alice", "event": "hook",
        "target": "/usr/local/bin/restart-bot", "detail": "on_live (created): " + "x" * 300,
        "user": "ops", "host": "runner-1", "version": "0.1.0",
    }) + "\n"  # fmt: skip
    with trail.open("w") as fh:
        fh.writelines([line] * 100_000)
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-m", "bfprov", "history", "--json", "--limit", "5"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv, "--profiles", str(profile)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    peak_kib = int(done.stdout.strip())
    # Loading it whole took ~10x the trail's size; streaming stays near the interpreter's.
    assert peak_kib < 150 * 1024, f"history peaked at {peak_kib // 1024} MiB"
