"""What a run tells the profile's `notify` URLs: uploads left pending, promotions,
failures. One message of each kind per set of URLs (accounts that share their URLs share
a message), never one per account; a failed notification is a warning, never a failed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bfprov.desired.secret import reveal
from bfprov.errors import BfprovError
from bfprov.notify import Message, send

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pydantic import SecretStr

    from bfprov.apply.executor import Outcome
    from bfprov.desired.models import SecretRef, Target
    from bfprov.verify.checks import CheckResult


@dataclass
class News:
    """What happened to which accounts in one run."""

    pending: list[Target] = field(default_factory=list)  # a pair awaits its upload
    promoted: list[Target] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # account -> why, one line

    def __bool__(self) -> bool:
        return bool(self.pending or self.promoted or self.failed)


def login_failures(results: Iterable[CheckResult]) -> dict[str, str]:
    """Each failed login check as the messages say it: account -> `login <loginStatus>`."""
    return {r.account: f"login {r.outcome.status or r.outcome.error}" for r in results}


def news_of(
    targets: Mapping[str, Target], outcomes: Sequence[Outcome], failed: Mapping[str, str]
) -> News:
    """What a run that wrote (apply, promote) has to tell: the pairs now awaiting their
    upload, those promoted, and the accounts that failed (`failed`: the login checks'
    failures; failed deliveries are added)."""
    news = News(failed=dict(failed))
    for o in outcomes:
        if o.kind in ("created", "staged", "pending"):
            news.pending.append(targets[o.account])
        elif o.kind == "promoted":
            news.promoted.append(targets[o.account])
        if o.delivered is not None and o.delivered.failed:
            news.failed.setdefault(o.account, "publication failed: " + o.delivered.failed[0])
    return news


def tell(targets: Sequence[Target], news: News) -> list[str]:
    """Send the run's messages to each account's `notify` URLs; the warnings."""
    if not news:
        return []
    groups: dict[tuple[SecretRef, ...], list[Target]] = {}
    for t in targets:
        if t.account.notify:
            groups.setdefault(t.account.notify, []).append(t)
    warnings: list[str] = []
    for refs, members in groups.items():
        names = {t.name for t in members}
        try:
            urls = _urls(refs, members[0])
        except BfprovError as exc:
            warnings.append(f"notify: {exc}; not sent")
            continue
        for message in messages(news, names):
            warnings += send(urls, message)
    return warnings


def messages(news: News, names: set[str]) -> list[Message]:
    """The messages about the accounts `names`."""
    found = []
    pending = [t for t in news.pending if t.name in names]
    if pending:
        listed = ", ".join(f"{t.name} (betfair.{t.account.jurisdiction.value})" for t in pending)
        found.append(
            Message(
                f"bfprov: {len(pending)} certificate upload(s) pending",
                f"Upload each new certificate on Betfair's website: {listed}. "
                "Run `bfprov upload` for a guided session.",
            )
        )
    promoted = [t.name for t in news.promoted if t.name in names]
    if promoted:
        found.append(
            Message(
                f"bfprov: {len(promoted)} new pair(s) live",
                f"Promoted, published and live: {', '.join(promoted)}.",
                "success",
            )
        )
    failed = {a: why for a, why in news.failed.items() if a in names}
    if failed:
        body = "; ".join(f"{a}: {why}" for a, why in failed.items())
        found.append(Message(f"bfprov: {len(failed)} account(s) failed", body, "failure"))
    return found


def _urls(refs: tuple[SecretRef, ...], target: Target) -> list[SecretStr]:
    base = target.source.parent
    return [reveal(ref, base, f"{target.name}: notify[{i}]") for i, ref in enumerate(refs)]
