"""`bfprov status --prometheus`: the rows as Prometheus text, for node_exporter's textfile.

The exposition is prometheus-client's own: one collector turns the rows into gauge
families, and `generate_latest` writes them (escaping, number formats, HELP and TYPE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from bfprov.views.status import State

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from bfprov.views.status import StatusRow

ROW_LABELS = ("account", "jurisdiction")


def _labels(row: StatusRow) -> list[str]:
    # An empty value is the same as no label: orphans have no jurisdiction.
    return [row.account, row.jurisdiction or ""]


def _timestamp(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


def _check_time(row: StatusRow) -> float | None:
    return _timestamp(row.last_check.at) if row.last_check else None


_DUE = (State.RENEWAL_DUE, State.EXPIRED)

# name, help, value per row (None: no sample for that row)
PER_ROW: tuple[tuple[str, str, Callable[[StatusRow], float | None]], ...] = (
    ("bfprov_certificate_expiry_timestamp_seconds",
     "Expiry (notAfter) of the live client certificate, in Unix seconds.",
     lambda r: _timestamp(r.not_after)),
    ("bfprov_renewal_due",
     "1 if the live certificate is expired or due for rotation, else 0.",
     lambda r: _flag(r.state in _DUE)),
    ("bfprov_renewal_timestamp_seconds",
     "When the live certificate falls due for renewal (notAfter minus the renewal "
     "window of renew_before and renew_jitter), in Unix seconds.",
     lambda r: _timestamp(r.renew_at)),
    ("bfprov_pending_upload",
     "1 if a staged pair waits for its upload to Betfair and its promotion, else 0.",
     lambda r: _flag(r.state is State.PENDING_UPLOAD)),
    ("bfprov_pending_upload_since_seconds",
     "Since when a staged pair has waited for its upload (its certificate's notBefore), "
     "in Unix seconds; no sample when none waits.",
     lambda r: _timestamp(r.staged_since) if r.state is State.PENDING_UPLOAD else None),
    ("bfprov_last_login_check_timestamp_seconds",
     "When the last recorded login check ran, in Unix seconds.",
     _check_time),
    ("bfprov_last_login_success",
     "1 if the last recorded login check of the live pair answered SUCCESS, else 0.",
     lambda r: _flag(r.last_check.success) if r.last_check else None),
    ("bfprov_last_login_check_current",
     "1 if the last recorded login check used the certificate that is live now, else 0.",
     lambda r: _flag(r.last_check.current) if r.last_check else None),
    ("bfprov_last_login_success_timestamp_seconds",
     "When the live pair last logged in successfully, in Unix seconds.",
     lambda r: _timestamp(r.last_login_success)),
)  # fmt: skip


class _StatusCollector(Collector):
    def __init__(self, rows: Sequence[StatusRow]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, value in PER_ROW:
            family = GaugeMetricFamily(name, help_text, labels=ROW_LABELS)
            for row in self.rows:
                v = value(row)
                if v is not None:
                    family.add_metric(_labels(row), v)
            yield family
        states = GaugeMetricFamily(
            "bfprov_account_state",
            "The account's state: 1 for the current one, 0 for the others.",
            labels=(*ROW_LABELS, "state"),
        )
        for row in self.rows:
            for s in State:
                states.add_metric([*_labels(row), s.value], _flag(row.state is s))
        yield states
        published = GaugeMetricFamily(
            "bfprov_published",
            "1 if the publishing target holds the live pair, else 0.",
            labels=("account", "target"),
        )
        for row in self.rows:
            for target, holds in row.published:
                published.add_metric([row.account, target], _flag(holds))
        yield published
        yield GaugeMetricFamily(
            "bfprov_accounts",
            "Account directories reported: the accounts of the profiles and the orphans.",
            value=float(len(self.rows)),
        )


def prometheus_text(rows: Sequence[StatusRow]) -> str:
    """The rows as Prometheus text exposition format, every metric a gauge."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(rows))
    return generate_latest(registry).decode()
