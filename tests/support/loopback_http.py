"""Small HTTP servers on loopback for tests of what bfprov does with the network's replies.

- `OddServer`: answers every request with one canned reply, the way a misbehaving
  proxy or a captive portal does (HTML, an empty 204, JSON of another API).
- `CountingProxy`: forwards every request to a real server (moto) and counts the API
  operations it saw (`X-Amz-Target`), as a store's bill would; `rewrite` may alter a
  reply on its way back (a lagging listing).

Both are real servers (http.server in a thread): bfprov's clients talk HTTP to them.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Proxy error</h1><p>Please log in to the corporate proxy.</p></body></html>\n"
)


@dataclass
class Reply:
    """One canned reply: status, content type (None: no header), body, other headers."""

    status: int = 200
    content_type: str | None = "text/html; charset=utf-8"
    body: bytes = HTML_PAGE
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class OddServer:
    """A loopback HTTP server that answers everything with `reply`; `paths` it was asked."""

    url: str
    reply: Reply
    paths: list[str] = field(default_factory=list)


class _OddHandler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        odd: OddServer = self.server.state
        odd.paths.append(self.path)
        reply = odd.reply
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.status not in (204, 304):
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer
    do_LIST = _answer  # Vault's own verb

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on what bfprov prints."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: object


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], state: object) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), handler)
    server.state = state
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def odd_server(reply: Reply | None = None) -> Iterator[OddServer]:
    """An OddServer answering `reply` (an HTML proxy error page by default) until the end."""
    odd = OddServer("", reply or Reply())
    with _serving(_OddHandler, odd) as url:
        odd.url = url
        yield odd


# --- a counting proxy ------------------------------------------------------------------


@dataclass
class CountingProxy:
    """Forwards to `upstream`; `operations` counts the X-Amz-Target operations seen."""

    url: str
    upstream: str
    operations: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (operation, reply body) -> the body bfprov receives instead
    rewrite: Callable[[str, bytes], bytes] | None = None

    def reset(self) -> None:
        with self.lock:
            self.operations.clear()

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.operations.values())

    def counts(self) -> dict[str, int]:
        """The operations seen so far, by name."""
        with self.lock:
            return dict(self.operations)


_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "server", "date"}


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint offers

    def _forward(self) -> None:
        proxy: CountingProxy = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2] or self.command
        with proxy.lock:
            proxy.operations[operation] += 1
        up = urlsplit(proxy.upstream)
        connection = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        try:
            skip = {"host", "connection", "content-length"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        if proxy.rewrite is not None:
            data = proxy.rewrite(operation, data)
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A CountingProxy in front of `upstream` (http://host:port) until the block ends."""
    proxy = CountingProxy("", upstream)
    with _serving(_ProxyHandler, proxy) as url:
        proxy.url = url
        yield proxy
