"""`bfprov status`: per account, the live certificate, its expiry, its state, the last login.

It only reads: profiles, the disk (through the observer) and each account's record,
where `verify`, `apply` and `promote` keep their latest login check. Three renderings of
the same rows: a table, JSON, and Prometheus text for node_exporter's textfile collector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich.text import Text

from bfprov import console
from bfprov.errors import BfprovError
from bfprov.plan.model import Action
from bfprov.plan.renewal import renewal_window
from bfprov.plan.snapshot import dump_json, load, snapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from rich.table import Table

    from bfprov.desired.models import Target
    from bfprov.observed.account import ObservedAccount
    from bfprov.plan.snapshot import Snapshot
    from bfprov.settings import Settings


class State(StrEnum):
    """An account's state; the order is the order of the summary and of the metrics."""

    OK = "ok"
    RENEWAL_DUE = "renewal-due"
    EXPIRED = "expired"
    PENDING_UPLOAD = "pending-upload"
    MISSING = "missing"
    ORPHAN = "orphan"


TABLE_WIDTH = 160  # when standard output is not a terminal

STATE_STYLES: dict[State, str] = {
    State.OK: "green",
    State.RENEWAL_DUE: "yellow",
    State.PENDING_UPLOAD: "yellow",
    State.EXPIRED: "red",
    State.MISSING: "red",
    State.ORPHAN: "dim",
}


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
            "at": _iso(self.at),
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
    last_check: LastCheck | None = None
    last_login_success: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "jurisdiction": self.jurisdiction,
            "state": self.state.value,
            "fingerprint": self.fingerprint,
            "not_after": _iso(self.not_after),
            "days_left": self.days_left,
            "renew_at": _iso(self.renew_at),
            "staged_fingerprint": self.staged_fingerprint,
            "last_check": self.last_check.to_json() if self.last_check else None,
            "last_login_success": _iso(self.last_login_success),
        }


# --- rows from a snapshot ------------------------------------------------------------------


def status_rows(snap: Snapshot) -> list[StatusRow]:
    """The accounts of the profiles, in profile order, then the orphaned directories."""
    actions = {c.account: c.action for c in snap.plan.changes if c.action is not Action.ORPHAN}
    rows = [
        account_row(t, snap.observed.accounts[t.name], actions.get(t.name, Action.NOOP), snap.now)
        for t in snap.desired.targets
    ]
    rows += [StatusRow(name, None, State.ORPHAN) for name in sorted(snap.observed.orphans)]
    return rows


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


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


# --- renderers -----------------------------------------------------------------------------


def check_text(check: LastCheck | None, last_success: datetime | None = None) -> str:
    """The last check in a few words: "SUCCESS 2026-11-21 07:45", or "never"."""
    if check is None:
        # The record keeps only the latest round of checks, which may have tried just
        # a staged pair; the last success of the live pair is kept apart.
        return f"last SUCCESS {_minute(last_success)}" if last_success else "never"
    result = check.login_status or (f"error: {check.error}" if check.error else "no answer")
    if check.at is not None:
        result += f" {_minute(check.at)}"
    if not check.current:
        result += " (stale: another certificate)"
    return result


