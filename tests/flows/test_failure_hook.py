"""`hooks.on_failure` runs when an account's login check fails, in verify and in apply.

Not for a first login of a pair that was never uploaded (CERT_AUTH_REQUIRED for a pair
that never logged in): that is an upload pending, not a failure. The hook is told the
fingerprint of the pair whose check failed (live or staged).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bfprov import crypto
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
    subject: {{common_name: alice gen {generation}}}
"""


@dataclass
class World:
    """One account, its profile, the emulator it logs in to, and the hook's log."""

    root: Path
    emulator: Emulator
    capsys: pytest.CaptureFixture[str]
    generation: int = 1

    @property
    def profile(self) -> Path:
        return self.root / "p.yaml"

    @property
    def log(self) -> Path:
        return self.root / "hook.log"

    def write_profile(self) -> None:
        hook = self.root / "hook.py"
        self.profile.write_text(
            PROFILE.format(
                python=json.dumps(sys.executable),
                hook=hook,
                log=self.log,
                generation=self.generation,
            )
        )

    def run(self, *args: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main([*args, "--profiles", str(self.profile)])
        return code, self.capsys.readouterr().err

    def crt(self, staged: bool = False) -> bytes:
        where = self.root / "certs" / "alice" / ("staged" if staged else "")
        return (where / "client-2048.crt").read_bytes()

    def fingerprint(self, staged: bool = False) -> str:
        return crypto.inspect_certificate(self.crt(staged)).fingerprint_sha256

    def runs(self) -> list[dict[str, object]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def hook_events(self) -> list[dict[str, object]]:
        self.capsys.readouterr()
        assert main(["history", "--json", "--profiles", str(self.profile)]) == 0
        events = json.loads(self.capsys.readouterr().out)
        return [e for e in events if e["event"] == "hook"]


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[World]:
    (tmp_path / "hook.py").write_text(HOOK)
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    with Emulator(tmp_path / "sandbox") as emu:
        emu.add_account("alice", PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        w = World(tmp_path, emu, capsys)
        w.write_profile()
        yield w


def test_verify_of_a_pair_never_uploaded_is_an_upload_pending_not_a_failure(
    world: World,
) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    code, _ = world.run("verify")
    assert code == 1  # the live pair does not log in yet
    code, _ = world.run("verify")  # and again: still never logged in, still pending
    assert code == 1
    assert world.runs() == []
    assert world.hook_events() == []


def test_a_failed_login_check_runs_on_failure_with_the_live_fingerprint_and_no_secret(
    world: World,
) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    world.emulator.upload("alice", world.crt())
    assert world.run("verify")[0] == 0  # it logged in once
    assert world.runs() == []
    # Another certificate is uploaded for the account: the live pair is refused now.
    world.generation = 2
    world.write_profile()
    assert world.run("apply", "--yes", "--no-verify")[0] == 0  # staged, not uploaded
    world.emulator.upload("alice", world.crt(staged=True))
    code, _ = world.run("verify")
    assert code == 1
    [run] = world.runs()
    assert run["argv"] == ["alice"]
    env = run["env"]
    assert isinstance(env, dict)
    assert env["BFPROV_EVENT"] == "failed" and env["BFPROV_ACCOUNT"] == "alice"
    assert env["BFPROV_FINGERPRINT"] == world.fingerprint()  # the live pair's, that failed
    assert env["BFPROV_CRT"].endswith("alice/client-2048.crt")
    assert "BF_PASSWORD" not in env and "BF_APP_KEY" not in env
    assert PASSWORD not in world.log.read_text() and APP_KEY not in world.log.read_text()
    [hook] = world.hook_events()
    assert "on_failure (failed)" in str(hook["detail"])
    assert hook["fingerprint"] == world.fingerprint()


def test_apply_whose_staged_check_fails_gives_on_failure_the_staged_fingerprint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    world.emulator.upload("alice", world.crt())
    world.generation = 2
    world.write_profile()
    assert world.run("apply", "--yes")[0] == 0  # the rotation is staged
    # Not uploaded yet: the staged pair's CERT_AUTH_REQUIRED is an upload pending.
    assert world.run("apply", "--yes")[0] == 0
    assert world.runs() == []
    world.emulator.upload("alice", world.crt(staged=True))
    monkeypatch.setenv("BF_PASSWORD", "a wrong password")
    code, err = world.run("apply", "--yes")
    assert code == 1 and "login check failed for alice" in err
    [run] = world.runs()
    env = run["env"]
    assert isinstance(env, dict)
    assert env["BFPROV_FINGERPRINT"] == world.fingerprint(staged=True)


def test_apply_checking_a_live_pair_never_uploaded_runs_no_on_failure(world: World) -> None:
    assert world.run("apply", "--yes", "--no-verify")[0] == 0
    # An update that needs no upload: apply checks the live pair, which never logged in.
    world.profile.write_text(world.profile.read_text().replace("[key, crt]", "[key, crt, pem]"))
    code, err = world.run("apply", "--yes")
    assert code == 0, err
    assert "upload pending for alice" in err
    assert (world.root / "certs" / "alice" / "client-2048.pem").exists()
    assert world.runs() == []
    assert world.hook_events() == []
