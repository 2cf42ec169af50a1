"""The Emulator: Betfair's identity service as a real HTTPS server on loopback.

The standard library's ThreadingHTTPServer serves HTTP; each accepted socket gets its
TLS handshake (pyOpenSSL, see tls.py) in its own thread, and the request handler reads
and writes through buffered files over the TLS connection. The rules live in
identity.py; this module only moves bytes and headers.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedReader, BufferedWriter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from OpenSSL import SSL

from bfprov.sandbox import tls
from bfprov.sandbox.identity import Event, Identity

if TYPE_CHECKING:
    from types import TracebackType

    from cryptography import x509

STATE_FILE = "state.json"
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


class Emulator:
    """An HTTPS emulator of identitysso(-cert).betfair.<tld> for tests and rehearsals.

    State (the CA, accounts, uploaded certificates, locks and bans) lives in
    `state_dir`, so a rehearsal survives a restart. `state_dir/state.json` holds the
    accounts' passwords in clear (mode 0600): use made-up passwords only.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lock_after: int = 3,
        rate_limit: int = 100,
        ban_seconds: float = 1200.0,
    ) -> None:
        """Load (or create) the CA and the saved accounts of `state_dir`; serve nothing yet.

        `lock_after`: wrong passwords in a row before ACCOUNT_NOW_LOCKED. `rate_limit`:
        successful logins per username per 60 s before a ban of `ban_seconds`.
        """
        self._state_dir = Path(state_dir)
        self._host = host
        self._port = port
        tls.ensure_state_dir(self._state_dir)
        self._ca_cert, self._ca_key = tls.load_or_create_ca(self._state_dir)
        self._identity = Identity(
            self._state_dir / STATE_FILE,
            lock_after=lock_after,
            rate_limit=rate_limit,
            ban_seconds=ban_seconds,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._faults = _Faults()
        self._counters = _Counters()

    # --- running -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind, then serve in a daemon thread with a freshly issued server certificate."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        hosts = ["localhost", "127.0.0.1", "::1", self._host]
        cert, key = tls.issue_server_certificate(self._ca_cert, self._ca_key, hosts)
        server = _Server(
            (self._host, self._port),
            context=tls.server_context(cert, key),
            identity=self._identity,
            ipv6=":" in self._host,
            faults=self._faults,
            counters=self._counters,
        )
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            # A short poll interval keeps stop() quick; the loop costs nothing meanwhile.
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"bfprov-sandbox:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket; a no-op when not running."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Emulator:
        """Start (unless already running) and return the emulator."""
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    @property
    def url(self) -> str:
        """Scheme, host and port, e.g. https://localhost:8443 (for BFPROV_IDENTITY_URL)."""
        return f"https://localhost:{self.port}"

    @property
    def port(self) -> int:
        """The port served (the one bound when 0 was asked for)."""
        if self._port == 0:
            raise RuntimeError("the emulator has not been started: no port is bound yet")
        return self._port

    @property
    def ca_path(self) -> Path:
        """PEM of the emulator's own CA, for BFPROV_CA_BUNDLE (or curl's --cacert)."""
        return self._state_dir / tls.CA_CERT_FILE

    # --- the website's side ----------------------------------------------------------------

    def add_account(self, username: str, password: str, app_key: str | None = None) -> None:
        """Create an account with no certificate uploaded.

        For an existing username only the password and app key change: its uploaded
        certificate, lock and ban stay, so re-adding accounts at each start of `bfprov
        sandbox serve` does not undo a rehearsal. `app_key` is kept for reference only:
        like Betfair, the emulator does not check X-Application at login.
        """
        self._identity.add_account(username, password, app_key)

    def upload(self, username: str, cert_pem: bytes) -> str:
        """The website's upload: replaces the account's certificate; its SHA-256 fingerprint.

        Raises KeyError for an unknown username, bfprov.crypto.InvalidMaterial when
        `cert_pem` is not exactly one PEM certificate (or also holds a private key).
        """
        return self._identity.upload(username, cert_pem)

    def uploaded(self, username: str) -> str | None:
        """Fingerprint (lowercase hex SHA-256) of the uploaded certificate, if any.

        Raises KeyError for an unknown username.
        """
        return self._identity.uploaded(username)

    def unlock(self, username: str) -> None:
        """What the support desk does: clears the lock and the count of wrong passwords."""
        self._identity.unlock(username)

    def fail_next(self, fault: str, count: int = 1, *, delay: float = 2.0) -> None:
        """Make the next `count` logins fail, to rehearse (and test) network trouble.

        `http-500`: a 5xx page, the login not processed; `garbage`: HTTP 200 that is
        not JSON, not processed; `close`: the login IS processed, then the connection
        closes without an answer; `truncate`: processed, then half an answer; `slow`:
        the answer comes after `delay` seconds.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._faults.add(fault, count, delay)

    @property
    def events(self) -> list[Event]:
        """Every request answered so far, in order (a copy)."""
        return self._identity.events()

    @property
    def connections(self) -> int:
        """TLS connections accepted so far (handshakes completed), since the first start."""
        return self._counters.connections

    @property
    def peak_logins_in_flight(self) -> int:
        """The most /api/certlogin requests that were being answered at the same time."""
        return self._counters.peak_logins

    def sessions(self) -> dict[str, str]:
        """Live session token -> username."""
        return self._identity.sessions()


FAULTS = ("http-500", "garbage", "close", "truncate", "slow")


class _Faults:
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


class _Counters:
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


class _Server(ThreadingHTTPServer):
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
        faults: _Faults,
        counters: _Counters,
    ) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.tls_context = context
        self.identity = identity
        self.faults = faults
        self.counters = counters
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Drop failed handshakes and vanished clients quietly; a bug still shows."""
        error = sys.exc_info()[1]
        if isinstance(error, SSL.Error | OSError):  # TimeoutError is an OSError
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
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

    server: _Server
    tls_conn: SSL.Connection
    cert_fingerprint: str | None

    def setup(self) -> None:
        """TLS handshake, then buffered files over the connection for http.server."""
        sock = cast("socket.socket", self.request)
        self.tls_conn = tls.accept(self.server.tls_context, sock, _HANDSHAKE_TIMEOUT)
        self.server.counters.connected()
        peer: x509.Certificate | None = self.tls_conn.get_peer_certificate(as_cryptography=True)
        self.cert_fingerprint = tls.fingerprint(peer) if peer is not None else None
        self.connection = sock
        self._in = tls.TLSStream(self.tls_conn, sock, _IO_TIMEOUT)
        self._reader = BufferedReader(self._in)
        self.rfile = self._reader
        self.wfile = BufferedWriter(tls.TLSStream(self.tls_conn, sock, _IO_TIMEOUT))
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
            tls.close_notify(self.tls_conn)

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

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _other_method

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
