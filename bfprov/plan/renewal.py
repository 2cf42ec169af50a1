"""When a certificate is due for renewal: renew_before, plus a per-account jitter."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bfprov.crypto import CertFacts
    from bfprov.desired.models import Account
    from bfprov.plan.snapshot import Snapshot


def jitter_offset(account: Account) -> timedelta:
    """How much earlier than renew_before this account renews: fixed per account name."""
    jitter = account.validity.renew_jitter
    if jitter is None or jitter.duration is None:
        return timedelta(0)
    seconds = int(jitter.duration.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(account.name.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def renewal_window(account: Account, lifetime: timedelta) -> timedelta:
    """How long before expiry the account's certificate is due for renewal."""
    return account.validity.renew_before.before_expiry(lifetime) + jitter_offset(account)


def expiry_problems(cf: CertFacts, account: Account, now: datetime, where: str) -> list[str]:
    """Why the certificate's validity no longer serves: expired, not yet valid, or due."""
    left = cf.not_after - now
    if left <= timedelta(0):
        return [f"{where} certificate expired on {cf.not_after:%Y-%m-%d}"]
    if cf.not_before > now:
        return [f"{where} certificate is not valid before {cf.not_before:%Y-%m-%d %H:%M} UTC"]
    window = renewal_window(account, cf.not_after - cf.not_before)
    if left <= window:
        rule = f"renew_before {account.validity.renew_before}"
        if account.validity.renew_jitter is not None:
            rule += f" + {_days(jitter_offset(account))} of renew_jitter"
        return [f"{where} certificate expires in {_days(left)} on {cf.not_after:%Y-%m-%d} ({rule})"]
    return []


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if abs(days) >= 1:
        n = int(days)
        return f"{n} day{'s' if n != 1 else ''}"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def validity_notes(snap: Snapshot) -> list[str]:
    """A note for each account whose live certificate was made for another number of days
    than its `validity.days` says now, and that this plan gives no new pair: a changed
    validity is never a reason for a new key; it applies at the next rotation."""
    renewed = {c.account for c in snap.plan.changes if c.action in ("create", "rotate")}
    notes: list[str] = []
    for target in snap.desired.targets:
        cf = snap.observed.accounts[target.name].live.crt_facts
        if cf is None or target.name in renewed:
            continue
        made = round((cf.not_after - cf.not_before).total_seconds() / 86400)
        days = target.account.validity.days
        if made != days:
            notes.append(
                f"{target.name}: validity.days is {days}, its live certificate was made for "
                f"{made}: the new validity applies at the next rotation "
                f"(or now with `bfprov apply --replace {target.name}`)"
            )
    return notes
