"""A changed `validity.days` gives no new key: `plan` says it applies at the next
rotation (or with --replace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bfprov.cli import main

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  password: {{env: BF_PASSWORD}}
  outputs: [key, crt]
  validity: {{days: {days}}}
accounts:
  - name: alice
    username: alice
    subject: {{common_name: alice}}
"""


def test_a_changed_validity_says_when_it_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.format(days=365))
    args = ["--profiles", str(profile)]
    assert main(["apply", "--yes", "--no-verify", *args]) == 0
    capsys.readouterr()
    assert main(["plan", *args]) == 0
    assert "Note" not in capsys.readouterr().out  # nothing changed: nothing to say

    profile.write_text(PROFILE.format(days=200))
    assert main(["plan", "--detailed-exitcode", *args]) == 0  # still no change to make
    out = capsys.readouterr().out
    assert "No changes." in out
    assert "alice: validity.days is 200, its live certificate was made for 365" in out
    assert "applies at the next rotation" in out and "--replace alice" in out

    assert main(["plan", "--replace", "alice", *args]) == 0  # a new pair: nothing to note
    assert "validity.days" not in capsys.readouterr().out
