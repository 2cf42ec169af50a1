"""The Emulator: Betfair's identity service as a real HTTPS server on loopback.

This module starts and stops it and offers its controls (accounts, uploads, injected
faults, counters); the HTTP side is http.py and the rules are identity.py.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from bfprov.sandbox.http import Counters, Faults, Server
from bfprov.sandbox.identity import Identity
from bfprov.sandbox.request import Event
from bfprov.sandbox.tls import (
    CA_CERT_FILE,
    ensure_state_dir,
    issue_server_certificate,
    load_or_create_ca,
    server_context,
)

if TYPE_CHECKING:
    from types import TracebackType

STATE_FILE = "state.json"
FAULTS = ("http-500", "garbage", "close", "truncate", "slow")


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
        ensure_state_dir(self._state_dir)
        self._ca_cert, self._ca_key = load_or_create_ca(self._state_dir)
        self._identity = Identity(
            self._state_dir / STATE_FILE,
            lock_after=lock_after,
            rate_limit=rate_limit,
            ban_seconds=ban_seconds,
        )
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._faults = Faults()
        self._counters = Counters()

    # --- running -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind, then serve in a daemon thread with a freshly issued server certificate."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        hosts = ["localhost", "127.0.0.1", "::1", self._host]
        cert, key = issue_server_certificate(self._ca_cert, self._ca_key, hosts)
        server = Server(
            (self._host, self._port),
            context=server_context(cert, key),
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
        return self._state_dir / CA_CERT_FILE

    # --- the website's side ----------------------------------------------------------------

    def add_account(self, username: str, password: str, app_key: str | None = None) -> None:
        """Create an account with no certificate uploaded.

        For an existing username only the password and app key change: its uploaded
        certificate, lock and ban stay, so re-adding accounts at each start of `bfprov
        sandbox serve` does not undo a rehearsal. `app_key` is kept for reference only:
        like Betfair, the emulator does not check X-Application at login.
        """
        self._identity.add_account(username, password, app_key)

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Accounts added and certificates uploaded inside are saved to state.json once."""
        return self._identity.batch()

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