def _minute(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def status_table(rows: Sequence[StatusRow]) -> Table:
    """One line per account; the state coloured."""
    from rich.table import Table

    table = Table(title="Certificates", title_justify="left")
    table.add_column("account", overflow="fold", min_width=8)
    table.add_column("jurisdiction", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("not after", no_wrap=True)
    table.add_column("days left", justify="right", no_wrap=True)
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("last check", overflow="fold", min_width=16)
    for r in rows:
        # Text, not str: a recorded error may hold brackets that Rich would take for markup.
        last = (
            check_text(r.last_check, r.last_login_success) if r.state is not State.ORPHAN else "-"
        )
        table.add_row(
            Text(r.account),
            r.jurisdiction or "-",
            Text(r.state.value, style=STATE_STYLES[r.state]),
            f"{r.not_after:%Y-%m-%d}" if r.not_after else "-",
            f"{r.days_left:.1f}" if r.days_left is not None else "-",
            r.fingerprint[:16] if r.fingerprint else "-",
            Text(last),
        )
    return table


def print_table(table: Table) -> None:
    """On a terminal, fit its width; elsewhere (a log, a pipe) keep lines whole, up to
    TABLE_WIDTH: folded at the default 80 columns, the last check would be cut in two."""
    from rich.segment import Segments

    out = console.stdout()
    if out.is_terminal:
        out.print(table)
        return
    out.print(Segments(out.render(table, out.options.update_width(TABLE_WIDTH))), crop=False)


def summary(rows: Sequence[StatusRow]) -> str:
    """E.g. "3 accounts: 2 ok, 1 pending-upload"."""
    counts = {s: sum(1 for r in rows if r.state is s) for s in State}
    parts = [f"{n} {s.value}" for s, n in counts.items() if n]
    head = f"{len(rows)} account{'' if len(rows) == 1 else 's'}"
    return f"{head}: {', '.join(parts)}" if parts else head


def status_json(rows: Sequence[StatusRow]) -> list[dict[str, Any]]:
    """The rows as `status --json` prints them."""
    return [r.to_json() for r in rows]


# Prometheus text exposition format (version 0.0.4), every metric a gauge.

Sample = tuple[dict[str, str], float]


def escape_label_value(value: str) -> str:
    """A label value as the exposition format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _labels(row: StatusRow) -> dict[str, str]:
    # An empty value is the same as no label: orphans have no jurisdiction.
    return {"account": row.account, "jurisdiction": row.jurisdiction or ""}


def _per_row(rows: Iterable[StatusRow], value: Callable[[StatusRow], float | None]) -> list[Sample]:
    samples = []
    for row in rows:
        v = value(row)
        if v is not None:
            samples.append((_labels(row), v))
    return samples


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def _check_time(row: StatusRow) -> float | None:
    return _timestamp(row.last_check.at) if row.last_check else None


def metrics(rows: Sequence[StatusRow]) -> list[tuple[str, str, list[Sample]]]:
    """Every metric as (name, help, samples); samples without a value are left out."""
    state_samples = [
        ({**_labels(r), "state": s.value}, _flag(r.state is s)) for r in rows for s in State
    ]
    due = (State.RENEWAL_DUE, State.EXPIRED)
    return [
        ("bfprov_certificate_expiry_timestamp_seconds",
         "Expiry (notAfter) of the live client certificate, in Unix seconds.",
         _per_row(rows, lambda r: _timestamp(r.not_after))),
        ("bfprov_certificate_days_left",
         "Days until the live client certificate expires (negative once expired).",
         _per_row(rows, lambda r: r.days_left)),
        ("bfprov_renewal_due",
         "1 if the live certificate is expired or due for rotation, else 0.",
         _per_row(rows, lambda r: _flag(r.state in due))),
        ("bfprov_renewal_timestamp_seconds",
         "When the live certificate falls due for renewal (notAfter minus the renewal "
         "window of renew_before and renew_jitter), in Unix seconds.",
         _per_row(rows, lambda r: _timestamp(r.renew_at))),
        ("bfprov_pending_upload",
         "1 if a staged pair waits for its upload to Betfair and its promotion, else 0.",
         _per_row(rows, lambda r: _flag(r.state is State.PENDING_UPLOAD))),
        ("bfprov_account_state",
         "The account's state: 1 for the current one, 0 for the others.",
         state_samples),
        ("bfprov_last_login_check_timestamp_seconds",
         "When the last recorded login check ran, in Unix seconds.",
         _per_row(rows, _check_time)),
        ("bfprov_last_login_success",
         "1 if the last recorded login check of the live pair answered SUCCESS, else 0.",
         _per_row(rows, lambda r: _flag(r.last_check.success) if r.last_check else None)),
        ("bfprov_last_login_check_current",
         "1 if the last recorded login check used the certificate that is live now, else 0.",
         _per_row(rows, lambda r: _flag(r.last_check.current) if r.last_check else None)),
        ("bfprov_last_login_success_timestamp_seconds",
         "When the live pair last logged in successfully, in Unix seconds.",
         _per_row(rows, lambda r: _timestamp(r.last_login_success))),
        ("bfprov_accounts",
         "Account directories reported: the accounts of the profiles and the orphans.",
         [({}, float(len(rows)))]),
    ]  # fmt: skip


def prometheus_text(rows: Sequence[StatusRow]) -> str:
    """The rows as Prometheus text exposition format, every metric a gauge."""
    lines: list[str] = []
    for name, help_text, samples in metrics(rows):
        lines.append(f"# HELP {name} {_escape_help(help_text)}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            lines.append(
                f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


# --- the command ---------------------------------------------------------------------------


def status(settings: Settings, *, as_json: bool, prometheus: bool) -> int:
    """Report every account; exit 0 whatever the states (it reports, it is not a check)."""
    if as_json and prometheus:
        raise BfprovError("--json and --prometheus cannot be used together: choose one")
    rows = status_rows(snapshot(load(settings)))
    if as_json:
        console.raw(dump_json(status_json(rows)))
    elif prometheus:
        console.raw(prometheus_text(rows))
    else:
        if rows:
            print_table(status_table(rows))
        console.note(summary(rows))
    return 0
