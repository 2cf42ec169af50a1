"""Atomic file writes outside account directories, and the output directory itself.

Everything happens relative to open directory descriptors with O_NOFOLLOW, so nothing
is ever written through a symbolic link. A file is written to a temporary name in its
own directory, created 0600 (never readable by others, not even for a moment), synced,
then renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov.errors import BfprovError
from bfprov.layout import DIR_MODE, ORPHANS, PUBLIC_MODE, SECRET_MODE

if TYPE_CHECKING:
    from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def os_error(exc: OSError, what: str) -> BfprovError:
    if exc.errno == errno.ELOOP or exc.errno == errno.ENOTDIR:
        return BfprovError(
            f"{what} is a symbolic link or not a directory; bfprov does not follow links"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BfprovError(f"cannot write {what}: {exc.strerror}")
    if exc.errno == errno.ENOSPC:
        return BfprovError(f"cannot write {what}: no space left on device")
    return BfprovError(f"cannot write {what}: {exc.strerror}")


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


def open_dir(path: Path) -> int:
    """A descriptor of the directory `path` (never through a link at its last step)."""
    try:
        return os.open(path, DIR_FLAGS)
    except OSError as exc:
        raise os_error(exc, str(path)) from None


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` (os.write may write less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sync_dir(path: Path) -> None:
    fd = open_dir(path)
    try:
        os.fsync(fd)
    except OSError as exc:
        raise os_error(exc, str(path)) from None
    finally:
        os.close(fd)


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


def write_file(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Atomically write a file outside any account directory (plan files, `init`)."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        dfd = os.open(parent, DIR_FLAGS)
    except OSError as exc:
        raise os_error(exc, str(parent)) from None
    tmp = f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        if not overwrite and exists_at(dfd, path.name):
            raise BfprovError(f"{path} already exists; not overwriting it")
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            SECRET_MODE,
            dir_fd=dfd,
        )
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        else:
            # link() fails if the name exists: no race with another writer.
            os.link(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            os.unlink(tmp, dir_fd=dfd)
        os.fsync(dfd)
    except FileExistsError:
        raise BfprovError(f"{path} already exists; not overwriting it") from None
    except OSError as exc:
        raise os_error(exc, str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        os.close(dfd)


def exists_at(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def write_plan_file(path: Path, data: bytes) -> None:
    """Save a plan (it holds no secret and no key material)."""
    write_file(path, data, PUBLIC_MODE, overwrite=True)
