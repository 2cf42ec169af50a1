"""The upload page's server and guards, driven over HTTP and in headless Chromium.

The check behind "Check" is given here (a function that waits for the test's word), so
these tests are about the page: its listing, its guards, its live updates and its
keyboard use. The flow through the real login, promotion and publication is in
tests/flows/test_upload_flow.py.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bfprov.upload.server import COOKIE, CSRF_HEADER, Secrets, UploadServer
from bfprov.upload.session import Entry, UploadSession, Verdict

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

CRT = b"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"


class Gate:
    """A check that waits until the test lets it finish, with the verdict it is given."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.verdict = Verdict(True, "SUCCESS", "")
        self.calls: list[str] = []

    def __call__(self, entry: Entry) -> Verdict:
        self.calls.append(entry.account)
        self.go.wait(10)
        return self.verdict


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[UploadServer, Gate]]:
    crt = tmp_path / "client-2048.crt"
    crt.write_bytes(CRT)
    entries = [
        Entry("alice", "alice@example.com", "GBR", "https://example.test/upload", "staged",
              crt, "ab" * 32),
        Entry("bob", "bob@example.com", "ITA", "https://example.test/upload-it", "live",
              crt, "cd" * 32),
    ]  # fmt: skip
    gate = Gate()
    server = UploadServer(("127.0.0.1", 0), UploadSession(entries, gate), Secrets(), False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, gate
    finally:
        gate.go.set()
        server.shutdown()
        server.server_close()


def _request(
    server: UploadServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=5)
    try:
        conn.request(method, path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


def _cookie(server: UploadServer) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={server.keys.cookie}"}


def test_the_token_becomes_an_httponly_strict_cookie(
    served: tuple[UploadServer, Gate],
) -> None:
    server, _ = served
    status, headers, _ = _request(server, "GET", f"/?token={server.keys.token}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={server.keys.cookie};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert server.keys.token not in cookie


@pytest.mark.parametrize("path", ["/", "/api/state", "/download/alice", "/assets/upload.js"])
def test_a_request_without_the_token_or_cookie_is_refused(
    served: tuple[UploadServer, Gate], path: str
) -> None:
    server, _ = served
    assert _request(server, "GET", path)[0] == 403
    assert _request(server, "GET", f"{path}?token=guess")[0] == 403
    assert _request(server, "GET", path, {"Cookie": f"{COOKIE}=guess"})[0] == 403
    assert _request(server, "GET", path, _cookie(server))[0] == 200


def test_a_foreign_host_is_refused_even_with_the_cookie_or_token(
    served: tuple[UploadServer, Gate],
) -> None:
    server, _ = served
    evil = {"Host": f"evil.example:{server.server_address[1]}"}
    assert _request(server, "GET", "/", {**_cookie(server), **evil})[0] == 403
    assert _request(server, "GET", f"/?token={server.keys.token}", evil)[0] == 403
    localhost = {"Host": f"localhost:{server.server_address[1]}"}  # ssh -L, typed by hand
    assert _request(server, "GET", "/", {**_cookie(server), **localhost})[0] == 200


def test_a_check_needs_a_post_with_the_csrf_token(served: tuple[UploadServer, Gate]) -> None:
    server, gate = served
    assert _request(server, "POST", "/api/check/alice", _cookie(server))[0] == 403
    wrong = {**_cookie(server), CSRF_HEADER: "guess"}
    assert _request(server, "POST", "/api/check/alice", wrong)[0] == 403
    assert _request(server, "GET", "/api/check/alice", _cookie(server))[0] == 404
    no_cookie = {CSRF_HEADER: server.keys.csrf}
    assert _request(server, "POST", "/api/check/alice", no_cookie)[0] == 403
    assert gate.calls == []
    ok = {**_cookie(server), CSRF_HEADER: server.keys.csrf}
    assert _request(server, "POST", "/api/check/alice", ok)[0] == 202
    assert _request(server, "POST", "/api/check/alice", ok)[0] == 409  # one at a time
    assert _request(server, "POST", "/api/check/nobody", ok)[0] == 404
    gate.go.set()
    server.session.wait(5)
    assert gate.calls == ["alice"]


def test_the_download_is_the_certificate_alone(served: tuple[UploadServer, Gate]) -> None:
    server, _ = served
    status, headers, body = _request(server, "GET", "/download/alice", _cookie(server))
    assert status == 200 and body == CRT
    assert headers["Content-Disposition"] == 'attachment; filename="alice-client-2048.crt"'
    assert "no-store" in headers["Cache-Control"]


# --- in the browser --------------------------------------------------------------------


def test_the_page_lists_each_pair_and_updates_without_a_reload(
    served: tuple[UploadServer, Gate], browser: object
) -> None:
    server, gate = served
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(server.url)
    assert page.url.endswith(f":{server.server_address[1]}/")  # the token left the URL
    alice = page.locator('li[data-account="alice"]')
    assert alice.get_attribute("data-status") == "pending"
    assert page.locator('li[data-account="bob"] a[download]').count() == 1
    assert "0 of 2 done" in page.inner_text("#progress")
    page.keyboard.press("Tab")  # keyboard only: Tab to alice's "Check", Enter
    while page.evaluate("document.activeElement.className") != "check":
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('li.entry').dataset.account") == "alice"
    page.keyboard.press("Enter")
    page.wait_for_selector('li[data-account="alice"][data-status="checking"]')
    gate.go.set()
    page.wait_for_selector('li[data-account="alice"][data-status="live"]', timeout=5000)
    assert "1 of 2 done" in page.inner_text("#progress")
    page.close()


def test_the_emulators_upload_form_takes_a_certificate_from_the_browser(
    tmp_path: Path, browser: object, rsa_key_1024: rsa.RSAPrivateKey
) -> None:
    """The rehearsal's stand-in for Betfair's page: a real file chosen and submitted in
    Chromium. (The browser does not know the sandbox's own CA: this test page only.)"""
    from datetime import UTC, datetime

    from bfprov import crypto
    from bfprov.desired.models import Subject
    from bfprov.sandbox import Emulator

    now = datetime.now(UTC).replace(microsecond=0)
    cert_pem = crypto.self_signed_certificate(rsa_key_1024, Subject(common_name="a"), 30, now)

    with Emulator(tmp_path / "sandbox") as emu:
        emu.add_account("alice@example.com", "pw-SECRET", "key-SECRET")
        crt = tmp_path / "client-2048.crt"
        crt.write_bytes(cert_pem)
        context = browser.new_context(ignore_https_errors=True)  # type: ignore[attr-defined]
        page = context.new_page()
        page.goto(f"{emu.url}/sandbox/upload-page?username=alice%40example.com")
        assert page.input_value('input[name="username"]') == "alice@example.com"
        page.set_input_files('input[name="certificate"]', str(crt))
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert '"SUCCESS"' in page.content()
        fingerprint = crypto.inspect_certificate(cert_pem).fingerprint_sha256
        assert emu.uploaded("alice@example.com") == fingerprint
        context.close()
