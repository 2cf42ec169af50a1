"""All terminal output goes through here (Rich), so tests patch or capture one place."""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import TYPE_CHECKING, Literal, NamedTuple

from rich.console import Console

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from rich.console import RenderableType


# Off a terminal (CI logs, pipes) Rich would assume 80 columns and fold table cells
# mid-word; logs have room.
OFF_TERMINAL_WIDTH = 160


def _width(stream: object) -> int | None:
    isatty = getattr(stream, "isatty", None)
    return None if callable(isatty) and isatty() else OFF_TERMINAL_WIDTH


@functools.cache
def stdout() -> Console:
    # No highlighting: Rich would colour numbers and paths at random in our messages. No
    # emoji codes: a path like /srv/a:fire:b would be printed with an emoji in it.
    return Console(highlight=False, emoji=False, soft_wrap=True, width=_width(sys.stdout))


@functools.cache
def stderr() -> Console:
    return Console(
        stderr=True, highlight=False, emoji=False, soft_wrap=True, width=_width(sys.stderr)
    )


class Message(NamedTuple):
    """One piece of output a view composed, and where it goes: `out` (standard output,
    as `say`), `detail` (standard error, with --verbose only), `error`, or `render` (a Rich
    renderable such as a table, on standard output, markup on)."""

    text: RenderableType
    to: Literal["out", "detail", "error", "render"] = "out"


def emit(messages: Iterable[Message]) -> None:
    """Print what a view composed, each message where it goes, in order."""
    for m in messages:
        if m.to == "out":
            say(m.text)
        elif m.to == "render":
            stdout().print(m.text)
        else:
            assert isinstance(m.text, str)
            (detail if m.to == "detail" else error)(m.text)


def table(renderable: RenderableType, width: int) -> None:
    """On a terminal, fit its width; elsewhere (a log, a pipe) keep lines whole, up to
    `width`: folded at the default 80 columns, the last column would be cut in two."""
    from rich.segment import Segments

    out = stdout()
    if out.is_terminal:
        out.print(renderable)
        return
    out.print(Segments(out.render(renderable, out.options.update_width(width))), crop=False)


_LEVEL = {"level": 1}  # 0: --quiet, 1: normal, 2: --verbose


def set_level(level: int) -> None:
    _LEVEL["level"] = level


def quiet() -> bool:
    return _LEVEL["level"] <= 0


def verbose() -> bool:
    return _LEVEL["level"] >= 2


def detail(message: str) -> None:
    """Only with --verbose (never given a secret: callers pass paths, names, counts)."""
    if verbose():
        stderr().print(f"[dim]{_escape(message)}[/dim]", markup=True)


def say(message: RenderableType = "") -> None:
    """Print to standard output; plain strings are printed as they are (no markup)."""
    out = stdout()
    if not out.is_terminal:
        # Off a terminal there is no colour to render: text goes out as it is, without
        # Rich's rendering (a millisecond a line: seconds for a plan of 10,000 accounts).
        from rich.text import Text

        if isinstance(message, str | Text):
            sys.stdout.write((message.plain if isinstance(message, Text) else message) + "\n")
            sys.stdout.flush()
            return
    out.print(message, markup=False)


def raw(text: str) -> None:
    """Print text exactly (JSON, schemas): no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def write(text: str) -> None:
    """Print a piece of a longer text exactly as it is (a stream of JSON)."""
    sys.stdout.write(text)


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {_escape(message)}", markup=True)


def warnings(messages: Iterable[str]) -> None:
    """Each message as a warning."""
    for message in messages:
        warn(message)


def error(message: str) -> None:
    stderr().print(f"[bold red]error:[/bold red] {_escape(message)}", markup=True)


def errors(messages: Sequence[str]) -> bool:
    """Print each message as an error, one line each; True if there was one."""
    for message in messages:
        error(message)
    return bool(messages)


def note(message: str) -> None:
    """Progress and side remarks: standard error, so stdout stays parseable (not --quiet)."""
    if not quiet():
        stderr().print(message, markup=False)


@contextlib.contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A progress bar with counts on a terminal (standard error); nothing elsewhere."""
    if not stderr().is_terminal or total < 2 or quiet():
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def confirm(question: str, command: str) -> None:
    """Ask `question` on a terminal; off one (a pipe, CI) refuse, naming `--yes`.

    Raises BfprovError unless the operator answered yes: nothing is done without it.
    """
    from bfprov.errors import BfprovError

    if not sys.stdin.isatty():
        raise BfprovError(f"{command} needs confirmation: run it on a terminal, or pass --yes")
    import typer

    if not typer.confirm(question, default=False):
        raise BfprovError(f"{command} cancelled; nothing was changed")


def is_terminal() -> bool:
    return stdout().is_terminal


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
