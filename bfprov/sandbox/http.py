"""The emulator's HTTP side: a threaded server, TLS per connection, and the request handler.

Each accepted socket gets its TLS handshake (pyOpenSSL, see tls.py) in its own thread,
and the handler reads and writes through buffered files over the TLS connection. The
rules live in identity.py; this module only moves bytes and headers.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedReader, BufferedWriter
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from OpenSSL import SSL

from bfprov.sandbox.identity import Identity
from bfprov.sandbox.request import Event
from bfprov.sandbox.tls import TLSStream, accept, close_notify, fingerprint
from bfprov.sandbox.upload_page import page as upload_form

if TYPE_CHECKING:
    from cryptography import x509

_HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to complete the TLS handshake
_IO_TIMEOUT = 30.0  # seconds a connection may stay silent while a request is read
# Seconds a kept-alive connection may wait for its next request (bfprov's logout comes at
# once on the login's connection); then it is closed and its thread ends.
_IDLE_TIMEOUT = 2.0
# Connections the kernel may queue before they are accepted: a fleet's verify opens many
# at once, and an overflowing queue drops them (the client then waits and retries).
_BACKLOG = 1024
_MAX_BODY = 64 * 1024  # a login form or a PEM certificate is a few kilobytes
_ERRORS = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
}
_ROUTES = ("/api/certlogin", "/api/logout", "/api/keepAlive", "/sandbox/upload")


class Faults:
    """Faults waiting for the next logins, in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[str, float]] = []

    def add(self, fault: str, count: int, delay: float) -> None:
        with self._lock:
            self._queue.extend([(fault, delay)] * count)

    def take(self) -> tuple[str, float] | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None


