"""`bfprov upload`: a local page that guides the rotation's manual step, then checks and
promotes each pair the moment its upload is done."""

from __future__ import annotations

import contextlib
import signal
import threading
import webbrowser
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.desired.targets import is_loopback
from bfprov.errors import BfprovError
from bfprov.observed.observe import observe
from bfprov.plan.snapshot import load
from bfprov.publish.preflight import check as preflight
from bfprov.upload.check import checker
from bfprov.upload.listing import awaiting
from bfprov.upload.server import Secrets, UploadServer
from bfprov.upload.session import UploadSession

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from bfprov.settings import Settings


def upload(
    settings: Settings,
    *,
    selection: Selection | None,
    host: str,
    port: int,
    browser: bool,
    lock_timeout: float,
) -> int:
    """Serve the upload page until Ctrl-C or SIGTERM (exit 0)."""
    if not 0 <= port <= 65535:
        raise BfprovError(f"--port: {port} is not a port number (0 to 65535; 0: any free one)")
    everything = load(settings)
    desired = (selection or Selection()).of(everything)
    preflight(everything, settings.profiles, desired)  # a Check publishes: can it?
    entries = awaiting(desired, observe(desired, orphans=False), settings.identity_url)
    check = checker(settings, desired, lock_timeout=lock_timeout, warn=console.warn)
    if not is_loopback(host):
        console.warn(
            f"--host {host} is not a loopback address: anyone who can reach it and holds the "
            "printed URL can check and promote these accounts"
        )
    try:
        server = UploadServer(
            (host, port), UploadSession(entries, check), Secrets(), bool(settings.identity_url)
        )
    except OSError as exc:
        raise BfprovError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    with _stopped_by_signals(server):
        console.say(f"{len(entries)} pair(s) await their upload. Open the upload page:")
        console.say(f"  {server.url}")
        console.note("Ctrl-C stops it. From elsewhere: ssh -L PORT:127.0.0.1:PORT this-host")
        if browser:
            webbrowser.open(server.url)
        _serve(server)
    done, total = server.session.progress()
    console.say(f"Upload session ended: {done} of {total} done.")
    return 0


def _serve(server: UploadServer) -> None:
    """Serve until Ctrl-C or SIGTERM, then let the checks under way finish."""
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.session.wait()


@contextlib.contextmanager
def _stopped_by_signals(server: UploadServer) -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM stop the server, whenever they come (even before it
    serves: `shutdown` then ends `serve_forever` as soon as it starts)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
