"""Command line: parse arguments, call a command, map errors to exit codes. Nothing else.

Longer than most modules only because every command's options are declared here, one
small function each (the options several share: cli_options); each imports its command
when it runs, so start-up stays cheap.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bfprov import __version__
from bfprov.cli_help import command_doc, doc
from bfprov.cli_options import (
    AccountOpt,
    LockTimeoutOpt,
    ProfilesOpt,
    ReplaceOpt,
    SelectOpt,
    check_limit,
    check_parallel,
    seconds,
    selection_of,
    settings_of,
)
from bfprov.cli_sandbox import sandbox_app

app = typer.Typer(
    name="bfprov",
    help="Declarative provisioning of Betfair Exchange API bot-login client certificates.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command(**command_doc("validate"))
def validate(profiles: ProfilesOpt = None) -> None:
    """Check the profiles; nothing else."""
    from bfprov.commands.validate import validate as run

    raise typer.Exit(run(settings_of(profiles)))


@app.command(**command_doc("plan"))
def plan(
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    replace: ReplaceOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="the plan as JSON")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="save the plan to FILE for `apply FILE`"),
    ] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="exit 2 when changes are pending")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="a Markdown summary, for pull-request comments")
    ] = False,
    no_refresh: Annotated[
        bool,
        typer.Option(
            "--no-refresh",
            help="trust bfprov's records of what it published instead of asking each target",
        ),
    ] = False,
) -> None:
    """Observe the disk (and publishing targets) and show what apply would change."""
    from bfprov.commands.plan import plan as run

    raise typer.Exit(
        run(
            settings_of(profiles),
            as_json=json_,
            out=out,
            detailed_exitcode=detailed_exitcode,
            markdown=markdown,
            refresh=not no_refresh,
            selection=selection_of(account, select),
            replace=replace or [],
        )
    )


@app.command(**command_doc("apply"))
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(metavar="FILE", help="a plan saved by `plan --out`")
    ] = None,
    profiles: ProfilesOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="skip the login checks")] = False,
    account: AccountOpt = None,
    select: SelectOpt = None,
    replace: ReplaceOpt = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="archive orphaned account directories")
    ] = False,
    lock_timeout: LockTimeoutOpt = "0",
) -> None:
    """Carry out the plan (with FILE, exactly that saved plan, for the accounts it was made
    for: its --account/--select/--replace; others given must equal them)."""
    from bfprov.commands.apply import apply as run

    wait = seconds(lock_timeout)
    raise typer.Exit(
        run(
            settings_of(profiles),
            plan_file=plan_file,
            yes=yes,
            verify=not no_verify,
            selection=selection_of(account, select),
            replace=replace or [],
            prune=prune,
            lock_timeout=wait,
        )
    )


@app.command(**command_doc("rollback"))
def rollback(
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="the account to roll back")],
    profiles: ProfilesOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    lock_timeout: LockTimeoutOpt = "0",
) -> None:
    """Bring back the newest archived generation as the live pair (upload it again)."""
    from bfprov.commands.rollback import rollback as run

    wait = seconds(lock_timeout)
    raise typer.Exit(run(settings_of(profiles), account=account, yes=yes, lock_timeout=wait))


@app.command(**command_doc("promote"))
def promote(
    accounts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ACCOUNT", help="accounts whose staged pair goes live", show_default=False
        ),
    ] = None,
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="promote without a login check: you vouch for the upload"),
    ] = False,
    lock_timeout: LockTimeoutOpt = "0",
) -> None:
    """Make staged pairs live once their login works.

    Which accounts: ACCOUNT... (or --account), and/or --select KEY=VALUE. Given together,
    --select narrows the named accounts; alone, it promotes every account it selects
    that has a staged pair. One of them is required: promotion is never fleet-wide by
    default.
    """
    from bfprov.commands.promote import promote as run

    wait = seconds(lock_timeout)
    chosen = selection_of([*(accounts or []), *(account or [])], select)
    raise typer.Exit(
        run(settings_of(profiles), selection=chosen, verify=not no_verify, lock_timeout=wait)
    )


@app.command(**command_doc("upload"))
def upload(
    accounts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ACCOUNT", help="accounts to list (default: all)", show_default=False
        ),
    ] = None,
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="address to serve on (loopback)")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="N", help="port to serve on (0: any free one)")
    ] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="print the address; open no browser")
    ] = False,
    lock_timeout: LockTimeoutOpt = "0",
) -> None:
    """Guide the certificate uploads on a local page; check and promote each when done.

    Lists every selected pair awaiting its upload (new accounts never logged in, staged
    pairs), with its certificate to download and the Betfair page to upload it on.
    "Check" logs in with the pair and, on success, promotes, publishes and runs hooks.
    """
    from bfprov.commands.upload import upload as run

    chosen = selection_of([*(accounts or []), *(account or [])], select)
    raise typer.Exit(
        run(
            settings_of(profiles),
            selection=chosen,
            host=host,
            port=port,
            browser=not no_browser,
            lock_timeout=seconds(lock_timeout),
        )
    )


@app.command(**command_doc("verify"))
def verify(
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="results as JSON")] = False,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel", metavar="N", callback=check_parallel, help="logins in flight (1 to 32)"
        ),
    ] = 8,
) -> None:
    """Log each account in with its live (and staged) pair, log out, report."""
    from bfprov.commands.verify import verify as run

    raise typer.Exit(
        run(
            settings_of(profiles),
            selection=selection_of(account, select),
            as_json=json_,
            parallel=parallel,
        )
    )


@app.command(**command_doc("status"))
def status(
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="the rows as JSON")] = False,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus", help="Prometheus text format, for node_exporter's textfile collector"
        ),
    ] = False,
) -> None:
    """Per account: live certificate, expiry, state and last login check. Only reads."""
    from bfprov.commands.status import status as run

    chosen = selection_of(account, select)
    raise typer.Exit(
        run(settings_of(profiles), as_json=json_, prometheus=prometheus, selection=chosen)
    )


@app.command(**command_doc("history"))
def history(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="ACCOUNT", help="accounts to show (default: all)", show_default=False
        ),
    ] = None,
    profiles: ProfilesOpt = None,
    account: AccountOpt = None,
    select: SelectOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="the events as JSON")] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="only events since: a duration ago (7d) or a date"
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", callback=check_limit, help="only the newest N events"),
    ] = None,
) -> None:
    """The audit trail: every change, publication, hook run and login check, oldest first."""
    from bfprov.commands.history import history as run

    chosen = selection_of([*(names or []), *(account or [])], select)
    raise typer.Exit(
        run(settings_of(profiles), selection=chosen, as_json=json_, since=since, limit=limit)
    )


@app.command(**command_doc("schema"))
def schema() -> None:
    """Print the JSON Schema of a profile, for editors."""
    from bfprov.commands.schema import schema as run

    raise typer.Exit(run())


@app.command(**command_doc("init"))
def init(profiles: ProfilesOpt = None) -> None:
    """Write a commented starter profile."""
    from bfprov.commands.init import init as run

    raise typer.Exit(run(settings_of(profiles)))


app.add_typer(sandbox_app, name="sandbox", **doc("sandbox"))


@app.command(**command_doc("demo"))
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="keep the demo's directory")] = False,
) -> None:
    """Run the whole lifecycle in a temporary directory against the emulator."""
    from bfprov.commands.demo import demo as run

    raise typer.Exit(run(keep=keep))


def _version(value: bool) -> None:
    if value:
        print(f"bfprov {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="show the version")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="only results, warnings and errors")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="more detail (never secrets)")
    ] = False,
) -> None:
    """Declarative provisioning of Betfair Exchange API bot-login client certificates."""
    from bfprov import console

    console.set_level(0 if quiet else 2 if verbose else 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 / 1 / 2 (plan --detailed-exitcode only) / 130."""
    args = sys.argv[1:] if argv is None else argv
    from bfprov import console
    from bfprov.errors import BfprovError

    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="bfprov", standalone_mode=False)
    except BfprovError as exc:
        console.error(str(exc))
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console.error("aborted")
        return 130
    except typer.TyperException as exc:
        # Usage errors exit 1, never 2: 2 means "changes pending" for plan.
        console.error(exc.format_message())
        return 1
    except KeyboardInterrupt:
        console.error("interrupted")
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
