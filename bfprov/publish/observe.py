"""What each publishing target holds for each account, and bfprov's record of what it wrote.

Observing a target reads its metadata only, never key material, a few targets at a time,
through the run's breaker (a silent endpoint costs at most two timeouts). A kind whose
module has `observe_many` sees all its targets in one task (AWS: a listing of secrets in
pages per region and endpoint, not one call per account: publish.aws_list).
With `refresh=False` (`plan --no-refresh`) no target is asked: bfprov's own record of its
last delivery (`<account>/.bfprov/published.json`) stands for what the target holds.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.errors import BfprovError
from bfprov.layout import PUBLISHED_FILE, RECORD_DIR
from bfprov.observed.files import lstat, read_bytes
from bfprov.publish import kinds
from bfprov.publish.base import PublishError
from bfprov.publish.breaker import Breaker, endpoint

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import Desired
    from bfprov.desired.targets import TargetConfig, TargetRef
    from bfprov.publish.base import Published
    from bfprov.publish.kinds import ObserveMany

    Job = tuple[TargetRef, "Delivery | None"]  # a target, and bfprov's record of it


@dataclass(frozen=True)
class Delivery:
    """bfprov's record of its last delivery to one target."""

    fingerprint: str | None  # of the pair it holds, as far as bfprov knows
    not_after: str | None
    version: str | None  # the target's version id bfprov last wrote (check-and-set)
    at: str
    error: str | None = None  # the last attempt failed: why
    # A new live pair (created, promoted, rolled_back: the on_live event) that has not
    # reached this target yet: its on_live hook runs once the retry delivers it.
    owed: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "fingerprint": self.fingerprint,
            "not_after": self.not_after,
            "version": self.version,
            "at": self.at,
            "error": self.error,
            "owed": self.owed,
        }


@dataclass(frozen=True)
class TargetState:
    """One target of one account: what it holds, and what bfprov recorded."""

    label: str
    config: TargetConfig
    held_fingerprint: str | None  # None: it holds nothing, or a value bfprov did not write
    holds_something: bool
    error: str | None  # it could not be observed: unreachable, refused, misconfigured
    recorded: Delivery | None
    held_version: str | None = None  # the target's own version id of what it holds


def read_deliveries(directory: Path) -> dict[str, Delivery]:
    """An account's record of deliveries, by target label; {} when absent or damaged."""
    path = directory / RECORD_DIR / PUBLISHED_FILE
    if lstat(path) is None:
        return {}
    try:
        raw = json.loads(read_bytes(path))
    except (BfprovError, ValueError):  # unreadable or damaged: nothing recorded
        return {}
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Delivery] = {}
    for label, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        keys = ("fingerprint", "not_after", "version", "at", "error", "owed")
        values = {k: entry.get(k) for k in keys}
        if all(v is None or isinstance(v, str) for v in values.values()) and values["at"]:
            found[str(label)] = Delivery(**values)  # type: ignore[arg-type]
    return found


def observe_publications(
    desired: Desired, *, refresh: bool = True, breaker: Breaker | None = None
) -> dict[str, tuple[TargetState, ...]]:
    """Per account with targets, the state of each target, in the profile's order.

    `breaker` is the run's (its timeout, its parallelism, and the endpoints that did
    not answer); a plan alone makes its own.
    """
    jobs: list[Job] = []
    for t in desired.targets:
        recorded = read_deliveries(t.directory) if t.publications else {}
        jobs += [(ref, recorded.get(ref.label)) for ref in t.publications]
    if not jobs:
        return {}
    if refresh:
        states = _observe_all(jobs, breaker or Breaker())
    else:
        states = [_recorded(ref, known) for ref, known in jobs]
    result: dict[str, list[TargetState]] = {}
    for (ref, _), state in zip(jobs, states, strict=True):
        result.setdefault(ref.account, []).append(state)
    return {account: tuple(s) for account, s in result.items()}


