"""The apply lock: one apply (or promote, or rollback) per output directory at a time.

The lock is an advisory flock on `.bfprov.lock`: the kernel drops it when its holder
dies, so a lock left by a killed process never blocks the next apply. Beside it, the
holder writes who it is (command, user, host, pid, since) so that a waiting or refused
run can say whose lock it met.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from bfprov import console
from bfprov.apply.events import who
from bfprov.apply.files import ensure_output_dir, os_error, sync_dir
from bfprov.errors import BfprovError
from bfprov.layout import LOCK_HOLDER, LOCK_NAME, SECRET_MODE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def apply_lock(output_dir: Path, *, timeout: float = 0.0, command: str = "apply") -> Iterator[None]:
    """Hold the output directory's lock.

    With `timeout` 0, fail at once when another run holds it; otherwise wait for it up
    to `timeout` seconds, saying whose lock is waited for.
    """
    created = not output_dir.exists()
    ensure_output_dir(output_dir)
    path = output_dir / LOCK_NAME
    lock = FileLock(str(path), timeout=0, mode=SECRET_MODE)
    try:
        _acquire(lock, output_dir, timeout)
    except OSError as exc:
        raise os_error(exc, str(path)) from None
    try:
        _write_holder(output_dir, command)
        yield
    except BaseException:
        _leave(output_dir)
        lock.release()
        if created:
            # Failed before writing anything (a missing secret, say): leave no trace.
            # rmdir refuses a directory that holds anything else, so nothing is lost.
            with contextlib.suppress(OSError):
                path.unlink()
                output_dir.rmdir()
        raise
    else:
        try:
            # The account directories this apply created are entries of output_dir:
            # one fsync makes them durable (their files were synced as they were written).
            sync_dir(output_dir)
        finally:
            _leave(output_dir)
            lock.release()


def _acquire(lock: FileLock, output_dir: Path, timeout: float) -> None:
    path = output_dir / LOCK_NAME
    try:
        lock.acquire(timeout=0)
        return
    except Timeout:
        holder = holder_of(output_dir)
    if timeout <= 0:
        raise BfprovError(
            f"{holder} holds the lock {path}; wait for it to finish, or pass --lock-timeout"
        )
    console.note(f"waiting up to {timeout:g} s for the lock {path}, held by {holder}")
    started = time.monotonic()
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise BfprovError(
            f"gave up after {timeout:g} s waiting for the lock {path}, held by {holder}"
        ) from None
    waited = time.monotonic() - started
    console.note(f"got the lock {path} after {waited:.1f} s (it was held by {holder})")


def holder_of(output_dir: Path) -> str:
    """Who holds the lock, in words, from the holder file (best effort: it is advisory)."""
    try:
        data = json.loads((output_dir / LOCK_HOLDER).read_text(encoding="utf-8"))
        return (
            f"bfprov {data['command']} (pid {int(data['pid'])}, {data['user']}@{data['host']}, "
            f"since {data['since']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another bfprov run"


def _write_holder(output_dir: Path, command: str) -> None:
    data = {
        "command": command,
        "pid": os.getpid(),
        "user": who()["user"],
        "host": who()["host"],
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # Written in place, unsynced: it is advice for messages, read only while the lock is
    # held; a crash can leave it torn or stale, and then it reads as "another bfprov run".
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(output_dir / LOCK_HOLDER, flags, SECRET_MODE)
    except OSError:
        return
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)


def _leave(output_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (output_dir / LOCK_HOLDER).unlink()
