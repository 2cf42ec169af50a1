"""`bfprov sandbox ...`: the embedded emulator's commands, a sub-app of `bfprov.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bfprov.cli_help import command_doc
from bfprov.cli_options import ProfilesOpt, settings_of

sandbox_app = typer.Typer(
    help="The embedded Betfair identity-service emulator, for rehearsals and tests.",
    no_args_is_help=True,
)


@sandbox_app.command("serve", **command_doc("sandbox serve"))
def sandbox_serve(
    profiles: ProfilesOpt = None,
    port: Annotated[
        int, typer.Option(metavar="N", help="port on 127.0.0.1 (0: any free port)")
    ] = 8443,
    state_dir: Annotated[
        Path,
        typer.Option(
            "--state-dir", metavar="PATH", help="where the emulator keeps its CA and accounts"
        ),
    ] = Path(".bfprov-sandbox"),
    upload_live: Annotated[
        bool, typer.Option("--upload-live", help="upload each account's live .crt at start")
    ] = False,
    lock_after: Annotated[int, typer.Option(metavar="N", help="wrong passwords before a lock")] = 3,
    rate_limit: Annotated[
        int, typer.Option(metavar="N", help="successful logins a minute before a ban")
    ] = 100,
) -> None:
    """Run the emulator; accounts come from the profiles (their secrets are read)."""
    from bfprov.commands.sandbox import serve

    raise typer.Exit(
        serve(
            settings_of(profiles),
            port=port,
            state_dir=state_dir,
            upload_live=upload_live,
            lock_after=lock_after,
            rate_limit=rate_limit,
        )
    )


@sandbox_app.command("upload", **command_doc("sandbox upload"))
def sandbox_upload(
    account: Annotated[
        str, typer.Argument(metavar="ACCOUNT", help="the account whose .crt to upload")
    ],
    profiles: ProfilesOpt = None,
    staged: Annotated[bool, typer.Option("--staged", help="upload the staged pair's .crt")] = False,
) -> None:
    """Upload an account's certificate to the emulator (its stand-in for the website)."""
    from bfprov.commands.sandbox import upload

    raise typer.Exit(upload(settings_of(profiles), account=account, staged=staged))
