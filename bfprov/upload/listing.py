"""Which pairs await an upload: what the upload page lists.

A staged pair always does (it goes live only after its upload logs in); a live pair
does while the account has never logged in with a live pair (a new account, whose first
certificate is not on Betfair's site yet). Read from observed state only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from bfprov.upload.session import Entry

if TYPE_CHECKING:
    from bfprov.desired.models import Desired, Target
    from bfprov.observed.account import ObservedAccount, Pair
    from bfprov.observed.observe import Observed


def awaiting(desired: Desired, observed: Observed, identity_url: str | None) -> list[Entry]:
    """One entry per selected account whose pair awaits its upload, in profile order.

    With `identity_url` (a rehearsal on the emulator) the upload links point at the
    emulator's own upload form instead of Betfair's website.
    """
    entries = []
    for target in desired.targets:
        entry = _entry(target, observed.accounts[target.name], identity_url)
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(target: Target, obs: ObservedAccount, identity_url: str | None) -> Entry | None:
    if _usable(obs.staged):
        return _make(target, obs.staged, "staged", identity_url)
    if _usable(obs.live) and not _ever_logged_in(obs):
        return _make(target, obs.live, "live", identity_url)
    return None


def _usable(pair: Pair) -> bool:
    return pair.complete and pair.matched and pair.crt_facts is not None


def _ever_logged_in(obs: ObservedAccount) -> bool:
    last = obs.record.last_check if obs.record is not None else None
    return bool(last and last.get("last_live_success"))


def _make(target: Target, pair: Pair, which: str, identity_url: str | None) -> Entry:
    assert pair.crt is not None and pair.crt_facts is not None  # _usable
    account = target.account
    crt = target.directory / pair.crt.path
    url = account.jurisdiction.upload_url
    if identity_url:
        base = urlsplit(identity_url)  # it replaces scheme and host, like the logins'
        page = f"/sandbox/upload-page?username={quote(account.username)}"
        url = f"{base.scheme}://{base.netloc}{page}"
    return Entry(
        account=account.name,
        username=account.username,
        jurisdiction=f"betfair.{account.jurisdiction.value}",
        upload_url=url,
        pair="staged" if which == "staged" else "live",
        crt=crt,
        fingerprint=pair.crt_facts.fingerprint_sha256,
    )
