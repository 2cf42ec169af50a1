"""What each publishing target holds for each account, and bfprov's record of what it wrote.

Observing a target reads its metadata only, never key material, a few targets at a time.
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

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import Desired, Target
    from bfprov.desired.targets import TargetConfig
    from bfprov.publish.base import Published
    from bfprov.publish.breaker import Breaker


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


def targets_of(target: Target) -> tuple[TargetConfig, ...]:
    """The publishing targets the profile names for this account."""
    return tuple(ref.config for ref in target.publications)


def labelled_targets(target: Target) -> dict[str, TargetConfig]:
    """The account's publishing targets by label, in the profile's order."""
    return {ref.label: ref.config for ref in target.publications}


def observe_publications(
    desired: Desired, *, refresh: bool = True, breaker: Breaker | None = None
) -> dict[str, tuple[TargetState, ...]]:
    """Per account with targets, the state of each target, in the profile's order.

    `breaker` is the run's (its timeout, its parallelism, and the endpoints that did
    not answer); a plan alone makes its own.
    """
    if breaker is None:
        from bfprov.publish.breaker import Breaker

        breaker = Breaker()
    jobs: list[tuple[str, TargetConfig, str, Path, Delivery | None]] = []
    for t in desired.targets:
        labelled = labelled_targets(t)
        if not labelled:
            continue
        recorded = read_deliveries(t.directory)
        for label, config in labelled.items():
            jobs.append((t.name, config, label, t.source.parent, recorded.get(label)))
    if not jobs:
        return {}

    def one(job: tuple[str, TargetConfig, str, Path, Delivery | None]) -> TargetState:
        account, config, label, profile_dir, recorded = job
        if not refresh:
            held = recorded.fingerprint if recorded and not recorded.error else None
            return TargetState(label, config, held, held is not None, None, recorded)
        return _observe(account, config, label, profile_dir, recorded, breaker)

    with ThreadPoolExecutor(max_workers=max(1, min(breaker.parallel, len(jobs)))) as pool:
        states = list(pool.map(one, jobs))
    result: dict[str, list[TargetState]] = {}
    for (account, *_), state in zip(jobs, states, strict=True):
        result.setdefault(account, []).append(state)
    return {account: tuple(s) for account, s in result.items()}


def _observe(
    account: str,
    config: TargetConfig,
    label: str,
    profile_dir: Path,
    recorded: Delivery | None,
    breaker: Breaker,
) -> TargetState:
    from bfprov.publish.base import PublishError
    from bfprov.publish.kinds import make_target

    def observe() -> Published | None:
        return make_target(config, account, profile_dir, timeout=breaker.timeout).observe()

    try:
        published = breaker.call(config, label, observe)
    except PublishError as exc:
        return TargetState(label, config, None, False, exc.reason, recorded)
    if published is None:
        return TargetState(label, config, None, False, None, recorded)
    return TargetState(
        label, config, published.fingerprint, True, None, recorded, published.version
    )
