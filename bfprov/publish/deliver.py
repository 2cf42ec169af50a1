"""Delivery of an account's pair to its publishing targets, and its hooks.

Runs after the account's files are written: the live pair (read back from disk, as
bots will read it) goes to the targets a Publish step names; a staged pair is offered
to the targets that keep a next version. Each target's result is recorded in the
account's `.bfprov/published.json` (through the store) and in the audit trail. A
target that fails changes nothing on disk but its record, and the next plan shows
`publish` again. Hooks run after a new live pair is written and delivered.

An `on_live` is owed from the moment a new live pair's delivery starts until its hook has
run: it is recorded (`owed`) before the first target is written and cleared only after
the hook ran, so a failed target, a lost reply or a kill at any point leaves it owed,
and the plan delivers again (a target that holds the pair already writes nothing) and
runs it, once.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from bfprov.apply.events import append_events, event
from bfprov.apply.store import write_deliveries
from bfprov.desired.models import Output
from bfprov.errors import BfprovError
from bfprov.layout import STAGED
from bfprov.observed.files import read_bytes
from bfprov.plan.model import Action, Publish, Stage
from bfprov.publish.kinds import build
from bfprov.publish.observe import Delivery, read_deliveries

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from bfprov.apply.executor import Outcome
    from bfprov.apply.run import Written
    from bfprov.desired.models import Target
    from bfprov.desired.targets import TargetRef
    from bfprov.plan.model import Change
    from bfprov.publish.breaker import Breaker
    from bfprov.publish.bundle import Bundle
    from bfprov.publish.hooks import HookResult
    from bfprov.verify.checks import CheckResult


def _breaker(breaker: Breaker | None) -> Breaker:
    """The run's breaker; a call from outside a run gets one of its own."""
    from bfprov.publish.breaker import Breaker

    return breaker if breaker is not None else Breaker()


@dataclass
class Delivered:
    """What one account's delivery did: targets reached, failures, hooks run."""

    published: list[str] = field(default_factory=list)  # labels
    staged: list[str] = field(default_factory=list)  # labels given the staged pair (AWSPENDING)
    failed: list[str] = field(default_factory=list)  # "label: reason"
    hooks: list[HookResult] = field(default_factory=list)
    owed: list[str] = field(default_factory=list)  # on_live events a retry delivered
    failed_fingerprint: str | None = None  # of the first pair that failed to be delivered

    @property
    def ok(self) -> bool:
        return not self.failed and all(h.ok for h in self.hooks)


def bundle_of(target: Target, *, staged: bool = False) -> Bundle:
    """The account's live (or staged) pair as the targets receive it."""
    from bfprov.publish.bundle import Bundle

    account = target.account
    where = target.directory / STAGED if staged else target.directory
    stem = account.stem
    crt, key = read_bytes(where / f"{stem}.crt"), read_bytes(where / f"{stem}.key")
    p12 = None
    if staged and Output.P12 in account.outputs:
        p12 = staged_p12(target, crt, key)
    elif Output.P12 in account.outputs and (where / f"{stem}.p12").exists():
        p12 = read_bytes(where / f"{stem}.p12")
    return Bundle.from_pems(account.name, account.jurisdiction.value, crt, key, p12)


def staged_p12(target: Target, crt: bytes, key: bytes) -> bytes | None:
    """The staged pair's PKCS#12, made in memory: the staged directory holds none until
    promotion writes it, but a staged pair offered as the next version (AWSPENDING) is
    what promotion makes live, so it holds every field the live pair does."""
    from bfprov import crypto
    from bfprov.desired.secret import p12_password

    password = p12_password(target)
    if password is None:
        return None
    account = target.account
    return crypto.pkcs12(
        crypto.load_private_key(key),
        crt,
        password.get_secret_value().encode(),
        account.p12.profile,
        account.name.encode(),
    )


