"""Delivery records brought up to what a run saw of its targets.

`status` and `bfprov_published` never ask a target: they read each account's record of
deliveries (`.bfprov/published.json`). So that they show what the last `apply` (or
`promote`) observed, a target that run saw holding the live pair is recorded as holding
it, whoever put it there: a secret restored after a scheduled deletion, or put back out
of band, counts as published again after the next apply, even one with nothing to do.
`plan` stays read-only: only commands that hold the lock call this.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov.apply.store import write_deliveries
from bfprov.observed.publications import Delivery, read_deliveries

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.observed.publications import TargetState
    from bfprov.plan.snapshot import Snapshot


def record_seen(snap: Snapshot) -> None:
    """Record, per account, each target `snap` saw holding the account's live pair."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for target in snap.desired.targets:
        states = snap.publications.get(target.name)
        live = snap.observed.accounts[target.name].live
        if not states or not (live.complete and live.matched and live.crt_facts is not None):
            continue
        facts = live.crt_facts
        not_after = facts.not_after.astimezone(UTC).replace(microsecond=0).isoformat()
        seen = _seen(states, facts.fingerprint_sha256, not_after, now)
        if seen:
            # Read again in full: the record may name targets the profile no longer has.
            write_deliveries(target.directory, read_deliveries(target.directory) | seen)


def _seen(
    states: Sequence[TargetState], fingerprint: str, not_after: str, now: str
) -> dict[str, Delivery]:
    """The records that change: targets holding the live pair that the record misses."""
    changed: dict[str, Delivery] = {}
    for state in states:
        if state.error is not None or state.held_fingerprint != fingerprint:
            continue
        old = state.recorded
        version = state.version or (old.version if old else None)
        if old and (old.fingerprint, old.error, old.version) == (fingerprint, None, version):
            continue  # the record already says so
        # An on_live owed to this target stays owed: delivering it is not this module's.
        owed = old.owed if old else None
        changed[state.label] = Delivery(fingerprint, not_after, version, now, None, owed)
    return changed
