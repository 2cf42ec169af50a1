"""Login check results as a table with what to do, as JSON, and a summary line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from bfprov.console import Message
from bfprov.views.json_text import dump_json

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from rich.table import Table

    from bfprov.verify.checks import CheckResult


def results_table(results: Sequence[CheckResult], promoted: Collection[str] = ()) -> Table:
    """Account, jurisdiction, pair, fingerprint and result; remedies go below it. The
    staged pair of an account `promoted` since its check is live now: its row says so
    (the live row after it shows the same fingerprint)."""
    from rich.table import Table

    table = Table(title="Login checks", title_justify="left")
    table.add_column("account", overflow="fold")
    for column in ("jurisdiction", "pair", "fingerprint"):
        table.add_column(column, no_wrap=True)
    table.add_column("result", no_wrap=True)
    for r in results:
        result = r.outcome.status or f"error: {r.outcome.error}"
        if r.success and r.outcome.logged_out is False:
            result += f" ({r.outcome.logout_error})"
        style = "green" if r.success else ("yellow" if r.awaiting_upload else "red")
        short = r.fingerprint[:16] if r.fingerprint else "-"
        pair = "staged (now live)" if r.pair == "staged" and r.account in promoted else r.pair
        table.add_row(r.account, r.jurisdiction, pair, short, Text(result, style=style))
    return table


def results_json(results: Sequence[CheckResult]) -> str:
    """The results as `verify --json` prints them."""
    return dump_json([r.to_json() for r in results])


def show(results: Sequence[CheckResult], promoted: Collection[str] = ()) -> list[Message]:
    """The table of results, then what to do about each failure (nothing when there are
    no results); `promoted`: accounts whose staged pair went live after its check."""
    if not results:
        return []
    shown = [Message(results_table(results, promoted), "render")]
    todo = [r for r in results if not r.success]
    if todo:
        shown.append(Message("What to do:"))
        shown += [
            Message(f"  {r.account} ({r.pair}): {r.meaning}.\n    -> {r.remedy}") for r in todo
        ]
    return shown


def summary(results: Sequence[CheckResult], accounts: int, seconds: float) -> str:
    """One line: how many, how long, the rate, how many logged in and how many failed."""
    ok = sum(1 for r in results if r.success)
    pairs = "" if len(results) == accounts else f" ({len(results)} pairs)"
    rate = len(results) / seconds if seconds > 0 else 0.0
    return (
        f"verified {accounts} account{'s' if accounts != 1 else ''}{pairs} in {seconds:.1f} s "
        f"({rate:.1f} logins/s): {ok} ok, {len(results) - ok} failed"
    )
