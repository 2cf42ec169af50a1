"""Betfair's certlogin and logout, with the rules that keep an account safe.

Safety rules, because a Betfair account is real money:
- A login that got any `loginStatus` is never retried: repeated wrong passwords lock the
  account, and more than 100 logins a minute ban it for 20 minutes.
- Only failures where the request cannot have been processed are retried (no connection,
  connect timeout) and answers that carry no loginStatus with a 5xx status; a bounded
  number of times, with backoff. A read timeout is not retried: the login may have
  counted.
- After TEMPORARY_BAN_TOO_MANY_REQUESTS the account is not logged in again in this run.
- Each account is rate limited well under Betfair's limit.
- The server certificate is always verified (default trust store, plus
  BFPROV_CA_BUNDLE when set); there is no way to turn that off (see transport).

What each loginStatus means is in `catalogue`.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from bfprov.verify.transport import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Answer,
    CannotLoad,
    Link,
    NotSent,
    Trust,
    after_send_error,
    bad_answer,
    short,
    tls_error,
    url_path,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import SecretStr

    from bfprov.desired.models import Jurisdiction

LOGIN_PATH = "/api/certlogin"
LOGOUT_PATH = "/api/logout"


@dataclass(frozen=True)
class Endpoints:
    login: str
    logout: str


def endpoints(jurisdiction: Jurisdiction, identity_url: str | None) -> Endpoints:
    """The jurisdiction's URLs; `identity_url` replaces scheme and host of both."""
    if identity_url:
        parts = urlsplit(identity_url)
        base = f"{parts.scheme}://{parts.netloc}"
        return Endpoints(login=base + LOGIN_PATH, logout=base + LOGOUT_PATH)
    return Endpoints(login=jurisdiction.login_url, logout=jurisdiction.logout_url)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: SecretStr
    app_key: SecretStr


@dataclass(frozen=True)
class Outcome:
    """What one login check found. `status` is Betfair's loginStatus, if it answered."""

    status: str | None
    error: str | None = None
    attempts: int = 0
    logged_out: bool | None = None
    logout_error: str | None = None

    @property
    def success(self) -> bool:
        return self.status == "SUCCESS"


class RateLimiter:
    """A token bucket per account: a small burst, then `per_minute` logins a minute."""

    def __init__(self, per_minute: float = 10.0, burst: int = 5) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                tokens, last = self._buckets.get(key, (self.burst, now))
                tokens = min(self.burst, tokens + (now - last) * self.rate)
                if tokens >= 1:
                    self._buckets[key] = (tokens - 1, now)
                    return
                self._buckets[key] = (tokens, now)
                delay = (1 - tokens) / self.rate
            time.sleep(delay)


