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


def history_table(events: Sequence[Event]) -> Table:
    """One line per event, oldest first.

    The trail is a file anyone with access may have written (or an older bfprov, before
    server text was cleaned): its text is shown without control characters or escapes.
    """
    from rich.table import Table

    table = Table(title="History", title_justify="left")
    for name in ("time", "account", "event", "fingerprint", "what", "by"):
        table.add_column(name, overflow="fold")
    for e in events:
        what = e.target or (f"{e.pair} {e.login_status}" if e.login_status else "") or ""
        if e.detail:
            what = f"{what}: {e.detail}" if what else e.detail
        table.add_row(
            _text(e.time),
            _text(e.account),
            _text(e.event),
            _text(e.fingerprint[:16]) if e.fingerprint else "-",
            _text(what or "-"),
            _text(f"{e.user}@{e.host}"),
        )
    return table


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
