"""A loopback HTTP proxy that loses replies on purpose: a real network fault for tests.

It forwards every request to the server behind it; for a request chosen with
`lose_reply(method, path_prefix)` it waits for the server's whole reply (so the server
did the work) and then closes the client's connection without passing the reply on,
as a connection that breaks on the way back does. The client sees its request fail.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import Message
    from types import TracebackType

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


@dataclass
class _Rule:
    method: str
    prefix: str
    header: tuple[str, str] | None  # (name, value) the request must carry
    times: int
    before: Callable[[], object] | None  # None: lose the reply


@dataclass
class LossyProxy:
    """`with LossyProxy("http://127.0.0.1:8200") as proxy:` then talk to `proxy.url`."""

    upstream: str
    lost: list[str] = field(default_factory=list)  # "METHOD path" of each reply lost
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def lose_reply(
        self,
        method: str,
        path_prefix: str,
        times: int = 1,
        *,
        header: tuple[str, str] | None = None,
    ) -> None:
        """Lose the replies to the next `times` requests of `method` under `path_prefix`
        (and carrying `header`, e.g. ("X-Amz-Target", "secretsmanager.PutSecretValue"))."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), path_prefix, header, times, None))

    def heal(self) -> None:
        """Lose nothing more."""
        with self._lock:
            self._rules.clear()

    def before(self, method: str, path_prefix: str, action: Callable[[], object]) -> None:
        """Run `action` (another client's write, say) before forwarding the next request
        of `method` under `path_prefix`: it comes in between that client's requests."""
        with self._lock:
            self._rules.append(_Rule(method.upper(), path_prefix, None, 1, action))

    def _take(self, losing: bool, method: str, path: str, headers: Message) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.times > 0
                    and (rule.before is None) == losing
                    and rule.method == method
                    and path.startswith(rule.prefix)
                    and (rule.header is None or headers.get(rule.header[0]) == rule.header[1])
                ):
                    rule.times -= 1
                    if losing:
                        self.lost.append(f"{method} {path}")
                    return rule
        return None

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(proxy: LossyProxy) -> type[BaseHTTPRequestHandler]:
    where = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test's output is for the test

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            first = proxy._take(False, self.command, self.path, self.headers)
            if first is not None and first.before is not None:
                first.before()
            upstream = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                content = reply.read()
            finally:
                upstream.close()
            if proxy._take(True, self.command, self.path, self.headers) is not None:
                self.close_connection = True  # the reply never comes back
                return
            self.send_response(reply.status, reply.reason)
            for key, value in reply.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_LIST = _forward

    return Handler
