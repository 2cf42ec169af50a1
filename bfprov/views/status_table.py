"""`bfprov status` as a table, a summary line, and JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text

from bfprov.views.status import State

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.table import Table

    from bfprov.views.status import LastCheck, StatusRow

TABLE_WIDTH = 160  # when standard output is not a terminal

STATE_STYLES: dict[State, str] = {
    State.OK: "green",
    State.RENEWAL_DUE: "yellow",
    State.PENDING_UPLOAD: "yellow",
    State.EXPIRED: "red",
    State.MISSING: "red",
    State.ORPHAN: "dim",
}


def check_text(check: LastCheck | None, last_success: datetime | None = None) -> str:
    """The last check in a few words: "SUCCESS 2026-11-21 07:45", or "never"."""
    if check is None:
        # The record keeps only the latest round of checks, which may have tried just
        # a staged pair; the last success of the live pair is kept apart.
        return f"last SUCCESS {_minute(last_success)}" if last_success else "never"
    result = check.login_status or (f"error: {check.error}" if check.error else "no answer")
    if check.at is not None:
        result += f" {_minute(check.at)}"
    if not check.current:
        result += " (stale: another certificate)"
    return result


def _minute(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def status_table(rows: Sequence[StatusRow]) -> Table:
    """One line per account; the state coloured."""
    from rich.table import Table

    table = Table(title="Certificates", title_justify="left")
    table.add_column("account", overflow="fold", min_width=8)
    table.add_column("jurisdiction", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("not after", no_wrap=True)
    table.add_column("days left", justify="right", no_wrap=True)
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("last check", overflow="fold", min_width=16)
    delivering = any(r.published for r in rows)
    if delivering:
        table.add_column("published", no_wrap=True)
    for r in rows:
        # Text, not str: a recorded error may hold brackets that Rich would take for markup.
        last = (
            check_text(r.last_check, r.last_login_success) if r.state is not State.ORPHAN else "-"
        )
        cells: list[str | Text] = [
            Text(r.account),
            r.jurisdiction or "-",
            Text(r.state.value, style=STATE_STYLES[r.state]),
            f"{r.not_after:%Y-%m-%d}" if r.not_after else "-",
            str(round(r.days_left)) if r.days_left is not None else "-",
            r.fingerprint[:16] if r.fingerprint else "-",
            Text(last),
        ]
        if delivering:
            held = sum(1 for _, ok in r.published if ok)
            style = "green" if held == len(r.published) else "red"
            cells.append(Text(f"{held}/{len(r.published)}" if r.published else "-", style=style))
        table.add_row(*cells)
    return table


def summary(rows: Sequence[StatusRow]) -> str:
    """E.g. "3 accounts: 2 ok, 1 pending-upload"."""
    counts = {s: sum(1 for r in rows if r.state is s) for s in State}
    parts = [f"{n} {s.value}" for s, n in counts.items() if n]
    head = f"{len(rows)} account{'' if len(rows) == 1 else 's'}"
    return f"{head}: {', '.join(parts)}" if parts else head


def status_json(rows: Sequence[StatusRow]) -> list[dict[str, Any]]:
    """The rows as `status --json` prints them."""
    return [r.to_json() for r in rows]
