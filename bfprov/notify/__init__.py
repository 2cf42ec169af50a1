"""Notifications through Apprise: a message to each of the profile's `notify` URLs.

The URLs hold tokens (a Slack webhook, a Telegram bot), so they are secret references,
revealed only to hand them to Apprise, and never shown: a failure is named by the URL's
scheme alone (`json`, `slack`, ...), as a warning; a notification never fails a run.
Apprise is the `bfprov[notify]` extra, imported only when a message is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import SecretStr

TIMEOUT = 10.0  # seconds for each service


@dataclass(frozen=True)
class Message:
    """What is said: a title and a body, and Apprise's type (info, success, failure)."""

    title: str
    body: str
    kind: str = "info"


def send(urls: Sequence[SecretStr], message: Message) -> list[str]:
    """Send `message` to each URL; the warnings of those that failed (no URL in them)."""
    if not urls:
        return []
    try:
        import apprise
    except ImportError:
        return ["notify needs the apprise package: pip install 'bfprov[notify]'"]
    # Apprise logs its failures with the service's address: bfprov says them itself.
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.handlers = [logging.NullHandler()]
    warnings = []
    for url in urls:
        scheme = url.get_secret_value().partition("://")[0] or "?"
        service = apprise.Apprise()
        if not service.add(url.get_secret_value()):
            warnings.append(f"notify: a {scheme!r} URL is not one Apprise knows; not sent")
            continue
        if not service.notify(
            body=message.body, title=message.title, notify_type=message.kind, timeout=TIMEOUT
        ):
            warnings.append(f"notify: the {scheme} notification could not be sent")
    return warnings
