"""What each publishing target holds for each account, and bfprov's record of what it wrote.

Observing a target reads its metadata only, never key material, a few targets at a time.
AWS targets are observed together, a listing of secrets in pages per (region, endpoint),
not one call per account (publish.aws_list.observe_many).
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
from bfprov.publish.config import AwsSecretsManagerConfig

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import Desired, Target
    from bfprov.publish.base import Published
    from bfprov.publish.config import TargetConfig

PARALLEL = 8  # targets observed at once

Job = tuple[str, "TargetConfig", str, "Path", "Delivery | None"]


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
    return tuple(entry.target for entry in target.account.publish)


def labelled_targets(target: Target) -> dict[str, TargetConfig]:
    """The account's publishing targets by label, in the profile's order."""
    from bfprov.publish.base import target_label

    return {target_label(c, target.name, target.source.parent): c for c in targets_of(target)}


def observe_publications(
    desired: Desired, *, refresh: bool = True, parallel: int = PARALLEL
) -> dict[str, tuple[TargetState, ...]]:
    """Per account with targets, the state of each target, in the profile's order."""
    jobs: list[Job] = []
    for t in desired.targets:
        labelled = labelled_targets(t)
        if not labelled:
            continue
        recorded = read_deliveries(t.directory)
        for label, config in labelled.items():
            jobs.append((t.name, config, label, t.source.parent, recorded.get(label)))
    if not jobs:
        return {}

    def one(job: Job) -> TargetState:
        account, config, label, profile_dir, recorded = job
        if not refresh:
            held = recorded.fingerprint if recorded and not recorded.error else None
            return TargetState(label, config, held, held is not None, None, recorded)
        return _observe(account, config, label, profile_dir, recorded)

    # AWS targets are listed together (one task); the others are observed one by one.
    listed = [i for i, j in enumerate(jobs) if isinstance(j[1], AwsSecretsManagerConfig)]
    listed = listed if refresh else []
    aws = set(listed)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs)))) as pool:
        batch = pool.submit(_observe_aws, [jobs[i] for i in listed]) if listed else None
        singles = {i: pool.submit(one, j) for i, j in enumerate(jobs) if i not in aws}
        found = dict(zip(listed, batch.result() if batch else (), strict=True))
        states = [found[i] if i in found else singles[i].result() for i in range(len(jobs))]
    result: dict[str, list[TargetState]] = {}
    for (account, *_), state in zip(jobs, states, strict=True):
        result.setdefault(account, []).append(state)
    return {account: tuple(s) for account, s in result.items()}


def _observe_aws(jobs: list[Job]) -> list[TargetState]:
    """AWS targets, observed together through listings (publish.aws_list.observe_many).

    A listing may lag a write (Secrets Manager's ListSecrets is eventually consistent):
    a secret bfprov recorded delivering that the listing lacks is asked for on its own.
    """
    from bfprov.publish.aws_list import observe_many
    from bfprov.publish.base import PublishError

    wanted = [(c, account) for account, c, *_ in jobs if isinstance(c, AwsSecretsManagerConfig)]
    results = observe_many(wanted)
    states = []
    for job, result in zip(jobs, results, strict=True):
        account, config, label, profile_dir, recorded = job
        if isinstance(result, PublishError):
            states.append(TargetState(label, config, None, False, result.reason, recorded))
        elif result is not None:
            states.append(TargetState(label, config, result.fingerprint, True, None, recorded))
        elif recorded is not None and recorded.fingerprint and not recorded.error:
            states.append(_observe(account, config, label, profile_dir, recorded))
        else:
            states.append(TargetState(label, config, None, False, None, recorded))
    return states


def _observe(
    account: str, config: TargetConfig, label: str, profile_dir: Path, recorded: Delivery | None
) -> TargetState:
    from bfprov.publish.base import PublishError, make_target

    try:
        published: Published | None = make_target(config, account, profile_dir).observe()
    except PublishError as exc:
        return TargetState(label, config, None, False, exc.reason, recorded)
    if published is None:
        return TargetState(label, config, None, False, None, recorded)
    return TargetState(label, config, published.fingerprint, True, None, recorded)