def publish(
    target: Target,
    refs: Sequence[TargetRef],
    delivered: Delivered,
    *,
    went_live: str | None = None,
    breaker: Breaker | None = None,
) -> None:
    """Deliver the live pair to the targets `refs` name, recording each result.

    `went_live` is the on_live event of a pair that just went live: a target that fails
    keeps it on record as owed, and the delivery that reaches it later reports it in
    `delivered.owed`, so that on_live still runs once bots there can have the pair.
    """
    from bfprov.publish.base import PublishError

    run = _breaker(breaker)
    if not refs:
        return
    bundle = bundle_of(target)
    records = read_deliveries(target.directory)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if went_live:
        # Written ahead of the targets: killed from here on, the next run owes on_live.
        for ref in refs:
            known = records.get(ref.label)
            records[ref.label] = (
                replace(known, owed=went_live)
                if known
                else Delivery(None, None, None, now, None, went_live)
            )
        write_deliveries(target.directory, records)
    events = []
    for ref in refs:
        label, config = ref.label, ref.config
        previous = records.get(label)
        last = previous.version if previous else None
        try:
            made = build(ref, timeout=run.timeout)
            result = run.call(config, label, partial(made.publish, bundle, last_version=last))
        except PublishError as exc:
            fingerprint = previous.fingerprint if previous else None
            owed = went_live or (previous.owed if previous else None)
            records[label] = Delivery(fingerprint, None, last, now, exc.reason, owed)
            delivered.failed.append(str(exc))
            delivered.failed_fingerprint = delivered.failed_fingerprint or bundle.fingerprint
            events.append(event(target.name, "publish_failed", target=label, detail=exc.reason,
                                fingerprint=bundle.fingerprint))  # fmt: skip
            continue
        owed = previous.owed if previous else None  # cleared once the hook ran: settle()
        records[label] = Delivery(
            bundle.fingerprint, bundle.not_after_text, result.version, now, None, owed
        )
        if previous is not None and previous.owed and not went_live:
            delivered.owed.append(previous.owed)
        delivered.published.append(label)
        events.append(event(target.name, "published", target=label, fingerprint=bundle.fingerprint))
    write_deliveries(target.directory, records)
    append_events(target.output_dir, events)


def settle(target: Target) -> None:
    """The account's on_live hook ran: no target owes it any more."""
    records = read_deliveries(target.directory)
    if any(d.owed for d in records.values()):
        settled = {label: replace(d, owed=None) for label, d in records.items()}
        write_deliveries(target.directory, settled)


def stage(
    target: Target,
    refs: Sequence[TargetRef],
    delivered: Delivered,
    breaker: Breaker | None = None,
) -> None:
    """Offer the staged pair to the targets that keep a next version (AWS: AWSPENDING)."""
    from bfprov.publish.base import PublishError

    run = _breaker(breaker)
    try:
        bundle = bundle_of(target, staged=True)
    except BfprovError as exc:  # its p12 password cannot be read
        delivered.failed.append(f"the staged pair was not offered: {exc}")
        return
    events = []
    for ref in refs:
        label, config = ref.label, ref.config
        try:
            made = build(ref, timeout=run.timeout)
            if run.call(config, label, partial(made.stage, bundle)) is None:
                continue  # this target keeps no next version
        except PublishError as exc:
            delivered.failed.append(str(exc))
            delivered.failed_fingerprint = delivered.failed_fingerprint or bundle.fingerprint
            events.append(event(target.name, "publish_failed", target=label, detail=exc.reason,
                                fingerprint=bundle.fingerprint))  # fmt: skip
            continue
        delivered.staged.append(label)
        events.append(event(target.name, "staged_published", target=label,
                            fingerprint=bundle.fingerprint))  # fmt: skip
    append_events(target.output_dir, events)


def run_hooks(target: Target, kind: str, fingerprint: str | None, delivered: Delivered) -> None:
    """Run the account's `on_live` hook (kind created, promoted, rolled_back) or its
    `on_failure` hook (kind failed), and record the run in the audit trail."""
    from bfprov.publish.hooks import HookContext, HookEvent, run_hook

    hooks = target.account.hooks
    argv = None if hooks is None else hooks.on_failure if kind == "failed" else hooks.on_live
    if hooks is None or not argv:
        return
    stem = target.account.stem
    context = HookContext(
        account=target.name,
        event=HookEvent(kind),
        account_dir=target.directory,
        crt=target.directory / f"{stem}.crt",
        key=target.directory / f"{stem}.key",
        fingerprint=fingerprint or "",
        jurisdiction=target.account.jurisdiction.value,
    )
    result = run_hook(argv, context, timeout=hooks.timeout.total_seconds(), pass_env=hooks.pass_env)
    delivered.hooks.append(result)
    append_events(target.output_dir, [event(
        target.name, "hook", target=result.program, fingerprint=fingerprint,
        detail=f"{'on_failure' if kind == 'failed' else 'on_live'} ({kind}): {result.describe()}",
    )])  # fmt: skip