class LoginClient:
    """Logs accounts in with their client certificate and logs them out again."""

    def __init__(
        self,
        *,
        ca_bundle: Path | None = None,
        retries: int = 2,
        backoff: float = 0.5,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.ca_bundle = ca_bundle
        self.trust = Trust(ca_bundle)
        self.retries = retries
        self.backoff = backoff
        self.timeout = (connect_timeout, read_timeout)
        self.limiter = limiter or RateLimiter()
        self._banned: set[str] = set()
        self._lock = threading.Lock()

    def check(
        self, crt: Path, key: Path, creds: Credentials, urls: Endpoints, *, key_bits: int = 2048
    ) -> Outcome:
        """Log in with this pair, then log out. Never raises for network trouble."""
        with self._lock:
            if creds.username in self._banned:
                return Outcome(
                    status=None,
                    error="skipped: Betfair banned new logins for this account "
                    "(TEMPORARY_BAN_TOO_MANY_REQUESTS earlier in this run)",
                )
        link = Link(self, urls.login, crt, key, key_bits)
        try:
            outcome, token = self._login(link, creds, urls)
            if outcome.status == "TEMPORARY_BAN_TOO_MANY_REQUESTS":
                with self._lock:
                    self._banned.add(creds.username)
            if token is None:
                return outcome
            logout = urlsplit(urls.logout)
            if not (link.open and link.origin == (logout.scheme, logout.netloc)):
                link.close()  # Betfair logs out on another host: a second connection
                link = Link(self, urls.logout, crt, key, key_bits)
            return self._logout(link, creds, urls, token, outcome.attempts)
        finally:
            link.close()

    def _login(self, link: Link, creds: Credentials, urls: Endpoints) -> tuple[Outcome, str | None]:
        """One login, with retries where it is safe; the session token on SUCCESS."""
        request = _login_request(creds, urls)
        attempts = 0
        while True:
            attempts += 1
            self.limiter.wait(creds.username)
            tried = _try_login(link, request, attempts)
            if not (tried.retryable and attempts <= self.retries):
                return tried.outcome, tried.token
            time.sleep(self.backoff * 2 ** (attempts - 1))

    def _logout(
        self, link: Link, creds: Credentials, urls: Endpoints, token: str, attempts: int
    ) -> Outcome:
        headers = {
            "Accept": "application/json",
            "X-Authentication": token,
            "X-Application": creds.app_key.get_secret_value(),
        }
        try:
            answer = link.post(url_path(urls.logout), None, headers)
        except (CannotLoad, NotSent, OSError, http.client.HTTPException) as exc:
            return Outcome("SUCCESS", None, attempts, False, f"logout failed: {short(exc)}")
        answered = answer.json()
        if answered.get("status") == "SUCCESS":
            return Outcome("SUCCESS", None, attempts, True)
        error = answered.get("error") or f"HTTP {answer.status}"
        return Outcome("SUCCESS", None, attempts, False, f"logout answered {error}")


@dataclass(frozen=True)
class _Request:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Try:
    """One login attempt: its outcome, the session token on SUCCESS, and whether the
    request cannot have counted as a login (so that it may be sent again)."""

    outcome: Outcome
    token: str | None = None
    retryable: bool = False


def _login_request(creds: Credentials, urls: Endpoints) -> _Request:
    # %20 for spaces, like curl --data-urlencode and .NET's EscapeDataString.
    body = urlencode(
        {"username": creds.username, "password": creds.password.get_secret_value()},
        quote_via=quote,
    ).encode("ascii")
    headers = {
        "X-Application": creds.app_key.get_secret_value(),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    }
    return _Request(url_path(urls.login), body, headers)


def _try_login(link: Link, request: _Request, attempts: int) -> _Try:
    """Connect, send the login once, and judge the answer."""
    try:
        link.connect()
    except CannotLoad as exc:
        return _Try(
            Outcome(status=None, error=f"cannot load the client certificate and key: {exc}")
        )
    except ssl.SSLError as exc:
        return _Try(Outcome(status=None, error=tls_error(exc), attempts=attempts))
    except NotSent as exc:
        return _Try(Outcome(status=None, error=exc.error, attempts=attempts), retryable=True)
    try:
        answer = link.post(request.path, request.body, request.headers)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        return _Try(Outcome(status=None, error=after_send_error(exc), attempts=attempts))
    except ssl.SSLError as exc:  # e.g. TLS 1.3: the client certificate refused
        return _Try(Outcome(status=None, error=tls_error(exc), attempts=attempts))
    except (OSError, http.client.HTTPException) as exc:
        # The request may have reached Betfair and counted as a login (or a wrong
        # password): never sent twice.
        return _Try(Outcome(status=None, error=after_send_error(exc), attempts=attempts))
    return _judge_login(answer, attempts)


def _judge_login(answer: Answer, attempts: int) -> _Try:
    """What Betfair's answer says; one without a loginStatus is retryable on a 5xx."""
    answered = answer.json()
    status = answered.get("loginStatus")
    if not (isinstance(status, str) and status):
        error = bad_answer(answer)
        return _Try(
            Outcome(status=None, error=error, attempts=attempts), retryable=answer.status >= 500
        )
    if status != "SUCCESS":
        return _Try(Outcome(status=status, attempts=attempts))
    token = answered.get("sessionToken")
    if not isinstance(token, str) or not token:
        error = "SUCCESS without a session token"
        return _Try(Outcome(status=None, error=error, attempts=attempts))
    return _Try(Outcome(status=status, attempts=attempts), token)
