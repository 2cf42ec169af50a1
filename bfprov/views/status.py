"""`bfprov status` rows: per account, the live certificate, its expiry, its state, the last login.

Pure: built from a snapshot (desired, observed, plan) and each account's record, where
`verify`, `apply` and `promote` keep their latest login check. `status_table` and
`prometheus` render the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bfprov.plan.model import Action
from bfprov.plan.renewal import renewal_window

if TYPE_CHECKING:
    from bfprov.desired.models import Target
    from bfprov.observed.account import ObservedAccount
    from bfprov.plan.snapshot import Snapshot
    from bfprov.publish.observe import TargetState


class State(StrEnum):
    """An account's state; the order is the order of the summary and of the metrics."""

    OK = "ok"
    RENEWAL_DUE = "renewal-due"
    EXPIRED = "expired"
    PENDING_UPLOAD = "pending-upload"
    MISSING = "missing"
    ORPHAN = "orphan"


@dataclass(frozen=True)
class LastCheck:
    """The latest recorded login check that speaks for the account's live certificate."""

    at: datetime | None
    pair: str  # "live", or "staged" for a check made before that pair was promoted
    login_status: str | None
    error: str | None
    fingerprint: str | None
    current: bool  # made with the certificate that is live now

    @property
    def success(self) -> bool:
        return self.login_status == "SUCCESS"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "pair": self.pair,
            "loginStatus": self.login_status,
            "error": self.error,
            "fingerprint": self.fingerprint,
            "current": self.current,
        }


@dataclass(frozen=True)
class StatusRow:
    """One line of `bfprov status`: a profile's account or an orphaned directory."""

    account: str
    jurisdiction: str | None
    state: State
    fingerprint: str | None = None
    not_after: datetime | None = None
    days_left: float | None = None
    renew_at: datetime | None = None
    staged_fingerprint: str | None = None
    staged_since: datetime | None = None  # the staged certificate's notBefore
    last_check: LastCheck | None = None
    last_login_success: datetime | None = None
    published: tuple[tuple[str, bool], ...] = ()  # (target, holds the live pair)

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "jurisdiction": self.jurisdiction,
            "state": self.state.value,
            "fingerprint": self.fingerprint,
            "not_after": iso(self.not_after),
            "days_left": self.days_left,
            "renew_at": iso(self.renew_at),
            "staged_fingerprint": self.staged_fingerprint,
            "staged_since": iso(self.staged_since),
            "last_check": self.last_check.to_json() if self.last_check else None,
            "last_login_success": iso(self.last_login_success),
            "published": dict(self.published),
        }


def status_rows(snap: Snapshot) -> list[StatusRow]:
    """The accounts of the profiles, in profile order, then the orphaned directories."""
    actions = {c.account: c.action for c in snap.plan.changes if c.action is not Action.ORPHAN}
    rows = [
        replace(
            account_row(
                t, snap.observed.accounts[t.name], actions.get(t.name, Action.NOOP), snap.now
            ),
            published=_published(snap.publications.get(t.name, ()), snap.observed.accounts[t.name]),
        )
        for t in snap.desired.targets
    ]
    rows += [StatusRow(name, None, State.ORPHAN) for name in sorted(snap.observed.orphans)]
    return rows


def _published(
    states: tuple[TargetState, ...], obs: ObservedAccount
) -> tuple[tuple[str, bool], ...]:
    """Per target: does it hold the live pair, as bfprov last delivered it (no network)."""
    live = obs.live.crt_facts.fingerprint_sha256 if obs.live.crt_facts else None
    return tuple(
        (s.label, live is not None and s.held_fingerprint == live and s.error is None)
        for s in states
    )


def account_state(obs: ObservedAccount, action: Action, now: datetime) -> State:
    """The first that applies: missing, pending-upload, expired, renewal-due, ok."""
    live = obs.live
    if not live.complete or not live.matched or live.crt_facts is None:
        return State.MISSING
    if obs.staged.complete:
        return State.PENDING_UPLOAD
    if live.crt_facts.not_after <= now:
        return State.EXPIRED
    if action is Action.ROTATE:
        return State.RENEWAL_DUE
    return State.OK


def account_row(target: Target, obs: ObservedAccount, action: Action, now: datetime) -> StatusRow:
    """The row of one account of the profiles, from what was observed and planned."""
    cf = obs.live.crt_facts  # reported even when the pair is unusable: it is what is on disk
    staged = obs.staged.crt_facts
    fingerprint = cf.fingerprint_sha256 if cf else None
    check = obs.record.last_check if obs.record else None
    return StatusRow(
        account=target.name,
        jurisdiction=target.account.jurisdiction.value,
        state=account_state(obs, action, now),
        fingerprint=fingerprint,
        not_after=cf.not_after if cf else None,
        days_left=round((cf.not_after - now).total_seconds() / 86400, 1) if cf else None,
        renew_at=(
            cf.not_after - renewal_window(target.account, cf.not_after - cf.not_before)
            if cf
            else None
        ),
        staged_fingerprint=staged.fingerprint_sha256 if staged else None,
        staged_since=staged.not_before if staged else None,
        last_check=last_check(check, fingerprint),
        last_login_success=_time(check.get("last_live_success")) if check else None,
    )


def last_check(entry: dict[str, Any] | None, live_fingerprint: str | None) -> LastCheck | None:
    """The recorded check that speaks for the live certificate, from a record's `last_check`.

    The check made with the certificate that is live now (the staged pair's, when a
    promotion followed it); else the live pair's, stale. A staged pair's check says
    nothing about the live certificate: alone, it gives None. Records may be old or
    edited by hand: anything malformed counts as absent.
    """
    if not isinstance(entry, dict):
        return None
    found: list[LastCheck] = []
    for pair in ("live", "staged"):
        result = entry.get(pair)
        if not isinstance(result, dict):
            continue
        fingerprint = _str(result.get("fingerprint"))
        found.append(
            LastCheck(
                at=_time(entry.get("at")),
                pair=pair,
                login_status=_str(result.get("loginStatus")),
                error=_str(result.get("error")),
                fingerprint=fingerprint,
                current=fingerprint is not None and fingerprint == live_fingerprint,
            )
        )
    for check in found:
        if check.current:
            return check
    return next((c for c in found if c.pair == "live"), None)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None
