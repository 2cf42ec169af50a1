"""`bfprov promote ACCOUNT...`: make staged pairs live once their login works."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.apply.lock import apply_lock
from bfprov.apply.run import promotion_jobs, run_jobs
from bfprov.desired.selection import Selection
from bfprov.errors import BfprovError
from bfprov.plan.snapshot import load
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import carry_out
from bfprov.publish.planning import snapshot
from bfprov.publish.preflight import check
from bfprov.publish.reconcile import record_observed
from bfprov.verify.checks import Check, record, run_checks
from bfprov.views.apply import deliveries, delivery_failures
from bfprov.views.verify import show

if TYPE_CHECKING:
    from bfprov.apply.executor import Inputs, Outcome
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
    with contextlib.ExitStack() as locks:
        for output_dir in desired.output_dirs:
            locks.enter_context(apply_lock(output_dir, timeout=lock_timeout, command="promote"))
        breaker = Breaker(timeout=settings.publish_timeout)
        snap = snapshot(desired, orphans=False, breaker=breaker)
        record_observed(snap)
        # Re-running an interrupted `promote a b c` must not trip on those done.
        jobs = promotion_jobs(snap, _already_live)
        if not jobs:
            raise BfprovError("none of the selected accounts has a staged pair to promote")
        refused: list[str] = []
        if verify:
            checks = [Check(j.target, j.observed, "staged") for j in jobs if j.change.needs_login]
            results = run_checks(settings, checks)
            record(results, checks, locked=True)
            console.emit(show(results))
            refused = [r.account for r in results if not r.success]
        outcomes = _promote([j for j in jobs if j.target.name not in refused], breaker)
    failed_delivery = console.errors(delivery_failures(outcomes))
    if refused:
        raise BfprovError(
            f"not promoted: the staged pair of {', '.join(refused)} did not log in "
            "(see the table above); its live pair is untouched"
        )
    return 1 if failed_delivery else 0


def _promote(jobs: list[Inputs], breaker: Breaker) -> list[Outcome]:
    """Promote each job's staged pair, then deliver it (the run's deliveries, in parallel)."""
    outcomes = carry_out(partial(run_jobs, jobs, ("promote",)), breaker)
    for outcome in outcomes:
        if outcome.kind == "promoted":
            console.say(f"Promoted the staged pair of {outcome.account}: it is now live.")
        for line in deliveries(outcome.account, outcome.delivered):
            console.say(line)
    return outcomes


def _already_live(account: str) -> None:
    console.warn(f"{account} has no staged pair to promote (already live?)")
