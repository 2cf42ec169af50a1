"""The only network code: Betfair's certlogin and logout, and what each answer means.

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
  BFPROV_CA_BUNDLE when set); there is no way to turn that off.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from bfprov import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import SecretStr

    from bfprov.desired.models import Jurisdiction

LOGIN_PATH = "/api/certlogin"
LOGOUT_PATH = "/api/logout"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
USER_AGENT = f"bfprov/{__version__}"

# loginStatus -> (what it means, what the operator should do). From Betfair's
# documentation of non-interactive login; `{crt}` and `{upload_url}` are filled in.
CATALOGUE: dict[str, tuple[str, str]] = {
    "SUCCESS": ("logged in", "nothing"),
    "CERT_AUTH_REQUIRED": (
        "certificate required, or present but Betfair could not authenticate with it",
        "upload {crt} at {upload_url} (Automated Betting Program Access -> Edit), then verify",
    ),
    "INVALID_USERNAME_OR_PASSWORD": (
        "the username or password is invalid",
        "check the account's username and password secret; do not retry blindly: "
        "repeated failures lock the account",
    ),
    "ACCOUNT_NOW_LOCKED": (
        "the account was just locked after repeated failed logins",
        "unlock it on the Betfair website or with Betfair support, then fix the password secret",
    ),
    "ACCOUNT_ALREADY_LOCKED": (
        "the account is already locked",
        "unlock it on the Betfair website or with Betfair support",
    ),
    "PENDING_AUTH": (
        "pending authentication",
        "complete the authentication on the Betfair website",
    ),
    "TELBET_TERMS_CONDITIONS_NA": (
        "Telbet terms and conditions rejected",
        "log in on the website and accept the terms",
    ),
    "DUPLICATE_CARDS": ("duplicate cards", "contact Betfair support"),
    "SECURITY_QUESTION_WRONG_3X": (
        "the security question was answered wrongly 3 times",
        "contact Betfair support",
    ),
    "KYC_SUSPEND": ("suspended for identity checks (KYC)", "complete the checks with Betfair"),
    "SUSPENDED": ("the account is suspended", "contact Betfair support"),
    "CLOSED": ("the account is closed", "remove it from the profiles or contact Betfair"),
    "SELF_EXCLUDED": ("the account has been self-excluded", "none while the exclusion lasts"),
    "INVALID_CONNECTIVITY_TO_REGULATOR_DK": (
        "the Danish regulator cannot be reached",
        "retry later; Danish residents cannot use bot login anyway",
    ),
    "NOT_AUTHORIZED_BY_REGULATOR_DK": (
        "not authorised by the Danish regulator",
        "Danish residents cannot use bot login",
    ),
    "INVALID_CONNECTIVITY_TO_REGULATOR_IT": (
        "the Italian regulator cannot be reached (internal problem or timeout)",
        "retry later",
    ),
    "NOT_AUTHORIZED_BY_REGULATOR_IT": (
        "not authorised by the Italian regulator to act in the Italian jurisdiction",
        "check the account's jurisdiction and status with Betfair Italia",
    ),
    "SECURITY_RESTRICTED_LOCATION": (
        "the account is restricted due to security concerns",
        "contact Betfair support",
    ),
    "BETTING_RESTRICTED_LOCATION": (
        "the account is accessed from a location where betting is restricted",
        "log in from an allowed location (check the host's egress IP)",
    ),
    "TRADING_MASTER": ("a Trading Master account", "use the sub-account for bot login"),
    "TRADING_MASTER_SUSPENDED": ("a suspended Trading Master account", "contact Betfair support"),
    "AGENT_CLIENT_MASTER": ("an Agent Client Master account", "use the client account"),
    "AGENT_CLIENT_MASTER_SUSPENDED": (
        "a suspended Agent Client Master account",
        "contact Betfair support",
    ),
    "DANISH_AUTHORIZATION_REQUIRED": (
        "Danish authorisation required",
        "Danish residents cannot use bot login",
    ),
    "SPAIN_MIGRATION_REQUIRED": ("Spain migration required", "log in on betfair.es to migrate"),
    "DENMARK_MIGRATION_REQUIRED": (
        "Denmark migration required",
        "Danish residents cannot use bot login",
    ),
    "SPANISH_TERMS_ACCEPTANCE_REQUIRED": (
        "the latest Spanish terms and conditions must be accepted",
        "log in on the website and accept the new conditions",
    ),
    "ITALIAN_CONTRACT_ACCEPTANCE_REQUIRED": (
        "the latest Italian contract must be accepted",
        "log in on the website and accept the new contract",
    ),
    "CHANGE_PASSWORD_REQUIRED": (
        "a password change is required",
        "change the password on the website, then update the password secret",
    ),
    "PERSONAL_MESSAGE_REQUIRED": (
        "a personal message for the user is waiting",
        "log in on the website and read it",
    ),
    "INTERNATIONAL_TERMS_ACCEPTANCE_REQUIRED": (
        "the latest international terms and conditions must be accepted",
        "log in on the website and accept them",
    ),
    "EMAIL_LOGIN_NOT_ALLOWED": (
        "this account has not opted in to log in with its email address",
        "use the username, not the email address, in the profile",
    ),
    "MULTIPLE_USERS_WITH_SAME_CREDENTIAL": (
        "more than one account has the same credential",
        "log in with the username rather than the email address",
    ),
    "ACCOUNT_PENDING_PASSWORD_CHANGE": (
        "the account must undergo password recovery to reactivate",
        "recover the password on the website, then update the password secret",
    ),
    "TEMPORARY_BAN_TOO_MANY_REQUESTS": (
        "more than 100 successful logins a minute: new logins are banned for 20 minutes",
        "wait 20 minutes; bots should reuse sessions (keepAlive) instead of logging in again",
    ),
    "ITALIAN_PROFILING_ACCEPTANCE_REQUIRED": (
        "Italian profiling conditions must be accepted",
        "log in on the website and accept the new conditions",
    ),
    "AUTHORIZED_ONLY_FOR_DOMAIN_RO": (
        "this is not a .ro account, but the login went to the Romanian domain",
        "set the account's jurisdiction to the one it belongs to",
    ),
    "AUTHORIZED_ONLY_FOR_DOMAIN_SE": (
        "this is not a .se account, but the login went to the Swedish domain",
        "set the account's jurisdiction to the one it belongs to",
    ),
    "SWEDEN_NATIONAL_IDENTIFIER_REQUIRED": (
        "a Swedish national identifier is required",
        "provide it on betfair.se",
    ),
    "SWEDEN_BANK_ID_VERIFICATION_REQUIRED": (
        "Swedish BankID verification is required",
        "verify with BankID on betfair.se",
    ),
    "ACTIONS_REQUIRED": (
        "information is missing on the account",
        "log in on the website to provide it",
    ),
    "INPUT_VALIDATION_ERROR": (
        "the request (headers or body) was not valid",
        "check the app key and username; if they are right, report this as a bfprov bug",
    ),
}


def explain(status: str, *, crt: str = "the .crt", upload_url: str = "") -> tuple[str, str]:
    """(meaning, remedy) for a loginStatus; unknown codes are reported as they come."""
    if status not in CATALOGUE:
        return (f"unknown loginStatus {status}", "see Betfair's documentation for this code")
    meaning, remedy = CATALOGUE[status]
    return meaning, remedy.format(crt=crt, upload_url=upload_url or "Betfair's website")


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

        Raises _CannotLoad when the pair cannot be loaded.
        """
        with self._lock:
            context = self._context(bool(key_bits) and key_bits < 2048)
            try:
                context.load_cert_chain(certfile=str(crt), keyfile=str(key))
            except (ssl.SSLError, OSError) as exc:
                raise _CannotLoad(str(exc)) from exc
            return context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)


