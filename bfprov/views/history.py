"""`bfprov history`: the audit trail as a table or JSON."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from rich.text import Text

from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from rich.table import Table

    from bfprov.observed.events import Event


HISTORY_WIDTH = 100  # the table's width when standard output is not a terminal


def history_table(events: Sequence[Event]) -> Table:
    """One line per event, oldest first, in about 100 columns: the time to the minute
    (UTC), the fingerprint's first 16 characters, the user alone (`--json` has it all).

    The trail is a file anyone with access may have written (or an older bfprov, before
    server text was cleaned): its text is shown without control characters or escapes.
    """
    from rich.table import Table

    table = Table(title="History (times in UTC)", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("account", overflow="fold")
    table.add_column("event", no_wrap=True)
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("what", overflow="fold", min_width=28)
    table.add_column("by", overflow="fold")
    for e in events:
        table.add_row(
            _text(_minute(e.time)),
            _text(e.account),
            _text(e.event),
            _text(e.fingerprint[:16]) if e.fingerprint else "-",
            _text(_what(e) or "-"),
            _text(e.user),
        )
    return table


def _minute(time: str) -> str:
    """`2026-12-06T07:45:12+00:00` as `2026-12-06 07:45` (the trail's times are UTC)."""
    return time[:16].replace("T", " ") if time[10:11] == "T" else time


def _what(e: Event) -> str:
    """The target or the login checked, and the detail. A hook's detail names its
    program already: by its file name, not its whole path."""
    if e.event == "hook" and e.target:
        detail = e.detail or ""
        return detail.replace(e.target, e.target.rsplit("/", 1)[-1]) or e.target
    what = e.target or (f"{e.pair} {e.login_status}" if e.login_status else "") or ""
    if e.detail:
        what = f"{what}: {e.detail}" if what else e.detail
    return what


def _text(value: str) -> Text:
    # Text: a detail may hold brackets Rich would take for markup.
    return Text(clean_text(value, None))


def history_json_chunks(events: Iterable[Event]) -> Iterator[str]:
    """The events as `history --json` prints them (an indented JSON list), a piece at a
    time: a long trail is never held whole."""
    sep = "[\n"
    for e in events:
        item = json.dumps(e.to_json(), indent=2, ensure_ascii=False)
        yield sep + textwrap.indent(item, "  ")
        sep = ",\n"
    yield "[]\n" if sep == "[\n" else "\n]\n"
