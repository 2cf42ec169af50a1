"""`bfprov status`: states, JSON, Prometheus text, last login checks; real files, real logins."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bfprov import crypto
from bfprov.crypto import CertFacts
from bfprov.desired.models import Subject
from bfprov.sandbox import Emulator
from bfprov.views.prometheus import prometheus_text
from bfprov.views.status import State, StatusRow, last_check
from tests.support.fleet import CliFleet

PASSWORD = "pa&ss=wo%rd+ é"
APP_KEY = "status-app-key"

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  password: {env: BF_PASSWORD}
  outputs: [key, crt, pem, cnf]
  validity: {days: 10, renew_before: 2d}
accounts:
  - name: alice
    username: alice
    jurisdiction: it
    subject: {common_name: alice bot}
  - name: bob
    username: bob
    jurisdiction: se
    subject: {common_name: bob bot}
"""

METRICS = (
    "bfprov_certificate_expiry_timestamp_seconds",
    "bfprov_renewal_due",
    "bfprov_renewal_timestamp_seconds",
    "bfprov_pending_upload",
    "bfprov_account_state",
    "bfprov_last_login_check_timestamp_seconds",
    "bfprov_last_login_success",
    "bfprov_last_login_success_timestamp_seconds",
    "bfprov_accounts",
)
STATES = ("ok", "renewal-due", "expired", "pending-upload", "missing", "orphan")


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and directory under root: content digest, mode, mtime (links not followed)."""
    result: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = "dir"
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result[str(path.relative_to(root))] = (digest, st.st_mode, st.st_mtime_ns)
    return result


class Fleet(CliFleet):
    """A two-account profile in tmp_path; `status` asserts it wrote nothing."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, PROFILE, profile_path="profiles/fleet.yaml")

    def apply(self, *args: str) -> None:
        code, _, err = self.run("apply", "--yes", *args)
        assert code == 0, err

    def status(self, *args: str) -> tuple[int, str, str]:
        before = tree(self.root)
        result = self.run("status", *args)
        assert tree(self.root) == before, "status must not write anything"
        return result

    def rows(self) -> dict[str, dict[str, Any]]:
        code, out, err = self.status("--json")
        assert code == 0, err
        return {row["account"]: row for row in json.loads(out)}

    def metrics(self) -> Exposition:
        code, out, err = self.status("--prometheus")
        assert code == 0, err
        return parse_exposition(out)

    def crt(self, name: str, staged: bool = False) -> CertFacts:
        sub = "staged/" if staged else ""
        return crypto.inspect_certificate((self.out / name / f"{sub}client-2048.crt").read_bytes())

    def backdate(self, name: str, *, days: int, age: timedelta) -> CertFacts:
        """Replace the live certificate by one for the same key and subject, issued `age` ago."""
        d = self.out / name
        key = crypto.load_private_key((d / "client-2048.key").read_bytes())
        subject = Subject(**dict(self.crt(name).subject))
        pem = crypto.self_signed_certificate(key, subject, days, datetime.now(UTC) - age)
        (d / "client-2048.crt").write_bytes(pem)
        return crypto.inspect_certificate(pem)


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES", "BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return Fleet(tmp_path, capsys)


# --- a small parser of the Prometheus text exposition format ------------------------------

Labels = dict[str, str]


class Exposition:
    def __init__(self) -> None:
        self.help: dict[str, str] = {}
        self.type: dict[str, str] = {}
        self.samples: list[tuple[str, Labels, float]] = []

    def values(self, name: str, **match: str) -> dict[str, float]:
        """Values of `name` by account, for samples whose labels include `match`."""
        return {
            labels.get("account", ""): value
            for n, labels, value in self.samples
            if n == name and all(labels.get(k) == v for k, v in match.items())
        }


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m[1]], text)


def _parse_labels(text: str) -> Labels:
    labels: Labels = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name), name
        assert text[eq + 1] == '"'
        j, value = eq + 2, []
        while text[j] != '"':
            if text[j] == "\\":
                value.append(_ESCAPES[text[j + 1]])  # any other escape is malformed
                j += 2
            else:
                assert text[j] != "\n"
                value.append(text[j])
                j += 1
        labels[name] = "".join(value)
        i = j + 1
        if i < len(text):
            assert text[i] == ",", text
            i += 1
    return labels


