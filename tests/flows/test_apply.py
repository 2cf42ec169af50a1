"""plan and apply end to end, through the CLI, on real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from bfprov import crypto
from bfprov.cli import main
from bfprov.desired.models import Subject
from tests.support.fleet import CliFleet

P12_PASSWORD = "p12-Pa55&word=%+ é"
APP_KEY = "app-KEY-0123456789"

PROFILE = """\
version: 1
output_dir: certs
defaults:
  jurisdiction: com
  app_key: {env: BF_APP_KEY}
  key: {size: 2048}
  subject:
    country: GB
    state: London
    locality: London
    organization: Example Trading Ltd
    organizational_unit: Security Team
  validity: {days: 365, renew_before: 30d}
  outputs: [key, crt, pem, p12, csr, cnf]
  p12: {profile: modern, password: {env: BF_P12_PASSWORD}}
accounts:
  - name: alice
    username: alice@example.com
    password: {env: BF_PASSWORD_ALICE}
    jurisdiction: it
    subject: {common_name: alice bot}
"""


class Fleet(CliFleet):
    """A profile in tmp_path/profiles and helpers to run bfprov against it."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, PROFILE, profile_path="profiles/fleet.yaml")

    def apply(self, *args: str) -> tuple[int, str, str]:
        return self.run("apply", "--yes", "--no-verify", *args)

    def plan_json(self) -> dict[str, Any]:
        code, out, err = self.run("plan", "--json")
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        return result

    def account(self, name: str = "alice") -> Path:
        return self.out / name

    def snapshot(self) -> dict[str, tuple[str, int, int]]:
        """Every file under the output dir: digest, mode, mtime."""
        result = {}
        for path in sorted(self.out.rglob("*")):
            if path.is_file():
                st = path.stat()
                result[str(path.relative_to(self.out))] = (
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                    stat.S_IMODE(st.st_mode),
                    st.st_mtime_ns,
                )
        return result


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_P12_PASSWORD", P12_PASSWORD)
    monkeypatch.setenv("BF_PASSWORD_ALICE", "alice-secret")
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("BFPROV_PROFILES", raising=False)
    return Fleet(tmp_path, capsys)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_apply_writes_betfair_ready_files(fleet: Fleet) -> None:
    assert fleet.plan_json()["changes"][0]["action"] == "create"
    code, out, err = fleet.apply()
    assert code == 0, err
    d = fleet.account()
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == [
        "client-2048.crt",
        "client-2048.csr",
        "client-2048.key",
        "client-2048.p12",
        "client-2048.pem",
        "openssl.cnf",
    ]
    assert mode(d) == 0o700
    assert mode(d / "client-2048.key") == 0o600
    assert mode(d / "client-2048.pem") == 0o600
    assert mode(d / "client-2048.p12") == 0o600
    assert mode(d / "client-2048.crt") == 0o644
    assert mode(d / "client-2048.csr") == 0o644
    assert mode(d / "openssl.cnf") == 0o644

    key_pem, crt_pem = (d / "client-2048.key").read_bytes(), (d / "client-2048.crt").read_bytes()
    cert = x509.load_pem_x509_certificate(crt_pem)
    facts = crypto.inspect_certificate(crt_pem)
    assert facts.extension_problems == ()
    assert facts.spki_sha256 == crypto.inspect_key(key_pem).spki_sha256
    assert dict(facts.subject)["common_name"] == "alice bot"
    assert dict(facts.subject)["organizational_unit"] == "Security Team"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365
    assert (d / "client-2048.pem").read_bytes() == crt_pem + key_pem
    p12 = pkcs12.load_pkcs12((d / "client-2048.p12").read_bytes(), P12_PASSWORD.encode())
    assert p12.cert is not None and p12.cert.certificate == cert
    csr = crypto.inspect_csr((d / "client-2048.csr").read_bytes())
    assert csr.spki_sha256 == facts.spki_sha256 and csr.signature_valid

    # The upload instructions name the .crt and the jurisdiction's page.
    assert str(d / "client-2048.crt") in out
    assert "https://myaccount.betfair.it/accountdetails/mysecurity?showAPI=1" in out

    # openssl accepts what Betfair's guide would have produced.
    for args in (
        ["x509", "-in", "client-2048.crt", "-noout", "-text"],
        ["rsa", "-in", "client-2048.key", "-check", "-noout"],
        ["req", "-in", "client-2048.csr", "-verify", "-noout"],
        ["x509", "-in", "client-2048.pem", "-noout"],
        ["pkey", "-in", "client-2048.pem", "-noout"],
    ):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def test_a_non_ascii_p12_password_is_warned_about_without_showing_it(fleet: Fleet) -> None:
    code, out, err = fleet.apply()
    assert code == 0
    assert "alice: p12.password has non-ASCII characters" in err
    assert P12_PASSWORD not in out + err


