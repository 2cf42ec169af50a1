"""`bfprov history [ACCOUNT]...`: every change, publication, hook run and login check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.observed.events import read_events
from bfprov.plan.snapshot import load
from bfprov.views.history import history_json, history_table
from bfprov.views.json_text import dump_json
from bfprov.views.status_table import print_table

if TYPE_CHECKING:
    from bfprov.settings import Settings


def history(settings: Settings, *, selection: Selection | None = None, as_json: bool) -> int:
    """Show the audit trail of the selected accounts (all, and orphans, by default)."""
    selection = selection or Selection()
    desired = selection.of(load(settings))
    names = {t.name for t in desired.targets}
    events = [
        e for e in read_events(desired.output_dirs) if selection.everything or e.account in names
    ]
    if as_json:
        console.raw(dump_json(history_json(events)))
        return 0
    if events:
        print_table(history_table(events))
    console.note(f"{len(events)} event{'' if len(events) == 1 else 's'}")
    return 0
