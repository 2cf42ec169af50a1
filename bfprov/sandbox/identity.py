"""The rules of Betfair's identity service, without the network: accounts, logins, sessions.

Every request is judged here under one lock (the HTTP server is threaded), recorded as
an Event, and every change to an account is written to `state.json` at once (once per
`batch()`) so a rehearsal survives a restart of the emulator (see `state`). Sessions
are kept in memory only: a restart ends them, and tokens never touch the disk.

Accounts, sessions, locks, bans and the rate are one state machine under one lock, so
they stay together here; what a request carries (`request`) and how accounts are kept
on disk (`state`) are beside it.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bfprov.crypto import InvalidMaterial
from bfprov.sandbox.request import Event, field, form_of, is_form
from bfprov.sandbox.state import Account, load_accounts, read_certificate, save_accounts

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_RATE_WINDOW = 60.0  # seconds: Betfair counts successful logins per minute
_MAX_EVENTS = 100_000  # a long `sandbox serve` must not grow without bound

SessionAction = Literal["logout", "keepAlive"]


@dataclass(frozen=True)
class _Session:
    username: str
    product: str


class Identity:
    """Accounts, sessions and the login rules; thread-safe."""

    def __init__(
        self,
        state_file: Path,
        *,
        lock_after: int,
        rate_limit: int,
        ban_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lock_after < 1 or rate_limit < 1 or ban_seconds < 0:
            raise ValueError("lock_after and rate_limit must be at least 1, ban_seconds >= 0")
        self._state_file = state_file
        self._lock_after = lock_after
        self._rate_limit = rate_limit
        self._ban_seconds = ban_seconds
        # Wall-clock time throughout: bans are persisted and must mean the same after
        # a restart.
        self._clock = clock
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._sessions: dict[str, _Session] = {}
        self._logins: dict[str, deque[float]] = {}  # recent successful logins per username
        self._events: deque[Event] = deque(maxlen=_MAX_EVENTS)
        self._batched = 0  # inside batch(): changes are saved once, at its end
        self._dirty = False
        self._accounts = load_accounts(state_file)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Save state.json once for every change made inside (a fleet added at start-up
        would otherwise rewrite the whole file once per account: quadratic)."""
        with self._lock:
            self._batched += 1
        try:
            yield
        finally:
            with self._lock:
                self._batched -= 1
                if not self._batched and self._dirty:
                    self._save()

    # --- what the Emulator exposes -------------------------------------------------------

    def add_account(self, username: str, password: str, app_key: str | None) -> None:
        """Create an account, or update the password and app key of an existing one.

        An existing account keeps its uploaded certificate, lock and ban: `sandbox
        serve` adds the profiles' accounts at every start, and a rehearsal must
        survive that.
        """
        with self._lock:
            account = self._accounts.get(username)
            if account is None:
                self._accounts[username] = Account(password=password, app_key=app_key)
            else:
                account.password, account.app_key = password, app_key
            self._save()

    def upload(self, username: str, cert_pem: bytes) -> str:
        """Replace the account's certificate; its fingerprint. KeyError, InvalidMaterial."""
        pem, digest = read_certificate(cert_pem)
        with self._lock:
            account = self._accounts[username]
            account.certificate, account.fingerprint = pem, digest
            self._save()
        return digest

    def uploaded(self, username: str) -> str | None:
        """Fingerprint of the account's uploaded certificate; KeyError if unknown."""
        with self._lock:
            return self._accounts[username].fingerprint

    def unlock(self, username: str) -> None:
        """Clear the lock and the failure count; KeyError if unknown."""
        with self._lock:
            account = self._accounts[username]
            account.locked, account.failures = False, 0
            self._save()

    def events(self) -> list[Event]:
        """Every request so far, in order (a copy)."""
        with self._lock:
            return list(self._events)

    def sessions(self) -> dict[str, str]:
        """Live session token -> username (a copy)."""
        with self._lock:
            return {token: session.username for token, session in self._sessions.items()}

    def record(self, event: Event) -> None:
        """Record a request that no rule below judged (404, 405, ...)."""
        with self._lock:
            self._events.append(event)

    # --- the endpoints -----------------------------------------------------------------

    def certlogin(
        self,
        *,
        content_type: str | None,
        app_key: str | None,
        body: bytes,
        cert_fingerprint: str | None,
    ) -> dict[str, str]:
        """Judge a POST /api/certlogin; the JSON answer."""
        form = form_of(content_type, body)
        username, password = field(form, "username"), field(form, "password")
        with self._lock:
            status, token = self._judge(content_type, app_key, username, password, cert_fingerprint)
            self._events.append(
                Event(
                    "/api/certlogin",
                    "POST",
                    username,
                    app_key,
                    cert_fingerprint,
                    content_type,
                    status,
                )
            )
        if token is None:
            return {"loginStatus": status}
        return {"sessionToken": token, "loginStatus": status}

    def _judge(
        self,
        content_type: str | None,
        app_key: str | None,
        username: str | None,
        password: str | None,
        cert_fingerprint: str | None,
    ) -> tuple[str, str | None]:
        """(loginStatus, session token); the checks in the order Betfair's answers imply."""
        if username is None or password is None or not _well_formed(content_type, app_key):
            return "INPUT_VALIDATION_ERROR", None
        account = self._accounts.get(username)
        if account is None:
            return "INVALID_USERNAME_OR_PASSWORD", None
        if account.locked:
            return "ACCOUNT_ALREADY_LOCKED", None
        now = self._clock()
        refused = (
            self._banned(account, now)
            or self._wrong_credentials(account, password, cert_fingerprint)
            or self._over_rate(username, account, now)
        )
        if refused is not None:
            return refused, None
        if account.failures:
            account.failures = 0
            self._save()
        token = secrets.token_urlsafe(33)  # 44 characters, like Betfair's tokens
        self._sessions[token] = _Session(username, (app_key or "").strip())
        return "SUCCESS", token

    def _banned(self, account: Account, now: float) -> str | None:
        """TEMPORARY_BAN_TOO_MANY_REQUESTS while a ban lasts; a ban that ran out is lifted."""
        if account.banned_until is None:
            return None
        if now < account.banned_until:
            return "TEMPORARY_BAN_TOO_MANY_REQUESTS"
        account.banned_until = None
        self._save()
        return None

    def _wrong_credentials(
        self, account: Account, password: str, cert_fingerprint: str | None
    ) -> str | None:
        """The certificate, then the password; a wrong password moves towards a lock."""
        # The certificate is judged before the password: without the right one Betfair
        # answers CERT_AUTH_REQUIRED whatever the password, so a wrong certificate
        # never moves an account towards a lock.
        if cert_fingerprint is None or cert_fingerprint != account.fingerprint:
            return "CERT_AUTH_REQUIRED"
        if hmac.compare_digest(password.encode(), account.password.encode()):
            return None
        account.failures += 1
        if account.failures >= self._lock_after:
            account.locked = True
            self._save()
            return "ACCOUNT_NOW_LOCKED"
        self._save()
        return "INVALID_USERNAME_OR_PASSWORD"

    def _over_rate(self, username: str, account: Account, now: float) -> str | None:
        """A ban when this login would pass the rate; otherwise it is counted."""
        recent = self._logins.setdefault(username, deque())
        while recent and recent[0] <= now - _RATE_WINDOW:
            recent.popleft()
        if len(recent) >= self._rate_limit:
            account.banned_until = now + self._ban_seconds
            # The ban is the penalty; afterwards the count starts from nothing.
            recent.clear()
            self._save()
            return "TEMPORARY_BAN_TOO_MANY_REQUESTS"
        recent.append(now)
        return None

    def session_call(
        self,
        action: SessionAction,
        *,
        token: str | None,
        app_key: str | None,
        content_type: str | None,
        cert_fingerprint: str | None,
    ) -> dict[str, str]:
        """Judge a POST /api/logout or /api/keepAlive; the JSON answer."""
        with self._lock:
            session = self._sessions.get(token or "")
            if session is not None and action == "logout":
                del self._sessions[token or ""]
            answer = (
                {"token": token or "", "product": session.product, "status": "SUCCESS", "error": ""}
                if session is not None
                else {
                    "token": "",
                    "product": app_key or "",
                    "status": "FAIL",
                    "error": "NO_SESSION",
                }
            )
            self._events.append(
                Event(
                    f"/api/{action}",
                    "POST",
                    session.username if session is not None else None,
                    app_key,
                    cert_fingerprint,
                    content_type,
                    answer["status"],
                )
            )
        return answer

    def upload_request(
        self, *, content_type: str | None, body: bytes, cert_fingerprint: str | None
    ) -> dict[str, str]:
        """Judge a POST /sandbox/upload (the website's upload step); the JSON answer."""
        form = form_of(content_type, body)
        username, certificate = field(form, "username"), field(form, "certificate")
        answer: dict[str, str]
        if username is None or certificate is None:
            answer = {"status": "FAIL", "error": "INPUT_VALIDATION_ERROR"}
        else:
            try:
                answer = {
                    "status": "SUCCESS",
                    "fingerprint": self.upload(username, certificate.encode()),
                }
            except KeyError:
                answer = {"status": "FAIL", "error": "UNKNOWN_USERNAME"}
            except InvalidMaterial:
                answer = {"status": "FAIL", "error": "INVALID_CERTIFICATE"}
        self.record(
            Event(
                "/sandbox/upload",
                "POST",
                username,
                None,
                cert_fingerprint,
                content_type,
                answer["status"],
            )
        )
        return answer

    # --- persistence -------------------------------------------------------------------

    def _save(self) -> None:
        """Write every account to state.json; the caller holds the lock."""
        if self._batched:
            self._dirty = True
            return
        self._dirty = False
        save_accounts(self._state_file, self._accounts)


def _well_formed(content_type: str | None, app_key: str | None) -> bool:
    """A form, with an application key that is not blank."""
    return is_form(content_type) and bool((app_key or "").strip())
