"""`bfprov apply`: carry out the plan (or exactly a saved one)."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.apply.lock import apply_lock
from bfprov.apply.run import p12_passwords, run_changes
from bfprov.desired.selection import Selection, replacements
from bfprov.plan.model import Action
from bfprov.plan.saved import check_saved_plan, read_saved_plan
from bfprov.plan.snapshot import load
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import carry_out, on_failure
from bfprov.publish.planning import snapshot
from bfprov.publish.preflight import check
from bfprov.publish.reconcile import record_observed
from bfprov.verify.checks import (
    Check,
    credentials,
    known_logins,
    record,
    run_checks,
    upload_pending,
)
from bfprov.views.apply import delivery_failed, report, report_hooks
from bfprov.views.plan import plan_text
from bfprov.views.verify import show

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from bfprov.apply.executor import Outcome
    from bfprov.desired.models import Target
    from bfprov.plan.snapshot import Snapshot
    from bfprov.settings import Settings
    from bfprov.verify.checks import CheckResult


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
    selection = selection or Selection()
    saved = read_saved_plan(plan_file) if plan_file is not None else None
    if saved is not None:
        saved.agree(selection, replace)
        selection, replace = saved.selection, sorted(saved.replace)
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
        plan = snap.plan
        if not console.quiet():
            console.say(plan_text(plan))
        actionable = [c for c in plan.changes if c.action is not Action.ORPHAN or prune]
        _refresh_records(snap, {c.account for c in actionable})
        record_observed(snap)
        if not actionable:
            return 0
        if not yes:
            console.confirm("Apply these changes?", "apply")
        passwords = p12_passwords(snap, actionable)
        targets = {t.name: t for t in snap.desired.targets}
        if verify:  # every login secret is read before the first write
            credentials([targets[c.account] for c in actionable if c.account in targets])
        staged = [
            Check(targets[c.account], snap.observed.accounts[c.account], "staged")
            for c in actionable
            if c.needs_login and verify
        ]
        staged_results = run_checks(settings, staged)
        logged_in = {r.account for r in staged_results if r.success}
        outcomes = carry_out(partial(run_changes, snap, actionable, passwords, logged_in), breaker)
        live = _live_checks(outcomes, targets) if verify else []
        live_results = run_checks(settings, live)
        record(staged_results + live_results, staged + live, locked=True)
    report(snap, outcomes, verify)
    results = staged_results + live_results
    show(results, as_json=False)
    code = _login_failures(targets, staged_results, live_results, staged + live)
    if delivery_failed(outcomes):
        code = 1
    return code


def _login_failures(
    targets: dict[str, Target],
    staged_results: list[CheckResult],
    live_results: list[CheckResult],
    checks: list[Check],
) -> int:
    """1 when a login check failed (each such account's on_failure is run), else 0.

    A pair that never logged in and gets CERT_AUTH_REQUIRED awaits its upload: not a
    failure (a staged pair's, whatever its history: the rotation's normal course).
    """
    known = known_logins(staged_results + live_results, checks)
    pending = sorted({r.account for r in live_results if upload_pending(r, known)})
    if pending:
        console.note("upload pending for " + ", ".join(pending))
    failed = [r for r in live_results if not r.success and not upload_pending(r, known)]
    failed += [r for r in staged_results if not r.success and not r.awaiting_upload]
    if not failed:
        return 0
    accounts_failed = sorted({r.account for r in failed})
    console.error("login check failed for " + ", ".join(accounts_failed))
    for name in accounts_failed:
        report_hooks(name, on_failure(targets[name], failed))
    return 1


def _live_checks(outcomes: list[Outcome], targets: dict[str, Target]) -> list[Check]:
    """Live pairs worth a login after this apply: those that need no upload first."""
    from bfprov.observed.account import observe_account

    checks = []
    for o in outcomes:
        if o.kind not in ("created", "staged", "pending"):
            target = targets[o.account]
            checks.append(Check(target, observe_account(target), "live"))
    return checks


def _refresh_records(snap: Snapshot, changing: set[str]) -> None:
    """Records of unchanged accounts that had to be read in depth (after a crash, or
    files bfprov adopted) are brought up to date, so later plans stay cheap."""
    from bfprov.apply.store import refresh_record

    for target in snap.desired.targets:
        observed = snap.observed.accounts[target.name]
        if target.name not in changing and observed.exists and observed.stale:
            refresh_record(target.output_dir, target.name, observed.record, observed.stale)