# --- a run's deliveries ----------------------------------------------------------------


class Deliveries:
    """A run's deliveries (apply, promote, rollback), a few accounts at a time.

    Each account's delivery goes to its targets in the profile's order, then runs its
    hooks; accounts do not wait for one another, and one account's failed target never
    stops another's delivery. Leaving the block waits for every delivery under way and
    sets each outcome's `delivered`.
    """

    def __init__(self, breaker: Breaker | None = None) -> None:
        self.breaker = _breaker(breaker)
        self._pool = ThreadPoolExecutor(self.breaker.parallel, thread_name_prefix="bfprov-deliver")
        self._running: list[tuple[Outcome, Future[Delivered | None]]] = []

    def submit(self, target: Target, change: Change, outcome: Outcome) -> None:
        """Start delivering what `change` did (its `outcome`) for `target`."""
        future = self._pool.submit(deliver_change, target, change, outcome, self.breaker)
        self._running.append((outcome, future))

    def __enter__(self) -> Deliveries:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        # Every delivery submitted is waited for, even after an error or Ctrl-C: its
        # account's files are written, and a pair gone live that reached no target would
        # leave no trace of the on_live it owes. The breaker bounds the wait.
        self._pool.shutdown(wait=True)
        failure: BaseException | None = None
        for outcome, future in self._running:
            error = future.exception()
            if error is None:
                outcome.delivered = future.result()
            elif failure is None:
                failure = error
        if failure is not None and kind is None:
            raise failure


def deliver_change(
    target: Target, change: Change, outcome: Outcome, breaker: Breaker | None = None
) -> Delivered | None:
    """The change's publishing steps, once its files are written; then its hooks.

    A new live pair (created, promoted, rolled back) goes to every target and then runs
    `on_live`; a staged pair is offered to the targets that keep a next version; drift
    is repaired. A failure runs `on_failure`; local files stay as they are, and the
    targets that missed a new live pair owe its `on_live`, run by the apply whose
    delivery reaches them all.
    """
    went_live = outcome.went_live
    kind = outcome.kind
    delivered = Delivered()
    acted = False
    for step in change.steps:
        if isinstance(step, Stage) and outcome.staged:
            stage(target, step.targets, delivered, breaker)
            acted = True
        elif isinstance(step, Publish) and _delivers(step, change, went_live):
            went = kind if went_live else None
            publish(target, step.targets, delivered, went_live=went, breaker=breaker)
            acted = True
    if not delivered.failed and (went_live or delivered.owed):
        # A retry that delivered a pair which went live earlier runs the on_live it owed.
        fingerprint = outcome.fingerprint if went_live else bundle_of(target).fingerprint
        run_hooks(target, kind if went_live else delivered.owed[-1], fingerprint, delivered)
        settle(target)
        acted = True
    if delivered.failed:
        # BFPROV_FINGERPRINT: the pair that failed to be delivered (during a rotation, the
        # live pair a repair could not deliver is not the staged one the outcome names).
        run_hooks(target, "failed", delivered.failed_fingerprint or outcome.fingerprint, delivered)
    return delivered if acted or delivered.failed else None


_GOES_LIVE = (Action.CREATE, Action.PROMOTE)


def _delivers(step: Publish, change: Change, went_live: bool) -> bool:
    """Whether a Publish step runs: a repair only when no new pair went live (that one
    goes to every target), the new pair's step only once it is live."""
    if step.repair:
        return not went_live
    return went_live or change.action not in _GOES_LIVE


def on_failure(target: Target, results: Sequence[CheckResult]) -> Delivered:
    """Run the account's `on_failure` hook after its login check failed."""
    delivered = Delivered()
    fingerprint = next((r.fingerprint for r in results if r.account == target.name), None)
    run_hooks(target, "failed", fingerprint, delivered)
    return delivered


def carry_out(run: Callable[[Written], list[Outcome]], breaker: Breaker) -> list[Outcome]:
    """Execute, record, deliver, run hooks: the one sequence apply, promote and rollback
    share. `run` executes the changes (`apply.run.run_changes` or `run_jobs`) and logs each
    in the audit trail as soon as its files are written; its delivery (targets, then
    hooks) starts at once in the run's pool. Returns when every delivery is done, each
    outcome's `delivered` set."""
    with Deliveries(breaker) as deliveries:
        return run(deliveries.submit)
