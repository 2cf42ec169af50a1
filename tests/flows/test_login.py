"""Login verification against the embedded emulator: real TLS with client certificates."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bfprov import crypto
from bfprov.desired.models import Jurisdiction, Subject
from bfprov.sandbox import Emulator
from bfprov.verify.catalogue import explain
from bfprov.verify.client import (
    Credentials,
    Endpoints,
    LoginClient,
    RateLimiter,
    endpoints,
)
from tests.support.fleet import CliFleet

PASSWORD = "pa&ss=wo%rd+ /?#é中"
APP_KEY = "demo-app-key-123"


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("sandbox"), lock_after=3) as emu:
        yield emu


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    d = tmp_path_factory.mktemp("pair")
    key = crypto.generate_key(2048)
    crt = crypto.self_signed_certificate(key, Subject(common_name="t"), 30, datetime.now(UTC))
    (d / "client-2048.key").write_bytes(crypto.private_key_pem(key))
    (d / "client-2048.crt").write_bytes(crt)
    return d / "client-2048.crt", d / "client-2048.key", crt


def creds(username: str = "alice", password: str = PASSWORD) -> Credentials:
    return Credentials(username, SecretStr(password), SecretStr(APP_KEY))


def client(emulator: Emulator | None = None, **kw: Any) -> LoginClient:
    kw.setdefault("backoff", 0.01)
    return LoginClient(ca_bundle=emulator.ca_path if emulator else None, **kw)


def logins(emulator: Emulator) -> list[Any]:
    return [e for e in emulator.events if e.path == "/api/certlogin"]


@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_success_and_logout_for_every_jurisdiction(
    emulator: Emulator, pair_files: tuple[Path, Path, bytes], jurisdiction: Jurisdiction
) -> None:
    crt, key, pem = pair_files
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.upload("alice", pem)
    real = endpoints(jurisdiction, None)
    assert real.login == f"https://identitysso-cert.betfair.{jurisdiction.value}/api/certlogin"
    assert real.logout == f"https://identitysso.betfair.{jurisdiction.value}/api/logout"
    urls = endpoints(jurisdiction, emulator.url)
    assert urls == Endpoints(emulator.url + "/api/certlogin", emulator.url + "/api/logout")
    outcome = client(emulator).check(crt, key, creds(), urls)
    assert outcome.status == "SUCCESS" and outcome.logged_out is True
    assert emulator.sessions() == {}  # logged out again
    login = logins(emulator)[0]
    assert login.app_key == APP_KEY
    assert login.content_type == "application/x-www-form-urlencoded"
    assert [e.path for e in emulator.events] == ["/api/certlogin", "/api/logout"]


def test_a_certificate_that_is_not_uploaded_needs_an_upload(
    emulator: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, _ = pair_files
    emulator.add_account("alice", PASSWORD, APP_KEY)
    outcome = client(emulator).check(crt, key, creds(), endpoints(Jurisdiction.IT, emulator.url))
    assert outcome.status == "CERT_AUTH_REQUIRED"
    assert outcome.attempts == 1
    meaning, remedy = explain(
        "CERT_AUTH_REQUIRED", crt=str(crt), upload_url=Jurisdiction.IT.upload_url
    )
    assert "certificate required" in meaning
    assert str(crt) in remedy
    assert "https://myaccount.betfair.it/accountdetails/mysecurity?showAPI=1" in remedy


def test_a_wrong_password_is_tried_exactly_once_then_locks(
    emulator: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair_files
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.upload("alice", pem)
    c = client(emulator)
    urls = endpoints(Jurisdiction.COM, emulator.url)
    statuses = [c.check(crt, key, creds(password="wrong"), urls) for _ in range(3)]
    assert [o.status for o in statuses] == [
        "INVALID_USERNAME_OR_PASSWORD",
        "INVALID_USERNAME_OR_PASSWORD",
        "ACCOUNT_NOW_LOCKED",
    ]
    assert all(o.attempts == 1 for o in statuses)
    assert len(logins(emulator)) == 3  # one request per check: never retried
    assert c.check(crt, key, creds(), urls).status == "ACCOUNT_ALREADY_LOCKED"


def test_after_a_ban_the_account_is_not_logged_in_again(
    tmp_path: Path, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair_files
    with Emulator(tmp_path, rate_limit=3) as emulator:
        emulator.add_account("alice", PASSWORD, APP_KEY)
        emulator.upload("alice", pem)
        c = client(emulator, limiter=RateLimiter(per_minute=6000, burst=100))
        urls = endpoints(Jurisdiction.COM, emulator.url)
        results = [c.check(crt, key, creds(), urls).status for _ in range(4)]
        assert results == ["SUCCESS"] * 3 + ["TEMPORARY_BAN_TOO_MANY_REQUESTS"]
        skipped = c.check(crt, key, creds(), urls)
        assert skipped.status is None and "banned" in (skipped.error or "")
        assert len(logins(emulator)) == 4


def test_the_rate_limiter_spaces_logins_of_one_account() -> None:
    limiter = RateLimiter(per_minute=600, burst=2)  # 10 a second after a burst of 2
    start = time.monotonic()
    for _ in range(4):
        limiter.wait("alice")
    assert time.monotonic() - start >= 0.15  # a lower bound: safe on a slow machine


def test_each_account_has_its_own_rate_limit() -> None:
    limiter = RateLimiter(per_minute=6, burst=2)  # after a burst of 2, one every 10 s
    limiter.wait("alice")
    limiter.wait("alice")  # alice's bucket is empty: her next login would wait 10 s
    start = time.monotonic()
    limiter.wait("bob")  # bob's bucket is full
    assert time.monotonic() - start < 5.0  # not the 10 s of a shared bucket


def test_untrusted_server_gets_no_request(
    emulator: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair_files
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.upload("alice", pem)
    outcome = client(None).check(crt, key, creds(), endpoints(Jurisdiction.COM, emulator.url))
    assert outcome.status is None
    assert "not trusted" in (outcome.error or "")
    assert emulator.events == []


def test_special_characters_in_the_password(
    emulator: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair_files
    for i, password in enumerate(["&", "=", "%", "+", " ", "/", "?", "#", "é中", PASSWORD]):
        name = f"user{i}"
        emulator.add_account(name, password, APP_KEY)
        emulator.upload(name, pem)
        urls = endpoints(Jurisdiction.COM, emulator.url)
        outcome = client(emulator).check(crt, key, creds(name, password), urls)
        assert outcome.status == "SUCCESS", password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_connection_refused_is_retried_a_bounded_number_of_times(
    pair_files: tuple[Path, Path, bytes],
) -> None:
    crt, key, _ = pair_files
    url = f"https://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    outcome = client(None, retries=2).check(crt, key, creds(), endpoints(Jurisdiction.COM, url))
    assert outcome.status is None and outcome.error == "connection refused"
    assert outcome.attempts == 3
    assert time.monotonic() - start < 5


class _Faulty(http.server.BaseHTTPRequestHandler):
    hits = 0
    mode = "500"

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "close":  # read the request, answer nothing, hang up
            self.close_connection = True
            return
        if self.mode == "partial":  # half an answer, then hang up
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"loginSt')
            self.close_connection = True
            return
        if self.mode == "slow":
            time.sleep(1.0)
        status = 500 if self.mode == "500" else 200
        body = b"<html>oops</html>" if self.mode in ("500", "html") else b"{}"
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the read-timeout test)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def faulty() -> Iterator[tuple[str, type[_Faulty]]]:
    handler = type("Handler", (_Faulty,), {"hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_5xx_is_retried_then_reported(
    faulty: tuple[str, type[_Faulty]], pair_files: tuple[Path, Path, bytes]
) -> None:
    url, handler = faulty
    crt, key, _ = pair_files
    outcome = client(None, retries=2).check(crt, key, creds(), endpoints(Jurisdiction.COM, url))
    assert handler.hits == 3
    assert outcome.status is None and "HTTP 500" in (outcome.error or "")


@pytest.mark.parametrize(("mode", "error"), [("html", "not JSON"), ("json", "without loginStatus")])
def test_an_answer_without_login_status_is_not_retried(
    faulty: tuple[str, type[_Faulty]], pair_files: tuple[Path, Path, bytes], mode: str, error: str
) -> None:
    url, handler = faulty
    handler.mode = mode
    crt, key, _ = pair_files
    outcome = client(None).check(crt, key, creds(), endpoints(Jurisdiction.COM, url))
    assert handler.hits == 1
    assert error in (outcome.error or "")


@pytest.mark.parametrize("mode", ["close", "partial"])
def test_a_connection_that_breaks_after_sending_is_not_retried(
    faulty: tuple[str, type[_Faulty]], pair_files: tuple[Path, Path, bytes], mode: str
) -> None:
    url, handler = faulty
    handler.mode = mode
    crt, key, _ = pair_files
    start = time.monotonic()
    outcome = client(None, retries=3).check(crt, key, creds(), endpoints(Jurisdiction.COM, url))
    assert handler.hits == 1  # the login may have counted: never sent twice
    assert outcome.status is None
    assert "not retried" in (outcome.error or "")
    assert time.monotonic() - start < 5


def test_a_read_timeout_is_not_retried(
    faulty: tuple[str, type[_Faulty]], pair_files: tuple[Path, Path, bytes]
) -> None:
    url, handler = faulty
    handler.mode = "slow"
    crt, key, _ = pair_files
    c = client(None, read_timeout=0.3)
    outcome = c.check(crt, key, creds(), endpoints(Jurisdiction.COM, url))
    assert handler.hits == 1
    assert "read timeout" in (outcome.error or "")


def test_unknown_codes_are_reported_as_they_come() -> None:
    meaning, _ = explain("SOMETHING_NEW")
    assert "SOMETHING_NEW" in meaning


# --- through the CLI ----------------------------------------------------------------------

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt, pem, cnf]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD_ALICE}
    jurisdiction: it
    subject: {common_name: alice bot}
  - name: bob
    username: bob
    password: {file: bob.secret}
    jurisdiction: se
    subject: {common_name: bob bot}
"""


