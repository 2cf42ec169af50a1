"""A loopback HTTP proxy in front of a real server, for real network faults in tests.

`Proxy(upstream)` listens on a port of its own and forwards each request to `upstream`
(plain HTTP). It records every request line it forwards (`requests`), can be switched
off and on again on the same port (`stop`, `start`: connections are then refused, as
from a server that is down), and can drop replies: `drop_replies(match)` forwards a
matching request, lets the server act on it, and closes the connection without a
reply, as when an answer is lost on its way back.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.support.servers import free_port

Match = Callable[[str, str], bool]  # (method, path) -> drop its reply?
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    dropped: bool


class Proxy:
    """A switchable, recording, reply-dropping HTTP proxy on 127.0.0.1."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the proxy forwards to http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.requests: list[Forwarded] = []
        self._drop: list[tuple[Match, int]] = []  # (which, how many more)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._open: set[socket.socket] = set()

    # --- switching ------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again) on the proxy's port."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        """Stop listening and cut every open connection: the server looks down."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults and records ---------------------------------------------------------------

    def drop_replies(self, match: Match, count: int = 1) -> None:
        """The next `count` requests `match` accepts reach the server; their replies are lost."""
        with self._lock:
            self._drop.append((match, count))

    def clear_drops(self) -> None:
        with self._lock:
            self._drop.clear()

    def paths(self, method: str | None = None) -> list[str]:
        """The paths of the requests forwarded so far (of one method, if given)."""
        return [r.path for r in self.requests if method is None or r.method == method]

    def _should_drop(self, method: str, path: str) -> bool:
        with self._lock:
            for i, (match, count) in enumerate(self._drop):
                if match(method, path):
                    if count <= 1:
                        del self._drop[i]
                    else:
                        self._drop[i] = (match, count - 1)
                    return True
        return False

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            proxy._track(self.connection, add=True)

        def finish(self) -> None:
            proxy._track(self.connection, add=False)
            super().finish()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
            finally:
                upstream.close()
            dropped = proxy._should_drop(self.command, self.path)
            proxy.requests.append(Forwarded(self.command, self.path, dropped))
            if dropped:
                self.close_connection = True  # the server acted; its answer never arrives
                return
            self.send_response(reply.status, reply.reason)
            for key, value in reply.getheaders():
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward
        do_LIST = _forward  # Vault's own verb

    return Handler
