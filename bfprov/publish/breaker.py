"""A run's budget for endpoints that do not answer: two timeouts each, then skipped.

One silent Vault or Secrets Manager endpoint would otherwise cost a timeout per account
(20 accounts: minutes). Every call to a target in one run (observing, publishing,
staging) goes through the run's `Breaker`: after two timeouts of an endpoint (scheme,
host and port), its remaining calls fail at once with "skipped: <endpoint> did not
answer". After the first timeout, calls to that endpoint go one at a time, so calls
already under way when it came, and the one after it, end within a second timeout:
the endpoint costs the run at most two timeouts of wall time, however many accounts
use it. Endpoints that answer (even with an error) cost nothing here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from bfprov.publish.base import PublishError
from bfprov.publish.kinds import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable

    from bfprov.desired.targets import TargetConfig

T = TypeVar("T")

PARALLEL = 8  # calls to targets under way at once, in a run
MAX_TIMEOUTS = 2  # per endpoint and run, then its calls are skipped

_DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint(config: TargetConfig) -> str | None:
    """`scheme://host:port` of the server the target talks to; None for a local target
    (a manifest on disk), which is never skipped."""
    url = config.endpoint()
    if url is None:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range: validation refuses it, keep the text
        return f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    return f"{scheme}://{host}:{port}"


@dataclass
class _Endpoint:
    timeouts: int = 0
    gate: threading.Lock = field(default_factory=threading.Lock)


class Breaker:
    """The timeouts each endpoint cost this run; shared by every thread of the run.

    `timeout` is what each target is built with (seconds for connecting and for each
    reply; None: the default), `parallel` how many calls to targets a run makes at once.
    """

    def __init__(
        self, timeout: float | None = None, parallel: int = PARALLEL, limit: int = MAX_TIMEOUTS
    ) -> None:
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.parallel = parallel
        self.limit = limit
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}

    def call(self, config: TargetConfig, label: str, action: Callable[[], T]) -> T:
        """`action()` (a call to the target `label`), unless its endpoint is used up.

        Raises PublishError (of the action, or "skipped: ... did not answer").
        """
        where = endpoint(config)
        if where is None:
            return action()
        with self._lock:
            state = self._endpoints.setdefault(where, _Endpoint())
        if state.timeouts == 0:
            return self._counted(state, where, label, action)
        with state.gate:  # a timeout came: one call at a time until the budget is spent
            return self._counted(state, where, label, action)

    def _counted(self, state: _Endpoint, where: str, label: str, action: Callable[[], T]) -> T:
        if state.timeouts >= self.limit:
            raise PublishError(label, f"skipped: {where} did not answer")
        try:
            return action()
        except PublishError as exc:
            if getattr(exc, "timed_out", False):
                with self._lock:
                    state.timeouts += 1
            raise
