"""Selections (`--account`): nothing of the accounts left out is touched, locked or created."""

from __future__ import annotations

from pathlib import Path

import pytest

from bfprov.cli import main

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
