"""Hostile file systems: planted symbolic links, loose modes, read-only directories."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet import CliFleet

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  key: {size: 1024}
  outputs: [key, crt, pem, cnf]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
"""


class Fleet(CliFleet):
    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, PROFILE)
        self.alice = self.out / "alice"
        self.outside = root / "outside"
        self.outside.mkdir()
        self.bait = self.outside / "precious.txt"
        self.bait.write_text("do not touch")
        self.bait.chmod(0o644)

    def apply(self) -> tuple[int, str, str]:
        return self.run("apply", "--yes", "--no-verify")

    def outside_state(self) -> dict[str, tuple[str, int]]:
        return {
            str(p.relative_to(self.outside)): (
                hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                stat.S_IMODE(p.lstat().st_mode),
            )
            for p in sorted(self.outside.rglob("*"))
        }

    def plan(self) -> dict[str, Any]:
        code, out, err = self.run("plan", "--json")
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        return result


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    return Fleet(tmp_path, capsys)


@pytest.mark.parametrize("name", ["client-1024.key", "client-1024.crt", "client-1024.pem"])
def test_a_planted_file_link_is_never_followed(fleet: Fleet, name: str) -> None:
    assert fleet.apply()[0] == 0
    before = fleet.outside_state()
    (fleet.alice / name).unlink()
    (fleet.alice / name).symlink_to(fleet.bait)
    changes = fleet.plan()["changes"]
    assert changes, "a link in place of a live file must be noticed"
    assert any("not a regular file" in r for r in changes[0]["reasons"]), changes
    for _ in range(2):  # apply (stage or rewrite), then once more
        code, _, err = fleet.apply()
        assert code == 0, err
    assert fleet.outside_state() == before
    assert fleet.bait.read_text() == "do not touch"


def test_a_linked_account_directory_is_refused(fleet: Fleet) -> None:
    fleet.out.mkdir()
    fleet.alice.symlink_to(fleet.outside)
    before = fleet.outside_state()
    for command in (["plan"], ["apply", "--yes", "--no-verify"]):
        code, _, err = fleet.run(*command)
        assert code == 1 and "symbolic link" in err and "Traceback" not in err
    assert fleet.outside_state() == before


@pytest.mark.parametrize("name", ["staged", "archive", ".bfprov"])
def test_a_linked_directory_inside_an_account_is_refused(fleet: Fleet, name: str) -> None:
    assert fleet.apply()[0] == 0
    target = fleet.alice / name
    if target.exists():
        shutil.rmtree(target)
    target.symlink_to(fleet.outside)
    before = fleet.outside_state()
    for command in (["plan"], ["apply", "--yes", "--no-verify"], ["status"]):
        code, _, err = fleet.run(*command)
        assert code == 1, (command, err)
        assert "does not follow links" in err and "Traceback" not in err
    assert fleet.outside_state() == before


def test_modes_are_repaired(fleet: Fleet) -> None:
    assert fleet.apply()[0] == 0
    fleet.alice.chmod(0o777)
    (fleet.alice / "client-1024.key").chmod(0o666)
    (fleet.alice / "client-1024.pem").chmod(0o640)
    (fleet.alice / ".bfprov").chmod(0o755)
    reasons = fleet.plan()["changes"][0]["reasons"]
    assert any("account directory mode 0777 is too open" in r for r in reasons)
    assert any("client-1024.key mode 0666" in r for r in reasons)
    assert any("client-1024.pem mode 0640" in r for r in reasons)
    assert any(".bfprov directory mode 0755" in r for r in reasons)
    assert fleet.apply()[0] == 0
    assert stat.S_IMODE(fleet.alice.stat().st_mode) == 0o700
    assert stat.S_IMODE((fleet.alice / "client-1024.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((fleet.alice / "client-1024.pem").stat().st_mode) == 0o600
    assert fleet.plan()["changes"] == []


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i: read-only even for root (permission bits do not stop root)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    flag = "+i" if on else "-i"
    return subprocess.run([chattr, flag, str(path)], capture_output=True).returncode == 0


def test_a_read_only_output_directory_gives_a_clear_error(fleet: Fleet) -> None:
    fleet.out.mkdir()
    if not _immutable(fleet.out, True):
        pytest.skip("cannot make a directory read-only here (no chattr)")
    try:
        code, _, err = fleet.apply()
    finally:
        _immutable(fleet.out, False)
    assert code == 1
    assert "Traceback" not in err
    assert str(fleet.out) in err and "Operation not permitted" in err
    assert list(fleet.out.iterdir()) == []


def test_a_read_only_account_directory_leaves_no_temporary_file(fleet: Fleet) -> None:
    assert fleet.apply()[0] == 0
    (fleet.alice / "client-1024.pem").unlink()
    if not _immutable(fleet.alice, True):
        pytest.skip("cannot make a directory read-only here (no chattr)")
    try:
        code, _, err = fleet.apply()
    finally:
        _immutable(fleet.alice, False)
    assert code == 1 and "Traceback" not in err and "cannot write" in err
    assert not list(fleet.alice.glob(".*.tmp"))
    assert fleet.apply()[0] == 0  # once writable again, it converges
    assert fleet.plan()["changes"] == []
