"""bfprov's record of its deliveries brought in line with what `apply` observed.

`status` and `bfprov_published` read the record (they never go to the network). A target
seen holding the live pair counts as delivered, whoever wrote it and whatever the record
said: a reply lost after the write, a kill between the write and the record, or a repair
made out of band. So every `apply` (and `promote`), even one with nothing to do, records
each target it saw holding the live pair, and each it saw without it (deleted or changed
out of band) as no longer holding it. An `on_live` still owed stays owed: the plan
delivers it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov.apply.store import write_deliveries
from bfprov.publish.observe import Delivery, read_deliveries

if TYPE_CHECKING:
    from bfprov.observed.account import ObservedAccount
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.observe import TargetState


def record_observed(snap: Snapshot) -> None:
    """Record, per account, each target observed holding its live pair, and each
    recorded as holding it that was seen without it."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for target in snap.desired.targets:
        states = snap.publications.get(target.name, ())
        seen = _seen(states, snap.observed.accounts[target.name], now)
        if seen:
            records = read_deliveries(target.directory)
            write_deliveries(target.directory, records | seen)


def _seen(
    states: tuple[TargetState, ...], observed: ObservedAccount, now: str
) -> dict[str, Delivery]:
    """The records that disagree with what was observed, as they should read."""
    live = observed.live
    if not (live.complete and live.matched and live.crt_facts is not None):
        return {}
    fingerprint = live.crt_facts.fingerprint_sha256
    not_after = live.crt_facts.not_after.replace(microsecond=0).isoformat()
    seen: dict[str, Delivery] = {}
    for s in states:
        known = s.recorded
        if s.error is not None or _agrees(known, s.held_fingerprint):
            continue  # not observed, or the record already says what the target holds
        if s.held_fingerprint == fingerprint:
            fresh = Delivery(fingerprint, not_after, s.held_version, now)
        elif known is not None and known.fingerprint == fingerprint and known.error is None:
            # Lost out of band (deleted, overwritten): no longer counted as published.
            fresh = Delivery(s.held_fingerprint, None, s.held_version, now)
        else:
            continue
        seen[s.label] = replace(fresh, owed=known.owed) if known else fresh
    return seen


def _agrees(known: Delivery | None, held: str | None) -> bool:
    """The record says the target holds `held`, and no failure since."""
    return known is not None and known.error is None and known.fingerprint == held
