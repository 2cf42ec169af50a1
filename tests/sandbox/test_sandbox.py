"""bfprov.sandbox: the identity-service emulator, over real TLS on loopback.

Clients are `requests`, `curl` as Betfair's guide runs it, and `http.client` where a
test needs its own TLS settings. One emulator serves the module; each test uses its own
usernames, so the per-username lock and rate limit of one test cannot touch another.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import ssl
import stat
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import requests

from bfprov import crypto
from bfprov.crypto import InvalidMaterial
from bfprov.desired.models import Subject
from bfprov.sandbox import Emulator, SandboxError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa

APP_KEY = "app-key-123"
PASSWORD = "correct horse"
# Every character that breaks an unencoded form, and some that are not ASCII.
AWKWARD_PASSWORD = "p&ss=w%rd+1 two/three?four#five é中"
LOCK_AFTER = 3
RATE_LIMIT = 3


@dataclass(frozen=True)
class Pair:
    """A client certificate and its key on disk, as a bot holds them."""

    crt: Path
    key: Path

    @property
    def pem(self) -> bytes:
        return self.crt.read_bytes()

    @property
    def requests_cert(self) -> tuple[str, str]:
        return (str(self.crt), str(self.key))


def _pair(directory: Path, stem: str, key: rsa.RSAPrivateKey, cn: str) -> Pair:
    directory.mkdir(parents=True, exist_ok=True)
    cert = crypto.self_signed_certificate(key, Subject(common_name=cn), 30, datetime.now(UTC))
    pair = Pair(directory / f"{stem}.crt", directory / f"{stem}.key")
    pair.crt.write_bytes(cert)
    pair.key.write_bytes(crypto.private_key_pem(key))
    pair.key.chmod(0o600)
    return pair


@pytest.fixture(scope="module")
def certs(
    tmp_path_factory: pytest.TempPathFactory,
    rsa_key_2048: rsa.RSAPrivateKey,
    rsa_key_1024: rsa.RSAPrivateKey,
) -> dict[str, Pair]:
    """Client pairs: `live` and `next` (a rotation: new key), `small` (RSA-1024)."""
    root = tmp_path_factory.mktemp("clients")
    return {
        "live": _pair(root / "live", "client-2048", rsa_key_2048, "bot live"),
        "next": _pair(root / "next", "client-2048", crypto.generate_key(2048), "bot next"),
        "small": _pair(root / "small", "client-1024", rsa_key_1024, "bot small"),
    }


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The module's emulator: lock after 3 wrong passwords, ban after 3 logins a minute."""
    with Emulator(
        tmp_path_factory.mktemp("sandbox") / "state",
        lock_after=LOCK_AFTER,
        rate_limit=RATE_LIMIT,
    ) as running:
        yield running


_names = itertools.count()


def new_account(emulator: Emulator, pair: Pair | None, password: str = PASSWORD) -> str:
    """A fresh username (with `pair` uploaded unless None)."""
    username = f"user{next(_names)}@example.com"
    emulator.add_account(username, password, APP_KEY)
    if pair is not None:
        emulator.upload(username, pair.pem)
    return username


def login(
    emulator: Emulator,
    username: str,
    password: str = PASSWORD,
    pair: Pair | None = None,
    **headers: str,
) -> dict[str, Any]:
    """POST /api/certlogin the way the login client does; the JSON answer."""
    response = requests.post(
        f"{emulator.url}/api/certlogin",
        data={"username": username, "password": password},
        headers={"X-Application": APP_KEY, "Accept": "application/json", **headers},
        cert=pair.requests_cert if pair is not None else None,
        verify=str(emulator.ca_path),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    answer: dict[str, Any] = response.json()
    return answer


def session_call(emulator: Emulator, action: str, token: str) -> dict[str, Any]:
    """POST /api/logout or /api/keepAlive with Betfair's headers; the JSON answer."""
    response = requests.post(
        f"{emulator.url}/api/{action}",
        headers={"Accept": "application/json", "X-Authentication": token, "X-Application": APP_KEY},
        verify=str(emulator.ca_path),
        timeout=10,
    )
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


# --- login, keepAlive, logout --------------------------------------------------------------


def test_login_keep_alive_and_logout(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])

    answer = login(emulator, username, pair=certs["live"])

    assert answer["loginStatus"] == "SUCCESS"
    token = answer["sessionToken"]
    assert len(token) >= 32
    assert emulator.sessions()[token] == username
    ok = {"token": token, "product": APP_KEY, "status": "SUCCESS", "error": ""}
    assert session_call(emulator, "keepAlive", token) == ok
    assert session_call(emulator, "logout", token) == ok
    assert token not in emulator.sessions()
    gone = {"token": "", "product": APP_KEY, "status": "FAIL", "error": "NO_SESSION"}
    assert session_call(emulator, "keepAlive", token) == gone
    assert session_call(emulator, "logout", token) == gone


