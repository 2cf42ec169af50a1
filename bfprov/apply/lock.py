"""The apply lock: one apply (or promote, or rollback) per output directory at a time."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from bfprov.apply.files import ensure_output_dir, os_error, sync_dir
from bfprov.errors import BfprovError
from bfprov.layout import LOCK_NAME, SECRET_MODE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@contextlib.contextmanager
def apply_lock(output_dir: Path) -> Iterator[None]:
    """Hold the output directory's lock; fail at once when another apply holds it.

    The lock is an advisory flock on `.bfprov.lock`: the kernel drops it when its holder
    dies, so a lock left by a killed process never blocks the next apply.
    """
    created = not output_dir.exists()
    ensure_output_dir(output_dir)
    path = output_dir / LOCK_NAME
    lock = FileLock(str(path), timeout=0, mode=SECRET_MODE)
    try:
        lock.acquire()
    except Timeout:
        raise BfprovError(
            f"another bfprov apply holds the lock {path}; wait for it to finish"
        ) from None
    except OSError as exc:
        raise os_error(exc, str(path)) from None
    try:
        yield
    except BaseException:
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
            lock.release()
