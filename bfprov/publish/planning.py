"""Publishing in the plan: which targets need the live pair, and which the staged one.

Pure, like the planner: (plan, observed, publications) -> plan. A change that makes a
pair live (create, promote) delivers it to every target; a rotation offers its staged
pair to the targets that keep a next version (AWS: AWSPENDING); and where a target lacks
the live pair or holds another one (deleted or changed out of band, or it could not be
observed), the account gets a `publish` change, or its change gains a Publish step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bfprov.plan import snapshot as disk
from bfprov.plan.model import Action, Change, Plan, Publish, Stage
from bfprov.publish.observe import observe_publications

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bfprov.desired.models import Desired
    from bfprov.observed.observe import Observed
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.breaker import Breaker
    from bfprov.publish.observe import TargetState


def snapshot(
    desired: Desired,
    *,
    orphans: bool = True,
    now: datetime | None = None,
    refresh: bool = True,
    replace: frozenset[str] = frozenset(),
    breaker: Breaker | None = None,
) -> Snapshot:
    """Observe the disk and the publishing targets, and plan against both.

    `refresh=False` trusts bfprov's records of what it published instead of asking each
    target (`plan --no-refresh`, and `status`, which never goes to the network).
    `breaker` is the run's budget for publishing targets that do not answer.
    """
    snap = disk.snapshot(desired, orphans=orphans, now=now, replace=replace)
    publications = observe_publications(desired, refresh=refresh, breaker=breaker)
    if not publications:
        return snap
    plan = with_publications(snap.plan, snap.observed, publications)
    order = {t.name: i for i, t in enumerate(desired.targets)}
    changes = sorted(plan.changes, key=lambda c: order.get(c.account, len(order)))
    plan = dataclasses.replace(plan, changes=tuple(changes))
    return dataclasses.replace(snap, plan=plan, publications=publications)


def drift(state: TargetState, live_fingerprint: str) -> str | None:
    """Why a target needs the live pair again, or None when it holds it."""
    if state.error is not None:
        return f"{state.label} cannot be observed: {state.error}"
    if not state.holds_something:
        return f"{state.label} lacks the live pair"
    if state.held_fingerprint is None:
        return f"{state.label} holds a value bfprov did not write"
    if state.held_fingerprint != live_fingerprint:
        return f"{state.label} holds another certificate ({state.held_fingerprint[:16]}...)"
    if state.recorded is not None and state.recorded.owed:
        # Delivered (a lost reply, or a kill before the record): the hook is still owed.
        return f"{state.label} holds the live pair; its on_live ({state.recorded.owed}) is owed"
    return None


def with_publications(
    plan: Plan, observed: Observed, publications: Mapping[str, tuple[TargetState, ...]]
) -> Plan:
    """The plan with its publishing steps and `publish` changes."""
    if not publications:
        return plan
    changes = {c.account: c for c in plan.changes}
    noop = list(plan.noop)
    for account, states in publications.items():
        labels = tuple(s.label for s in states)
        change = changes.get(account)
        if change is not None and change.action in (Action.CREATE, Action.PROMOTE):
            # The new live pair goes to every target once it is live.
            changes[account] = replace(change, steps=(*change.steps, Publish(labels)))
            continue
        if change is not None and change.action is Action.ORPHAN:
            continue
        extra_steps: list[Publish | Stage] = []
        rotating = change is not None and change.action is Action.ROTATE
        live = observed.accounts[account].live
        if live.complete and live.matched and live.crt_facts is not None:
            fingerprint = live.crt_facts.fingerprint_sha256
            drifted = [(s.label, why) for s in states if (why := drift(s, fingerprint)) is not None]
            stale = tuple(label for label, _ in drifted)
            reasons = [why for _, why in drifted]
            if stale:
                extra_steps.append(Publish(stale))
                if change is None:
                    change = Change(account, Action.PUBLISH, (), requires_upload=False)
                    noop.remove(account)
                change = replace(change, reasons=(*change.reasons, *reasons))
        pending = tuple(s.label for s in states if s.config.keeps_next_version)
        if rotating and pending:
            # After any repair: AWSPENDING needs the secret that Publish may recreate.
            # Only the targets that keep a next version are named: the plan shows them.
            extra_steps.append(Stage(pending))
        if change is not None and extra_steps:
            changes[account] = replace(change, steps=(*change.steps, *extra_steps))
    # The plan's changes keep their order; new `publish` changes come after them (the
    # snapshot puts every change back in the profiles' order).
    return replace(plan, changes=tuple(changes.values()), noop=tuple(noop))
