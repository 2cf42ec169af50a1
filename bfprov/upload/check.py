"""What the page's "Check" does: the same login, promotion, publication and hooks as
`verify` and `promote`, for one account, and what the page then shows.

A staged pair goes through `verify.promotion.promote` (under the output directory's lock;
on SUCCESS it is promoted, published and its `on_live` run). A new account's live pair
is logged in like `verify` does. A loginStatus other than SUCCESS shows the catalogue's
meaning and remedy; CERT_AUTH_REQUIRED for a pair never uploaded is "upload pending"
(no `on_failure`), anything else runs `on_failure`. The notify URLs hear of each
promotion and failure. Nothing the page receives holds a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov.notify.run import News, tell
from bfprov.observed.account import observe_account
from bfprov.publish.deliver import on_failure
from bfprov.upload.session import Verdict
from bfprov.verify import promotion
from bfprov.verify.checks import Check, record, run_checks
from bfprov.views.apply import delivery_failures

if TYPE_CHECKING:
    from collections.abc import Callable

    from bfprov.desired.models import Desired, Target
    from bfprov.settings import Settings
    from bfprov.upload.session import Entry
    from bfprov.verify.checks import CheckResult


def checker(
    settings: Settings, desired: Desired, *, lock_timeout: float, warn: Callable[[str], None]
) -> Callable[[Entry], Verdict]:
    """The page's check of one entry (`warn` gets what a failed notification says)."""

    def check(entry: Entry) -> Verdict:
        chosen = desired.select([entry.account])
        target = chosen.targets[0]
        if entry.pair == "staged":
            verdict = _promote(settings, chosen, lock_timeout)
        else:
            verdict = _first_login(settings, target)
        news = News(promoted=[target] if verdict.live and entry.pair == "staged" else [])
        if not verdict.live and verdict.login_status != "CERT_AUTH_REQUIRED":
            news.failed[target.name] = verdict.message
        for warning in tell([target], news):
            warn(warning)
        return verdict

    return check


def _first_login(settings: Settings, target: Target) -> Verdict:
    checks = [Check(target, observe_account(target), "live")]
    results = run_checks(settings, checks)
    record(results, checks, locked=False)
    return _judged(target, results[0])


def _promote(settings: Settings, chosen: Desired, lock_timeout: float) -> Verdict:
    done = promotion.promote(
        settings,
        chosen,
        verify=True,
        lock_timeout=lock_timeout,
        command="upload",
        skipped=lambda _: None,
    )
    if done.refused or not done.outcomes:
        return _judged(chosen.targets[0], done.results[0])
    problems = delivery_failures(done.outcomes)
    if problems:
        # Live on disk all the same: the next apply delivers what failed.
        return Verdict(True, "SUCCESS", "live; but " + "; ".join(problems))
    return Verdict(True, "SUCCESS", "promoted and published")


def _judged(target: Target, result: CheckResult) -> Verdict:
    status = result.outcome.status or ""
    if result.success:
        return Verdict(True, status, "logged in: live")
    if not result.awaiting_upload:
        on_failure(target, [result])  # a pair refused for another reason is a failure
    what = status or (result.outcome.error or "no answer")
    return Verdict(False, status, f"{what}: {result.meaning}; {result.remedy}")
