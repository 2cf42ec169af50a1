"""bfprov's one way of writing a file: atomic, never through a link, never readable by others.

Shared ground below every package that writes (the store and the audit trail in `apply`,
the emulator's CA and state in `sandbox`, the files of `init`). Everything happens
relative to open directory descriptors with O_NOFOLLOW, so nothing is ever written
through a symbolic link. A file is written to a temporary name in its own directory,
created 0600 (never readable by others, not even for a moment), synced, then renamed
into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from typing import TYPE_CHECKING

from bfprov.errors import BfprovError
from bfprov.layout import SECRET_MODE

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
