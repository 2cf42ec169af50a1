"""verify at fleet scale keeps the safety rules: real TLS against the emulator on loopback.

Trust loaded once per run, logins in parallel, logout on the login's connection: none of
it may change what a login check is allowed to do.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from bfprov import crypto
from bfprov.cli import main
from bfprov.desired.models import Jurisdiction, Subject
from bfprov.sandbox import Emulator
from bfprov.sandbox import tls as sandbox_tls
from bfprov.verify.client import Credentials, LoginClient, RateLimiter, endpoints
from tests.support.fleet import CliFleet

PASSWORD = "s3cret &=%+ é"
APP_KEY = "scale-app-key"


def logins(emulator: Emulator) -> list[Any]:
    return [e for e in emulator.events if e.path == "/api/certlogin"]


def creds(username: str, password: str = PASSWORD, app_key: str = APP_KEY) -> Credentials:
    return Credentials(username, SecretStr(password), SecretStr(app_key))


def write_pair(directory: Path, key: Any, name: str) -> tuple[Path, Path, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    crt = crypto.self_signed_certificate(key, Subject(common_name=name), 30, datetime.now(UTC))
    (directory / f"{name}.crt").write_bytes(crt)
    (directory / f"{name}.key").write_bytes(crypto.private_key_pem(key))
    return directory / f"{name}.crt", directory / f"{name}.key", crt


@pytest.fixture
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("sandbox")) as emu:
        yield emu


@pytest.fixture
def pair(tmp_path: Path, rsa_key_2048: Any) -> tuple[Path, Path, bytes]:
    return write_pair(tmp_path / "pair", rsa_key_2048, "client-2048")


def uploaded(emulator: Emulator, username: str, pem: bytes) -> None:
    emulator.add_account(username, PASSWORD, APP_KEY)
    emulator.upload(username, pem)


# --- the rules of one login -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "app_key", "upload", "status"),
    [
        ("wrong", APP_KEY, True, "INVALID_USERNAME_OR_PASSWORD"),
        (PASSWORD, APP_KEY, False, "CERT_AUTH_REQUIRED"),
        (PASSWORD, " ", True, "INPUT_VALIDATION_ERROR"),
    ],
)
def test_a_login_answered_with_a_login_status_is_never_retried(
    emulator: Emulator, pair: tuple[Path, Path, bytes], password: str, app_key: str,
    upload: bool, status: str,
) -> None:  # fmt: skip
    crt, key, pem = pair
    emulator.add_account("alice", PASSWORD, APP_KEY)
    if upload:
        emulator.upload("alice", pem)
    client = LoginClient(ca_bundle=emulator.ca_path, retries=5, backoff=0.01)
    outcome = client.check(
        crt, key, creds("alice", password, app_key), endpoints(Jurisdiction.COM, emulator.url)
    )
    assert outcome.status == status and outcome.attempts == 1
    assert len(logins(emulator)) == 1
    assert [e.path for e in emulator.events] == ["/api/certlogin"]  # and no logout


def test_a_wrong_ca_fails_before_anything_is_sent(
    emulator: Emulator, pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    crt, key, pem = pair
    uploaded(emulator, "alice", pem)
    other = tmp_path / "other-ca"
    other.mkdir()
    sandbox_tls.load_or_create_ca(other)  # a CA that did not sign the emulator's certificate
    client = LoginClient(ca_bundle=other / sandbox_tls.CA_CERT_FILE, backoff=0.01)
    outcome = client.check(crt, key, creds("alice"), endpoints(Jurisdiction.COM, emulator.url))
    assert outcome.status is None and "not trusted" in (outcome.error or "")
    assert outcome.attempts == 1  # a TLS failure is not a connection failure: no retry
    assert emulator.events == [] and emulator.connections == 0
    # The same client with the right CA logs in: the trust is per client, not global.
    right = LoginClient(ca_bundle=emulator.ca_path)
    urls = endpoints(Jurisdiction.COM, emulator.url)
    assert right.check(crt, key, creds("alice"), urls).status == "SUCCESS"


def test_the_right_ca_but_another_host_name_fails(
    pair: tuple[Path, Path, bytes], tmp_path: Path
) -> None:
    """A server with a certificate from the trusted CA, but for another name: refused."""
    crt, key, _ = pair
    ca_cert, ca_key = sandbox_tls.load_or_create_ca(tmp_path / "ca")
    cert, cert_key = sandbox_tls.issue_server_certificate(ca_cert, ca_key, ["elsewhere.invalid"])
    (tmp_path / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(
        cert_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(1024))
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = LoginClient(ca_bundle=tmp_path / "ca" / sandbox_tls.CA_CERT_FILE, retries=0)
    outcome = client.check(
        crt, key, creds("alice"), endpoints(Jurisdiction.COM, f"https://localhost:{port}")
    )
    thread.join(timeout=10)
    listener.close()
    assert outcome.status is None and "not trusted" in (outcome.error or "")
    assert received in ([], [b""])  # no request reached it


def test_a_ban_stops_that_account_and_only_that_one(
    tmp_path: Path, pair: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair
    with Emulator(tmp_path / "sandbox", rate_limit=2) as emulator:
        uploaded(emulator, "alice", pem)
        uploaded(emulator, "bob", pem)
        client = LoginClient(
            ca_bundle=emulator.ca_path, limiter=RateLimiter(per_minute=6000, burst=100)
        )
        urls = endpoints(Jurisdiction.COM, emulator.url)
        statuses = [client.check(crt, key, creds("alice"), urls) for _ in range(5)]
        assert [o.status for o in statuses[:3]] == [
            "SUCCESS",
            "SUCCESS",
            "TEMPORARY_BAN_TOO_MANY_REQUESTS",
        ]
        assert all(o.status is None and "banned" in (o.error or "") for o in statuses[3:])
        assert len(logins(emulator)) == 3  # nothing sent for alice after the ban
        assert client.check(crt, key, creds("bob"), urls).status == "SUCCESS"


def test_logout_reuses_the_logins_connection(
    emulator: Emulator, pair: tuple[Path, Path, bytes]
) -> None:
    crt, key, pem = pair
    uploaded(emulator, "alice", pem)
    client = LoginClient(ca_bundle=emulator.ca_path)
    urls = endpoints(Jurisdiction.COM, emulator.url)
    for _ in range(3):
        outcome = client.check(crt, key, creds("alice"), urls)
        assert outcome.status == "SUCCESS" and outcome.logged_out is True
    assert [e.path for e in emulator.events] == ["/api/certlogin", "/api/logout"] * 3
    assert emulator.connections == 3  # one connection per check: login and logout on it
    assert emulator.sessions() == {}


def test_pairs_of_both_key_sizes_and_a_broken_one_share_one_client(
    emulator: Emulator, tmp_path: Path, rsa_key_2048: Any, rsa_key_1024: Any
) -> None:
    """The trust is loaded once per client; each check still presents its own pair."""
    big = write_pair(tmp_path / "big", rsa_key_2048, "client-2048")
    small = write_pair(tmp_path / "small", rsa_key_1024, "client-1024")
    uploaded(emulator, "big", big[2])
    uploaded(emulator, "small", small[2])
    broken = tmp_path / "broken.key"
    label = "PRIVATE KEY"  # spelt apart: no tracked file holds a key block, not even a fake
    broken.write_text(f"-----BEGIN {label}-----\nnot a key\n-----END {label}-----\n")
    client = LoginClient(ca_bundle=emulator.ca_path)
    urls = endpoints(Jurisdiction.COM, emulator.url)
    results = [
        client.check(small[0], small[1], creds("small"), urls, key_bits=1024).status,
        client.check(big[0], big[1], creds("big"), urls).status,
        client.check(big[0], broken, creds("big"), urls).error,
        client.check(small[0], small[1], creds("small"), urls, key_bits=1024).status,
        client.check(big[0], big[1], creds("big"), urls).status,
        # The small pair logging in as "big": the emulator sees the small certificate.
        client.check(small[0], small[1], creds("big"), urls, key_bits=1024).status,
    ]
    assert results[:2] == ["SUCCESS", "SUCCESS"]
    assert "cannot load the client certificate and key" in (results[2] or "")
    assert results[3:] == ["SUCCESS", "SUCCESS", "CERT_AUTH_REQUIRED"]


# --- through the command line ---------------------------------------------------------------


def fleet_text(n: int) -> str:
    lines = [
        "version: 1\noutput_dir: certs\ndefaults:\n  app_key: {env: BF_APP_KEY}\n"
        "  outputs: [key, crt]\naccounts:\n"
    ]
    for i in range(n):
        lines.append(
            f"  - name: bot{i:02d}\n    username: bot{i:02d}\n"
            f"    password: {{env: BF_PASSWORD}}\n    subject: {{common_name: bot {i}}}\n"
        )
    return "".join(lines)


def fleet_profile(root: Path, n: int) -> Path:
    profile = root / "fleet.yaml"
    profile.write_text(fleet_text(n))
    return profile


class Fleet(CliFleet):
    def __init__(self, root: Path, n: int, capsys: pytest.CaptureFixture[str]) -> None:
        super().__init__(root, capsys, fleet_text(n))
        self.n = n

    def serve(self, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
        """Accounts and live uploads into `emulator`, and bfprov pointed at it."""
        for i in range(self.n):
            name = f"bot{i:02d}"
            uploaded(emulator, name, (self.root / "certs" / name / "client-2048.crt").read_bytes())
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
        return emulator


@pytest.fixture
def make_fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    for name in ("BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE", "BFPROV_OUTPUT_DIR"):
        monkeypatch.delenv(name, raising=False)

    def make(n: int) -> Fleet:
        fleet = Fleet(tmp_path, n, capsys)
        code, _, err = fleet.run("apply", "--yes", "--no-verify")
        assert code == 0, err
        return fleet

    return make


def test_every_login_of_a_20_account_run_succeeds_at_its_first_attempt(
    make_fleet: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = make_fleet(20)
    fleet.serve(emulator, monkeypatch)
    code, out, err = fleet.run("verify", "--json")
    assert code == 0, err
    results = json.loads(out)
    assert len(results) == 20
    for r in results:
        assert (r["loginStatus"], r["attempts"], r["logged_out"]) == ("SUCCESS", 1, True)
    assert len(logins(emulator)) == 20
    assert emulator.connections == 20  # each logout went over its login's connection
    assert "verified 20 accounts in" in err and "20 ok, 0 failed" in err
    assert PASSWORD not in out + err and APP_KEY not in out + err


def test_parallel_bounds_the_logins_in_flight(
    make_fleet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = make_fleet(8)
    for parallel in (2, 4):
        with Emulator(tmp_path / f"sandbox-{parallel}") as emulator:
            fleet.serve(emulator, monkeypatch)
            # Each login is held at the emulator for a while, so that logins overlap
            # whenever more than one is in flight.
            emulator.fail_next("slow", 8, delay=0.3)
            code, out, err = fleet.run("verify", "--json", "--parallel", str(parallel))
            assert code == 0, err
            assert all(r["loginStatus"] == "SUCCESS" for r in json.loads(out))
            assert 1 <= emulator.peak_logins_in_flight <= parallel
            if parallel == 4:
                assert emulator.peak_logins_in_flight > 2  # more workers, more in flight


@pytest.mark.parametrize("value", ["0", "33", "-1"])
def test_parallel_out_of_range_is_refused_in_one_line(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = fleet_profile(tmp_path, 1)
    code = main(["verify", "--parallel", value, "--profiles", str(profile)])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"{value} is not" in err and "--parallel" in err
