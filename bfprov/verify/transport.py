"""TLS and HTTP for login checks: trust loaded once, one connection per pair and origin.

The server certificate is always verified (the system store, certifi's bundle, and
BFPROV_CA_BUNDLE when set); there is no way to turn that off. Errors are put in words
that say whether the request can have been sent, which decides whether it may be retried.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bfprov import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.verify.client import LoginClient

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
USER_AGENT = f"bfprov/{__version__}"


class Trust:
    """The server-certificate trust of a run, loaded once, and client TLS for one pair.

    Loading the system store (and certifi's bundle, which requests used to add on every
    connection) costs tens of milliseconds: far more than a handshake. So it is loaded
    once per run into one SSLContext per security level, and each pair is loaded into
    that context just before a socket is wrapped. OpenSSL copies a context's certificate
    and key into each connection when the connection is made (SSL_new), so one lock
    around "load the pair, wrap the socket" is all the sharing needs; the handshakes run
    outside it, in parallel.

    The server's certificate is always verified, with its host name (check_hostname).
    """

    def __init__(self, ca_bundle: Path | None = None) -> None:
        self.ca_bundle = ca_bundle
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def _context(self, weak: bool) -> ssl.SSLContext:
        """The trust context for this security level; the caller holds the lock."""
        context = self._contexts.get(weak)
        if context is not None:
            return context
        context = ssl.create_default_context()  # the system store, CERT_REQUIRED, hostnames
        try:
            import certifi  # what requests trusted too: keep trusting it

            context.load_verify_locations(cafile=certifi.where())
        except (ImportError, OSError, ssl.SSLError):
            pass
        if weak:
            # Betfair accepts 1024-bit client keys, which OpenSSL's default security
            # level refuses to load. The server's certificate is still verified.
            context.set_ciphers("DEFAULT:@SECLEVEL=1")
        if self.ca_bundle is not None:
            context.load_verify_locations(cafile=str(self.ca_bundle))
        self._contexts[weak] = context
        return context

    def wrap(
        self, sock: socket.socket, host: str, crt: Path, key: Path, key_bits: int
    ) -> ssl.SSLSocket:
        """`sock` as a TLS client of `host` presenting this pair; no handshake yet.

        Raises CannotLoad when the pair cannot be loaded.
        """
        with self._lock:
            context = self._context(bool(key_bits) and key_bits < 2048)
            try:
                context.load_cert_chain(certfile=str(crt), keyfile=str(key))
            except (ssl.SSLError, OSError) as exc:
                raise CannotLoad(str(exc)) from exc
            return context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)


class CannotLoad(Exception):
    """The client certificate and key cannot be loaded."""


class NotSent(Exception):
    """No connection could be made: the request certainly never left."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def is_json(self) -> bool:
        try:
            json.loads(self.body)
        except ValueError:
            return False
        return True


class Link:
    """One HTTP/1.1 connection to one origin with one pair, opened when first needed.

    Login and logout share it when they go to the same origin (the emulator; Betfair
    logs out on another host). Never reopened behind the caller's back: http.client's
    auto_open would reconnect without TLS.
    """

    def __init__(self, client: LoginClient, url: str, crt: Path, key: Path, key_bits: int) -> None:
        parts = urlsplit(url)
        self.origin = (parts.scheme, parts.netloc)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self._client, self._crt, self._key, self._bits = client, crt, key, key_bits
        self._conn: http.client.HTTPConnection | None = None

    @property
    def open(self) -> bool:
        return self._conn is not None and self._conn.sock is not None

    def connect(self) -> http.client.HTTPConnection:
        """The open connection, or a new one (TCP, then the TLS handshake).

        Raises NotSent (no connection), CannotLoad, ssl.SSLError (handshake refused or
        the server's certificate not trusted: nothing was sent).
        """
        if self._conn is not None and self._conn.sock is not None:
            return self._conn
        self.close()
        connect_timeout, read_timeout = self._client.timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_timeout)
        except OSError as exc:
            raise NotSent(connection_error(exc)) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                trust = self._client.trust
                sock = trust.wrap(sock, self.host, self._crt, self._key, self._bits)
                try:
                    sock.do_handshake()
                except ssl.SSLError:
                    raise
                except OSError as exc:  # a timeout or a reset during the handshake
                    raise NotSent(f"TLS handshake failed: {short(exc)}") from exc
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        conn = http.client.HTTPConnection(self.host, self.port, timeout=read_timeout)
        conn.sock = sock
        conn.auto_open = 0
        self._conn = conn
        return conn

    def post(self, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        """One request on the open connection. Raises OSError or http.client.HTTPException."""
        conn = self.connect()
        try:
            conn.request("POST", path, body=body, headers={"User-Agent": USER_AGENT, **headers})
            response = conn.getresponse()
            return Answer(response.status, response.read())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def url_path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def bad_answer(answer: Answer) -> str:
    kind = "JSON without loginStatus" if answer.is_json() else "not JSON"
    return f"unexpected answer: HTTP {answer.status}, {kind}"


def short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def tls_error(exc: BaseException) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            "the server's certificate is not trusted (set BFPROV_CA_BUNDLE for a private CA); "
            "nothing was sent"
        )
    return f"TLS handshake failed: {short(exc)}"


def after_send_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time (read timeout); not retried: the login may have counted"
    return (
        "the connection broke before a complete answer; not retried: the login may have "
        f"counted ({short(exc)})"
    )


def connection_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, socket.gaierror) or "Failed to resolve" in str(exc):
        return "host name not found"
    return f"connection failed: {short(exc)}"