def test_second_plan_is_empty_and_second_apply_changes_no_byte(fleet: Fleet) -> None:
    assert fleet.apply()[0] == 0
    before = fleet.snapshot()
    plan = fleet.plan_json()
    assert plan["changes"] == []
    assert plan["summary"]["noop"] == 1
    code, out, _ = fleet.apply()
    assert code == 0
    assert "No changes" in out
    assert fleet.snapshot() == before
    assert fleet.run("plan", "--detailed-exitcode")[0] == 0


def test_detailed_exitcode(fleet: Fleet) -> None:
    assert fleet.run("plan", "--detailed-exitcode")[0] == 2
    assert fleet.run("plan", "--detailed-exitcode", "--no-such-flag")[0] == 1


def test_missing_p12_is_an_update_without_upload(fleet: Fleet) -> None:
    fleet.apply()
    crt = fleet.account() / "client-2048.crt"
    crt_before = crt.read_bytes()
    (fleet.account() / "client-2048.p12").unlink()
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "update"
    assert change["requires_upload"] is False
    assert "client-2048.p12 is missing" in change["reasons"]
    assert fleet.apply()[0] == 0
    assert (fleet.account() / "client-2048.p12").exists()
    assert crt.read_bytes() == crt_before
    assert fleet.plan_json()["changes"] == []


def test_key_mode_0644_is_repaired(fleet: Fleet) -> None:
    fleet.apply()
    key = fleet.account() / "client-2048.key"
    key.chmod(0o644)
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "update"
    assert any("0644 is too open" in r for r in change["reasons"])
    fleet.apply()
    assert mode(key) == 0o600
    assert fleet.plan_json()["changes"] == []


def test_changed_subject_is_a_staged_rotation(fleet: Fleet) -> None:
    fleet.apply()
    live = {p: (fleet.account() / p).read_bytes() for p in ("client-2048.key", "client-2048.crt")}
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 2"))
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "rotate"
    assert change["requires_upload"] is True
    assert any("subject differs" in r for r in change["reasons"])
    code, out, _ = fleet.apply()
    assert code == 0
    staged = fleet.account() / "staged"
    assert (staged / "client-2048.crt").exists() and (staged / "client-2048.key").exists()
    assert mode(staged) == 0o700 and mode(staged / "client-2048.key") == 0o600
    for name, data in live.items():
        assert (fleet.account() / name).read_bytes() == data, "live pair must stay untouched"
    assert str(staged / "client-2048.crt") in out
    assert "https://myaccount.betfair.it/" in out
    # Until promoted, the staged pair stays in every plan.
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "promote" and change["requires_upload"] is True
    # apply --no-verify cannot know the upload happened: it leaves the live pair alone.
    fleet.apply()
    assert (fleet.account() / "client-2048.crt").read_bytes() == live["client-2048.crt"]

    code, out, err = fleet.run("promote", "alice", "--no-verify")
    assert code == 0, err
    new_crt = crypto.inspect_certificate((fleet.account() / "client-2048.crt").read_bytes())
    assert dict(new_crt.subject)["common_name"] == "alice bot 2"
    assert not staged.exists()
    archived = list((fleet.account() / "archive").iterdir())
    assert len(archived) == 1
    assert (archived[0] / "client-2048.crt").read_bytes() == live["client-2048.crt"]
    assert mode(archived[0] / "client-2048.key") == 0o600
    pem = (fleet.account() / "client-2048.pem").read_bytes()
    assert pem.startswith((fleet.account() / "client-2048.crt").read_bytes())
    assert fleet.plan_json()["changes"] == []


def test_certificate_not_matching_key_is_a_rotation(fleet: Fleet, rsa_key_2048: Any) -> None:
    fleet.apply()
    other = crypto.self_signed_certificate(
        rsa_key_2048, Subject(common_name="alice bot"), 365, datetime.now(UTC)
    )
    (fleet.account() / "client-2048.crt").write_bytes(other)
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "rotate"
    assert "live certificate does not match the key" in change["reasons"]


def test_tampering_with_any_output_is_noticed(fleet: Fleet) -> None:
    fleet.apply()
    for name in (
        "client-2048.pem",
        "client-2048.p12",
        "client-2048.csr",
        "openssl.cnf",
        "client-2048.crt",
        "client-2048.key",
    ):
        path = fleet.account() / name
        original = path.read_bytes()
        st = path.stat()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the mtime restored
        assert fleet.plan_json()["changes"], f"tampering with {name} went unnoticed"
        path.write_bytes(original)


