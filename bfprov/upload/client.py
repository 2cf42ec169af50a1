"""The upload page driven as a browser would (the demo's person at the page): start
`bfprov upload --no-browser`, open its address, press "Check", wait for the verdict."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import requests

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

_URL = re.compile(r"(http://127\.0\.0\.1:\d+)/\?token=\S+")
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class UploadPage:
    """`bfprov upload --no-browser` in its own process, for the length of a `with`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        argv = [sys.executable, "-m", "bfprov", "upload", "--no-browser", "--port", "0"]
        self._process = subprocess.Popen(
            argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._process.stdout is not None
        found = None
        for _ in range(4):
            found = found or _URL.search(self._process.stdout.readline())
        if found is None:
            self.close()
            raise BfprovError("bfprov upload did not print its address")
        self.url, self._base = found[0], found[1]
        self._http = requests.Session()  # keeps the cookie the token is turned into
        page = self._http.get(self.url, timeout=10).text  # the cookie, then the page
        csrf = _CSRF.search(page)
        self._csrf = csrf[1] if csrf else ""

    def check(self, account: str, seconds: float = 60) -> str:
        """Press "Check" for `account`; what its entry says once the check is done."""
        check = f"{self._base}/api/check/{account}"
        self._http.post(check, headers={"X-CSRF-Token": self._csrf}, timeout=10)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            entry = self._entry(account)
            if entry["status"] not in ("pending", "checking"):
                return f"{entry['status']}: {entry['message']}"
            time.sleep(0.2)
        raise BfprovError(f"the check of {account} did not end within {seconds:g}s")

    def _entry(self, account: str) -> dict[str, Any]:
        state = self._http.get(f"{self._base}/api/state", timeout=10).json()
        entry: dict[str, Any] = next(e for e in state["entries"] if e["account"] == account)
        return entry

    def close(self) -> int:
        """Stop the session (SIGTERM) and return its exit code."""
        self._http.close()
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout=30)

    def __enter__(self) -> UploadPage:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        code = self.close()
        if code != 0 and kind is None:
            raise BfprovError(f"bfprov upload exited {code}, expected 0")