class Fleet(CliFleet):
    def __init__(self, root: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, PROFILE)
        (root / "bob.secret").write_text(PASSWORD + "\n")
        self.emulator = emulator

    def upload(self, name: str, staged: bool = False) -> None:
        sub = "staged/" if staged else ""
        self.emulator.upload(name, (self.out / name / f"{sub}client-2048.crt").read_bytes())


@pytest.fixture
def fleet(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Fleet:  # fmt: skip
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD_ALICE", PASSWORD)
    monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
    monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.add_account("bob", PASSWORD, APP_KEY)
    return Fleet(tmp_path, emulator, capsys)


def test_verify_reports_each_account_and_exits_by_the_live_pairs(fleet: Fleet) -> None:
    code, out, err = fleet.run("apply", "--yes")
    assert code == 0, err  # new pairs await their upload: that is not a failure
    code, out, _ = fleet.run("verify", "--json")
    assert code == 1
    results = {r["account"]: r for r in json.loads(out)}
    assert results["alice"]["loginStatus"] == "CERT_AUTH_REQUIRED"
    assert results["alice"]["pair"] == "live"
    assert "myaccount.betfair.it" in results["alice"]["remedy"]
    assert str(fleet.out / "alice" / "client-2048.crt") in results["alice"]["remedy"]
    assert "myaccount.betfair.se" in results["bob"]["remedy"]
    fleet.upload("alice")
    fleet.upload("bob")
    code, out, _ = fleet.run("verify", "--json")
    assert code == 0
    for r in json.loads(out):
        assert r["loginStatus"] == "SUCCESS" and r["logged_out"] is True
        assert len(r["fingerprint"]) == 64
    code, out, err = fleet.run("verify")
    assert code == 0
    assert "SUCCESS" in out and "2 of 2 accounts log in" in out
    for text in (out, err):
        assert PASSWORD not in text and APP_KEY not in text


def test_rotation_is_promoted_only_after_the_upload(fleet: Fleet) -> None:
    fleet.run("apply", "--yes")
    fleet.upload("alice")
    fleet.upload("bob")
    live_crt = (fleet.out / "alice" / "client-2048.crt").read_bytes()
    fleet.profile.write_text(PROFILE.replace("alice bot", "alice bot 2"))
    code, out, err = fleet.run("apply", "--yes")
    assert code == 0, err
    assert "staged" in out
    # Before the upload: the live pair still works, the staged one is refused.
    code, out, _ = fleet.run("verify", "--json")
    results = {(r["account"], r["pair"]): r["loginStatus"] for r in json.loads(out)}
    assert results[("alice", "live")] == "SUCCESS"
    assert results[("alice", "staged")] == "CERT_AUTH_REQUIRED"
    # A second apply tries the staged pair, is refused, and changes nothing.
    code, out, err = fleet.run("apply", "--yes")
    assert code == 0, err
    assert (fleet.out / "alice" / "client-2048.crt").read_bytes() == live_crt
    assert "wait for their upload" in out
    code, _, err = fleet.run("promote", "alice")
    assert code == 1 and "did not log in" in err
    assert (fleet.out / "alice" / "client-2048.crt").read_bytes() == live_crt
    # The upload replaces the old certificate: the live pair stops working.
    fleet.upload("alice", staged=True)
    code, out, _ = fleet.run("verify", "--json")
    results = {(r["account"], r["pair"]): r["loginStatus"] for r in json.loads(out)}
    assert results[("alice", "live")] == "CERT_AUTH_REQUIRED"
    assert results[("alice", "staged")] == "SUCCESS"
    code, out, err = fleet.run("apply", "--yes")
    assert code == 0, err
    assert not (fleet.out / "alice" / "staged").exists()
    new = crypto.inspect_certificate((fleet.out / "alice" / "client-2048.crt").read_bytes())
    assert dict(new.subject)["common_name"] == "alice bot 2"
    assert fleet.run("verify")[0] == 0
    assert fleet.run("plan", "--detailed-exitcode")[0] == 0


def test_promote_logs_in_first(fleet: Fleet) -> None:
    fleet.run("apply", "--yes")
    fleet.upload("bob")
    fleet.profile.write_text(PROFILE.replace("bob bot", "bob bot 2"))
    fleet.run("apply", "--yes", "--account", "bob")
    fleet.upload("bob", staged=True)
    code, out, err = fleet.run("promote", "bob")
    assert code == 0, err
    assert "Promoted the staged pair of bob" in out
    assert fleet.run("verify", "--account", "bob")[0] == 0


def test_missing_login_secret_fails_before_any_write(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BF_PASSWORD_ALICE")
    code, _, err = fleet.run("apply", "--yes")
    assert code == 1
    assert "BF_PASSWORD_ALICE" in err
    assert not fleet.out.exists() or list(fleet.out.iterdir()) in ([], [fleet.out / ".bfprov.lock"])


def test_curl_logs_in_with_the_generated_files(fleet: Fleet) -> None:
    fleet.run("apply", "--yes", "--no-verify")
    fleet.upload("alice")
    d = fleet.out / "alice"
    result = subprocess.run(
        ["curl", "-sS", "-q", "--cacert", str(fleet.emulator.ca_path),
         "--cert", "client-2048.crt", "--key", "client-2048.key",
         f"{fleet.emulator.url}/api/certlogin", "-H", f"X-Application: {APP_KEY}",
         "--data-urlencode", "username=alice", "--data-urlencode", f"password={PASSWORD}"],
        cwd=d, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["loginStatus"] == "SUCCESS"


def test_a_1024_bit_pair_logs_in(emulator: Emulator, tmp_path: Path, rsa_key_1024: Any) -> None:
    crt = crypto.self_signed_certificate(
        rsa_key_1024, Subject(common_name="old"), 30, datetime.now(UTC)
    )
    (tmp_path / "client-1024.crt").write_bytes(crt)
    (tmp_path / "client-1024.key").write_bytes(crypto.private_key_pem(rsa_key_1024))
    emulator.add_account("old", PASSWORD, APP_KEY)
    emulator.upload("old", crt)
    outcome = client(emulator).check(
        tmp_path / "client-1024.crt", tmp_path / "client-1024.key", creds("old"),
        endpoints(Jurisdiction.COM, emulator.url), key_bits=1024,
    )  # fmt: skip
    assert outcome.status == "SUCCESS"


SEED_CODES = """
INVALID_USERNAME_OR_PASSWORD ACCOUNT_NOW_LOCKED ACCOUNT_ALREADY_LOCKED PENDING_AUTH
TELBET_TERMS_CONDITIONS_NA DUPLICATE_CARDS SECURITY_QUESTION_WRONG_3X KYC_SUSPEND SUSPENDED
CLOSED SELF_EXCLUDED INVALID_CONNECTIVITY_TO_REGULATOR_DK NOT_AUTHORIZED_BY_REGULATOR_DK
INVALID_CONNECTIVITY_TO_REGULATOR_IT NOT_AUTHORIZED_BY_REGULATOR_IT SECURITY_RESTRICTED_LOCATION
BETTING_RESTRICTED_LOCATION TRADING_MASTER TRADING_MASTER_SUSPENDED AGENT_CLIENT_MASTER
AGENT_CLIENT_MASTER_SUSPENDED DANISH_AUTHORIZATION_REQUIRED SPAIN_MIGRATION_REQUIRED
DENMARK_MIGRATION_REQUIRED SPANISH_TERMS_ACCEPTANCE_REQUIRED ITALIAN_CONTRACT_ACCEPTANCE_REQUIRED
CERT_AUTH_REQUIRED CHANGE_PASSWORD_REQUIRED PERSONAL_MESSAGE_REQUIRED
INTERNATIONAL_TERMS_ACCEPTANCE_REQUIRED EMAIL_LOGIN_NOT_ALLOWED MULTIPLE_USERS_WITH_SAME_CREDENTIAL
ACCOUNT_PENDING_PASSWORD_CHANGE TEMPORARY_BAN_TOO_MANY_REQUESTS
ITALIAN_PROFILING_ACCEPTANCE_REQUIRED
AUTHORIZED_ONLY_FOR_DOMAIN_RO AUTHORIZED_ONLY_FOR_DOMAIN_SE SWEDEN_NATIONAL_IDENTIFIER_REQUIRED
SWEDEN_BANK_ID_VERIFICATION_REQUIRED ACTIONS_REQUIRED INPUT_VALIDATION_ERROR
""".split()  # noqa: SIM905


def test_every_login_status_of_betfairs_documentation_is_explained() -> None:
    from bfprov.verify.catalogue import CATALOGUE

    assert set(SEED_CODES) <= set(CATALOGUE)
    for code in SEED_CODES:
        meaning, remedy = explain(code, crt="x.crt", upload_url="https://u")
        assert meaning and remedy and "{" not in remedy


def test_an_update_is_verified_with_the_live_pair(fleet: Fleet) -> None:
    fleet.run("apply", "--yes")
    fleet.upload("alice")
    fleet.upload("bob")
    (fleet.out / "alice" / "client-2048.pem").unlink()
    before = len(logins(fleet.emulator))
    code, out, err = fleet.run("apply", "--yes")
    assert code == 0, err
    after = logins(fleet.emulator)[before:]
    assert [(e.username, e.login_status) for e in after] == [("alice", "SUCCESS")]
    assert "Login checks" in out


def test_sandbox_serve_and_upload_through_the_cli(tmp_path: Path) -> None:
    import os
    import signal
    import sys

    profile = tmp_path / "fleet.yaml"
    profile.write_text(PROFILE)
    (tmp_path / "bob.secret").write_text(PASSWORD + "\n")
    env = {**os.environ, "BF_APP_KEY": APP_KEY, "BF_PASSWORD_ALICE": PASSWORD}
    for name in ("BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE", "BFPROV_OUTPUT_DIR"):
        env.pop(name, None)
    bfprov = [sys.executable, "-m", "bfprov"]
    subprocess.run([*bfprov, "apply", "--yes", "--no-verify", "--profiles", str(profile)],
                   env=env, check=True, capture_output=True)  # fmt: skip
    server = subprocess.Popen(
        [*bfprov, "sandbox", "serve", "--port", "0", "--profiles", str(profile),
         "--state-dir", str(tmp_path / "sandbox")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(4)]
        url = next(line.split("=", 1)[1].strip() for line in lines if "IDENTITY_URL=" in line)
        env["BFPROV_IDENTITY_URL"] = url
        env["BFPROV_CA_BUNDLE"] = str(tmp_path / "sandbox" / "ca.pem")
        verify = [*bfprov, "verify", "--profiles", str(profile)]
        assert subprocess.run(verify, env=env, capture_output=True).returncode == 1
        for account in ("alice", "bob"):
            up = subprocess.run([*bfprov, "sandbox", "upload", account, "--profiles", str(profile)],
                                env=env, capture_output=True, text=True)  # fmt: skip
            assert up.returncode == 0, up.stderr
        result = subprocess.run(verify, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 130


# --- network faults, rehearsed on the emulator itself ------------------------------------


@pytest.fixture
def uploaded(emulator: Emulator, pair_files: tuple[Path, Path, bytes]) -> Emulator:
    emulator.add_account("alice", PASSWORD, APP_KEY)
    emulator.upload("alice", pair_files[2])
    return emulator


def test_emulator_5xx_is_retried_a_bounded_number_of_times(
    uploaded: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, _ = pair_files
    urls = endpoints(Jurisdiction.COM, uploaded.url)
    uploaded.fail_next("http-500", 2)
    outcome = client(uploaded, retries=2).check(crt, key, creds(), urls)
    assert outcome.status == "SUCCESS" and outcome.attempts == 3
    uploaded.fail_next("http-500", 5)
    outcome = client(uploaded, retries=2).check(crt, key, creds(), urls)
    assert outcome.status is None and outcome.attempts == 3 and "HTTP 500" in (outcome.error or "")


@pytest.mark.parametrize(
    ("fault", "error", "counted"),
    [
        ("garbage", "not JSON", False),
        ("close", "connection broke", True),
        ("truncate", "connection broke", True),
    ],
)
def test_emulator_faults_after_an_answer_may_have_counted_are_never_retried(
    uploaded: Emulator, pair_files: tuple[Path, Path, bytes], fault: str, error: str,
    counted: bool,
) -> None:  # fmt: skip
    crt, key, _ = pair_files
    uploaded.fail_next(fault)
    start = time.monotonic()
    outcome = client(uploaded, retries=3).check(
        crt, key, creds(), endpoints(Jurisdiction.COM, uploaded.url)
    )
    assert time.monotonic() - start < 5
    assert outcome.status is None and outcome.attempts == 1
    assert error in (outcome.error or "")
    processed = [e for e in logins(uploaded) if e.login_status == "SUCCESS"]
    assert len(processed) == (1 if counted else 0)  # the emulator did count the login


def test_emulator_slow_answer_times_out_without_a_hang_or_a_retry(
    uploaded: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, _ = pair_files
    uploaded.fail_next("slow", delay=10.0)
    start = time.monotonic()
    outcome = client(uploaded, read_timeout=0.4).check(
        crt, key, creds(), endpoints(Jurisdiction.COM, uploaded.url)
    )
    assert time.monotonic() - start < 5.0  # gave up at the read timeout, not the answer
    assert outcome.attempts == 1 and "read timeout" in (outcome.error or "")


def test_a_stopped_emulator_refuses_and_is_retried_then_reported(
    uploaded: Emulator, pair_files: tuple[Path, Path, bytes]
) -> None:
    crt, key, _ = pair_files
    urls = endpoints(Jurisdiction.COM, uploaded.url)
    uploaded.stop()
    outcome = client(uploaded, retries=2).check(crt, key, creds(), urls)
    assert outcome.status is None and outcome.attempts == 3
    assert outcome.error == "connection refused"


def test_verify_reports_each_fault_clearly(fleet: Fleet) -> None:
    fleet.run("apply", "--yes", "--no-verify")
    fleet.upload("alice")
    fleet.upload("bob")
    fleet.emulator.fail_next("close")
    code, out, _ = fleet.run("verify", "--json")
    assert code == 1
    results = {r["account"]: r for r in json.loads(out)}
    broken = [r for r in results.values() if r["loginStatus"] is None]
    assert len(broken) == 1 and "not retried" in broken[0]["error"]
    assert broken[0]["remedy"].startswith("check the network path")
    assert sum(r["loginStatus"] == "SUCCESS" for r in results.values()) == 1
