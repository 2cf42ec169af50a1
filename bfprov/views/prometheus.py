"""`bfprov status --prometheus`: the rows as Prometheus text, for node_exporter's textfile."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bfprov.views.status import State

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import datetime

    from bfprov.views.status import StatusRow

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
