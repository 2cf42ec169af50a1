"""Notifications through Apprise, delivered for real to a receiver on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from bfprov.notify import Message, send

pytest.importorskip("apprise")


class Receiver(ThreadingHTTPServer):
    """Records every JSON body posted to it; answers `status`."""

    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, object]]] = []
        self.status = status

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((self.path, json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_message_arrives_at_the_receiver(receiver: Receiver) -> None:
    url = SecretStr(f"json://127.0.0.1:{receiver.port}/hook-Tok3n-SECRET")
    assert send([url], Message("2 uploads pending", "alice (GBR), bob (ITA)")) == []
    ((path, body),) = receiver.received
    assert path == "/hook-Tok3n-SECRET"
    assert body["title"] == "2 uploads pending" and body["message"] == "alice (GBR), bob (ITA)"


def test_a_failed_notification_is_a_warning_without_the_url(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.status = 500
    url = SecretStr(f"json://127.0.0.1:{receiver.port}/hook-Tok3n-SECRET")
    warnings = send([url, SecretStr("nosuchscheme://x-Tok3n-SECRET")], Message("t", "b"))
    assert len(warnings) == 2
    assert "json notification could not be sent" in warnings[0]
    assert "'nosuchscheme'" in warnings[1]
    captured = capsys.readouterr()
    for text in (*warnings, captured.out, captured.err):
        assert "Tok3n-SECRET" not in text
