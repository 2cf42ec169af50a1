"""The profile's hooks: argv lists run without a shell, after a pair goes live or fails.

A hook's outcome is a value (`HookResult`), never an exception: a hook that fails or
times out is reported and makes the run exit 1, and never undoes the change it followed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bfprov.children import environment
from bfprov.desired.targets import render

if TYPE_CHECKING:
    from pathlib import Path

TIMED_OUT = "timed out"
_OUTPUT_TAIL = 8192  # bytes of the hook's output kept, for the last lines of the report
TAIL_LINES = 5  # lines of a failed hook's output shown in the report and the audit trail
TAIL_CHARS = 500
LINE_CHARS = 200  # a longer line is cut: one runaway line must not hide the others
# Terminal escape sequences (colours, cursor moves), then any other control character.
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class HookEvent(StrEnum):
    """What happened to the account (BFPROV_EVENT)."""

    CREATED = "created"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass(frozen=True)
class HookContext:
    """What a hook is told about the account, through its environment."""

    account: str
    event: HookEvent
    account_dir: Path
    crt: Path
    key: Path
    fingerprint: str
    jurisdiction: str

    def environment(self) -> dict[str, str]:
        """Exactly the variables SPEC names; paths, never key material nor a secret."""
        return {
            "BFPROV_ACCOUNT": self.account,
            "BFPROV_EVENT": self.event.value,
            "BFPROV_ACCOUNT_DIR": str(self.account_dir),
            "BFPROV_CRT": str(self.crt),
            "BFPROV_KEY": str(self.key),
            "BFPROV_FINGERPRINT": self.fingerprint,
            "BFPROV_JURISDICTION": self.jurisdiction,
        }


@dataclass(frozen=True)
class HookResult:
    """How a hook ended: its exit status, TIMED_OUT, or why it could not start."""

    program: str  # argv[0], after {account} was replaced
    outcome: int | str
    seconds: float
    output: str = ""  # the end of what it printed (stdout and stderr together)

    @property
    def ok(self) -> bool:
        return self.outcome == 0

    def last_lines(self) -> list[str]:
        """The last non-empty lines of the output (at most TAIL_LINES, TAIL_CHARS in all),
        without escape sequences or control characters: safe for a terminal and a trail."""
        kept: list[str] = []
        room = TAIL_CHARS
        for raw in reversed(self.output.splitlines()):
            line = _CONTROL.sub("", _ESCAPES.sub("", raw)).strip()
            if len(line) > LINE_CHARS:
                line = line[: LINE_CHARS - 3] + "..."
            if not line:
                continue
            if len(kept) == TAIL_LINES or len(line) > room:
                break
            kept.append(line)
            room -= len(line)
        return kept[::-1]

    def describe(self) -> str:
        """One line for the report and the audit trail:
        `hook /usr/bin/x: exit status 3 after 0.2s; last output: a | b`."""
        if isinstance(self.outcome, int):
            how = f"exit status {self.outcome}" if self.outcome >= 0 else f"signal {-self.outcome}"
        else:
            how = self.outcome
        line = f"hook {self.program}: {how} after {self.seconds:.1f}s"
        tail = [] if self.ok else self.last_lines()
        return f"{line}; last output: {' | '.join(tail)}" if tail else line


def run_hook(
    argv: Sequence[str],
    context: HookContext,
    *,
    timeout: float,
    pass_env: Collection[str] = (),
    base_env: Mapping[str, str] | None = None,
) -> HookResult:
    """Run `argv` (no shell; `{account}` replaced in each element) with an allow-listed
    environment: the variables every child gets (`bfprov.children`) and those named in
    `pass_env`, taken from `base_env` (default: this process's environment), plus the
    context's BFPROV_* variables. Never a password, app key or token: the profile refuses
    a `pass_env` name that a secret reference reads. On timeout the hook's whole process
    group is killed.
    """
    args = [render(arg, context.account) for arg in argv]
    env = environment(pass_env, source=base_env)
    env.update(context.environment())
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:  # a file, not a pipe: a stray child cannot block us
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group, killed as one
                close_fds=True,
            )
        except OSError as exc:
            reason = f"cannot run: {exc.strerror or type(exc).__name__}"
            return HookResult(args[0], reason, time.monotonic() - started)
        try:
            outcome: int | str = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            outcome = TIMED_OUT
        seconds = time.monotonic() - started
        out.seek(0, os.SEEK_END)
        cut = out.tell() > _OUTPUT_TAIL
        out.seek(max(0, out.tell() - _OUTPUT_TAIL))
        output = out.read().decode("utf-8", "replace")
        if cut:  # the first line kept is only the end of a line
            output = output.partition("\n")[2]
    return HookResult(args[0], outcome, seconds, output)


def _kill_group(pid: int) -> None:
    # The group may be gone already: it ended between the timeout and the kill.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
