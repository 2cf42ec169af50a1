"""A login-gated promotion: staged pairs that log in go live, published and hooked.

`promote` (the command) and the upload page's "Check" run exactly this: under the output
directories' locks, each selected account's staged pair logs in (TLS verified, no retry
after a loginStatus, the rate limits of every login), and those that succeed are
promoted, delivered to their targets and followed by their `on_live` hook.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from bfprov.apply.lock import apply_lock
from bfprov.apply.run import promotion_jobs, run_jobs
from bfprov.errors import BfprovError
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import carry_out
from bfprov.publish.planning import snapshot
from bfprov.publish.reconcile import record_observed
from bfprov.verify.checks import Check, record, run_checks

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bfprov.apply.executor import Inputs, Outcome
    from bfprov.desired.models import Desired
    from bfprov.settings import Settings
    from bfprov.verify.checks import CheckResult


@dataclass
class Promotion:
    """What a promotion did: the staged logins, the accounts refused, the outcomes."""

    results: list[CheckResult] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def promote(
    settings: Settings,
    desired: Desired,
    *,
    verify: bool,
    lock_timeout: float,
    command: str,
    skipped: Callable[[str], None],
    checked: Callable[[Sequence[CheckResult]], None] = lambda _: None,
) -> Promotion:
    """Promote each account of `desired` whose staged pair logs in (`verify=False`: no
    login). `skipped` is told each account with no staged pair; `checked` gets the login
    results as soon as they are known (before anything is promoted)."""
    done = Promotion()
    with contextlib.ExitStack() as locks:
        for output_dir in desired.output_dirs:
            locks.enter_context(apply_lock(output_dir, timeout=lock_timeout, command=command))
        breaker = Breaker(timeout=settings.publish_timeout)
        snap = snapshot(desired, orphans=False, breaker=breaker)
        record_observed(snap)
        # Re-running an interrupted `promote a b c` must not trip on those done.
        jobs = promotion_jobs(snap, skipped)
        if not jobs:
            raise BfprovError("none of the selected accounts has a staged pair to promote")
        if verify:
            checks = [Check(j.target, j.observed, "staged") for j in jobs if j.change.needs_login]
            done.results = run_checks(settings, checks)
            record(done.results, checks, locked=True)
            checked(done.results)
            done.refused = [r.account for r in done.results if not r.success]
        chosen: list[Inputs] = [j for j in jobs if j.target.name not in done.refused]
        done.outcomes = carry_out(partial(run_jobs, chosen, ("promote",)), breaker)
    return done
