"""`bfprov sandbox serve|upload`: the embedded identity-service emulator, for rehearsals."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.errors import BfprovError
from bfprov.layout import STAGED
from bfprov.observed.files import read_bytes
from bfprov.views.sandbox import banner

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.settings import Settings


def serve(
    settings: Settings,
    *,
    port: int,
    state_dir: Path,
    upload_live: bool,
    lock_after: int,
    rate_limit: int,
) -> int:
    """Run the emulator until Ctrl-C; accounts (and live uploads) from the profiles."""
    from bfprov.sandbox import Emulator

    emulator = Emulator(state_dir, port=port, lock_after=lock_after, rate_limit=rate_limit)
    names: list[str] = []
    if settings.profiles.exists():
        from bfprov.plan.snapshot import load
        from bfprov.verify.checks import credentials

        desired = load(settings)
        creds = credentials(desired.targets)
        with emulator.batch():  # state.json written once, not once per account
            for target in desired.targets:
                c = creds[target.name]
                emulator.add_account(
                    c.username, c.password.get_secret_value(), c.app_key.get_secret_value()
                )
                names.append(target.name)
                crt = target.directory / f"{target.account.stem}.crt"
                if upload_live and crt.exists():
                    emulator.upload(c.username, read_bytes(crt))
    with emulator:
        for line in banner(emulator.url, emulator.ca_path, settings.profiles, names):
            console.say(line)
        threading.Event().wait()
    return 0


def upload(settings: Settings, *, account: str, staged: bool) -> int:
    """Stand-in for the website's upload: send an account's .crt to the emulator."""
    from bfprov.observed.account import observe_account
    from bfprov.plan.snapshot import load
    from bfprov.sandbox.upload import sandbox_upload

    if not settings.identity_url:
        raise BfprovError(
            "set BFPROV_IDENTITY_URL (and BFPROV_CA_BUNDLE) to the emulator's, "
            "as `bfprov sandbox serve` prints them"
        )
    target = load(settings).select([account]).targets[0]
    pair = observe_account(target).staged if staged else observe_account(target).live
    if pair.crt is None:
        where = STAGED if staged else "live"
        raise BfprovError(f"{account} has no {where} certificate to upload")
    path = target.directory / pair.crt.path
    fingerprint = sandbox_upload(
        settings.identity_url, settings.ca_bundle, target.account.username, read_bytes(path)
    )
    console.say(f"Uploaded {path} for {target.account.username} (sha256 {fingerprint[:16]}...)")
    return 0