class _CannotLoad(Exception):
    """The client certificate and key cannot be loaded."""


class _NotSent(Exception):
    """No connection could be made: the request certainly never left."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class _Answer:
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


class _Link:
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

        Raises _NotSent (no connection), _CannotLoad, ssl.SSLError (handshake refused or
        the server's certificate not trusted: nothing was sent).
        """
        if self._conn is not None and self._conn.sock is not None:
            return self._conn
        self.close()
        connect_timeout, read_timeout = self._client.timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_timeout)
        except OSError as exc:
            raise _NotSent(_connection_error(exc)) from exc
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
                    raise _NotSent(f"TLS handshake failed: {_short(exc)}") from exc
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        conn = http.client.HTTPConnection(self.host, self.port, timeout=read_timeout)
        conn.sock = sock
        conn.auto_open = 0
        self._conn = conn
        return conn

    def post(self, path: str, body: bytes | None, headers: dict[str, str]) -> _Answer:
        """One request on the open connection. Raises OSError or http.client.HTTPException."""
        conn = self.connect()
        try:
            conn.request("POST", path, body=body, headers={"User-Agent": USER_AGENT, **headers})
            response = conn.getresponse()
            return _Answer(response.status, response.read())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
        link = _Link(self, urls.login, crt, key, key_bits)
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
                link = _Link(self, urls.logout, crt, key, key_bits)
            return self._logout(link, creds, urls, token, outcome.attempts)
        finally:
            link.close()

    def _login(
        self, link: _Link, creds: Credentials, urls: Endpoints
    ) -> tuple[Outcome, str | None]:
        """One login, with retries where it is safe; the session token on SUCCESS."""
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
        path = _path(urls.login)
        attempts = 0
        while True:
            attempts += 1
            self.limiter.wait(creds.username)
            try:
                link.connect()
            except _CannotLoad as exc:
                error = f"cannot load the client certificate and key: {exc}"
                return Outcome(status=None, error=error), None
            except ssl.SSLError as exc:
                return Outcome(status=None, error=_tls_error(exc), attempts=attempts), None
            except _NotSent as exc:
                if attempts <= self.retries:
                    time.sleep(self.backoff * 2 ** (attempts - 1))
                    continue
                return Outcome(status=None, error=exc.error, attempts=attempts), None
            try:
                answer = link.post(path, body, headers)
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
                return Outcome(status=None, error=_after_send_error(exc), attempts=attempts), None
            except ssl.SSLError as exc:  # e.g. TLS 1.3: the client certificate refused
                return Outcome(status=None, error=_tls_error(exc), attempts=attempts), None
            except (OSError, http.client.HTTPException) as exc:
                # The request may have reached Betfair and counted as a login (or a
                # wrong password): never sent twice.
                return Outcome(status=None, error=_after_send_error(exc), attempts=attempts), None
            answered = answer.json()
            status = answered.get("loginStatus")
            status = status if isinstance(status, str) and status else None
            if status is None and answer.status >= 500 and attempts <= self.retries:
                time.sleep(self.backoff * 2 ** (attempts - 1))
                continue
            if status is None:
                return Outcome(status=None, error=_bad_answer(answer), attempts=attempts), None
            if status == "SUCCESS":
                token = answered.get("sessionToken")
                if not isinstance(token, str) or not token:
                    error = "SUCCESS without a session token"
                    return Outcome(status=None, error=error, attempts=attempts), None
                return Outcome(status=status, attempts=attempts), token
            return Outcome(status=status, attempts=attempts), None

    def _logout(
        self, link: _Link, creds: Credentials, urls: Endpoints, token: str, attempts: int
    ) -> Outcome:
        headers = {
            "Accept": "application/json",
            "X-Authentication": token,
            "X-Application": creds.app_key.get_secret_value(),
        }
        try:
            answer = link.post(_path(urls.logout), None, headers)
        except (_CannotLoad, _NotSent, OSError, http.client.HTTPException) as exc:
            return Outcome("SUCCESS", None, attempts, False, f"logout failed: {_short(exc)}")
        answered = answer.json()
        if answered.get("status") == "SUCCESS":
            return Outcome("SUCCESS", None, attempts, True)
        error = answered.get("error") or f"HTTP {answer.status}"
        return Outcome("SUCCESS", None, attempts, False, f"logout answered {error}")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _bad_answer(answer: _Answer) -> str:
    kind = "JSON without loginStatus" if answer.is_json() else "not JSON"
    return f"unexpected answer: HTTP {answer.status}, {kind}"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _tls_error(exc: BaseException) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            "the server's certificate is not trusted (set BFPROV_CA_BUNDLE for a private CA); "
            "nothing was sent"
        )
    return f"TLS handshake failed: {_short(exc)}"


