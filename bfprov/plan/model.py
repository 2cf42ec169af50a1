"""The plan as data: one Change per account, each with its reasons and the steps apply runs.

`plan` prints a Plan; `apply` executes the very same value, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bfprov.desired.models import Output
    from bfprov.desired.targets import TargetRef

FORMAT_VERSION = 1  # of the plan JSON (`plan --json`, saved plans)


class Action(StrEnum):
    CREATE = "create"
    ROTATE = "rotate"
    UPDATE = "update"
    PROMOTE = "promote"
    PUBLISH = "publish"
    ORPHAN = "orphan"
    NOOP = "noop"


# Steps: what apply does for a change, in order. Paths are relative to the account dir.
@dataclass(frozen=True)
class ArchiveFiles:
    """Move files out of the way into the archive (never deleted outright)."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class RemoveLeftovers:
    """Delete temporary files an interrupted write left behind."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class NewPair:
    """Generate a key (or reuse the live one) and a certificate, live or staged."""

    staged: bool
    reuse_key: bool = False


@dataclass(frozen=True)
class WriteDerived:
    """(Re)write derived files of the live pair: pem, p12, csr, cnf."""

    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class FixModes:
    """Tighten modes that are too open: (path, mode) pairs."""

    modes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Promote:
    """Make the staged pair live; `resume` finishes an interrupted promotion."""

    resume: bool = False


@dataclass(frozen=True)
class ArchiveOrphan:
    """Move a directory no profile names out of the output directory (`--prune`)."""


@dataclass(frozen=True)
class Restore:
    """Bring an archived generation back as the live pair (`bfprov rollback`)."""

    generation: str


@dataclass(frozen=True)
class Publish:
    """Deliver the live pair (after this change's other steps) to these targets.

    `repair`: the targets lack the live pair the account has now; the step is for when the
    change makes no new pair live (a promotion still waiting for its upload), since a new
    live pair goes to every target anyway.
    """

    targets: tuple[TargetRef, ...]
    repair: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(t.label for t in self.targets)


@dataclass(frozen=True)
class Stage:
    """Offer the staged pair to the targets that keep a next version (AWS: AWSPENDING)."""

    targets: tuple[TargetRef, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(t.label for t in self.targets)


Step = (
    ArchiveFiles
    | RemoveLeftovers
    | NewPair
    | WriteDerived
    | FixModes
    | Promote
    | ArchiveOrphan
    | Restore
    | Publish
    | Stage
)


@dataclass(frozen=True)
class Change:
    """What one account needs, why, and the steps that do it."""

    account: str
    action: Action
    reasons: tuple[str, ...]
    requires_upload: bool
    steps: tuple[Step, ...] = ()
    needs_login: bool = False  # a promotion waits for a successful login with the staged pair

    @property
    def publish_to(self) -> tuple[str, ...]:
        """The targets (by label) this change delivers the live pair to."""
        labels = (label for s in self.steps if isinstance(s, Publish) for label in s.labels)
        return tuple(dict.fromkeys(labels))  # a repair and a promotion may name one twice

    @property
    def stage_to(self) -> tuple[str, ...]:
        """The targets (by label) this change offers its staged pair to (AWS: AWSPENDING)."""
        return tuple(label for s in self.steps if isinstance(s, Stage) for label in s.labels)

    def to_json(self) -> dict[str, object]:
        """The change as `plan --json` shows it (steps are apply's business); the targets
        it writes to appear only when it writes to some, so other changes keep their shape."""
        data: dict[str, object] = {
            "account": self.account,
            "action": self.action.value,
            "reasons": list(self.reasons),
            "requires_upload": self.requires_upload,
        }
        if self.publish_to:
            data["publish_to"] = list(self.publish_to)
        if self.stage_to:
            data["stage_to"] = list(self.stage_to)
        return data


@dataclass(frozen=True)
class Plan:
    """Every change, the accounts that need none, and digests of what was observed."""

    changes: tuple[Change, ...]
    noop: tuple[str, ...]
    digests: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def publications(self) -> int:
        """How many deliveries of a live pair to a target the plan makes."""
        return sum(len(c.publish_to) for c in self.changes)

    def summary(self) -> dict[str, int]:
        """How many accounts of each action (noop included)."""
        counts = {a.value: 0 for a in Action if a is not Action.NOOP}
        for c in self.changes:
            counts[c.action.value] += 1
        counts["noop"] = len(self.noop)
        return counts

    def to_json(self) -> dict[str, object]:
        """The plan as `plan --json` prints it."""
        return {
            "format_version": FORMAT_VERSION,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary(),
        }
