"""A warning when key material would land in a git work tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bfprov.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

PROFILE = """\
version: 1
output_dir: certs
defaults: {app_key: {env: A}}
accounts:
  - {name: alice, username: alice, password: {env: P}, subject: {common_name: alice}}
"""


def _repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    return profile


def _warning(profile: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["plan", "--profiles", str(profile)]) == 0
    return capsys.readouterr().err


def test_an_unignored_output_dir_in_a_work_tree_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _repo(tmp_path)
    err = _warning(profile, capsys)
    assert "lies in the git work tree" in err and "not ignored" in err


@pytest.mark.parametrize(
    ("where", "rule"),
    [(".gitignore", "certs/\n"), (".gitignore", "*.key\n"), ("certs/.gitignore", "*\n")],
)
def test_an_ignored_output_dir_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, rule: str
) -> None:
    profile = _repo(tmp_path)
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text(rule)
    assert "git work tree" not in _warning(profile, capsys)


def test_outside_a_work_tree_there_is_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    assert "git work tree" not in _warning(profile, capsys)
