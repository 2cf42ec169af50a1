"""`bfprov apply`: carry out the plan (or exactly a saved one)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from bfprov import console
from bfprov.apply.executor import Inputs, Outcome, execute
from bfprov.apply.store import apply_lock, archive_orphan
from bfprov.commands.verify import Check, credentials, record, run_checks, show
from bfprov.desired.models import Output
from bfprov.desired.secret import p12_password
from bfprov.errors import BfprovError
from bfprov.plan.model import Action, NewPair, Promote, WriteDerived
from bfprov.plan.snapshot import load, saved_plan, snapshot
from bfprov.views.plan import plan_text

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pydantic import SecretStr

    from bfprov.desired.models import Target
    from bfprov.plan.model import Change
    from bfprov.plan.snapshot import Snapshot
    from bfprov.settings import Settings


def apply(
    settings: Settings,
    *,
    plan_file: Path | None,
    yes: bool,
    verify: bool,
    accounts: Sequence[str],
    prune: bool = False,
) -> int:
    desired = load(settings).select(list(accounts))
    with contextlib.ExitStack() as locks:
        for output_dir in desired.output_dirs:
            locks.enter_context(apply_lock(output_dir))
        snap = snapshot(desired, orphans=not accounts)
        if plan_file is not None:
            _check_saved_plan(plan_file, snap)
        plan = snap.plan
        if not console.quiet():
            console.say(plan_text(plan))
        actionable = [c for c in plan.changes if c.action is not Action.ORPHAN or prune]
        _refresh_records(snap, {c.account for c in actionable})
        if not actionable:
            return 0
        if not yes:
            _confirm()
        passwords = _p12_passwords(snap, actionable)
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
        outcomes = _run(snap, actionable, passwords, logged_in)
        for change in actionable:
            if change.action is Action.ORPHAN:
                parent = snap.observed.orphans[change.account]
                moved = archive_orphan(parent, change.account)
                console.say(f"Archived orphan {change.account} to {parent / moved}")
        live = _live_checks(outcomes, targets) if verify else []
        live_results = run_checks(settings, live)
        record(staged_results + live_results, staged + live, locked=True)
    _report(snap, outcomes, verify)
    results = staged_results + live_results
    show(results, as_json=False)
    failed = [r for r in live_results if not r.success]
    failed += [r for r in staged_results if not r.success and not r.awaiting_upload]
    if failed:
        console.error("login check failed for " + ", ".join(sorted({r.account for r in failed})))
        return 1
    return 0


def _live_checks(outcomes: list[Outcome], targets: dict[str, Target]) -> list[Check]:
    """Live pairs worth a login after this apply: those that need no upload first."""
    from bfprov.observed.account import observe_account

    checks = []
    for o in outcomes:
        if o.promoted or not (o.created or o.staged or o.promotion_pending):
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


def _check_saved_plan(path: Path, snap: Snapshot) -> None:
    """Refuse a saved plan if anything it looked at has changed since."""
    try:
        saved: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BfprovError(f"no saved plan at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BfprovError(f"{path} is not a saved bfprov plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format_version") != 1 or "observed" not in saved:
        raise BfprovError(f"{path} is not a saved bfprov plan (format_version 1)")
    now = saved_plan(snap)
    if saved.get("desired_digest") != now["desired_digest"]:
        raise BfprovError(f"the saved plan {path} is stale: the profiles changed since; plan again")
    old, new = saved["observed"], now["observed"]
    assert isinstance(new, dict)
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        names = ", ".join(k.removeprefix("orphan:") for k in changed[:5])
        raise BfprovError(
            f"the saved plan {path} is stale: {names} changed on disk since; plan again"
        )
    actions = [(c["account"], c["action"]) for c in saved.get("changes", [])]
    if actions != [(c.account, c.action.value) for c in snap.plan.changes]:
        raise BfprovError(f"the saved plan {path} no longer matches what needs doing; plan again")


def _confirm() -> None:
    if not sys.stdin.isatty():
        raise BfprovError("apply needs confirmation: run it on a terminal, or pass --yes")
    import typer

    if not typer.confirm("Apply these changes?", default=False):
        raise BfprovError("apply cancelled; nothing was changed")


def _writes_p12(change: Change, target: Target) -> bool:
    if Output.P12 not in target.account.outputs:
        return False
    for step in change.steps:
        if isinstance(step, NewPair) and not step.staged:
            return True
        if isinstance(step, WriteDerived) and Output.P12 in step.outputs:
            return True
        if isinstance(step, Promote):
            return True
    return False


def _p12_passwords(snap: Snapshot, changes: list[Change]) -> dict[str, SecretStr]:
    """Read every p12 password this apply needs, before the first write."""
    targets = {t.name: t for t in snap.desired.targets}
    out: dict[str, SecretStr] = {}
    for change in changes:
        target = targets.get(change.account)
        if target is None or not _writes_p12(change, target):
            continue
        password = p12_password(target)
        assert password is not None  # _writes_p12: p12 is an output, with a password
        if not password.get_secret_value().isascii():
            console.warn(
                f"{change.account}: p12.password has non-ASCII characters: Java (keytool, "
                "KeyStore) cannot open such a PKCS#12 file; OpenSSL and .NET can"
            )
        out[change.account] = password
    return out


def _run(
    snap: Snapshot,
    changes: list[Change],
    passwords: dict[str, SecretStr],
    logged_in: set[str],
) -> list[Outcome]:
    """Execute the changes, in parallel: key generation dominates and releases the GIL."""
    from bfprov.apply import keypool

    targets = {t.name: t for t in snap.desired.targets}
    pooled = keypool.pool()
    if pooled is not None:
        pooled.need(
            targets[c.account].account.key.size
            for c in changes
            for s in c.steps
            if isinstance(s, NewPair) and not s.reuse_key
        )
    jobs: list[Inputs] = []
    for change in changes:
        if change.action is Action.ORPHAN:
            continue
        target = targets[change.account]
        observed = snap.observed.accounts[change.account]
        promote = change.needs_login and change.account in logged_in
        jobs.append(
            Inputs(
                target=target,
                observed=observed,
                change=change,
                now=snap.now,
                cnf_text=snap.cnf_texts.get(change.account),
                p12_password=passwords.get(change.account),
                promote=promote,
            )
        )
    outcomes: list[Outcome] = []
    # Workers sign and write; the keys come from the pool's threads, one per core, so a
    # worker waiting for its fsyncs never leaves a core idle. One worker more than cores.
    workers = max(1, min(len(jobs), (os.cpu_count() or 1) + 1))
    with (
        console.progress(len(jobs), "applying") as advance,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = [pool.submit(execute, job) for job in jobs]
        try:
            for future in as_completed(futures):
                outcomes.append(future.result())
                advance()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    order = {c.account: i for i, c in enumerate(changes)}
    return sorted(outcomes, key=lambda o: order[o.account])


def _report(snap: Snapshot, outcomes: list[Outcome], verify: bool) -> None:
    targets = {t.name: t for t in snap.desired.targets}
    uploads: list[tuple[str, str, str]] = []
    counts = {"created": 0, "staged": 0, "promoted": 0, "updated": 0, "pending": 0}
    for o in outcomes:
        target = targets[o.account]
        url = target.account.jurisdiction.upload_url
        if o.created:
            counts["created"] += 1
            uploads.append((o.account, str(target.directory / f"{target.account.stem}.crt"), url))
        elif o.staged:
            counts["staged"] += 1
            uploads.append((o.account, o.staged, url))
        elif o.promoted:
            counts["promoted"] += 1
        elif o.promotion_pending:
            counts["pending"] += 1
            staged = snap.observed.accounts[o.account].staged.crt
            if staged is not None:
                uploads.append((o.account, str(target.directory / staged.path), url))
        else:
            counts["updated"] += 1
    for o in outcomes:
        console.detail(f"{o.account}: wrote {', '.join(o.written) or 'nothing'}")
    if not console.quiet():
        console.say(
            f"\nApply complete: {counts['created']} created, {counts['staged']} staged for "
            f"rotation, {counts['promoted']} promoted, {counts['updated']} updated."
        )
    if uploads:
        console.say(
            "\nUpload each certificate on Betfair's website (Automated Betting Program "
            "Access -> Edit), logged in as the account:"
        )
        console.say("\n".join(f"  {a}: {crt}\n      at {url}" for a, crt, url in uploads))
    if counts["pending"]:
        how = (
            "run `bfprov apply` again after the upload (it logs in with the staged pair "
            "and promotes it)"
            if verify
            else "verification is off: after the upload, run `bfprov apply` (with login "
            "verification) or `bfprov promote ACCOUNT --no-verify`"
        )
        console.say(f"\n{counts['pending']} staged pair(s) wait for their upload: {how}.")
