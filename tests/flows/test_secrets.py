"""No password, app key, p12 password or private key in any output, plan file or record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from pydantic import SecretStr

from bfprov.cli import main
from bfprov.sandbox import Emulator
from bfprov.verify.client import Credentials

PASSWORD = "Zq9!pass&word=%+ é中-ALICE"
BOB_PASSWORD = "Yb7#bob/secret?x-BOB"
APP_KEY = "AppKey-7f3c9e1d-SECRET"
P12_PASSWORD = "P12-pass-4b2a-SECRET"
SECRETS = (PASSWORD, BOB_PASSWORD, APP_KEY, P12_PASSWORD)

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  key: {size: 1024}
  outputs: [key, crt, pem, p12, csr, cnf]
  p12: {password: {env: BF_P12_PASSWORD}}
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD_ALICE}
    subject: {common_name: alice}
  - name: bob
    username: bob
    password: {file: bob.secret}
    subject: {common_name: bob}
"""


def forms(secret: str) -> set[str]:
    """The secret as it could leak: raw, and URL-encoded both ways."""
    return {secret, quote(secret, safe=""), quote_plus(secret)}


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("sandbox"), lock_after=2) as emu:
        yield emu


def test_the_whole_lifecycle_leaks_no_secret(
    tmp_path: Path,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_P12_PASSWORD", P12_PASSWORD)
    monkeypatch.setenv("BF_PASSWORD_ALICE", PASSWORD)
    monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
    monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    (tmp_path / "bob.secret").write_text(BOB_PASSWORD + "\n")
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.add_account("bob", "not-what-bob-has", APP_KEY)  # bob's logins fail
    out = tmp_path / "certs"
    transcript: list[str] = []

    def run(*args: str) -> int:
        code = main([*args, "--profiles", str(profile)])
        captured = capsys.readouterr()
        transcript.extend([captured.out, captured.err])
        return code

    assert run("validate") == 0
    assert run("plan", "--out", str(tmp_path / "plan.json")) == 0
    assert run("apply", str(tmp_path / "plan.json"), "--yes") == 0
    emulator.upload("alice", (out / "alice" / "client-1024.crt").read_bytes())
    emulator.upload("bob", (out / "bob" / "client-1024.crt").read_bytes())
    assert run("verify") == 1  # bob: INVALID_USERNAME_OR_PASSWORD
    assert run("verify", "--json") == 1  # bob: ACCOUNT_NOW_LOCKED
    assert run("verify", "--account", "bob") == 1  # ACCOUNT_ALREADY_LOCKED
    assert run("status") == 0
    assert run("status", "--json") == 0
    assert run("status", "--prometheus") == 0
    profile.write_text(PROFILE.replace("common_name: alice}", "common_name: alice 2}"))
    assert run("plan", "--json", "--out", str(tmp_path / "plan2.json")) == 0
    assert run("apply", "--yes") == 0  # stages alice; bob stays as he is
    assert run("promote", "alice") == 1  # refused: not uploaded
    emulator.upload("alice", (out / "alice" / "staged" / "client-1024.crt").read_bytes())
    assert run("promote", "alice") == 0
    assert run("rollback", "alice", "--yes") == 0
    monkeypatch.delenv("BF_P12_PASSWORD")  # an error path: a missing secret
    (out / "alice" / "client-1024.p12").unlink()
    assert run("apply", "--yes") == 1
    monkeypatch.setenv("BF_PASSWORD_ALICE", "wrong password " + APP_KEY[:3])
    assert run("verify", "--account", "alice") == 1

    seen = "\n".join(transcript)
    assert "INVALID_USERNAME_OR_PASSWORD" in seen and "ACCOUNT_NOW_LOCKED" in seen
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in seen, f"a secret reached the terminal ({form!r})"
    assert "PRIVATE KEY" not in seen

    # Plan files and bfprov's records: no secret, no key material.
    written = [tmp_path / "plan.json", tmp_path / "plan2.json"]
    written += list(out.rglob(".bfprov/*"))
    assert len(written) >= 4
    for path in written:
        text = path.read_text()
        for secret in SECRETS:
            for form in forms(secret):
                assert form not in text, f"{path} holds a secret"
        assert "PRIVATE KEY" not in text, f"{path} holds key material"
    # The emulator's request log records no password either.
    assert not any(secret in repr(emulator.events) for secret in (PASSWORD, BOB_PASSWORD))


def test_reprs_hide_secrets() -> None:
    creds = Credentials("alice", SecretStr(PASSWORD), SecretStr(APP_KEY))
    for text in (repr(creds), str(creds)):
        assert PASSWORD not in text and APP_KEY not in text
