"""What apply says when it is done: counts, and each certificate to upload, and where."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov.console import Message
from bfprov.plan.model import Action
from bfprov.views.plan import PENDING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.apply.executor import Outcome
    from bfprov.desired.models import Target
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.deliver import Delivered


def report(
    snap: Snapshot,
    outcomes: Sequence[Outcome],
    verify: bool,
    *,
    quiet: bool,
    checks: Sequence[Message] = (),
) -> list[Message]:
    """Each write to a target, the login `checks` (their table), the summary of an apply
    (unless `quiet`), and what the operator must upload."""
    targets = {t.name: t for t in snap.desired.targets}
    actions = {c.account: c.action for c in snap.plan.changes}
    uploads: list[tuple[str, str, str]] = []
    counts = dict.fromkeys(("created", "staged", "promoted", "updated", "published"), 0)
    counts |= {"pending": 0, "failed": 0}
    for o in outcomes:
        target = targets[o.account]
        kind = _kind(o, actions.get(o.account))
        if kind in counts:
            counts[kind] += 1
        crt = _to_upload(snap, target, o, kind)
        if crt is not None:
            uploads.append((o.account, crt, target.account.jurisdiction.upload_url))
    said: list[Message] = []
    for o in outcomes:
        said.append(Message(f"{o.account}: wrote {', '.join(o.written) or 'nothing'}", "detail"))
        said += [Message(line) for line in deliveries(o.account, o.delivered)]
    said += checks
    if not quiet:
        said.append(Message(_summary(counts, outcomes)))
    if uploads:
        said.append(
            Message(
                "\nUpload each certificate on Betfair's website (Automated Betting Program "
                "Access -> Edit), logged in as the account:"
            )
        )
        said.append(Message("\n".join(f"  {a}: {crt}\n      at {url}" for a, crt, url in uploads)))
    if counts["pending"]:
        how = (
            "run `bfprov apply` again after the upload (it logs in with the staged pair "
            "and promotes it)"
            if verify
            else "verification is off: after the upload, run `bfprov apply` (with login "
            "verification) or `bfprov promote ACCOUNT --no-verify`"
        )
        said.append(Message(f"\n{counts['pending']} staged pair(s) wait for their upload: {how}."))
    return said


def _to_upload(snap: Snapshot, target: Target, o: Outcome, kind: str) -> str | None:
    """The certificate the operator must upload after this outcome, if any."""
    if kind == "created":
        return str(target.directory / f"{target.account.stem}.crt")
    if kind == "staged":
        return o.staged
    staged = snap.observed.accounts[o.account].staged.crt if kind == "pending" else None
    return str(target.directory / staged.path) if staged is not None else None


def _kind(o: Outcome, action: Action | None) -> str:
    """What happened to the account's own files; a drift repair changes none of them: its
    deliveries are counted as publications, not as an update."""
    return "published" if o.kind == "updated" and action is Action.PUBLISH else o.kind


def _summary(counts: dict[str, int], outcomes: Sequence[Outcome]) -> str:
    """`Apply complete: ...`, counting each delivery to a target that was made, and,
    apart, each that failed (never counted as done)."""
    published = sum(len(o.delivered.published) for o in outcomes if o.delivered)
    failed = sum(len(o.delivered.failed) for o in outcomes if o.delivered)
    text = (
        f"\nApply complete: {counts['created']} created, {counts['staged']} staged for "
        f"rotation, {counts['promoted']} promoted, {counts['updated']} updated"
    )
    if published or failed:
        text += f", {published} published"
    if failed:
        text += f", {failed} failed to publish"
    return text + "."


def deliveries(account: str, delivered: Delivered | None) -> list[str]:
    """One line for each write made to a publishing target."""
    if delivered is None:
        return []
    lines = [f"Published {account} to {label}" for label in delivered.published]
    return lines + [f"Staged {account}: {PENDING} written to {label}" for label in delivered.staged]


def hook_failures(account: str, delivered: Delivered | None) -> list[str]:
    """One error line for each hook that failed."""
    return [
        f"{account}: {h.describe()}" for h in (delivered.hooks if delivered else ()) if not h.ok
    ]


def delivery_failures(outcomes: Sequence[Outcome]) -> list[str]:
    """One error line for every failed publication and hook."""
    lines: list[str] = []
    for o in outcomes:
        if o.delivered is None:
            continue
        lines += [f"{o.account}: publication failed: {why}" for why in o.delivered.failed]
        lines += hook_failures(o.account, o.delivered)
    return lines
