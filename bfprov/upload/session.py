"""The entries of an upload session and their states, shared by the page's requests.

An entry is one pair awaiting its upload: a new account's live pair that has never
logged in, or a staged pair. Its state moves pending -> checking -> live | failed (and
failed -> checking again); a check runs on its own thread through the `check` callable
the command gives, so the page stays responsive and a second check of the same account
while one runs is refused.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Literal

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

Status = Literal["pending", "checking", "live", "failed"]


@dataclass(frozen=True)
class Entry:
    """One pair awaiting its upload, as the page shows it (no secret in it)."""

    account: str
    username: str
    jurisdiction: str
    upload_url: str
    pair: Literal["live", "staged"]
    crt: Path  # the certificate to upload: served as a download, never the key
    fingerprint: str
    status: Status = "pending"
    login_status: str = ""
    message: str = ""  # what the last check found, and its remedy

    def to_json(self) -> dict[str, str]:
        """The entry as the page's API gives it."""
        data = asdict(self)
        data["crt"] = self.crt.name
        return data


@dataclass(frozen=True)
class Verdict:
    """How a check ended: live (logged in, and promoted if staged) or failed, and why."""

    live: bool
    login_status: str
    message: str


class UploadSession:
    """The entries, under one lock; checks run on threads of their own."""

    def __init__(self, entries: Sequence[Entry], check: Callable[[Entry], Verdict]) -> None:
        self._entries = {e.account: e for e in entries}
        self._check = check
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def entries(self) -> list[Entry]:
        """Every entry, in the profiles' order."""
        with self._lock:
            return list(self._entries.values())

    def entry(self, account: str) -> Entry | None:
        with self._lock:
            return self._entries.get(account)

    def progress(self) -> tuple[int, int]:
        """(entries live, entries in all)."""
        with self._lock:
            done = sum(1 for e in self._entries.values() if e.status == "live")
            return done, len(self._entries)

    def start(self, account: str) -> bool:
        """Start checking `account`; False when it is unknown, live, or being checked."""
        with self._lock:
            entry = self._entries.get(account)
            if entry is None or entry.status in ("checking", "live"):
                return False
            self._entries[account] = replace(entry, status="checking", message="")
        thread = threading.Thread(
            target=self._run, args=(account,), name=f"bfprov-check-{account}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the checks started so far (at shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _run(self, account: str) -> None:
        entry = self.entry(account)
        assert entry is not None
        try:
            verdict = self._check(entry)
        except BfprovError as exc:  # the lock is held, a secret is missing: said in one line
            verdict = Verdict(False, "", str(exc))
        except BaseException:
            # A bug: its traceback goes to the terminal; the entry must not stay "checking".
            self._finish(entry, Verdict(False, "", "bfprov failed; see its terminal"))
            raise
        self._finish(entry, verdict)

    def _finish(self, entry: Entry, verdict: Verdict) -> None:
        with self._lock:
            self._entries[entry.account] = replace(
                entry,
                status="live" if verdict.live else "failed",
                login_status=verdict.login_status,
                message=verdict.message,
            )
