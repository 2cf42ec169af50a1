"""The upload page's HTTP side: the standard library's threaded server, and its guards.

Every request passes three checks before anything else: its `Host` header names the
address served (a page on another name could be DNS rebinding), it carries the session's
cookie (set once from the random token of the printed URL, HttpOnly, SameSite=Strict) or
that token, and a state-changing request is a POST with the page's CSRF token. Anything
else gets 403. No response holds a key, password, app key or token: the API gives names,
states and fingerprints, and the download is the certificate alone.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Environment, select_autoescape

from bfprov.desired.targets import is_loopback
from bfprov.observed.files import read_bytes

if TYPE_CHECKING:
    from bfprov.upload.session import UploadSession

COOKIE = "bfprov_upload"
CSRF_HEADER = "X-CSRF-Token"
_MAX_BODY = 4096  # a check's request has no body worth the name
_ASSETS = {"upload.js": "text/javascript", "upload.css": "text/css"}
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the token is in the first URL
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Secrets:
    """The session's secrets: the URL's token, the cookie's value, the CSRF token."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def asset(name: str) -> bytes:
    """One of the page's files, shipped inside the package (no CDN, ever)."""
    return resources.files("bfprov.upload").joinpath("assets", name).read_bytes()


class UploadServer(ThreadingHTTPServer):
    """Serves one session; `hosts` are the Host headers it answers to."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], session: UploadSession, keys: Secrets, rehearsal: bool
    ) -> None:
        super().__init__(address, Handler)
        self.session = session
        self.keys = keys
        self.rehearsal = rehearsal  # the Betfair links point at the emulator
        host, port = str(self.server_address[0]), self.server_address[1]
        names = {host} | ({"localhost", "127.0.0.1"} if is_loopback(host) else set())
        self.hosts = frozenset(f"{name}:{port}" for name in names)
        template = asset("page.html").decode()
        env = Environment(autoescape=select_autoescape(default=True), keep_trailing_newline=True)
        self.page = env.from_string(template)

    @property
    def url(self) -> str:
        """The address to open, with the token that starts the session."""
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?token={quote(self.keys.token)}"


class Handler(BaseHTTPRequestHandler):
    """Routes, each behind the guards."""

    server: UploadServer
    server_version = "bfprov-upload"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    _GETS: ClassVar[dict[str, str]] = {
        "/": "_page",
        "/api/state": "_state",
    }

    # --- the guards -------------------------------------------------------------------

    def _allowed(self) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            return False
        cookies = self.headers.get("Cookie", "")
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value, self.server.keys.cookie):
                return True
        return False

    def _token_given(self) -> bool:
        given = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
        return hmac.compare_digest(given, self.server.keys.token)

    # --- methods ----------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if self.headers.get("Host", "") in self.server.hosts and self._token_given():
            # The token becomes a cookie, and the address bar loses the token.
            cookie = f"{COOKIE}={self.server.keys.cookie}; HttpOnly; SameSite=Strict; Path=/"
            self._send(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
            return
        if not self._allowed():
            self._forbidden()
            return
        if path in self._GETS:
            getattr(self, self._GETS[path])()
        elif path.startswith("/assets/") and path[8:] in _ASSETS:
            self._send(200, asset(path[8:]), _ASSETS[path[8:]])
        elif path.startswith("/download/"):
            self._download(path[len("/download/") :])
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > _MAX_BODY:
            self._send(413, b"too large", "text/plain", {"Connection": "close"})
            return
        self.rfile.read(int(length))  # nothing in it is used; read to keep the connection
        given = self.headers.get(CSRF_HEADER, "")
        if not self._allowed() or not hmac.compare_digest(given, self.server.keys.csrf):
            self._forbidden()
            return
        if not path.startswith("/api/check/"):
            self._send(404, b"not found", "text/plain")
            return
        account = path[len("/api/check/") :]
        entry = self.server.session.entry(account)
        if entry is None:
            self._json(404, {"error": "no such account awaits an upload"})
        elif not self.server.session.start(account):
            self._json(409, {"error": f"{account} is being checked or is live already"})
        else:
            self._json(202, {"account": account, "status": "checking"})

    def do_PUT(self) -> None:
        self._refuse_method()

    do_DELETE = do_PATCH = do_PUT

    # --- routes -----------------------------------------------------------------------

    def _page(self) -> None:
        done, total = self.server.session.progress()
        html = self.server.page.render(
            entries=self.server.session.entries(),
            done=done,
            total=total,
            csrf=self.server.keys.csrf,
            rehearsal=self.server.rehearsal,
        )
        self._send(200, html.encode(), "text/html; charset=utf-8")

    def _state(self) -> None:
        done, total = self.server.session.progress()
        entries = [e.to_json() for e in self.server.session.entries()]
        self._json(200, {"done": done, "total": total, "entries": entries})

    def _download(self, account: str) -> None:
        entry = self.server.session.entry(account)
        if entry is None:
            self._send(404, b"not found", "text/plain")
            return
        data = read_bytes(entry.crt)  # never through a link
        name = f"{entry.account}-{entry.crt.name}"
        disposition = f'attachment; filename="{name}"'
        self._send(200, data, "application/x-x509-user-cert", {"Content-Disposition": disposition})

    # --- replies ----------------------------------------------------------------------

    def _forbidden(self) -> None:
        self._send(403, b"forbidden", "text/plain")

    def _refuse_method(self) -> None:
        if not self._allowed():
            self._forbidden()
            return
        self._send(405, b"method not allowed", "text/plain", {"Allow": "GET, POST"})

    def _json(self, code: int, data: object) -> None:
        self._send(code, json.dumps(data).encode(), "application/json")

    def _send(
        self, code: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        for name, value in {**_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the URL with its token must not end up in a log."""