def parse_exposition(text: str) -> Exposition:
    """Parse the format strictly: HELP and TYPE before a metric's samples, once each."""
    assert text.endswith("\n") and "\n\n" not in text
    result = Exposition()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in result.help, f"second HELP for {name}"
            result.help[name] = _unescape(help_text)
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name in result.help and name not in result.type
            result.type[name] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m["name"] in result.type, f"{m['name']} sampled before its TYPE"
            labels = _parse_labels(m["labels"]) if m["labels"] else {}
            result.samples.append((m["name"], labels, float(m["value"])))
    return result


# --- states --------------------------------------------------------------------------------


def test_accounts_with_nothing_applied_are_missing(fleet: Fleet) -> None:
    rows = fleet.rows()
    assert list(rows) == ["alice", "bob"]
    assert rows["alice"] == {
        "account": "alice", "jurisdiction": "it", "state": "missing", "fingerprint": None,
        "not_after": None, "days_left": None, "renew_at": None, "staged_fingerprint": None,
        "last_check": None, "last_login_success": None, "staged_since": None, "published": {},
    }  # fmt: skip
    code, out, err = fleet.status()
    assert code == 0  # status reports; it is not a check
    assert out.count("missing") == 2 and "never" in out
    assert "2 accounts: 2 missing" in err
    assert not fleet.out.exists()