def test_saved_plan_applies_exactly_and_stale_one_is_refused(fleet: Fleet) -> None:
    plan_file = fleet.root / "plan.json"
    code, _, err = fleet.run("plan", "--out", str(plan_file))
    assert code == 0, err
    saved = json.loads(plan_file.read_text())
    assert saved["changes"][0]["action"] == "create"
    # Something changes after the plan was made: the plan is refused, nothing written.
    fleet.account().mkdir(parents=True)
    (fleet.account() / "client-2048.key").write_text("junk")
    code, _, err = fleet.run("apply", str(plan_file), "--yes", "--no-verify")
    assert code == 1
    assert "stale" in err and "alice" in err
    assert (fleet.account() / "client-2048.key").read_text() == "junk"
    assert not (fleet.account() / "client-2048.crt").exists()
    # A fresh plan goes through.
    (fleet.account() / "client-2048.key").unlink()
    fleet.run("plan", "--out", str(plan_file))
    code, _, err = fleet.run("apply", str(plan_file), "--yes", "--no-verify")
    assert code == 0, err
    assert (fleet.account() / "client-2048.crt").exists()


def test_saved_plan_holds_no_secret(fleet: Fleet) -> None:
    plan_file = fleet.root / "plan.json"
    fleet.run("plan", "--out", str(plan_file))
    fleet.apply()
    fleet.run("plan", "--out", str(plan_file))
    text = plan_file.read_text()
    for secret in (P12_PASSWORD, APP_KEY, "alice-secret", "PRIVATE KEY"):
        assert secret not in text
    record = (fleet.account() / ".bfprov" / "record.json").read_text()
    for secret in (P12_PASSWORD, APP_KEY, "alice-secret", "PRIVATE KEY"):
        assert secret not in record


def test_apply_without_yes_off_a_terminal_is_refused(fleet: Fleet) -> None:
    code, _, err = fleet.run("apply", "--no-verify")
    assert code == 1
    assert "--yes" in err
    assert not fleet.out.exists() or not fleet.account().exists()


def test_second_apply_fails_at_once_naming_the_lock(fleet: Fleet) -> None:
    from filelock import FileLock

    fleet.out.mkdir(parents=True)
    with FileLock(str(fleet.out / ".bfprov.lock")):
        code, _, err = fleet.apply()
    assert code == 1
    assert ".bfprov.lock" in err
    assert not fleet.account().exists()


