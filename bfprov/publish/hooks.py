"""The profile's hooks: argv lists run without a shell, after a pair goes live or fails.

A hook's outcome is a value (`HookResult`), never an exception: a hook that fails or
times out is reported and makes the run exit 1, and never undoes the change it followed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bfprov.desired.targets import render

if TYPE_CHECKING:
    from pathlib import Path

TIMED_OUT = "timed out"
_OUTPUT_TAIL = 2000  # characters of the hook's output kept for the report


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

    def describe(self) -> str:
        """One line for the report: `hook /usr/bin/x: exit status 3 after 0.2s`."""
        if isinstance(self.outcome, int):
            how = f"exit status {self.outcome}" if self.outcome >= 0 else f"signal {-self.outcome}"
        else:
            how = self.outcome
        return f"hook {self.program}: {how} after {self.seconds:.1f}s"


def run_hook(
    argv: Sequence[str],
    context: HookContext,
    *,
    timeout: float,
    withhold: Collection[str] = (),
    base_env: Mapping[str, str] | None = None,
) -> HookResult:
    """Run `argv` (no shell; `{account}` replaced in each element) with the context's
    variables added to `base_env` (default: this process's environment), minus the
    variables named in `withhold` (those the profile's secret references read: a
    password, an app key, a Vault token). On timeout the hook's whole process group is
    killed.
    """
    args = [render(arg, context.account) for arg in argv]
    env = {k: v for k, v in (os.environ if base_env is None else base_env).items()}
    for name in withhold:
        env.pop(name, None)
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
        out.seek(max(0, out.tell() - _OUTPUT_TAIL))
        output = out.read().decode("utf-8", "replace")
    return HookResult(args[0], outcome, seconds, output)


def _kill_group(pid: int) -> None:
    # The group may be gone already: it ended between the timeout and the kill.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
