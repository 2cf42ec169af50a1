"""`bfprov verify`: log each account in (live pair, and staged pair if any), log out, report."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.selection import Selection
from bfprov.notify.run import News, login_failures, tell
from bfprov.observed.observe import observe
from bfprov.plan.snapshot import load
from bfprov.publish.deliver import on_failure
from bfprov.verify.checks import PARALLEL, Check, known_logins, record, run_checks, upload_pending
from bfprov.views.apply import hook_failures
from bfprov.views.verify import results_json, show, summary

if TYPE_CHECKING:
    from bfprov.settings import Settings


def verify(
    settings: Settings,
    *,
    selection: Selection | None = None,
    as_json: bool,
    parallel: int = PARALLEL,
) -> int:
    """Exit 0 only if every selected account's live pair logs in."""
    desired = (selection or Selection()).of(load(settings))
    observed = observe(desired, orphans=False)
    checks: list[Check] = []
    for target in desired.targets:
        obs = observed.accounts[target.name]
        checks.append(Check(target, obs, "live"))
        if obs.staged.complete:
            checks.append(Check(target, obs, "staged"))
    start = time.perf_counter()
    results = run_checks(settings, checks, parallel=parallel)
    elapsed = time.perf_counter() - start
    record(results, checks, locked=False)
    if as_json:
        console.raw(results_json(results))
    else:
        console.emit(show(results))
    failed = [r for r in results if r.pair == "live" and not r.success]
    said = summary(results, len(desired.targets), elapsed)
    if as_json:
        console.note(said)  # stdout is the JSON alone
    elif not console.quiet():
        ok = sum(1 for r in results if r.pair == "live" and r.success)
        console.say(f"{ok} of {len(desired.targets)} accounts log in with their live pair.")
        console.say(said)
    targets = {t.name: t for t in desired.targets}
    # A pair never uploaded still fails verify, but runs no on_failure: it awaits its upload.
    known = known_logins(results, checks)
    failing = [r for r in failed if not upload_pending(r, known)]
    for name in sorted({r.account for r in failing}):
        console.errors(hook_failures(name, on_failure(targets[name], failing)))
    news = News(failed=login_failures(failing))
    console.warnings(tell(desired.targets, news))
    return 1 if failed else 0
