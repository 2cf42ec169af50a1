"""The one interface every publishing target implements, and what it reports.

A target is built for one account (its label names the account's secret or file), reads
only metadata when observed, and never puts a token or key material in a message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bfprov.errors import BfprovError
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from datetime import datetime
    from types import ModuleType

    from bfprov.publish.bundle import Bundle

_MAX_REASON = 300


@dataclass(frozen=True)
class Published:
    """What a target holds, from its metadata alone.

    `fingerprint` and `not_after` are None when the target holds a value bfprov did not
    write (changed out of band): a drift, like a different fingerprint. `version` is the
    target's own version id (Vault's version number, the AWS version id), when it has one.
    """

    fingerprint: str | None
    not_after: datetime | None
    version: str | None = None


class PublishError(BfprovError):
    """A target failed: the message names the target and the reason, on one line.

    The reason often quotes a server: it is cleaned of control characters and cut here,
    so output, records, events and history all get the same safe text.

    `timed_out` is set when the target did not answer in time (the run's breaker counts it).
    """

    def __init__(
        self,
        label: str,
        reason: str,
        *,
        sep: str = ": ",
        timed_out: bool = False,
    ) -> None:
        self.label = label
        self.reason = clean_text(reason, _MAX_REASON) or "failed"
        self.timed_out = timed_out
        super().__init__(f"{label}{sep}{self.reason}")


class Target(Protocol):
    """One account's publication at one place (a Vault path, an AWS secret, a manifest)."""

    @property
    def label(self) -> str:
        """Stable and secret-free, for messages: `vault https://h:8200 secret/betfair/alice`."""
        ...

    def observe(self) -> Published | None:
        """What the target holds (metadata only, never key material); None when nothing."""
        ...

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Make `bundle` the live pair. `last_version` is the version bfprov last wrote
        (None when it never wrote one); targets with check-and-set refuse to overwrite a
        value that changed since."""
        ...

    def stage(self, bundle: Bundle) -> Published | None:
        """Offer `bundle` as the next pair without making it live (AWS: AWSPENDING).
        Targets without such a notion do nothing and return None."""
        ...


def extra(module: str, extra: str) -> ModuleType:
    """Import an optional dependency when a target first needs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PublishError(
            f"{extra} target",
            f"needs the {module} package: pip install 'bfprov[{extra}]'",
            sep=" ",
        ) from None