class Counters:
    """Connections accepted, and logins being answered now and at most (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections = 0
        self.logins = 0
        self.peak_logins = 0

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def login(self, delta: int) -> None:
        with self._lock:
            self.logins += delta
            self.peak_logins = max(self.peak_logins, self.logins)


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that carries the TLS context and the identity rules."""

    daemon_threads = True
    request_queue_size = _BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        *,
        context: SSL.Context,
        identity: Identity,
        ipv6: bool,
        faults: Faults,
        counters: Counters,
    ) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.tls_context = context
        self.identity = identity
        self.faults = faults
        self.counters = counters
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Drop failed handshakes and vanished clients quietly; a bug still shows."""
        error = sys.exc_info()[1]
        if isinstance(error, SSL.Error | OSError):  # TimeoutError is an OSError
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Requests on one TLS connection, answered in JSON.

    HTTP/1.1: a successful answer keeps the connection open for the next request (a
    logout after its login) for up to _IDLE_TIMEOUT seconds; error pages close it.
    """

    server_version = "bfprov-sandbox"
    sys_version = ""
    # HTTP/1.1 also so that `Expect: 100-continue` (.NET's default for a POST) is answered.
    protocol_version = "HTTP/1.1"
    error_content_type = "application/json"
    error_message_format = '{"error": "HTTP_%(code)d"}'

    server: Server
    tls_conn: SSL.Connection
    cert_fingerprint: str | None

    def setup(self) -> None:
        """TLS handshake, then buffered files over the connection for http.server."""
        sock = cast("socket.socket", self.request)
        self.tls_conn = accept(self.server.tls_context, sock, _HANDSHAKE_TIMEOUT)
        self.server.counters.connected()
        peer: x509.Certificate | None = self.tls_conn.get_peer_certificate(as_cryptography=True)
        self.cert_fingerprint = fingerprint(peer) if peer is not None else None
        self.connection = sock
        self._in = TLSStream(self.tls_conn, sock, _IO_TIMEOUT)
        self._reader = BufferedReader(self._in)
        self.rfile = self._reader
        self.wfile = BufferedWriter(TLSStream(self.tls_conn, sock, _IO_TIMEOUT))
        self._served = False

    def handle_one_request(self) -> None:
        """The next request; after the first, close if none comes within _IDLE_TIMEOUT."""
        if self._served:
            self._in.timeout = _IDLE_TIMEOUT
            try:
                waiting = self._reader.peek(1)
            except OSError:  # TimeoutError included: an idle connection
                waiting = b""
            finally:
                self._in.timeout = _IO_TIMEOUT
            if not waiting:
                self.close_connection = True
                return
        self._served = True
        super().handle_one_request()

    def finish(self) -> None:
        """Flush the answer, then close TLS properly so clients see a clean end."""
        try:
            super().finish()
        finally:
            close_notify(self.tls_conn)

    def handle_expect_100(self) -> bool:
        """Send `100 Continue` at once: the client waits for it before sending the body."""
        go_on = super().handle_expect_100()
        self.wfile.flush()  # http.server assumes an unbuffered wfile
        return go_on

    def version_string(self) -> str:
        """The Server header: no Python version to advertise."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request line may carry secrets, and Events are the record."""

    # --- routing -------------------------------------------------------------------------

    def do_POST(self) -> None:
        """The endpoints; anything else is 404."""
        path = self._path()
        body = self._body()
        if body is None:
            return
        content_type = self.headers.get("Content-Type")
        app_key = self.headers.get("X-Application")
        identity = self.server.identity
        if path == "/api/certlogin":
            self.server.counters.login(+1)
            try:
                self._certlogin(identity, body, content_type, app_key)
            finally:
                self.server.counters.login(-1)
            return
        if path in ("/api/logout", "/api/keepAlive"):
            answer = identity.session_call(
                "logout" if path == "/api/logout" else "keepAlive",
                token=self.headers.get("X-Authentication"),
                app_key=app_key,
                content_type=content_type,
                cert_fingerprint=self.cert_fingerprint,
            )
        elif path == "/sandbox/upload":
            answer = identity.upload_request(
                content_type=content_type, body=body, cert_fingerprint=self.cert_fingerprint
            )
        else:
            self._refuse(404)
            return
        self._answer(200, answer)

    def _certlogin(
        self, identity: Identity, body: bytes, content_type: str | None, app_key: str | None
    ) -> None:
        fault = self.server.faults.take()
        if fault is not None and fault[0] in ("http-500", "garbage"):
            self._fault(fault[0])  # before the login: it is not processed
            return
        answer = identity.certlogin(
            content_type=content_type,
            app_key=app_key,
            body=body,
            cert_fingerprint=self.cert_fingerprint,
        )
        if fault is not None:
            if fault[0] == "slow":
                time.sleep(fault[1])
            else:  # close, truncate: the login counted, its answer is lost
                self._lose(fault[0], answer)
                return
        self._answer(200, answer)

    def _other_method(self) -> None:
        if self._body() is not None:
            self._refuse(405 if self._path() in _ROUTES else 404)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _other_method

    def do_GET(self) -> None:
        """The upload form (the website's stand-in); every other GET is refused."""
        if self._path() != "/sandbox/upload-page":
            self._other_method()
            return
        if self._body() is None:
            return
        username = parse_qs(urlsplit(self.path).query).get("username", [""])[0]
        data = upload_form(username)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", "default-src 'none'; form-action 'self'")
        self.end_headers()
        self.wfile.write(data)

    # --- helpers -------------------------------------------------------------------------

    def _path(self) -> str:
        # The query string is dropped everywhere: a careless client may put a
        # password there, and Events must never hold one.
        return urlsplit(self.path).path

    def _body(self) -> bytes | None:
        """The request body (read in full, so closing never resets the connection)."""
        raw_length = self.headers.get("Content-Length", "0")
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400)
            return None
        if length > _MAX_BODY:
            self._refuse(413)
            return None
        return self.rfile.read(length)

    def _fault(self, fault: str) -> None:
        page = b"<html><body>Service Unavailable</body></html>"
        code = 500 if fault == "http-500" else 200
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page)

    def _lose(self, fault: str, answer: dict[str, str]) -> None:
        if fault == "truncate":
            data = json.dumps(answer).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
        self.close_connection = True

    def _refuse(self, code: int) -> None:
        self.server.identity.record(
            Event(
                self._path(),
                self.command,
                None,
                self.headers.get("X-Application"),
                self.cert_fingerprint,
                self.headers.get("Content-Type"),
                None,
            )
        )
        extra = {"Allow": "POST"} if code == 405 else {}
        self._answer(code, {"error": _ERRORS[code]}, extra)

    def _answer(
        self, code: int, answer: dict[str, str], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(answer).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # answers carry session tokens
        if code != 200:
            self.send_header("Connection", "close")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
