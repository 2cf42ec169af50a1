"""Login checks: which pair of which account, run a few at a time, and their records.

Also the checks that `apply` and `promote` run before a staged pair goes live.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from bfprov import console
from bfprov.desired.secret import reveal
from bfprov.observed.records import read_record
from bfprov.verify.catalogue import explain
from bfprov.verify.client import Credentials, LoginClient, Outcome, endpoints

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from pathlib import Path

    from bfprov.desired.models import Target
    from bfprov.observed.account import ObservedAccount, Pair
    from bfprov.observed.events import Event
    from bfprov.settings import Settings

PairName = Literal["live", "staged"]
PARALLEL = 8  # logins in flight by default (`verify --parallel`, at most 32)
LOGGED_IN_KEPT = 8  # fingerprints of an account's pairs that logged in, kept in its record


@dataclass(frozen=True)
class Check:
    """One login check to make: an account's live or staged pair."""

    target: Target
    observed: ObservedAccount
    pair: PairName


@dataclass(frozen=True)
class CheckResult:
    account: str
    jurisdiction: str
    pair: PairName
    fingerprint: str | None
    crt: str | None
    outcome: Outcome
    meaning: str
    remedy: str

    @property
    def success(self) -> bool:
        return self.outcome.success

    @property
    def awaiting_upload(self) -> bool:
        return self.outcome.status == "CERT_AUTH_REQUIRED"

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "jurisdiction": self.jurisdiction,
            "pair": self.pair,
            "fingerprint": self.fingerprint,
            "certificate": self.crt,
            "loginStatus": self.outcome.status,
            "error": self.outcome.error,
            "meaning": self.meaning,
            "remedy": self.remedy,
            "attempts": self.outcome.attempts,
            "logged_out": self.outcome.logged_out,
            "logout_error": self.outcome.logout_error,
        }


def _pair_of(check: Check) -> Pair:
    return check.observed.live if check.pair == "live" else check.observed.staged


def _usable(pair: Pair) -> bool:
    return (
        pair.key is not None
        and pair.crt is not None
        and pair.key.regular
        and pair.crt.regular
        and pair.matched
    )


def credentials(targets: Sequence[Target]) -> dict[str, Credentials]:
    """Every secret the checks need, read before the first login."""
    creds: dict[str, Credentials] = {}
    for t in targets:
        if t.name in creds:
            continue
        base = t.source.parent
        creds[t.name] = Credentials(
            username=t.account.username,
            password=reveal(t.account.password, base, f"{t.name}: password"),
            app_key=reveal(t.account.app_key, base, f"{t.name}: app_key"),
        )
    return creds


def run_checks(
    settings: Settings, checks: Sequence[Check], *, parallel: int = PARALLEL
) -> list[CheckResult]:
    """Log each pair in and out, `parallel` at a time; results in the order given.

    The per-account rate limit, the no-retry rules and the ban stop live in LoginClient,
    shared by every worker, so the number of workers changes none of them.
    """
    if not checks:
        return []
    creds = credentials([c.target for c in checks])
    client = LoginClient(ca_bundle=settings.ca_bundle)

    def one(check: Check) -> CheckResult:
        target, pair = check.target, _pair_of(check)
        account = target.account
        crt = target.directory / pair.crt.path if pair.crt else None
        fingerprint = pair.crt_facts.fingerprint_sha256 if pair.crt_facts else None
        if not _usable(pair) or crt is None or pair.key is None:
            error = f"no usable {check.pair} pair on disk"
            outcome = Outcome(status=None, error=error)
            remedy = "run `bfprov plan` and `bfprov apply`"
            return CheckResult(target.name, account.jurisdiction.value, check.pair, fingerprint,
                               None, outcome, error, remedy)  # fmt: skip
        urls = endpoints(account.jurisdiction, settings.identity_url)
        console.detail(f"{target.name}: {check.pair} pair {crt} -> {urls.login}")
        bits = pair.key_facts.bits if pair.key_facts else 2048
        key = target.directory / pair.key.path
        outcome = client.check(crt, key, creds[target.name], urls, key_bits=bits)
        if outcome.status is not None:
            meaning, remedy = explain(
                outcome.status, crt=str(crt), upload_url=account.jurisdiction.upload_url
            )
        else:
            meaning = outcome.error or "no answer"
            remedy = "check the network path to Betfair and run `bfprov verify` again"
        return CheckResult(target.name, account.jurisdiction.value, check.pair, fingerprint,
                           str(crt), outcome, meaning, remedy)  # fmt: skip

    workers = max(1, min(parallel, len(checks)))
    with (
        console.progress(len(checks), "logging in") as advance,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):

        def counted(check: Check) -> CheckResult:
            result = one(check)
            advance()
            return result

        return list(pool.map(counted, checks))