def _recorded(ref: TargetRef, known: Delivery | None) -> TargetState:
    """What bfprov's record says the target holds (`plan --no-refresh`, `status`)."""
    held = known.fingerprint if known and not known.error else None
    return TargetState(ref.label, ref.config, held, held is not None, None, known)


def _observe_all(jobs: list[Job], breaker: Breaker) -> list[TargetState]:
    """Every target's state, in the order of `jobs`: the kinds that observe many targets
    at once get one task each, the others a task per target, `breaker.parallel` at once."""
    batched: dict[str, list[int]] = {}
    for i, (ref, _) in enumerate(jobs):
        if kinds.observer(ref.kind) is not None:
            batched.setdefault(ref.kind, []).append(i)
    listed = {i for indexes in batched.values() for i in indexes}
    with ThreadPoolExecutor(max_workers=max(1, min(breaker.parallel, len(jobs)))) as pool:
        batches = {
            kind: pool.submit(_observe_many, kind, [jobs[i] for i in indexes], breaker)
            for kind, indexes in batched.items()
        }
        singles = {
            i: pool.submit(_observe, *job, breaker) for i, job in enumerate(jobs) if i not in listed
        }
        found: dict[int, TargetState] = {}
        for kind, indexes in batched.items():
            found.update(zip(indexes, batches[kind].result(), strict=True))
        return [found[i] if i in listed else singles[i].result() for i in range(len(jobs))]


def _observe_many(kind: str, jobs: list[Job], breaker: Breaker) -> list[TargetState]:
    """The targets of one kind, observed together (AWS: listings).

    A listing may lag a write (Secrets Manager's ListSecrets is eventually consistent):
    a target bfprov recorded delivering that the listing lacks is asked on its own.
    """
    many = kinds.observer(kind)
    assert many is not None  # _observe_all sends only kinds that have it
    groups: dict[str | None, list[int]] = {}
    for i, (ref, _) in enumerate(jobs):
        groups.setdefault(endpoint(ref.config), []).append(i)
    results: list[Published | PublishError | None] = [None] * len(jobs)
    for indexes in groups.values():
        refs = [jobs[i][0] for i in indexes]
        for i, result in zip(indexes, _listed(many, refs, breaker), strict=True):
            results[i] = result
    states = []
    for (ref, known), result in zip(jobs, results, strict=True):
        if isinstance(result, PublishError):
            states.append(TargetState(ref.label, ref.config, None, False, result.reason, known))
        elif result is not None:
            states.append(_held(ref, result, known))
        elif known is not None and known.fingerprint and not known.error:
            states.append(_observe(ref, known, breaker))
        else:
            states.append(TargetState(ref.label, ref.config, None, False, None, known))
    return states


def _listed(
    many: ObserveMany, refs: list[TargetRef], breaker: Breaker
) -> list[Published | PublishError | None]:
    """One endpoint's targets observed together, through the run's breaker: a listing
    that timed out counts as one timeout of the endpoint, and a used-up endpoint is
    not listed at all."""

    def listing() -> list[Published | PublishError | None]:
        found = many(refs, breaker.timeout)
        late = next((r for r in found if isinstance(r, PublishError) and r.timed_out), None)
        if late is not None:
            raise late
        return found

    try:
        return breaker.call(refs[0].config, refs[0].label, listing)
    except PublishError as exc:
        return [PublishError(ref.label, exc.reason, timed_out=exc.timed_out) for ref in refs]


def _observe(ref: TargetRef, known: Delivery | None, breaker: Breaker) -> TargetState:
    def observe() -> Published | None:
        return kinds.build(ref, timeout=breaker.timeout).observe()

    try:
        published = breaker.call(ref.config, ref.label, observe)
    except PublishError as exc:
        return TargetState(ref.label, ref.config, None, False, exc.reason, known)
    if published is None:
        return TargetState(ref.label, ref.config, None, False, None, known)
    return _held(ref, published, known)


def _held(ref: TargetRef, published: Published, known: Delivery | None) -> TargetState:
    return TargetState(
        ref.label, ref.config, published.fingerprint, True, None, known, published.version
    )
