"""The output directory itself, its orphans, and plan files.

The atomic writer and its pieces live in shared ground, `bfprov.files`; they are
named here too, where apply's modules have always found them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov.errors import BfprovError
from bfprov.files import (
    DIR_FLAGS,
    exists_at,
    open_dir,
    os_error,
    sync_dir,
    write_all,
    write_file,
)
from bfprov.layout import DIR_MODE, ORPHANS, PUBLIC_MODE

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DIR_FLAGS",
    "archive_orphan",
    "ensure_output_dir",
    "exists_at",
    "open_dir",
    "os_error",
    "sync_dir",
    "utc_stamp",
    "write_all",
    "write_file",
    "write_plan_file",
]


def ensure_output_dir(path: Path) -> None:
    """Create the output directory (0700) if it does not exist yet."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except FileExistsError:
        raise BfprovError(f"{path} is not a directory") from None
    except OSError as exc:
        raise os_error(exc, str(path)) from None
    if not path.is_dir():
        raise BfprovError(f"{path} is not a directory")


def utc_stamp(now: datetime | None = None) -> str:
    """A UTC time for archive directory names: microseconds, so that text order is
    time order even for several generations archived within one second."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")


def archive_orphan(output_dir: Path, name: str) -> str:
    """Move an orphaned account directory out of the top level (never deleted)."""
    root = open_dir(output_dir)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(ORPHANS, DIR_MODE, dir_fd=root)
        target = f"{ORPHANS}/{name}-{utc_stamp()}"
        st = os.stat(name, dir_fd=root, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise BfprovError(f"{output_dir / name} is not a directory")
        os.rename(name, target, src_dir_fd=root, dst_dir_fd=root)
        os.fsync(root)
        return target
    except OSError as exc:
        raise os_error(exc, str(output_dir / name)) from None
    finally:
        os.close(root)


def write_plan_file(path: Path, data: bytes) -> None:
    """Save a plan (it holds no secret and no key material)."""
    write_file(path, data, PUBLIC_MODE, overwrite=True)
