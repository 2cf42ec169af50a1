"""Plans for the runbook's single-purpose commands: `promote` and `rollback`.

Pure, like the planner: each returns the Change that the executor then carries out, so
every command executes a plan value and none builds its steps by hand.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bfprov.plan.model import Action, Change, Promote, Publish, RemoveLeftovers, Restore

if TYPE_CHECKING:
    from bfprov.desired.targets import TargetRef


def promotion(change: Change | None) -> Change | None:
    """The promotion part of an account's planned change, or None when it has none.

    `promote` does only that: other work the full plan holds (derived files, modes)
    is left to `apply`.
    """
    if change is None:
        return None
    steps = tuple(s for s in change.steps if isinstance(s, Promote | RemoveLeftovers | Publish))
    if not any(isinstance(s, Promote) for s in steps):
        return None
    return replace(change, steps=steps)


def rollback(account: str, generation: str, targets: tuple[TargetRef, ...] = ()) -> Change:
    """Bring back the archived `generation` as the live pair, and deliver it to the
    publishing targets; it must be uploaded to Betfair again."""
    return Change(
        account=account,
        action=Action.UPDATE,
        reasons=(f"rollback to the generation archived at {generation}",),
        requires_upload=True,
        steps=(Restore(generation), Publish(targets)) if targets else (Restore(generation),),
    )
