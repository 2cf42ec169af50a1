"""Runs a plan's changes: keys made on one thread per core, accounts written beside them.

Key generation is nearly all of apply's work and releases the GIL. After planning,
exactly the keys the changes need (none for a change that reuses or needs no key) are
made in parallel across cores, in the order of the changes, and each is handed to its
account's job as a value; the jobs sign, build the PKCS#12 file and write. As soon as an
account is written, its change goes into the audit trail and is handed on (to its
delivery: `publish.deliver.carry_out`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import replace
from typing import TYPE_CHECKING

from bfprov import console, crypto
from bfprov.apply.events import append_events, event, log_outcomes
from bfprov.apply.executor import Inputs, Outcome, execute
from bfprov.apply.files import archive_orphan
from bfprov.apply.store import refresh_record
from bfprov.desired.models import Output
from bfprov.desired.secret import p12_password
from bfprov.plan.model import (
    ArchiveOrphan,
    NewPair,
    Promote,
    WriteDerived,
)
from bfprov.plan.operations import promotion

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cryptography.hazmat.primitives.asymmetric import rsa
    from pydantic import SecretStr

    from bfprov.desired.models import Target
    from bfprov.plan.model import Change
    from bfprov.plan.snapshot import Snapshot

    # What receives each account's change as soon as its files are written and logged.
    Written = Callable[[Target, Change, Outcome], None]


def new_key_bits(change: Change, target: Target) -> int | None:
    """The size of the key this change makes, or None when it makes none."""
    if any(isinstance(s, NewPair) and not s.reuse_key for s in change.steps):
        return target.account.key.size
    return None


def p12_passwords(snap: Snapshot, changes: Sequence[Change]) -> dict[str, SecretStr]:
    """Every p12 password these changes need, read before the first write."""
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


def refresh_records(snap: Snapshot, changing: set[str]) -> None:
    """Records of unchanged accounts that had to be read in depth (after a crash, or
    files bfprov adopted) are brought up to date, so later plans stay cheap."""
    for target in snap.desired.targets:
        observed = snap.observed.accounts[target.name]
        if target.name not in changing and observed.exists and observed.stale:
            refresh_record(target.output_dir, target.name, observed.record, observed.stale)


def _writes_p12(change: Change, target: Target) -> bool:
    if Output.P12 not in target.account.outputs:
        return False
    return any(
        (isinstance(step, NewPair) and not step.staged)
        or (isinstance(step, WriteDerived) and Output.P12 in step.outputs)
        or isinstance(step, Promote)
        for step in change.steps
    )


def run_changes(
    snap: Snapshot,
    changes: Sequence[Change],
    passwords: dict[str, SecretStr],
    logged_in: set[str],
    written: Written,
) -> list[Outcome]:
    """Execute the changes in parallel; outcomes in the order of the changes.

    Each account's change is logged as soon as its files are written, then handed to
    `written` (its delivery starts there: see `publish.deliver.carry_out`).
    Orphans (only in `changes` with `apply --prune`) are archived after the others.
    """
    orphans = [c for c in changes if any(isinstance(s, ArchiveOrphan) for s in c.steps)]
    jobs = _jobs(snap, [c for c in changes if c not in orphans], passwords, logged_in)
    outcomes: list[Outcome] = []
    cores = os.cpu_count() or 1
    with (
        console.progress(len(jobs), "applying") as advance,
        ThreadPoolExecutor(cores, thread_name_prefix="bfprov-keys") as key_pool,
        ThreadPoolExecutor(min(len(jobs), cores) or 1, thread_name_prefix="bfprov-write") as pool,
    ):
        # One key thread per core makes exactly the keys the plan needs, in the order of
        # the jobs; the writers wait for their key (no CPU while waiting), then sign and
        # write, so a writer waiting on its fsyncs leaves no core idle. Deliveries wait on
        # the network, beside them.
        keys = [key_pool.submit(crypto.generate_key, bits) if bits else None for _, bits in jobs]
        futures = {
            pool.submit(_job, inputs, key): inputs
            for (inputs, _), key in zip(jobs, keys, strict=True)
        }
        done: set[Future[Outcome]] = set()

        def finished(future: Future[Outcome]) -> None:
            outcome, inputs = future.result(), futures[future]
            done.add(future)
            # The change is in the audit trail before anything its delivery does.
            log_outcomes([(inputs.target.output_dir, outcome, inputs.change.reasons)])
            written(inputs.target, inputs.change, outcome)
            outcomes.append(outcome)
            advance()

        try:
            for future in as_completed(futures):
                finished(future)
        except BaseException as exc:
            for f in [*futures, *keys]:
                if f is not None:
                    f.cancel()
            if isinstance(exc, Exception):
                # Another account failed: those written meanwhile are logged and delivered.
                wait(futures)
                for f in futures:
                    if f not in done and not f.cancelled() and f.exception() is None:
                        finished(f)
            raise
    for change in orphans:
        parent = snap.observed.orphans[change.account]
        moved = archive_orphan(parent, change.account)
        append_events(parent, [event(change.account, "orphan_archived", detail=str(moved))])
        console.say(f"Archived orphan {change.account} to {parent / moved}")
    order = {c.account: i for i, c in enumerate(changes)}
    return sorted(outcomes, key=lambda o: order[o.account])


def _jobs(
    snap: Snapshot, changes: Sequence[Change], passwords: dict[str, SecretStr], logged_in: set[str]
) -> list[tuple[Inputs, int | None]]:
    """Each change's inputs, and the size of the key it makes (None: none)."""
    targets = {t.name: t for t in snap.desired.targets}
    jobs: list[tuple[Inputs, int | None]] = []
    for change in changes:
        target = targets[change.account]
        inputs = Inputs(
            target=target,
            observed=snap.observed.accounts[change.account],
            change=change,
            now=snap.now,
            cnf_text=snap.cnf_texts.get(change.account),
            p12_password=passwords.get(change.account),
            promote=change.needs_login and change.account in logged_in,
        )
        jobs.append((inputs, new_key_bits(change, target)))
    return jobs


def promotion_jobs(snap: Snapshot, skipped: Callable[[str], None]) -> list[Inputs]:
    """A job for each account whose planned change promotes a staged pair (only that
    part of it: see plan.operations.promotion); `skipped` is told each other account."""
    changes = {c.account: c for c in snap.plan.changes}
    jobs: list[Inputs] = []
    for target in snap.desired.targets:
        change = promotion(changes.get(target.name))
        if change is None:
            skipped(target.name)
            continue
        password = p12_password(target)
        jobs.append(
            Inputs(
                target=target,
                observed=snap.observed.accounts[target.name],
                change=change,
                now=snap.now,
                cnf_text=snap.cnf_texts.get(target.name),
                p12_password=password,
                promote=True,
            )
        )
    return jobs


def _job(inputs: Inputs, key: Future[rsa.RSAPrivateKey] | None) -> Outcome:
    return execute(replace(inputs, key=key.result() if key is not None else None))


def run_jobs(
    jobs: Sequence[Inputs], reasons: Sequence[str] | None, written: Written
) -> list[Outcome]:
    """Execute prepared jobs one after another (promote, rollback): each is logged as soon
    as its files are written (with `reasons`, or its change's), then handed to `written`."""
    outcomes = []
    for job in jobs:
        outcome = execute(job)
        why = job.change.reasons if reasons is None else reasons
        log_outcomes([(job.target.output_dir, outcome, why)])
        written(job.target, job.change, outcome)
        outcomes.append(outcome)
    return outcomes
