"""`hooks.on_failure` runs when an account's login check fails, in verify and in apply."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bfprov.cli import main
from bfprov.sandbox import Emulator

PASSWORD = "hook-password-secret"
APP_KEY = "hook-app-key-secret"

HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as fh:
    env = {k: v for k, v in os.environ.items() if k.startswith(("BFPROV_", "BF_"))}
    fh.write(json.dumps({"argv": sys.argv[2:], "env": env}) + "\\n")
"""

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  password: {{env: BF_PASSWORD}}
  outputs: [key, crt]
  hooks:
    on_failure: [{python}, {hook}, {log}, "{{account}}"]
    timeout: 30s
accounts:
  - name: alice
    username: alice
    subject: {{common_name: alice}}
"""


def test_a_failed_login_check_runs_on_failure_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hook, log = tmp_path / "hook.py", tmp_path / "hook.log"
    hook.write_text(HOOK)
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.format(python=json.dumps(sys.executable), hook=hook, log=log))
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    with Emulator(tmp_path / "sandbox") as emu:
        emu.add_account("alice", PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
        assert not log.exists()  # nothing failed yet
        assert main(["verify", "--profiles", str(profile)]) == 1  # never uploaded
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(runs) == 1
    assert runs[0]["argv"] == ["alice"]
    env = runs[0]["env"]
    assert env["BFPROV_EVENT"] == "failed" and env["BFPROV_ACCOUNT"] == "alice"
    assert env["BFPROV_CRT"].endswith("alice/client-2048.crt")
    assert "BF_PASSWORD" not in env and "BF_APP_KEY" not in env
    assert PASSWORD not in log.read_text() and APP_KEY not in log.read_text()
    capsys.readouterr()
    assert main(["history", "--json", "--profiles", str(profile)]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["event"] for e in events][-1] == "hook"
    assert "on_failure (failed)" in events[-1]["detail"]
