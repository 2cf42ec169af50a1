"""`bfprov history [ACCOUNT]...`: every change, publication, hook run and login check."""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.durations import parse_duration
from bfprov.errors import BfprovError
from bfprov.observed.events import read_events
from bfprov.plan.snapshot import load
from bfprov.views.history import HISTORY_WIDTH, history_json_chunks, history_table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bfprov.observed.events import Event
    from bfprov.settings import Settings


def history(
    settings: Settings,
    *,
    selection: Selection | None = None,
    as_json: bool,
    since: str | None = None,
    limit: int | None = None,
) -> int:
    """Show the audit trail of the selected accounts (all, and orphans, by default),
    streamed: only the newest `limit` events are ever held."""
    selection = selection or Selection()
    start = since_time(since, datetime.now(UTC)) if since is not None else None
    desired = selection.of(load(settings))
    names = {t.name for t in desired.targets}
    events: Iterable[Event] = (
        e
        for e in read_events(desired.output_dirs, since=start)
        if selection.everything or e.account in names
    )
    if limit is not None:
        events = collections.deque(events, maxlen=limit)
    if as_json:
        for chunk in history_json_chunks(events):
            console.write(chunk)
        return 0
    shown = list(events)
    if shown:
        console.table(history_table(shown), HISTORY_WIDTH)
    console.note(f"{len(shown)} event{'' if len(shown) == 1 else 's'}")
    return 0


def since_time(text: str, now: datetime) -> str:
    """`--since` as the trail's time format (ISO 8601, UTC, seconds): a duration before
    `now` (`7d`, `12h`) or a date or time (`2026-11-01`, `2026-11-01T09:00:00+00:00`)."""
    try:
        when = now - parse_duration(text)
    except (ValueError, OverflowError):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise BfprovError(
                f"--since: {text!r} is neither a duration like '7d' nor a date like '2026-11-01'"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")
