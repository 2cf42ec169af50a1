"""The command line's shared pieces: the options several commands take, as `Annotated`
types, and the small parsers behind them (selection, durations, counts)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from bfprov.desired.selection import Selection
    from bfprov.settings import Settings

ProfilesOpt = Annotated[
    Path | None,
    typer.Option(
        "--profiles",
        metavar="PATH",
        help="profile file or directory [env BFPROV_PROFILES; default profiles/]",
        show_default=False,
    ),
]
LockTimeoutOpt = Annotated[
    str,
    typer.Option(
        "--lock-timeout",
        metavar="DURATION",
        help="wait this long for another run's lock (30s, 5m, 1h; default 0: fail at once)",
    ),
]
AccountOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--account", metavar="NAME", help="only this account (repeatable)", show_default=False
    ),
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        metavar="KEY=VALUE",
        help="only accounts whose labels hold KEY=VALUE (repeatable: all must match)",
        show_default=False,
    ),
]
ReplaceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--replace",
        metavar="NAME",
        help="a new key and certificate for this account whatever its state, staged like "
        "a rotation (key compromise; repeatable)",
        show_default=False,
    ),
]


def settings_of(profiles: Path | None) -> Settings:
    """The settings, with the profiles given on the command line (if any)."""
    from bfprov.settings import load_settings

    return load_settings(profiles)


def selection_of(accounts: list[str] | None, selects: list[str] | None) -> Selection:
    """The accounts named and the labels given (none: every account)."""
    from bfprov.desired.selection import selection

    return selection(accounts or [], selects or [])


def seconds(lock_timeout: str) -> float:
    """`--lock-timeout` in seconds; a one-line error if it is not a duration."""
    from bfprov.durations import parse_duration
    from bfprov.errors import BfprovError

    try:
        return parse_duration(lock_timeout).total_seconds()
    except ValueError as exc:
        raise BfprovError(f"--lock-timeout: {exc}") from None


def check_parallel(value: int) -> int:
    """`--parallel`: a number of logins in flight, 1 to 32."""
    if not 1 <= value <= 32:
        raise typer.BadParameter(f"{value} is not a number of logins from 1 to 32")
    return value


def check_limit(value: int | None) -> int | None:
    """`--limit`: a number of events, 1 or more (none: all)."""
    if value is not None and value < 1:
        raise typer.BadParameter(f"{value} is not a number of events (1 or more)")
    return value
