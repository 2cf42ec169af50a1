"""`bfprov status`: per account, the live certificate, its expiry, its state, the last login.

It only reads: profiles, the disk (through the observer) and each account's record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.errors import BfprovError
from bfprov.plan.snapshot import load
from bfprov.publish.planning import snapshot
from bfprov.views.json_text import dump_json
from bfprov.views.prometheus import prometheus_text
from bfprov.views.status import status_rows
from bfprov.views.status_table import TABLE_WIDTH, status_json, status_table, summary

if TYPE_CHECKING:
    from bfprov.settings import Settings


def status(
    settings: Settings, *, as_json: bool, prometheus: bool, selection: Selection | None = None
) -> int:
    """Report every selected account (and, when all are, the orphaned directories); exit 0
    whatever the states (it reports, it is not a check)."""
    if as_json and prometheus:
        raise BfprovError("--json and --prometheus cannot be used together: choose one")
    selection = selection or Selection()
    desired = selection.of(load(settings))
    rows = status_rows(snapshot(desired, orphans=selection.everything, refresh=False))
    if as_json:
        console.raw(dump_json(status_json(rows)))
    elif prometheus:
        console.raw(prometheus_text(rows))
    else:
        if rows:
            console.table(status_table(rows), TABLE_WIDTH)
        console.note(summary(rows))
    return 0
