"""`bfprov apply`: carry out the plan (or exactly a saved one)."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.apply.lock import apply_lock
from bfprov.apply.run import p12_passwords, refresh_records, run_changes
from bfprov.desired.selection import Selection, replacements
from bfprov.notify.run import login_failures, news_of, tell
from bfprov.plan.model import Action
from bfprov.plan.saved import check_saved_plan, requested
from bfprov.plan.snapshot import load
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import carry_out
from bfprov.publish.planning import snapshot
from bfprov.publish.preflight import check
from bfprov.publish.reconcile import record_observed
from bfprov.verify.checks import record, run_checks
from bfprov.verify.gate import failure_hooks, live_checks, staged_logins, verdict
from bfprov.views.apply import delivery_failures, hook_failures, report
from bfprov.views.plan import plan_text
from bfprov.views.verify import show

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bfprov.settings import Settings


def apply(
    settings: Settings,
    *,
    plan_file: Path | None,
    yes: bool,
    verify: bool,
    selection: Selection | None = None,
    replace: Sequence[str] = (),
    prune: bool = False,
    lock_timeout: float = 0.0,
) -> int:
    """Carry out the plan of the selected accounts; with `plan_file`, exactly that saved
    plan, for the selection and replacements it records."""
    saved, selection, replace = requested(plan_file, selection or Selection(), replace)
    everything = load(settings)
    desired = selection.of(everything)
    check(everything, settings.profiles, desired)  # before the first write: the lock
    replacing = replacements(everything, desired, replace)
    with contextlib.ExitStack() as locks:
        for output_dir in desired.output_dirs:
            locks.enter_context(apply_lock(output_dir, timeout=lock_timeout, command="apply"))
        breaker = Breaker(timeout=settings.publish_timeout)
        snap = snapshot(desired, orphans=selection.everything, replace=replacing, breaker=breaker)
        if saved is not None:
            check_saved_plan(saved, snap)
        if not console.quiet():
            console.say(plan_text(snap.plan))
        actionable = [c for c in snap.plan.changes if c.action is not Action.ORPHAN or prune]
        refresh_records(snap, {c.account for c in actionable})
        record_observed(snap)
        if not actionable:
            return 0
        if not yes:
            console.confirm("Apply these changes?", "apply")
        passwords = p12_passwords(snap, actionable)
        targets = {t.name: t for t in snap.desired.targets}
        staged, staged_results = staged_logins(settings, snap, actionable, targets, verify=verify)
        logged_in = {r.account for r in staged_results if r.success}
        outcomes = carry_out(partial(run_changes, snap, actionable, passwords, logged_in), breaker)
        live = live_checks(outcomes, targets) if verify else []
        live_results = run_checks(settings, live)
        record(staged_results + live_results, staged + live, locked=True)
    promoted = {o.account for o in outcomes if o.kind == "promoted"}
    checks = show(staged_results + live_results, promoted)
    console.emit(report(snap, outcomes, verify, quiet=console.quiet(), checks=checks))
    judged = verdict(staged_results, live_results, staged + live)
    if judged.pending:
        console.note("upload pending for " + ", ".join(judged.pending))
    if judged.failed:
        console.error("login check failed for " + ", ".join(judged.accounts_failed))
    for name, delivered in failure_hooks(targets, judged):
        console.errors(hook_failures(name, delivered))
    failed = login_failures(judged.failed)
    console.warnings(tell(snap.desired.targets, news_of(targets, outcomes, failed)))
    return 1 if console.errors(delivery_failures(outcomes)) or judged.failed else 0
