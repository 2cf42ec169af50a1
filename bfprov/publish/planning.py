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
    from bfprov.desired.targets import TargetRef
    from bfprov.observed.account import Pair
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
    plan = with_publications(snap.plan, desired, snap.observed, publications)
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
    plan: Plan,
    desired: Desired,
    observed: Observed,
    publications: Mapping[str, tuple[TargetState, ...]],
) -> Plan:
    """The plan with its publishing steps and `publish` changes."""
    if not publications:
        return plan
    refs = {t.name: {r.label: r for r in t.publications} for t in desired.targets}
    changes = {c.account: c for c in plan.changes}
    noop = list(plan.noop)
    for account, states in publications.items():
        change = changes.get(account)
        if change is not None and change.action is Action.ORPHAN:
            continue
        live = observed.accounts[account].live
        updated = _publishing(account, change, states, refs[account], live)
        if updated is None:
            continue
        if change is None:
            noop.remove(account)
        changes[account] = updated
    # The plan's changes keep their order; new `publish` changes come after them (the
    # snapshot puts every change back in the profiles' order).
    return replace(plan, changes=tuple(changes.values()), noop=tuple(noop))


def _publishing(
    account: str,
    change: Change | None,
    states: tuple[TargetState, ...],
    refs: Mapping[str, TargetRef],
    live: Pair,
) -> Change | None:
    """The account's change with its publishing steps (None: it needs none).

    Drift is repaired first: for a change that makes a new pair live (a promotion that
    may still wait for its upload), the repair runs only if the pair does not go live,
    since a new live pair goes to every target anyway. A rotation offers its staged pair
    to the targets that keep a next version, after any repair (AWSPENDING needs the
    secret a repair may recreate).
    """
    goes_live = change is not None and change.action in (Action.CREATE, Action.PROMOTE)
    drifted = _drifted(states, live)
    steps: list[Publish | Stage] = []
    if drifted:
        steps.append(Publish(tuple(refs[label] for label in drifted), repair=goes_live))
    if goes_live:
        steps.append(Publish(tuple(refs.values())))
    if change is not None and change.action is Action.ROTATE:
        pending = tuple(refs[s.label] for s in states if s.config.keeps_next_version)
        if pending:
            steps.append(Stage(pending))
    if not steps:
        return None
    change = change or Change(account, Action.PUBLISH, (), requires_upload=False)
    reasons = (*change.reasons, *drifted.values())
    return replace(change, reasons=reasons, steps=(*change.steps, *steps))


def _drifted(states: tuple[TargetState, ...], live: Pair) -> dict[str, str]:
    """Why each target that lacks the account's live pair needs it, by label."""
    if not (live.complete and live.matched and live.crt_facts is not None):
        return {}
    fingerprint = live.crt_facts.fingerprint_sha256
    return {s.label: why for s in states if (why := drift(s, fingerprint)) is not None}
