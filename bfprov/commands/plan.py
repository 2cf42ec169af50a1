"""`bfprov plan`: observe the disk and show what apply would change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection, replacements
from bfprov.errors import BfprovError
from bfprov.plan.renewal import validity_notes
from bfprov.plan.saved import saved_plan
from bfprov.plan.snapshot import load
from bfprov.publish.breaker import Breaker
from bfprov.publish.planning import snapshot
from bfprov.publish.preflight import check
from bfprov.views.json_text import dump_json
from bfprov.views.plan import plan_markdown, plan_text

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bfprov.settings import Settings


def plan(
    settings: Settings,
    *,
    as_json: bool,
    out: Path | None,
    detailed_exitcode: bool,
    markdown: bool = False,
    refresh: bool = True,
    selection: Selection | None = None,
    replace: Sequence[str] = (),
) -> int:
    """Print the plan of the selected accounts (orphans only when all are selected)."""
    if as_json and markdown:
        raise BfprovError("choose one of --json and --markdown")
    selection = selection or Selection()
    everything = load(settings)
    desired = selection.of(everything)
    check(everything, settings.profiles, desired)  # a target that cannot be written is no drift
    replacing = replacements(everything, desired, replace)
    breaker = Breaker(timeout=settings.publish_timeout)
    snap = snapshot(
        desired, orphans=selection.everything, refresh=refresh, replace=replacing, breaker=breaker
    )
    if out is not None:
        from bfprov.apply.files import write_plan_file

        write_plan_file(out, dump_json(saved_plan(snap, selection, replacing)).encode())
    if as_json:
        console.raw(dump_json(snap.plan.to_json()))
    elif markdown:
        console.raw(plan_markdown(snap.plan))
    else:
        console.say(plan_text(snap.plan))
        for note in validity_notes(snap):
            console.say(f"Note: {note}.")
        if out is not None:
            console.note(f"Saved the plan to {out}; run `bfprov apply {out}` to carry it out.")
    return 2 if detailed_exitcode and snap.plan.has_changes else 0
