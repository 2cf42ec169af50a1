"""Delivery of an account's pair to its publishing targets, and its hooks.

Runs after the account's files are written: the live pair (read back from disk, as
bots will read it) goes to the targets a Publish step names; a staged pair is offered
to the targets that keep a next version. Each target's result is recorded in the
account's `.bfprov/published.json` (through the store) and in the audit trail. A
target that fails changes nothing on disk but its record, and the next plan shows
`publish` again. Hooks run after a new live pair is written and delivered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from bfprov.apply.events import append_events, event
from bfprov.apply.store import write_deliveries
from bfprov.desired.models import Output
from bfprov.layout import STAGED
from bfprov.observed.files import read_bytes
from bfprov.observed.publications import Delivery, labelled_targets, read_deliveries, targets_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.desired.models import Target
    from bfprov.publish.breaker import Breaker
    from bfprov.publish.bundle import Bundle
    from bfprov.publish.hooks import HookResult


def _breaker(breaker: Breaker | None) -> Breaker:
    """The run's breaker; a call from outside a run gets one of its own."""
    from bfprov.publish.breaker import Breaker

    return breaker if breaker is not None else Breaker()


@dataclass
class Delivered:
    """What one account's delivery did: targets reached, failures, hooks run."""

    published: list[str] = field(default_factory=list)  # labels
    failed: list[str] = field(default_factory=list)  # "label: reason"
    hooks: list[HookResult] = field(default_factory=list)
    owed: list[str] = field(default_factory=list)  # on_live events a retry delivered

    @property
    def ok(self) -> bool:
        return not self.failed and all(h.ok for h in self.hooks)


def bundle_of(target: Target, *, staged: bool = False) -> Bundle:
    """The account's live (or staged) pair as the targets receive it."""
    from bfprov.publish.bundle import Bundle

    account = target.account
    where = target.directory / STAGED if staged else target.directory
    stem = account.stem
    p12 = None
    if not staged and Output.P12 in account.outputs and (where / f"{stem}.p12").exists():
        p12 = read_bytes(where / f"{stem}.p12")
    return Bundle.from_pems(
        account.name,
        account.jurisdiction.value,
        read_bytes(where / f"{stem}.crt"),
        read_bytes(where / f"{stem}.key"),
        p12,
    )


def publish(
    target: Target,
    labels: Sequence[str],
    delivered: Delivered,
    *,
    went_live: str | None = None,
    breaker: Breaker | None = None,
) -> None:
    """Deliver the live pair to the targets named by `labels`, recording each result.

    `went_live` is the on_live event of a pair that just went live: a target that fails
    keeps it on record as owed, and the delivery that reaches it later reports it in
    `delivered.owed`, so that on_live still runs once bots there can have the pair.
    """
    from bfprov.publish.base import PublishError, make_target

    run = _breaker(breaker)
    configs = labelled_targets(target)
    chosen = [(label, configs[label]) for label in labels if label in configs]
    if not chosen:
        return
    bundle = bundle_of(target)
    records = read_deliveries(target.directory)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    events = []
    for label, config in chosen:
        previous = records.get(label)
        last = previous.version if previous else None
        try:
            made = make_target(config, target.name, target.source.parent, timeout=run.timeout)
            result = run.call(config, label, partial(made.publish, bundle, last_version=last))
        except PublishError as exc:
            version = exc.written_version or last
            fingerprint = previous.fingerprint if previous else None
            owed = went_live or (previous.owed if previous else None)
            records[label] = Delivery(fingerprint, None, version, now, exc.reason, owed)
            delivered.failed.append(str(exc))
            events.append(event(target.name, "publish_failed", target=label, detail=exc.reason,
                                fingerprint=bundle.fingerprint))  # fmt: skip
            continue
        records[label] = Delivery(bundle.fingerprint, bundle.not_after_text, result.version, now)
        if previous is not None and previous.owed and not went_live:
            delivered.owed.append(previous.owed)
        delivered.published.append(label)
        events.append(event(target.name, "published", target=label, fingerprint=bundle.fingerprint))
    write_deliveries(target.directory, records)
    append_events(target.output_dir, events)


def stage(
    target: Target, labels: Sequence[str], delivered: Delivered, breaker: Breaker | None = None
) -> None:
    """Offer the staged pair to the targets that keep a next version (AWS: AWSPENDING)."""
    from bfprov.publish.base import PublishError, make_target

    run = _breaker(breaker)
    configs = labelled_targets(target)
    bundle = bundle_of(target, staged=True)
    events = []
    for label in labels:
        config = configs.get(label)
        if config is None:
            continue
        try:
            made = make_target(config, target.name, target.source.parent, timeout=run.timeout)
            if run.call(config, label, partial(made.stage, bundle)) is None:
                continue  # this target keeps no next version
        except PublishError as exc:
            delivered.failed.append(str(exc))
            events.append(event(target.name, "publish_failed", target=label, detail=exc.reason,
                                fingerprint=bundle.fingerprint))  # fmt: skip
            continue
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
    result = run_hook(
        argv, context, timeout=hooks.timeout.total_seconds(), withhold=secret_variables(target)
    )
    delivered.hooks.append(result)
    append_events(target.output_dir, [event(
        target.name, "hook", target=result.program, fingerprint=fingerprint,
        detail=f"{'on_failure' if kind == 'failed' else 'on_live'} ({kind}): {result.describe()}",
    )])  # fmt: skip


def secret_variables(target: Target) -> set[str]:
    """The environment variables the account's secret references read: never given to
    a hook (nor are a Vault token's)."""
    account = target.account
    refs = [account.password, account.app_key, account.p12.password]
    refs += [getattr(c, "token", None) for c in targets_of(target)]
    names = {ref.env for ref in refs if ref is not None and ref.env is not None}
    # Every BF_* variable is withheld too: profiles conventionally keep secrets there.
    return names | {name for name in os.environ if name.startswith("BF_")}