def test_login_event_records_the_request(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])

    login(emulator, username, pair=certs["live"])

    event = [e for e in emulator.events if e.username == username][-1]
    assert (event.path, event.method, event.login_status) == ("/api/certlogin", "POST", "SUCCESS")
    assert event.app_key == APP_KEY
    assert event.cert_fingerprint == emulator.uploaded(username)
    assert event.content_type == "application/x-www-form-urlencoded"


def test_each_login_gets_its_own_session(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])

    first = login(emulator, username, pair=certs["live"])["sessionToken"]
    second = login(emulator, username, pair=certs["live"])["sessionToken"]

    assert first != second
    assert session_call(emulator, "logout", first)["status"] == "SUCCESS"
    assert session_call(emulator, "keepAlive", second)["status"] == "SUCCESS"


# --- the client certificate ----------------------------------------------------------------


def test_no_client_certificate_is_cert_auth_required(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"])

    assert login(emulator, username) == {"loginStatus": "CERT_AUTH_REQUIRED"}
    assert emulator.events[-1].cert_fingerprint is None


def test_nothing_uploaded_is_cert_auth_required(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, None)

    assert login(emulator, username, pair=certs["live"]) == {"loginStatus": "CERT_AUTH_REQUIRED"}
    assert emulator.uploaded(username) is None


def test_another_certificate_is_cert_auth_required_and_no_wrong_password(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"])

    # More attempts than lock_after, even with a wrong password: none counts as one.
    for _ in range(LOCK_AFTER + 1):
        answer = login(emulator, username, "wrong", pair=certs["next"])
        assert answer == {"loginStatus": "CERT_AUTH_REQUIRED"}

    assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"


def test_upload_replaces_the_previous_certificate(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"])
    assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"

    fingerprint = emulator.upload(username, certs["next"].pem)

    assert fingerprint == crypto.inspect_certificate(certs["next"].pem).fingerprint_sha256
    assert emulator.uploaded(username) == fingerprint
    assert login(emulator, username, pair=certs["live"]) == {"loginStatus": "CERT_AUTH_REQUIRED"}
    assert login(emulator, username, pair=certs["next"])["loginStatus"] == "SUCCESS"


def test_upload_refuses_unknown_username_and_bad_certificates(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, None)

    with pytest.raises(KeyError):
        emulator.upload("nobody@example.com", certs["live"].pem)
    with pytest.raises(KeyError):
        emulator.uploaded("nobody@example.com")
    with pytest.raises(InvalidMaterial):
        emulator.upload(username, b"not a certificate")
    with pytest.raises(InvalidMaterial, match="private key"):
        emulator.upload(username, certs["live"].pem + certs["live"].key.read_bytes())
    assert emulator.uploaded(username) is None


def test_1024_bit_client_certificate_logs_in(emulator: Emulator, certs: dict[str, Pair]) -> None:
    """Betfair accepts RSA-1024; only the client's OpenSSL security level may refuse it."""
    username = new_account(emulator, certs["small"])
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    context.set_ciphers("DEFAULT:@SECLEVEL=1")  # before loading the key, or it is refused
    context.load_cert_chain(certs["small"].crt, certs["small"].key)

    answer = _http_client_login(emulator, context, username)

    assert answer["loginStatus"] == "SUCCESS"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_client_certificate_over_each_tls_version(
    emulator: Emulator, certs: dict[str, Pair], version: ssl.TLSVersion
) -> None:
    # TLS 1.2 sends the client certificate inside the handshake, TLS 1.3 after the
    # server's Finished: both must reach the login endpoint.
    username = new_account(emulator, certs["live"])
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    context.minimum_version = context.maximum_version = version
    context.load_cert_chain(certs["live"].crt, certs["live"].key)

    assert _http_client_login(emulator, context, username)["loginStatus"] == "SUCCESS"


def _http_client_login(emulator: Emulator, context: ssl.SSLContext, username: str) -> Any:
    connection = http.client.HTTPSConnection(
        "localhost", emulator.port, context=context, timeout=10
    )
    try:
        connection.request(
            "POST",
            "/api/certlogin",
            body=f"username={username}&password={PASSWORD.replace(' ', '+')}",
            headers={
                "X-Application": APP_KEY,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


# --- input validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(
            {"Content-Type": "application/json"},
            json.dumps({"username": "{user}", "password": PASSWORD}),
            id="json-content-type",
        ),
        pytest.param(
            {"Content-Type": "multipart/form-data; boundary=x"},
            "username={user}&password=correct+horse",
            id="multipart-content-type",
        ),
        pytest.param(
            {"Content-Type": None}, "username={user}&password=correct+horse", id="no-content-type"
        ),
        pytest.param(
            {"X-Application": None}, "username={user}&password=correct+horse", id="no-app-key"
        ),
        pytest.param(
            {"X-Application": ""}, "username={user}&password=correct+horse", id="empty-app-key"
        ),
        pytest.param({}, "username={user}", id="no-password-field"),
        pytest.param({}, "password=correct+horse", id="no-username-field"),
        pytest.param({}, "username={user}&username=x&password=correct+horse", id="username-twice"),
        pytest.param({}, "username={user}&password", id="malformed-form"),
        pytest.param({}, "username={user}&password=%FF", id="not-utf-8"),
    ],
)
def test_input_validation_error(
    emulator: Emulator, certs: dict[str, Pair], headers: dict[str, str | None], body: str
) -> None:
    username = new_account(emulator, certs["live"])
    # A None value makes requests leave the header out.
    sent: dict[str, str | None] = {
        "X-Application": APP_KEY,
        "Content-Type": "application/x-www-form-urlencoded",
        **headers,
    }

    response = requests.post(
        f"{emulator.url}/api/certlogin",
        data=body.replace("{user}", username).encode(),
        headers=sent,
        cert=certs["live"].requests_cert,
        verify=str(emulator.ca_path),
        timeout=10,
    )

    assert response.status_code == 200
    assert response.json() == {"loginStatus": "INPUT_VALIDATION_ERROR"}


def test_content_type_parameters_are_ignored(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])
    content_type = "Application/X-WWW-Form-Urlencoded; charset=UTF-8"

    answer = login(emulator, username, pair=certs["live"], **{"Content-Type": content_type})

    assert answer["loginStatus"] == "SUCCESS"


def test_app_key_is_not_validated_but_becomes_the_product(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"])

    answer = login(emulator, username, pair=certs["live"], **{"X-Application": "any-app"})

    assert answer["loginStatus"] == "SUCCESS"
    assert session_call(emulator, "logout", answer["sessionToken"])["product"] == "any-app"


def test_unknown_username(emulator: Emulator, certs: dict[str, Pair]) -> None:
    answer = login(emulator, "nobody@example.com", pair=certs["live"])

    assert answer == {"loginStatus": "INVALID_USERNAME_OR_PASSWORD"}


# --- passwords: encoding, lock ---------------------------------------------------------------


def test_awkward_password_logs_in_when_url_encoded(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"], AWKWARD_PASSWORD)

    assert login(emulator, username, AWKWARD_PASSWORD, certs["live"])["loginStatus"] == "SUCCESS"


def test_wrong_passwords_lock_the_account(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])

    statuses = [
        login(emulator, username, f"wrong{n}", certs["live"])["loginStatus"]
        for n in range(LOCK_AFTER)
    ]
    locked = login(emulator, username, PASSWORD, certs["live"])

    assert statuses == ["INVALID_USERNAME_OR_PASSWORD"] * (LOCK_AFTER - 1) + ["ACCOUNT_NOW_LOCKED"]
    assert locked == {"loginStatus": "ACCOUNT_ALREADY_LOCKED"}
    emulator.unlock(username)
    assert login(emulator, username, PASSWORD, certs["live"])["loginStatus"] == "SUCCESS"
    # The count starts afresh after the unlock.
    assert login(emulator, username, "wrong", certs["live"]) == {
        "loginStatus": "INVALID_USERNAME_OR_PASSWORD"
    }


def test_a_success_resets_the_wrong_password_count(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    username = new_account(emulator, certs["live"])

    for _ in range(2):
        for _ in range(LOCK_AFTER - 1):
            assert login(emulator, username, "wrong", certs["live"])["loginStatus"] == (
                "INVALID_USERNAME_OR_PASSWORD"
            )
        assert login(emulator, username, PASSWORD, certs["live"])["loginStatus"] == "SUCCESS"


# --- rate limit ------------------------------------------------------------------------------


def test_too_many_logins_ban_that_username_only(emulator: Emulator, certs: dict[str, Pair]) -> None:
    banned, other = new_account(emulator, certs["live"]), new_account(emulator, certs["live"])

    statuses = [login(emulator, banned, pair=certs["live"])["loginStatus"] for _ in range(5)]

    assert statuses == ["SUCCESS"] * RATE_LIMIT + ["TEMPORARY_BAN_TOO_MANY_REQUESTS"] * 2
    assert login(emulator, other, pair=certs["live"])["loginStatus"] == "SUCCESS"
    # Wrong passwords are not even judged during a ban, so they cannot lock it either.
    for _ in range(LOCK_AFTER):
        answer = login(emulator, banned, "wrong", certs["live"])
        assert answer == {"loginStatus": "TEMPORARY_BAN_TOO_MANY_REQUESTS"}


def test_ban_ends_after_ban_seconds(tmp_path: Path, certs: dict[str, Pair]) -> None:
    with Emulator(tmp_path / "state", rate_limit=1, ban_seconds=0.3) as emulator:
        username = new_account(emulator, certs["live"])
        assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"
        assert login(emulator, username, pair=certs["live"])["loginStatus"] == (
            "TEMPORARY_BAN_TOO_MANY_REQUESTS"
        )
        time.sleep(0.35)
        assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"


# --- Betfair's curl command ----------------------------------------------------------------


def test_curl_as_in_betfairs_guide(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"], AWKWARD_PASSWORD)

    # The guide's command, with --cacert where the guide has -k.
    command = [
        "curl", "-q", "--silent", "--show-error",
        "--cacert", str(emulator.ca_path),
        "--cert", "client-2048.crt", "--key", "client-2048.key",
        f"{emulator.url}/api/certlogin",
        "-H", f"X-Application: {APP_KEY}",
        "--data-urlencode", f"username={username}",
        "--data-urlencode", f"password={AWKWARD_PASSWORD}",
    ]  # fmt: skip

    result = subprocess.run(
        command,
        cwd=certs["live"].crt.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loginStatus"] == "SUCCESS"


def test_curl_upload_then_login(emulator: Emulator, certs: dict[str, Pair]) -> None:
    """The rehearsal's upload step from a shell: curl reads and encodes the .crt."""
    username = new_account(emulator, None)
    common = ["curl", "-q", "--silent", "--show-error", "--cacert", str(emulator.ca_path)]

    command = [
        *common, f"{emulator.url}/sandbox/upload",
        "--data-urlencode", f"username={username}",
        "--data-urlencode", "certificate@client-2048.crt",
    ]  # fmt: skip

    upload = subprocess.run(
        command,
        cwd=certs["next"].crt.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )

    answer = json.loads(upload.stdout)
    assert answer["status"] == "SUCCESS"
    assert answer["fingerprint"] == emulator.uploaded(username)
    assert login(emulator, username, pair=certs["next"])["loginStatus"] == "SUCCESS"


# --- the server's certificate --------------------------------------------------------------


def test_server_certificate_is_not_trusted_without_the_ca(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(
            f"{emulator.url}/api/certlogin",
            data={"username": "x", "password": "y"},
            headers={"X-Application": APP_KEY},
            cert=certs["live"].requests_cert,
            timeout=10,
        )
    result = subprocess.run(
        ["curl", "-q", "--silent", f"{emulator.url}/api/certlogin", "-d", "username=x"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 60  # curl: peer certificate cannot be authenticated


def test_server_certificate_names_localhost_and_loopback(emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    for host in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection((host, emulator.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_1_1_is_refused(emulator: Emulator) -> None:
    # The client is made willing (SECLEVEL=0 allows TLS 1.1): the refusal is the server's.
    command = [
        "openssl", "s_client", "-connect", f"127.0.0.1:{emulator.port}",
        "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        input="",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode != 0
    assert "alert protocol version" in result.stderr


def test_a_silent_client_does_not_block_others(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, certs["live"])
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10):
        # This connection never starts its handshake.
        assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"


def test_expect_100_continue_is_answered_before_the_body(
    emulator: Emulator, certs: dict[str, Pair]
) -> None:
    """.NET's HttpWebRequest sends `Expect: 100-continue` and holds the body until answered."""
    username = new_account(emulator, certs["live"])
    body = f"username={username}&password=correct+horse".encode()
    head = (
        "POST /api/certlogin HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
        "X-Application: app\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    context.load_cert_chain(certs["live"].crt, certs["live"].key)
    with (
        socket.create_connection(("localhost", emulator.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(head)
        assert tls.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
        tls.sendall(body)
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["loginStatus"] == "SUCCESS"


# --- other endpoints -----------------------------------------------------------------------


def test_upload_endpoint(emulator: Emulator, certs: dict[str, Pair]) -> None:
    username = new_account(emulator, None)

    def upload(**fields: str) -> Any:
        response = requests.post(
            f"{emulator.url}/sandbox/upload",
            data=fields,
            verify=str(emulator.ca_path),
            timeout=10,
        )
        assert response.status_code == 200
        return response.json()

    answer = upload(username=username, certificate=certs["live"].pem.decode())

    assert answer == {"status": "SUCCESS", "fingerprint": emulator.uploaded(username)}
    assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"
    assert upload(username="nobody", certificate=certs["live"].pem.decode()) == {
        "status": "FAIL",
        "error": "UNKNOWN_USERNAME",
    }
    assert upload(username=username, certificate="garbage") == {
        "status": "FAIL",
        "error": "INVALID_CERTIFICATE",
    }
    assert upload(username=username) == {"status": "FAIL", "error": "INPUT_VALIDATION_ERROR"}
    # The failures changed nothing.
    assert login(emulator, username, pair=certs["live"])["loginStatus"] == "SUCCESS"


@pytest.mark.parametrize(
    ("method", "path", "code", "error"),
    [
        ("POST", "/api/login", 404, "NOT_FOUND"),
        ("POST", "/api/keepalive", 404, "NOT_FOUND"),  # method names are case sensitive
        ("GET", "/", 404, "NOT_FOUND"),
        ("GET", "/api/certlogin", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/api/logout", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_unknown_paths_and_methods(
    emulator: Emulator, method: str, path: str, code: int, error: str
) -> None:
    response = requests.request(
        method, f"{emulator.url}{path}", verify=str(emulator.ca_path), timeout=10
    )

    assert response.status_code == code
    assert response.json() == {"error": error}
    if code == 405:
        assert response.headers["Allow"] == "POST"


# --- state on disk ---------------------------------------------------------------------------


def test_restart_reuses_the_ca_and_keeps_accounts(tmp_path: Path, certs: dict[str, Pair]) -> None:
    state = tmp_path / "state"
    with Emulator(state, lock_after=1) as first:
        first.add_account("alice", PASSWORD, APP_KEY)
        first.add_account("bob", PASSWORD, APP_KEY)
        fingerprint = first.upload("alice", certs["live"].pem)
        first.upload("bob", certs["live"].pem)
        assert login(first, "bob", "wrong", certs["live"])["loginStatus"] == "ACCOUNT_NOW_LOCKED"
    ca_pem = (state / "ca.pem").read_bytes()
    bundle = tmp_path / "bundle.pem"  # what a user exported as BFPROV_CA_BUNDLE
    bundle.write_bytes(ca_pem)

    with Emulator(state, lock_after=1) as second:
        # Re-adding an account (as `sandbox serve` does at start) keeps its upload.
        second.add_account("alice", PASSWORD, APP_KEY)
        assert (state / "ca.pem").read_bytes() == ca_pem
        assert second.uploaded("alice") == fingerprint
        response = requests.post(
            f"{second.url}/api/certlogin",
            data={"username": "alice", "password": PASSWORD},
            headers={"X-Application": APP_KEY},
            cert=certs["live"].requests_cert,
            verify=str(bundle),
            timeout=10,
        )
        assert response.json()["loginStatus"] == "SUCCESS"
        assert login(second, "bob", PASSWORD, certs["live"]) == {
            "loginStatus": "ACCOUNT_ALREADY_LOCKED"
        }


def test_file_modes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    emulator = Emulator(state)
    emulator.add_account("alice", PASSWORD)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(state) == 0o700
    assert mode(state / "ca.key") == 0o600
    assert mode(state / "ca.pem") == 0o644
    assert mode(state / "state.json") == 0o600
    assert emulator.ca_path == state / "ca.pem"


def test_ca_certificate_is_a_ca(emulator: Emulator, openssl: Any) -> None:
    text = openssl("x509", "-in", emulator.ca_path, "-noout", "-text").stdout

    assert "CA:TRUE" in text
    assert "Certificate Sign" in text


def test_damaged_state_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    Emulator(state)
    (state / "state.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(SandboxError, match=r"state\.json"):
        Emulator(state)


def test_start_stop_and_port(tmp_path: Path) -> None:
    emulator = Emulator(tmp_path / "state")
    with pytest.raises(RuntimeError):
        _ = emulator.port
    emulator.start()
    try:
        with pytest.raises(RuntimeError):
            emulator.start()
        assert emulator.url == f"https://localhost:{emulator.port}"
    finally:
        emulator.stop()
    emulator.stop()  # a second stop is harmless
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", emulator.port), 1):
        pass


# --- secrets -----------------------------------------------------------------------------


def test_passwords_are_never_recorded(tmp_path: Path, certs: dict[str, Pair]) -> None:
    state = tmp_path / "state"
    secret, wrong = "s3cret-Pässword&=", "wr0ng-Pässword"
    with Emulator(state) as emulator:
        emulator.add_account("alice", secret, APP_KEY)
        emulator.upload("alice", certs["live"].pem)
        assert login(emulator, "alice", secret, certs["live"])["loginStatus"] == "SUCCESS"
        login(emulator, "alice", wrong, certs["live"])
        login(emulator, "alice", secret)  # no certificate
        # A careless client puts the password in the query string too.
        requests.post(
            f"{emulator.url}/api/certlogin?password={wrong}",
            data={"username": "alice", "password": wrong},
            headers={"X-Application": APP_KEY},
            verify=str(emulator.ca_path),
            timeout=10,
        )
        events = repr(emulator.events)

    assert "alice" in events
    for password in (secret, wrong):
        assert password not in events
        for path in state.rglob("*"):
            if path.is_file() and path.name != "state.json":
                assert password.encode() not in path.read_bytes(), path
    # state.json must hold the account's password to judge logins, but nothing else.
    assert wrong not in (state / "state.json").read_text(encoding="utf-8")


def test_a_batch_of_changes_is_saved_once_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Emulator(state) as emu:
        before = (state / "state.json").stat().st_mtime_ns if (state / "state.json").exists() else 0
        with emu.batch():
            for i in range(50):
                emu.add_account(f"user{i}", f"pw{i}")
            assert not (state / "state.json").exists() or (
                (state / "state.json").stat().st_mtime_ns == before
            )  # nothing written inside the batch
        saved = json.loads((state / "state.json").read_text())
        assert len(saved["accounts"]) == 50
    with Emulator(state) as again:
        assert again.uploaded("user49") is None  # the account is known after a restart
