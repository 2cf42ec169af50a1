"""All terminal output goes through here (Rich), so tests patch or capture one place."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.console import RenderableType


# Off a terminal (CI logs, pipes) Rich would assume 80 columns and fold table cells
# mid-word; logs have room.
OFF_TERMINAL_WIDTH = 160


def _width(stream: object) -> int | None:
    isatty = getattr(stream, "isatty", None)
    return None if callable(isatty) and isatty() else OFF_TERMINAL_WIDTH


@functools.cache
def stdout() -> Console:
    # No highlighting: Rich would colour numbers and paths at random in our messages.
    return Console(highlight=False, soft_wrap=True, width=_width(sys.stdout))


@functools.cache
def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))


def say(message: RenderableType = "") -> None:
    """Print to standard output; plain strings are printed as they are (no markup)."""
    stdout().print(message, markup=False)


def raw(text: str) -> None:
    """Print text exactly (JSON, schemas): no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {_escape(message)}", markup=True)


def error(message: str) -> None:
    stderr().print(f"[bold red]error:[/bold red] {_escape(message)}", markup=True)


def note(message: str) -> None:
    """Progress and side remarks: standard error, so stdout stays parseable."""
    stderr().print(message, markup=False)


def is_terminal() -> bool:
    return stdout().is_terminal


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