def _after_send_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time (read timeout); not retried: the login may have counted"
    return (
        "the connection broke before a complete answer; not retried: the login may have "
        f"counted ({_short(exc)})"
    )


def _connection_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, socket.gaierror) or "Failed to resolve" in str(exc):
        return "host name not found"
    return f"connection failed: {_short(exc)}"


def sandbox_upload(base_url: str, ca_bundle: Path | None, username: str, cert_pem: bytes) -> str:
    """Upload a certificate to the embedded emulator (its stand-in for the website).

    Returns the fingerprint the emulator now holds for the account.
    """
    import requests

    from bfprov.errors import BfprovError

    parts = urlsplit(base_url)
    url = f"{parts.scheme}://{parts.netloc}/sandbox/upload"
    verify: str | bool = str(ca_bundle) if ca_bundle else True
    try:
        response = requests.post(
            url,
            data={"username": username, "certificate": cert_pem.decode("ascii")},
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            verify=verify,
        )
    except requests.exceptions.SSLError as exc:
        raise BfprovError(f"upload to {url} failed: {_tls_error(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise BfprovError(f"upload to {url} failed: {_connection_error(exc)}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or answer.get("status") != "SUCCESS":
        error = (answer.get("error") if isinstance(answer, dict) else None) or (
            f"HTTP {response.status_code}"
        )
        raise BfprovError(f"the emulator refused the upload for {username}: {error}")
    return str(answer.get("fingerprint", ""))
