"""What status, verify, history and apply print, read as a new user would: whole days
left, verify's summary next to its table, a history that fits about 100 columns, and an
apply that shows its login checks before it says it is complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bfprov.cli import main
from bfprov.sandbox import Emulator

PASSWORD = "out-password-secret"
APP_KEY = "out-app-key-secret"

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  password: {{env: BF_PASSWORD}}
  outputs: [key, crt]
accounts:
  - name: alice
    username: alice
    subject: {{common_name: alice gen {generation}}}
"""


class World:
    def __init__(self, root: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]):
        self.root = root
        self.emulator = emulator
        self.capsys = capsys
        self.profile = root / "p.yaml"
        self.write(1)

    def write(self, generation: int) -> None:
        self.profile.write_text(PROFILE.format(generation=generation))

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, "--profiles", str(self.profile)])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def upload(self, staged: bool = False) -> None:
        where = self.root / "certs" / "alice" / ("staged" if staged else "")
        self.emulator.upload("alice", (where / "client-2048.crt").read_bytes())


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[World]:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    with Emulator(tmp_path / "sandbox") as emu:
        emu.add_account("alice", PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        yield World(tmp_path, emu, capsys)


def test_status_shows_whole_days_left(world: World) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    code, out, _ = world.run("status")
    assert code == 0
    row = next(line for line in out.splitlines() if "alice" in line)
    assert " 365 " in row and "365.0" not in row, out
    assert json.loads(world.run("status", "--json")[1])[0]["days_left"] == 365.0  # unchanged


def test_verify_prints_its_summary_with_its_table_and_json_alone(world: World) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    world.upload()
    code, out, err = world.run("verify")
    assert code == 0
    assert "Login checks" in out
    assert "1 of 1 accounts log in with their live pair." in out
    assert "verified 1 account in" in out and "1 ok, 0 failed" in out
    assert "verified" not in err
    code, out, err = world.run("verify", "--json")
    assert code == 0
    assert json.loads(out)[0]["loginStatus"] == "SUCCESS"  # stdout is the JSON alone
    assert "verified 1 account in" in err


def test_history_fits_100_columns_to_the_minute_and_names_the_user(world: World) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    trail = world.root / "certs" / ".bfprov" / "events.jsonl"
    program = "/opt/some/long/path/to/a/virtualenv/bin/notify-the-trading-desk"
    hook = {
        "time": "2026-12-06T07:45:12+00:00", "account": "alice", "event": "hook",
        "fingerprint": "ab" * 32, "target": program,
        "detail": f"on_live (promoted): hook {program}: exited 0 after 0.1s",
        "user": "ops", "host": "build-runner-17.internal.example.com", "version": "1",
    }  # fmt: skip
    with trail.open("a") as fh:
        fh.write(json.dumps(hook) + "\n")
    code, out, _ = world.run("history")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 105, out
    assert "2026-12-06 07:45 " in out and "07:45:12" not in out and "+00:00" not in out
    assert "abababababababab " in out and "ab" * 9 not in out
    assert "build-runner" not in out and " ops " in out
    assert "notify-the-trading-desk" in out and "/opt/some" not in out
    assert sum("alice" in line or "hook" in line for line in lines) >= 1
    events = json.loads(world.run("history", "--json")[1])
    assert events[-1] == hook  # --json unchanged


def test_apply_shows_its_login_checks_before_it_is_complete_and_the_staged_row_went_live(
    world: World,
) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    world.upload()
    world.write(2)
    assert world.run("apply", "--yes")[0] == 0  # the rotation: staged
    world.upload(staged=True)
    code, out, err = world.run("apply", "--yes")  # logs in with the staged pair, promotes
    assert code == 0, err
    assert out.index("Login checks") < out.index("Apply complete"), out
    assert "1 promoted" in out
    rows = [line for line in out.splitlines() if line.startswith("│ alice")]
    assert len(rows) == 2, out
    assert "staged (now live)" in rows[0] and "live" in rows[1]