def test_missing_p12_password_fails_before_any_write(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BF_P12_PASSWORD")
    code, _, err = fleet.apply()
    assert code == 1
    assert "BF_P12_PASSWORD" in err and "alice" in err
    assert not fleet.account().exists()


def test_bad_profile_is_refused_with_file_and_line(fleet: Fleet) -> None:
    fleet.profile.write_text(PROFILE.replace("jurisdiction: it", "jurisdiction: dk"))
    code, _, err = fleet.run("plan")
    assert code == 1
    assert "fleet.yaml:" in err and "Danish" in err
    assert "Traceback" not in err
    assert not fleet.out.exists()


def test_symlinked_account_directory_is_not_followed(fleet: Fleet, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fleet.out.mkdir(parents=True)
    fleet.account().symlink_to(elsewhere)
    code, _, err = fleet.apply()
    assert code == 1
    assert "symbolic link" in err
    assert list(elsewhere.iterdir()) == []


def test_strays_are_archived(fleet: Fleet) -> None:
    fleet.apply()
    (fleet.account() / "old.crt").write_text("x")
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "update"
    assert any("old.crt" in r for r in change["reasons"])
    fleet.apply()
    assert not (fleet.account() / "old.crt").exists()
    assert list((fleet.account() / "archive").glob("*/old.crt"))


def test_validate_and_schema(fleet: Fleet) -> None:
    code, out, _ = fleet.run("validate")
    assert code == 0 and "1 account" in out
    code = main(["schema"])
    schema = json.loads(fleet.capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "accounts" in schema["properties"]


def test_init_writes_a_starter_profile_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "profiles"
    assert main(["init", "--profiles", str(target)]) == 0
    assert (target / "bfprov.yaml").exists()
    assert (tmp_path / "certs" / ".gitignore").read_text().strip().endswith("*")
    assert main(["validate", "--profiles", str(target)]) == 0
    assert main(["init", "--profiles", str(target)]) == 1  # never overwrites
    capsys.readouterr()


HAND_CNF = """\
[ req ]
prompt = no
distinguished_name = dn
utf8 = yes
string_mask = utf8only
[ dn ]
CN = alice bot
OU = Security Team
O = Example Trading Ltd
L = London
ST = London
C = GB
[ ssl_client ]
basicConstraints = CA:FALSE
nsCertType = client
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


@pytest.mark.parametrize(
    ("genrsa", "extra"),
    [
        (["-traditional"], ""),  # PKCS#1 (label "RSA PRIVATE KEY"), SKI added by OpenSSL 3
        ([], ""),  # PKCS#8 (label "PRIVATE KEY")
        ([], "subjectKeyIdentifier = none\n"),  # no key identifier at all
        ([], "authorityKeyIdentifier = keyid:always\n"),  # both key identifiers
    ],
    ids=["pkcs1", "pkcs8", "no-key-identifiers", "with-authority-key-id"],
)
def test_hand_made_certificates_are_adopted(
    fleet: Fleet, openssl: Any, genrsa: list[str], extra: str
) -> None:
    d = fleet.account()
    d.mkdir(parents=True)
    (d / "openssl.cnf").write_text(HAND_CNF + extra)
    openssl("genrsa", *genrsa, "-out", "client-2048.key", "2048", cwd=d)
    openssl("req", "-new", "-config", "openssl.cnf", "-key", "client-2048.key",
            "-out", "client-2048.csr", cwd=d)  # fmt: skip
    openssl("x509", "-req", "-days", "365", "-in", "client-2048.csr", "-signkey",
            "client-2048.key", "-out", "client-2048.crt", "-extfile", "openssl.cnf",
            "-extensions", "ssl_client", cwd=d)  # fmt: skip
    (d / "client-2048.pem").write_bytes(
        (d / "client-2048.crt").read_bytes() + (d / "client-2048.key").read_bytes()
    )
    pair = {n: (d / n).read_bytes() for n in ("client-2048.key", "client-2048.crt")}

    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "update", change
    assert change["requires_upload"] is False
    reasons = " | ".join(change["reasons"])
    assert "client-2048.p12 is missing" in reasons
    assert "openssl.cnf differs from the rendered template" in reasons
    assert "pem does not hold" not in reasons  # the hand-made pem fits
    assert "csr" not in reasons  # and so does the hand-made request
    assert "0644 is too open" in reasons  # openssl writes the pem with the umask's mode

    assert fleet.apply()[0] == 0
    for name, data in pair.items():
        assert (d / name).read_bytes() == data, f"{name} must be adopted, not replaced"
    assert fleet.plan_json()["changes"] == []


LEGACY_P12_PASSWORD = "p12-Pa55&word=%+ ascii"  # Java cannot open non-ASCII p12 passwords


def _legacy_p12(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Apply with the legacy p12 profile; the p12 written."""
    monkeypatch.setenv("BF_P12_PASSWORD", LEGACY_P12_PASSWORD)
    fleet.profile.write_text(PROFILE.replace("profile: modern", "profile: legacy"))
    code, _, err = fleet.apply()
    assert code == 0
    assert "non-ASCII" not in err
    return fleet.account() / "client-2048.p12"


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no Java keytool (.ci/run installs it)")
def test_legacy_p12_is_read_by_keytool(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    p12 = _legacy_p12(fleet, monkeypatch)
    listing = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(p12),
         "-storepass", LEGACY_P12_PASSWORD],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "PrivateKeyEntry" in listing.stdout


def test_legacy_p12_is_read_by_openssl_and_switched_back_without_upload(
    fleet: Fleet, openssl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    p12 = _legacy_p12(fleet, monkeypatch)
    info = openssl(
        "pkcs12", "-in", p12, "-info", "-noout", "-passin", f"pass:{LEGACY_P12_PASSWORD}"
    )
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr
    assert "MAC: sha1" in info.stderr
    # Switching the profile back rewrites only the p12, with no upload.
    fleet.profile.write_text(PROFILE)
    change = fleet.plan_json()["changes"][0]
    assert change["action"] == "update" and change["requires_upload"] is False
    assert any("uses the legacy profile" in r for r in change["reasons"])


def test_plan_text_reads_like_terraform(fleet: Fleet) -> None:
    code, out, _ = fleet.run("plan")
    assert code == 0
    assert "+ alice (create, upload needed)" in out
    assert "new account: nothing on disk yet" in out
    assert "Plan: 1 to create, 0 to rotate, 0 to update, 0 to promote, 0 unchanged." in out
    assert "\x1b[" not in out  # no escape codes off a terminal
    fleet.apply()
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 2"))
    code, out, _ = fleet.run("plan")
    assert "-/+ alice (rotate, upload needed)" in out
    assert "subject differs: CN 'alice bot' -> 'alice bot 2'" in out
