"""The rules of Betfair's identity service, without the network: accounts, logins, sessions.

Every request is judged here under one lock (the HTTP server is threaded), recorded as
an Event, and every change to an account is written to `state.json` at once (once per
`batch()`) so a rehearsal survives a restart of the emulator.

state.json holds the accounts' passwords in clear, mode 0600: the emulator must know
them to judge a login. It is a local rehearsal tool; never give it a real password.
Sessions are kept in memory only: a restart ends them, and tokens never touch the disk.

Past 300 lines on purpose: accounts, sessions, locks, bans and the rate are one state
machine under one lock; split, its invariants would span modules.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bfprov.crypto import InvalidMaterial, inspect_certificate
from bfprov.sandbox.tls import SandboxError, fingerprint, write_atomically

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_FORMAT_VERSION = 1
_RATE_WINDOW = 60.0  # seconds: Betfair counts successful logins per minute
_MAX_EVENTS = 100_000  # a long `sandbox serve` must not grow without bound
_FORM = "application/x-www-form-urlencoded"
_WARNING = (
    "bfprov sandbox state: passwords are stored in clear so the emulator can judge "
    "logins. Use made-up passwords only, never a real Betfair one."
)

SessionAction = Literal["logout", "keepAlive"]


@dataclass(frozen=True)
class Event:
    """One request the emulator answered. Never holds a password or a session token."""

    path: str
    method: str
    username: str | None
    app_key: str | None
    cert_fingerprint: str | None
    content_type: str | None
    login_status: str | None  # loginStatus, or the status of logout, keepAlive, upload


@dataclass
class _Account:
    password: str
    app_key: str | None = None
    certificate: str | None = None  # PEM of the uploaded certificate
    fingerprint: str | None = None
    failures: int = 0  # wrong passwords in a row
    locked: bool = False
    banned_until: float | None = None  # wall-clock time, so a ban survives a restart


@dataclass(frozen=True)
class _Session:
    username: str
    product: str


def parse_form(body: bytes) -> dict[str, list[str]] | None:
    """The fields of an application/x-www-form-urlencoded body, or None if malformed."""
    try:
        return parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=16,
        )
    except ValueError:  # UnicodeDecodeError included
        return None


def _field(form: dict[str, list[str]] | None, name: str) -> str | None:
    """The field's one value; None when absent or ambiguous (given twice)."""
    values = (form or {}).get(name)
    return values[0] if values is not None and len(values) == 1 else None


def _is_form(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == _FORM


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
        self._accounts: dict[str, _Account] = {}
        self._sessions: dict[str, _Session] = {}
        self._logins: dict[str, deque[float]] = {}  # recent successful logins per username
        self._events: deque[Event] = deque(maxlen=_MAX_EVENTS)
        self._batched = 0  # inside batch(): changes are saved once, at its end
        self._dirty = False
        self._load()

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
                self._accounts[username] = _Account(password=password, app_key=app_key)
            else:
                account.password, account.app_key = password, app_key
            self._save()

    def upload(self, username: str, cert_pem: bytes) -> str:
        """Replace the account's certificate; its fingerprint. KeyError, InvalidMaterial."""
        pem, digest = _read_certificate(cert_pem)
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
        form = parse_form(body) if _is_form(content_type) else None
        username, password = _field(form, "username"), _field(form, "password")
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
        if not _is_form(content_type) or not (app_key or "").strip():
            return "INPUT_VALIDATION_ERROR", None
        if username is None or password is None:
            return "INPUT_VALIDATION_ERROR", None
        account = self._accounts.get(username)
        if account is None:
            return "INVALID_USERNAME_OR_PASSWORD", None
        if account.locked:
            return "ACCOUNT_ALREADY_LOCKED", None
        now = self._clock()
        if account.banned_until is not None:
            if now < account.banned_until:
                return "TEMPORARY_BAN_TOO_MANY_REQUESTS", None
            account.banned_until = None
            self._save()
        # The certificate is judged before the password: without the right one Betfair
        # answers CERT_AUTH_REQUIRED whatever the password, so a wrong certificate
        # never moves an account towards a lock.
        if cert_fingerprint is None or cert_fingerprint != account.fingerprint:
            return "CERT_AUTH_REQUIRED", None
        if not hmac.compare_digest(password.encode(), account.password.encode()):
            account.failures += 1
            if account.failures >= self._lock_after:
                account.locked = True
                self._save()
                return "ACCOUNT_NOW_LOCKED", None
            self._save()
            return "INVALID_USERNAME_OR_PASSWORD", None
        recent = self._logins.setdefault(username, deque())
        while recent and recent[0] <= now - _RATE_WINDOW:
            recent.popleft()
        if len(recent) >= self._rate_limit:
            account.banned_until = now + self._ban_seconds
            # The ban is the penalty; afterwards the count starts from nothing.
            recent.clear()
            self._save()
            return "TEMPORARY_BAN_TOO_MANY_REQUESTS", None
        recent.append(now)
        if account.failures:
            account.failures = 0
            self._save()
        token = secrets.token_urlsafe(33)  # 44 characters, like Betfair's tokens
        self._sessions[token] = _Session(username, (app_key or "").strip())
        return "SUCCESS", token

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
        form = parse_form(body) if _is_form(content_type) else None
        username, certificate = _field(form, "username"), _field(form, "certificate")
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
        """Write every account to state.json (0600); the caller holds the lock."""
        if self._batched:
            self._dirty = True
            return
        self._dirty = False
        state = {
            "format_version": _FORMAT_VERSION,
            "warning": _WARNING,
            "accounts": {name: vars(account) for name, account in self._accounts.items()},
        }
        data = json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        write_atomically(self._state_file, data.encode("utf-8"), 0o600)

    def _load(self) -> None:
        if not self._state_file.exists():
            return
        problem = f"the sandbox state {self._state_file} cannot be read"
        try:
            state: Any = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SandboxError(f"{problem}; delete it to start afresh") from exc
        if not isinstance(state, dict) or state.get("format_version") != _FORMAT_VERSION:
            raise SandboxError(f"{problem}: unknown format; delete it to start afresh")
        try:
            self._accounts = {
                str(name): _Account(**fields) for name, fields in state["accounts"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise SandboxError(f"{problem}: malformed; delete it to start afresh") from exc
        if not all(isinstance(account.password, str) for account in self._accounts.values()):
            raise SandboxError(f"{problem}: malformed; delete it to start afresh")
        if self._state_file.stat().st_mode & 0o077:
            self._state_file.chmod(0o600)  # it holds passwords


def _read_certificate(cert_pem: bytes) -> tuple[str, str]:
    """(normalised PEM, fingerprint) of one certificate; InvalidMaterial otherwise.

    A file that also holds a private key is refused: what gets uploaded is the .crt,
    which is meant to be shared.
    """
    inspect_certificate(cert_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InvalidMaterial("the certificate cannot be read") from exc
    pem = cert.public_bytes(Encoding.PEM).decode("ascii")
    return pem, fingerprint(cert)
