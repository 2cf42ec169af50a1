"""What apply says when it is done: counts, and each certificate to upload, and where."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.apply.executor import Outcome
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.deliver import Delivered


def report(snap: Snapshot, outcomes: Sequence[Outcome], verify: bool) -> None:
    """Print the summary of an apply, and what the operator must upload."""
    targets = {t.name: t for t in snap.desired.targets}
    uploads: list[tuple[str, str, str]] = []
    counts = {"created": 0, "staged": 0, "promoted": 0, "updated": 0, "pending": 0}
    for o in outcomes:
        target = targets[o.account]
        url = target.account.jurisdiction.upload_url
        if o.created:
            counts["created"] += 1
            uploads.append((o.account, str(target.directory / f"{target.account.stem}.crt"), url))
        elif o.staged:
            counts["staged"] += 1
            uploads.append((o.account, o.staged, url))
        elif o.promoted:
            counts["promoted"] += 1
        elif o.promotion_pending:
            counts["pending"] += 1
            staged = snap.observed.accounts[o.account].staged.crt
            if staged is not None:
                uploads.append((o.account, str(target.directory / staged.path), url))
        else:
            counts["updated"] += 1
    for o in outcomes:
        console.detail(f"{o.account}: wrote {', '.join(o.written) or 'nothing'}")
        for label in o.delivered.published if o.delivered else ():
            console.say(f"Published {o.account} to {label}")
    if not console.quiet():
        console.say(
            f"\nApply complete: {counts['created']} created, {counts['staged']} staged for "
            f"rotation, {counts['promoted']} promoted, {counts['updated']} updated."
        )
    if uploads:
        console.say(
            "\nUpload each certificate on Betfair's website (Automated Betting Program "
            "Access -> Edit), logged in as the account:"
        )
        console.say("\n".join(f"  {a}: {crt}\n      at {url}" for a, crt, url in uploads))
    if counts["pending"]:
        how = (
            "run `bfprov apply` again after the upload (it logs in with the staged pair "
            "and promotes it)"
            if verify
            else "verification is off: after the upload, run `bfprov apply` (with login "
            "verification) or `bfprov promote ACCOUNT --no-verify`"
        )
        console.say(f"\n{counts['pending']} staged pair(s) wait for their upload: {how}.")


def report_hooks(account: str, delivered: Delivered | None) -> bool:
    """Print the hooks that failed; True if one did."""
    failed = False
    for hook in delivered.hooks if delivered else ():
        if not hook.ok:
            console.error(f"{account}: {hook.describe()}")
            failed = True
    return failed


def delivery_failed(outcomes: Sequence[Outcome]) -> bool:
    """Print every failed publication and hook, one line each; True if any failed."""
    failed = False
    for o in outcomes:
        if o.delivered is None:
            continue
        for why in o.delivered.failed:
            console.error(f"{o.account}: publication failed: {why}")
            failed = True
        failed = report_hooks(o.account, o.delivered) or failed
    return failed
