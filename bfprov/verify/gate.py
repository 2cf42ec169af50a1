"""The login checks around a run that writes (apply): the staged pairs before it (a pair
that logs in may be promoted), the live pairs after it, and what their results mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.observed.account import observe_account
from bfprov.publish.deliver import on_failure
from bfprov.verify.checks import Check, credentials, known_logins, run_checks, upload_pending

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from bfprov.apply.executor import Outcome
    from bfprov.desired.models import Target
    from bfprov.plan.model import Change
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.deliver import Delivered
    from bfprov.settings import Settings
    from bfprov.verify.checks import CheckResult


def staged_logins(
    settings: Settings,
    snap: Snapshot,
    changes: Sequence[Change],
    targets: dict[str, Target],
    *,
    verify: bool,
) -> tuple[list[Check], list[CheckResult]]:
    """Log in with the staged pairs these changes would promote (`verify=False`: none).

    Every login secret is read first, before the first write."""
    if verify:
        credentials([targets[c.account] for c in changes if c.account in targets])
    staged = [
        Check(targets[c.account], snap.observed.accounts[c.account], "staged")
        for c in changes
        if c.needs_login and verify
    ]
    return staged, run_checks(settings, staged)


def live_checks(outcomes: Sequence[Outcome], targets: dict[str, Target]) -> list[Check]:
    """Live pairs worth a login after this run: those that need no upload first."""
    return [
        Check(targets[o.account], observe_account(targets[o.account]), "live")
        for o in outcomes
        if o.kind not in ("created", "staged", "pending")
    ]


@dataclass(frozen=True)
class Verdict:
    """What the login checks of a run mean: the accounts whose pair awaits its upload
    (not a failure), and the failed results (each such account's on_failure is owed)."""

    pending: list[str]
    failed: list[CheckResult]

    @property
    def accounts_failed(self) -> list[str]:
        return sorted({r.account for r in self.failed})


def failure_hooks(targets: dict[str, Target], judged: Verdict) -> Iterator[tuple[str, Delivered]]:
    """Run each failed account's on_failure hook, one after another as they are asked
    for: (account, what the hook did)."""
    for name in judged.accounts_failed:
        yield name, on_failure(targets[name], judged.failed)


def verdict(
    staged_results: Sequence[CheckResult],
    live_results: Sequence[CheckResult],
    checks: Sequence[Check],
) -> Verdict:
    """A pair that never logged in and gets CERT_AUTH_REQUIRED awaits its upload: not a
    failure (a staged pair's, whatever its history: the rotation's normal course)."""
    known = known_logins([*staged_results, *live_results], checks)
    pending = sorted({r.account for r in live_results if upload_pending(r, known)})
    failed = [r for r in live_results if not r.success and not upload_pending(r, known)]
    failed += [r for r in staged_results if not r.success and not r.awaiting_upload]
    return Verdict(pending, failed)