def known_logins(results: Sequence[CheckResult], checks: Sequence[Check]) -> set[str]:
    """Fingerprints of the pairs known to have logged in: in these results, or in the
    records the checks observed (before this run wrote its own)."""
    known = {r.fingerprint for r in results if r.success and r.fingerprint}
    for check in checks:
        record = check.observed.record
        known |= _logged_in(record.last_check if record else None)
    return known


def _logged_in(entry: dict[str, Any] | None) -> set[str]:
    if not isinstance(entry, dict):
        return set()
    listed = entry.get("logged_in")
    known = {f for f in listed if isinstance(f, str)} if isinstance(listed, list) else set()
    # Records written before `logged_in` existed: a pair whose last check succeeded.
    for pair in ("live", "staged"):
        result = entry.get(pair)
        if isinstance(result, dict) and result.get("loginStatus") == "SUCCESS":
            fingerprint = result.get("fingerprint")
            if isinstance(fingerprint, str):
                known.add(fingerprint)
    return known


def upload_pending(result: CheckResult, known: Collection[str]) -> bool:
    """CERT_AUTH_REQUIRED for a pair that never logged in: its upload is pending, which is
    not a failure (no `on_failure`). A pair that did log in and is refused now is one."""
    return result.awaiting_upload and result.fingerprint not in known


def record(results: Sequence[CheckResult], checks: Sequence[Check], *, locked: bool) -> None:
    """Keep each account's latest check in its record, for `bfprov status`.

    `locked`: the caller (apply, promote) holds the output directories' locks. Otherwise
    the records are written only if no apply holds them: results are still shown.
    """
    import contextlib

    from bfprov.apply.events import append_events, event
    from bfprov.apply.lock import apply_lock
    from bfprov.errors import BfprovError

    # The audit trail is append-only: every check goes in, whoever holds the lock.
    trail: dict[Path, list[Event]] = {}
    for c, r in zip(checks, results, strict=True):
        status = r.outcome.status
        trail.setdefault(c.target.output_dir, []).append(event(
            c.target.name, "login_check", fingerprint=r.fingerprint, pair=c.pair,
            login_status=status, detail=None if status else r.outcome.error,
        ))  # fmt: skip
    for output_dir, events in trail.items():
        if output_dir.is_dir():  # verify creates nothing
            append_events(output_dir, events)
    with contextlib.ExitStack() as locks:
        if not locked:
            try:
                for output_dir in sorted({c.target.output_dir for c in checks}):
                    if output_dir.is_dir():  # verify creates nothing
                        locks.enter_context(apply_lock(output_dir))
            except BfprovError:
                console.note("an apply is running: these results are not recorded for status")
                return
        _record(results, checks)


def _record(results: Sequence[CheckResult], checks: Sequence[Check]) -> None:
    from bfprov.apply.store import record_check

    now = datetime.now(UTC).isoformat(timespec="seconds")
    by_account: dict[str, list[tuple[Check, CheckResult]]] = {}
    for check, result in zip(checks, results, strict=True):
        by_account.setdefault(check.target.name, []).append((check, result))
    for pairs in by_account.values():
        check = pairs[0][0]
        if not check.observed.exists:
            continue
        # Read the record afresh: an apply may have rewritten it since it was observed.
        current = read_record(check.target.directory)
        previous = (current.last_check if current else None) or {}
        # Pairs not checked this time keep their last result (an apply that only tried
        # the staged pair must not erase the live pair's history).
        entry: dict[str, Any] = {**previous, "at": now}
        for c, r in pairs:
            entry[c.pair] = {"fingerprint": r.fingerprint, "loginStatus": r.outcome.status,
                             "error": r.outcome.error}  # fmt: skip
        # Which pairs ever logged in (newest first): a later CERT_AUTH_REQUIRED of one of
        # them is a failure, of any other an upload pending.
        succeeded = [r.fingerprint for _, r in pairs if r.success and r.fingerprint]
        listed = previous.get("logged_in")  # a record edited by hand may hold anything
        earlier = [f for f in (listed if isinstance(listed, list) else []) if isinstance(f, str)]
        earlier = [f for f in earlier if f not in succeeded]
        entry["logged_in"] = (succeeded + earlier)[:LOGGED_IN_KEPT]
        live = entry.get("live")
        entry["last_live_success"] = (
            now if live and live["loginStatus"] == "SUCCESS" else previous.get("last_live_success")
        )
        record_check(check.target.output_dir, check.target.name, current, entry)