def test_a_fresh_fleet_is_ok_and_an_unnamed_directory_is_an_orphan(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    (fleet.out / "zed").mkdir()
    (fleet.out / "zed" / "client-2048.crt").write_text("left over")
    rows = fleet.rows()
    assert list(rows) == ["alice", "bob", "zed"]
    cf = fleet.crt("alice")
    alice = rows["alice"]
    assert alice["state"] == "ok" and alice["jurisdiction"] == "it"
    assert alice["fingerprint"] == cf.fingerprint_sha256 and len(alice["fingerprint"]) == 64
    assert datetime.fromisoformat(alice["not_after"]) == cf.not_after
    assert 9.9 <= alice["days_left"] <= 10.0 and round(alice["days_left"], 1) == alice["days_left"]
    assert datetime.fromisoformat(alice["renew_at"]) == cf.not_after - timedelta(days=2)
    assert alice["staged_fingerprint"] is None and alice["last_check"] is None
    assert rows["bob"]["jurisdiction"] == "se"
    assert rows["zed"] == {
        "account": "zed", "jurisdiction": None, "state": "orphan", "fingerprint": None,
        "not_after": None, "days_left": None, "renew_at": None, "staged_fingerprint": None,
        "last_check": None, "last_login_success": None, "staged_since": None, "published": {},
    }  # fmt: skip

    code, out, err = fleet.status()
    assert code == 0
    for column in ("account", "jurisdiction", "state", "not after", "days left", "fingerprint"):
        assert column in out
    alice_line = next(line for line in out.splitlines() if "alice" in line)
    assert cf.fingerprint_sha256[:16] in alice_line
    assert cf.fingerprint_sha256[:17] not in alice_line
    assert f"{cf.not_after:%Y-%m-%d}" in alice_line
    assert " ok " in alice_line and "never" in alice_line
    assert "orphan" in next(line for line in out.splitlines() if "zed" in line)
    assert "3 accounts: 2 ok, 1 orphan" in err
    assert PASSWORD not in out + err and APP_KEY not in out + err


def test_a_staged_rotation_is_pending_upload(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    live = fleet.crt("alice")
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 2"))
    fleet.apply("--no-verify")
    staged = fleet.crt("alice", staged=True)
    rows = fleet.rows()
    assert rows["alice"]["state"] == "pending-upload"
    assert rows["alice"]["fingerprint"] == live.fingerprint_sha256  # the live pair is untouched
    assert rows["alice"]["staged_fingerprint"] == staged.fingerprint_sha256
    assert rows["bob"]["state"] == "ok" and rows["bob"]["staged_fingerprint"] is None
    metrics = fleet.metrics()
    assert metrics.values("bfprov_pending_upload") == {"alice": 1, "bob": 0}
    assert metrics.values("bfprov_renewal_due") == {"alice": 0, "bob": 0}
    assert "2 accounts: 1 ok, 1 pending-upload" in fleet.status()[2]


def test_inside_the_renewal_window_is_renewal_due(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    cf = fleet.backdate("alice", days=10, age=timedelta(days=6))  # 4 days left
    rows = fleet.rows()
    assert rows["alice"]["state"] == "ok"  # renew_before 2d: not yet (the pem is stale: update)
    assert 3.9 <= rows["alice"]["days_left"] <= 4.0
    fleet.profile.write_text(PROFILE.replace("renew_before: 2d", "renew_before: 5d"))
    rows = fleet.rows()
    assert rows["alice"]["state"] == "renewal-due"
    renew_at = datetime.fromisoformat(rows["alice"]["renew_at"])
    assert renew_at == cf.not_after - timedelta(days=5) and renew_at < datetime.now(UTC)
    assert rows["bob"]["state"] == "ok"
    metrics = fleet.metrics()
    assert metrics.values("bfprov_renewal_due") == {"alice": 1, "bob": 0}
    assert metrics.values("bfprov_renewal_timestamp_seconds")["alice"] == renew_at.timestamp()
    _, out, err = fleet.status()
    assert "renewal-due" in out and "2 accounts: 1 ok, 1 renewal-due" in err


def test_a_certificate_past_its_not_after_is_expired(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    cf = fleet.backdate("alice", days=1, age=timedelta(days=5))
    rows = fleet.rows()
    alice = rows["alice"]
    assert alice["state"] == "expired"
    assert alice["fingerprint"] == cf.fingerprint_sha256
    assert datetime.fromisoformat(alice["not_after"]) == cf.not_after
    assert -4.1 <= alice["days_left"] <= -3.9
    metrics = fleet.metrics()
    assert metrics.values("bfprov_renewal_due") == {"alice": 1, "bob": 0}
    assert metrics.values("bfprov_certificate_expiry_timestamp_seconds")["alice"] == (
        cf.not_after.timestamp()
    )
    assert "2 accounts: 1 ok, 1 expired" in fleet.status()[2]


def test_a_pair_that_does_not_match_or_lacks_a_key_is_missing(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    bob = fleet.crt("bob")
    (fleet.out / "alice" / "client-2048.crt").write_bytes(
        (fleet.out / "bob" / "client-2048.crt").read_bytes()
    )
    (fleet.out / "bob" / "client-2048.key").unlink()
    rows = fleet.rows()
    assert rows["alice"]["state"] == "missing"
    # What is on disk is still reported: it may be what Betfair holds.
    assert rows["alice"]["fingerprint"] == bob.fingerprint_sha256
    assert rows["bob"]["state"] == "missing"


# --- Prometheus --------------------------------------------------------------------------


def test_prometheus_declares_every_metric_and_one_hot_states(fleet: Fleet) -> None:
    fleet.apply("--no-verify")
    cf = fleet.backdate("alice", days=1, age=timedelta(days=5))
    (fleet.out / "zed").mkdir()
    metrics = fleet.metrics()
    for name in METRICS:
        assert metrics.help.get(name), f"no HELP for {name}"
        assert metrics.type[name] == "gauge"
    assert metrics.values("bfprov_accounts") == {"": 3}
    assert [labels for n, labels, _ in metrics.samples if n == "bfprov_accounts"] == [{}]
    for account, jurisdiction, state in (("alice", "it", "expired"), ("bob", "se", "ok"),
                                         ("zed", "", "orphan")):  # fmt: skip
        samples = {
            labels["state"]: value
            for n, labels, value in metrics.samples
            if n == "bfprov_account_state" and labels["account"] == account
        }
        assert samples == {s: (1 if s == state else 0) for s in STATES}
        for _name, labels, _value in metrics.samples:
            if labels.get("account") == account:
                assert labels["jurisdiction"] == jurisdiction
    expiry = metrics.values("bfprov_certificate_expiry_timestamp_seconds")
    assert expiry == {
        "alice": cf.not_after.timestamp(),
        "bob": fleet.crt("bob").not_after.timestamp(),
    }
    assert set(metrics.values("bfprov_renewal_timestamp_seconds")) == {"alice", "bob"}
    assert metrics.values("bfprov_pending_upload") == {"alice": 0, "bob": 0, "zed": 0}
    for name in METRICS[5:8]:  # never verified: declared, no samples
        assert metrics.values(name) == {}


def test_label_values_and_help_are_escaped() -> None:
    odd = 'it "x"\\\nnext'
    rows = [StatusRow("alice", odd, State.MISSING)]
    text = prometheus_text(rows)
    assert '\\"x\\"\\\\\\nnext"' in text
    parsed = parse_exposition(text)
    assert {labels["jurisdiction"] for _, labels, _ in parsed.samples if labels} == {odd}
    assert parsed.values("bfprov_account_state", state="missing") == {"alice": 1}
    assert parsed.values("bfprov_certificate_expiry_timestamp_seconds") == {}


# --- last login checks -------------------------------------------------------------------


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("sandbox")) as emu:
        emu.add_account("alice", PASSWORD, APP_KEY)
        emu.add_account("bob", PASSWORD, APP_KEY)
        yield emu


def _at(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["last_check"]["at"])


def test_last_login_checks_come_from_verify_and_go_stale_with_the_certificate(
    fleet: Fleet, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
    monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))

    def upload(name: str, staged: bool = False) -> None:
        sub = "staged/" if staged else ""
        emulator.upload(name, (fleet.out / name / f"{sub}client-2048.crt").read_bytes())

    fleet.apply("--no-verify")
    assert fleet.run("verify")[0] == 1  # both await their upload
    rows = fleet.rows()
    for name in ("alice", "bob"):
        check = rows[name]["last_check"]
        assert check["loginStatus"] == "CERT_AUTH_REQUIRED" and check["current"] is True
        assert check["fingerprint"] == rows[name]["fingerprint"] and check["pair"] == "live"
        assert rows[name]["last_login_success"] is None

    upload("alice")
    start = datetime.now(UTC).replace(microsecond=0)
    assert fleet.run("verify")[0] == 1  # bob still awaits his upload
    rows = fleet.rows()
    alice, bob = rows["alice"], rows["bob"]
    assert alice["last_check"]["loginStatus"] == "SUCCESS" and alice["last_check"]["error"] is None
    assert start <= _at(alice) <= datetime.now(UTC)
    assert alice["last_login_success"] == alice["last_check"]["at"]
    assert bob["last_check"]["loginStatus"] == "CERT_AUTH_REQUIRED"
    assert bob["last_login_success"] is None

    metrics = fleet.metrics()
    assert metrics.values("bfprov_last_login_success") == {"alice": 1, "bob": 0}
    assert metrics.values("bfprov_last_login_check_timestamp_seconds") == {
        "alice": _at(alice).timestamp(), "bob": _at(bob).timestamp(),
    }  # fmt: skip
    assert metrics.values("bfprov_last_login_success_timestamp_seconds") == {
        "alice": _at(alice).timestamp()
    }
    assert metrics.values("bfprov_last_login_check_current") == {"alice": 1, "bob": 1}

    code, out, _ = fleet.status()
    alice_line = next(line for line in out.splitlines() if "alice" in line)
    assert f"SUCCESS {_at(alice):%Y-%m-%d %H:%M}" in alice_line
    assert "stale" not in out and "never" not in out

    # A new certificate goes live without a login check: the last one is stale.
    old = alice["fingerprint"]
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 2"))
    fleet.apply("--no-verify")
    assert fleet.rows()["alice"]["last_check"]["current"] is True  # the live pair is unchanged
    assert fleet.run("promote", "alice", "--no-verify")[0] == 0
    alice = fleet.rows()["alice"]
    assert alice["state"] == "ok" and alice["fingerprint"] != old
    assert alice["last_check"]["fingerprint"] == old and alice["last_check"]["current"] is False
    metrics = fleet.metrics()
    assert metrics.values("bfprov_last_login_check_current")["alice"] == 0
    assert metrics.values("bfprov_last_login_success")["alice"] == 1
    code, out, _ = fleet.status()
    assert code == 0
    assert "stale" in next(line for line in out.splitlines() if "alice" in line)

    # An apply that tries only a staged pair (not uploaded) records only that check ...
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 3"))
    fleet.apply("--no-verify")
    fleet.apply()
    alice = fleet.rows()["alice"]
    assert alice["state"] == "pending-upload"
    check = alice["last_check"]  # ... which says nothing about the live certificate
    assert check is None or (check["pair"], check["current"]) == ("live", False)
    assert alice["last_login_success"] is not None
    _, out, _ = fleet.status()
    alice_line = next(line for line in out.splitlines() if "alice" in line)
    assert "SUCCESS" in alice_line and "never" not in alice_line
    # ... until that pair goes live: then it is the check of the live certificate.
    staged = alice["staged_fingerprint"]
    assert fleet.run("promote", "alice", "--no-verify")[0] == 0
    check = fleet.rows()["alice"]["last_check"]
    assert (check["pair"], check["fingerprint"], check["current"]) == ("staged", staged, True)
    assert check["loginStatus"] == "CERT_AUTH_REQUIRED"
    assert fleet.metrics().values("bfprov_last_login_success")["alice"] == 0


def test_a_promotion_after_a_staged_login_counts_for_the_new_live_pair(
    fleet: Fleet, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
    monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
    fleet.apply("--no-verify")
    fleet.profile.write_text(PROFILE.replace("bob bot", "bob bot 2"))
    fleet.apply("--no-verify")
    emulator.upload("bob", (fleet.out / "bob" / "staged" / "client-2048.crt").read_bytes())
    code, _, err = fleet.run("promote", "bob")
    assert code == 0, err
    bob = fleet.rows()["bob"]
    assert bob["state"] == "ok"
    check = bob["last_check"]
    assert check["pair"] == "staged" and check["loginStatus"] == "SUCCESS"
    assert check["fingerprint"] == bob["fingerprint"] and check["current"] is True


def test_malformed_or_partial_records_are_read_safely() -> None:
    assert last_check(None, "f") is None
    assert last_check({"at": "garbage", "live": "x"}, "f") is None
    naive = last_check({"at": "2026-01-02T03:04:05", "live": {"loginStatus": 7}}, "f")
    assert naive is not None and naive.at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert naive.login_status is None and naive.fingerprint is None and naive.current is False
    entry = {
        "at": "2026-01-02T03:04:05+00:00",
        "live": {"fingerprint": "old", "loginStatus": "CERT_AUTH_REQUIRED", "error": None},
        "staged": {"fingerprint": "new", "loginStatus": "SUCCESS", "error": None},
    }
    check = last_check(entry, "new")
    assert check is not None and (check.pair, check.current, check.success) == (
        "staged",
        True,
        True,
    )
    check = last_check(entry, "old")
    assert check is not None and (check.pair, check.current) == ("live", True)
    check = last_check(entry, "other")
    assert check is not None and (check.pair, check.current) == ("live", False)
    assert last_check({"at": entry["at"], "staged": entry["staged"]}, "old") is None


# --- errors --------------------------------------------------------------------------------


def test_json_and_prometheus_together_is_a_usage_error(fleet: Fleet) -> None:
    code, out, err = fleet.status("--json", "--prometheus")
    assert code == 1 and out == ""
    assert "--json and --prometheus" in err and len(err.strip().splitlines()) == 1


def test_bad_profiles_exit_1(fleet: Fleet) -> None:
    fleet.profile.write_text(PROFILE.replace("jurisdiction: se", "jurisdiction: dk"))
    code, out, err = fleet.status()
    assert code == 1 and out == ""
    assert "dk" in err and "Traceback" not in err
