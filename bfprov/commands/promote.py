"""`bfprov promote ACCOUNT...`: make staged pairs live once their login works."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.errors import BfprovError
from bfprov.notify.run import login_failures, news_of, tell
from bfprov.plan.snapshot import load
from bfprov.publish.preflight import check
from bfprov.verify import promotion
from bfprov.views.apply import deliveries, delivery_failures
from bfprov.views.verify import show

if TYPE_CHECKING:
    from bfprov.settings import Settings


def promote(
    settings: Settings, *, selection: Selection, verify: bool, lock_timeout: float = 0.0
) -> int:
    """Promote each selected account whose staged pair logs in (`verify=False`: no login).

    Promotion is never fleet-wide by default: the selection must name accounts or labels.
    """
    if selection.everything:
        raise BfprovError("promote needs ACCOUNT... or --select KEY=VALUE: which accounts?")
    everything = load(settings)
    desired = selection.of(everything)
    check(everything, settings.profiles, desired)  # it publishes: nothing changes unless it can
    done = promotion.promote(
        settings,
        desired,
        verify=verify,
        lock_timeout=lock_timeout,
        command="promote",
        skipped=_already_live,
        checked=lambda results: console.emit(show(results)),
    )
    for outcome in done.outcomes:
        if outcome.kind == "promoted":
            console.say(f"Promoted the staged pair of {outcome.account}: it is now live.")
        for line in deliveries(outcome.account, outcome.delivered):
            console.say(line)
    failed_delivery = console.errors(delivery_failures(done.outcomes))
    refused = login_failures(done.results)
    failed = {a: why for a, why in refused.items() if a in done.refused}
    targets = {t.name: t for t in desired.targets}
    console.warnings(tell(desired.targets, news_of(targets, done.outcomes, failed)))
    if done.refused:
        raise BfprovError(
            f"not promoted: the staged pair of {', '.join(done.refused)} did not log in "
            "(see the table above); its live pair is untouched"
        )
    return 1 if failed_delivery else 0


def _already_live(account: str) -> None:
    console.warn(f"{account} has no staged pair to promote (already live?)")
