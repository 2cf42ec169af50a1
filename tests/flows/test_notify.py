"""Notifications from real runs: apply leaves uploads pending, promote makes a pair live,
verify fails; each message arrives at a json:// receiver on loopback (Apprise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bfprov.sandbox import Emulator
from tests.notify.test_notify import Receiver, receiver  # noqa: F401 (the fixture)
from tests.support.fleet import CliFleet

pytest.importorskip("apprise")

PASSWORD = "N0tify-pw-SECRET"
APP_KEY = "N0tify-key-SECRET"
PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  password: {env: BF_PASSWORD}
  key: {size: 1024}
  notify: [{env: BF_NOTIFY}]
accounts:
  - {name: alice, username: alice@example.com, subject: {common_name: alice}}
  - {name: bob, username: bob@example.com, jurisdiction: it, subject: {common_name: bob}}
"""


@pytest.fixture
def fleet(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    receiver: Receiver,  # noqa: F811
) -> Iterator[tuple[CliFleet, Emulator]]:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    monkeypatch.setenv("BF_NOTIFY", f"json://127.0.0.1:{receiver.port}/hook-Tok3n-SECRET")
    with Emulator(tmp_path / "sandbox") as emu:
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        for name in ("alice", "bob"):
            emu.add_account(f"{name}@example.com", PASSWORD, APP_KEY)
        yield CliFleet(tmp_path, capsys, PROFILE), emu


def test_pending_uploads_promotions_and_failures_are_told(
    fleet: tuple[CliFleet, Emulator],
    receiver: Receiver,  # noqa: F811
) -> None:
    cli, emu = fleet
    code, out, err = cli.run("apply", "--yes", "--no-verify")
    assert code == 0, err
    ((_, pending),) = receiver.received
    assert pending["title"] == "bfprov: 2 certificate upload(s) pending"
    assert "alice (betfair.com), bob (betfair.it)" in str(pending["message"])
    assert "bfprov upload" in str(pending["message"])

    for name in ("alice", "bob"):
        crt = cli.out / name / "client-1024.crt"
        emu.upload(f"{name}@example.com", crt.read_bytes())
    assert cli.run("apply", "--yes", "--no-verify", "--replace", "alice")[0] == 0
    staged = (cli.out / "alice" / "staged" / "client-1024.crt").read_bytes()
    emu.upload("alice@example.com", staged)
    receiver.received.clear()
    code, out, err = cli.run("promote", "alice")
    assert code == 0, err
    ((_, promoted),) = receiver.received
    assert promoted["title"] == "bfprov: 1 new pair(s) live"
    assert "alice" in str(promoted["message"]) and promoted["type"] == "success"

    receiver.received.clear()
    emu.add_account("bob@example.com", "another-password", APP_KEY)  # bob's password changed
    code, out, err = cli.run("verify")
    assert code == 1
    ((_, failed),) = receiver.received
    assert failed["title"] == "bfprov: 1 account(s) failed"
    assert "bob: login INVALID_USERNAME_OR_PASSWORD" in str(failed["message"])
    for text in (out, err, str(receiver.received)):
        assert PASSWORD not in text and APP_KEY not in text and "Tok3n-SECRET" not in out + err


def test_a_notification_that_fails_is_a_warning_not_a_failed_run(
    fleet: tuple[CliFleet, Emulator],
    receiver: Receiver,  # noqa: F811
) -> None:
    cli, _ = fleet
    receiver.status = 500
    code, out, err = cli.run("apply", "--yes", "--no-verify")
    assert code == 0
    assert "warning: notify: the json notification could not be sent" in err
    assert "Tok3n-SECRET" not in out + err
