"""The only writer of account directories: atomic writes, modes, staging, archive, records.

Everything happens relative to open directory descriptors with O_NOFOLLOW, so nothing
is ever written through a symbolic link, and nothing outside the output directory.
A file is written to a temporary name in its own directory (created 0600, so a key is
never readable by others, not even for a moment), fsynced, then renamed into place.
Files outside account directories (plan files, `init`) go through `apply.files`; the
lock is `apply.lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
from typing import TYPE_CHECKING, Any

from bfprov.apply.files import (
    DIR_FLAGS,
    exists_at,
    open_dir,
    os_error,
    utc_stamp,
    write_all,
    write_file,
)
from bfprov.errors import BfprovError
from bfprov.layout import ARCHIVE, DIR_MODE, PUBLISHED_FILE, RECORD_DIR, RECORD_FILE, SECRET_MODE
from bfprov.observed.facts import Unreadable
from bfprov.observed.records import FileRecord, Record

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from bfprov.observed.facts import RecordedFacts
    from bfprov.observed.files import FileState
    from bfprov.publish.observe import Delivery


class AccountWriter:
    """Writes inside one account directory; keeps its record up to date."""

    def __init__(self, output_dir: Path, name: str, record: Record | None) -> None:
        self.output_dir = output_dir
        self.name = name
        self.directory = output_dir / name
        self._dirs: dict[str, int] = {}
        self._dirty: set[int] = set()
        self._stamp: str | None = None
        self.files: dict[str, FileRecord] = dict(record.files) if record else {}
        self._had_record = record is not None
        self._written: set[str] = set()  # paths this writer put in place (still there)
        self._last_check: dict[str, Any] | None = None  # set: replaces the one on disk
        root = open_dir(output_dir)
        try:
            self._dirs["."] = self._open_child(root, name, str(self.directory))
        finally:
            os.close(root)

    # -- directories --------------------------------------------------------------------
    @staticmethod
    def _open_child(parent: int, name: str, what: str, create: bool = True) -> int:
        if create:
            try:
                os.mkdir(name, DIR_MODE, dir_fd=parent)
            except FileExistsError:
                pass
            except OSError as exc:
                raise os_error(exc, what) from None
        try:
            return os.open(name, DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise os_error(exc, what) from None

    def _dir(self, rel: str) -> int:
        """The descriptor of a directory inside the account directory, created 0700."""
        if rel in ("", "."):
            return self._dirs["."]
        if rel not in self._dirs:
            parent, _, leaf = rel.rpartition("/")
            if leaf in ("", ".", "..") or ".." in rel.split("/"):
                raise BfprovError(f"refusing path {rel!r} inside {self.directory}")
            self._dirs[rel] = self._open_child(self._dir(parent), leaf, f"{self.directory}/{rel}")
        return self._dirs[rel]

    def _split(self, rel: str) -> tuple[int, str]:
        parent, _, leaf = rel.rpartition("/")
        if leaf in ("", ".", ".."):
            raise BfprovError(f"refusing path {rel!r} inside {self.directory}")
        return self._dir(parent), leaf

    def sync(self) -> None:
        """Make every rename so far durable."""
        for fd in self._dirty:
            os.fsync(fd)
        self._dirty.clear()

    def close(self) -> None:
        try:
            self.sync()
        finally:
            for fd in self._dirs.values():
                os.close(fd)
            self._dirs.clear()

    def __enter__(self) -> AccountWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files --------------------------------------------------------------------------
    def write(self, rel: str, data: bytes, mode: int, facts: RecordedFacts | None = None) -> None:
        """Atomically replace `rel` with `data`, with exactly `mode`."""
        import hashlib

        dfd, leaf = self._split(rel)
        # The record is a cache, not an output: should a crash lose its bytes or its
        # rename, the next plan finds it damaged or old and looks at the files again.
        # So it is written atomically but not synced: the outputs are.
        cache = rel.startswith(f"{RECORD_DIR}/")
        tmp = f".{leaf}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                SECRET_MODE,
                dir_fd=dfd,
            )
        except OSError as exc:
            raise os_error(exc, f"{self.directory}/{rel}") from None
        try:
            try:
                os.fchmod(fd, mode)
                write_all(fd, data)
                if not cache:
                    os.fdatasync(fd)  # the bytes and size; the rename's fsync covers the rest
            finally:
                os.close(fd)
            os.replace(tmp, leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise os_error(exc, f"{self.directory}/{rel}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
        # The file's bytes are durable (fsynced before the rename); the rename itself is
        # made durable by one directory fsync per directory at close(), not one per file.
        if not cache:
            self._dirty.add(dfd)
        self._remember(rel, hashlib.sha256(data).hexdigest(), facts)
        self._written.add(rel)

    def _remember(self, rel: str, sha: str, facts: RecordedFacts | None) -> None:
        dfd, leaf = self._split(rel)
        st = os.stat(leaf, dir_fd=dfd, follow_symlinks=False)
        self.files[rel] = FileRecord.of(st, sha, facts)

    def _restat(self, rel: str) -> None:
        """Refresh a record entry after a rename or chmod changed the stat signature."""
        known = self.files.get(rel)
        if known is not None:
            self._remember(rel, known.sha256, known.facts)

    def chmod(self, rel: str, mode: int) -> None:
        """Set the mode of a file or directory without following a link."""
        if rel == ".":
            fd = self._dir(".")
            os.fchmod(fd, mode)
            return
        dfd, leaf = self._split(rel)
        try:
            fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            raise os_error(exc, f"{self.directory}/{rel}") from None
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        self._restat(rel)

    def move(self, src: str, dst: str) -> None:
        """Rename within the account directory (atomic, same file system)."""
        sfd, sleaf = self._split(src)
        dfd, dleaf = self._split(dst)
        # Moves carry the ordering that keeps a live .crt matching the live .key
        # (promotion, rollback): every earlier rename is made durable first.
        self.sync()
        try:
            os.replace(sleaf, dleaf, src_dir_fd=sfd, dst_dir_fd=dfd)
        except OSError as exc:
            raise os_error(exc, f"{self.directory}/{dst}") from None
        os.fsync(dfd)
        if sfd != dfd:
            os.fsync(sfd)
        if src in self.files:
            self.files[dst] = self.files.pop(src)
            self._restat(dst)
        if src in self._written:
            self._written.discard(src)
            self._written.add(dst)

    def remove(self, rel: str) -> None:
        dfd, leaf = self._split(rel)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leaf, dir_fd=dfd)
        self.files.pop(rel, None)
        self._written.discard(rel)

    def remove_empty_dir(self, rel: str) -> None:
        fd = self._dirs.pop(rel, None)
        if fd is not None:
            os.close(fd)
        parent, _, leaf = rel.rpartition("/")
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(leaf, dir_fd=self._dir(parent))

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists (never creates anything on the way)."""
        fd = self._dirs["."]
        parts = rel.split("/")
        opened: list[int] = []
        try:
            for part in parts[:-1]:
                try:
                    fd = self._open_child(fd, part, f"{self.directory}/{rel}", create=False)
                except BfprovError:
                    return False
                opened.append(fd)
            return exists_at(fd, parts[-1])
        finally:
            for o in opened:
                os.close(o)

    # -- archive ------------------------------------------------------------------------
    def archive_dir(self) -> str:
        """This run's archive generation directory (one per account and apply)."""
        if self._stamp is None:
            base = utc_stamp()
            stamp, n = base, 1
            while self.exists(f"{ARCHIVE}/{stamp}"):
                n += 1
                stamp = f"{base}-{n}"
            self._stamp = stamp
        return f"{ARCHIVE}/{self._stamp}"

    def archive(self, rels: tuple[str, ...] | list[str]) -> None:
        """Move files into this run's archive generation, keeping their relative paths.

        Anything that may hold key material is made 0600 there, whatever it was before.
        """
        for rel in rels:
            if self.exists(rel):
                target = f"{self.archive_dir()}/{rel}"
                self.move(rel, target)
                if rel.endswith((".key", ".pem", ".p12")):
                    with contextlib.suppress(BfprovError, OSError):
                        self.chmod(target, SECRET_MODE)

    def prune_archive(self, keep: int) -> None:
        """Keep only the newest `keep` generations in the archive."""
        if not self.exists(ARCHIVE):
            return
        afd = self._dir(ARCHIVE)  # exists: nothing is created
        generations = sorted(
            n
            for n in os.listdir(afd)  # noqa: PTH208 (a descriptor: no symlink race)
            if stat.S_ISDIR(os.stat(n, dir_fd=afd, follow_symlinks=False).st_mode)
        )
        for old in generations[:-keep] if keep > 0 else generations:
            shutil.rmtree(old, dir_fd=afd)
            prefix = f"{ARCHIVE}/{old}/"
            self.files = {k: v for k, v in self.files.items() if not k.startswith(prefix)}

    # -- record -------------------------------------------------------------------------
    def refresh(self, states: tuple[FileState, ...]) -> None:
        """Record again files observed sound and unchanged since (not rewritten here).

        After a crash, or for files bfprov adopted, this lets later plans trust the
        record instead of parsing the files every time.
        """
        for state in states:
            if state.sha256 is None or isinstance(state.facts, Unreadable):
                continue  # not read, or found unsound: nothing to vouch for
            known = self.files.get(state.path)
            if known is not None and known.sha256 == state.sha256 and self._same(state, known):
                continue
            dfd, leaf = self._split(state.path)
            try:
                st = os.stat(leaf, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                entry = FileRecord.of(st, state.sha256, state.facts)
                if self._same(state, entry):  # not touched since it was observed
                    self.files[state.path] = entry

    @staticmethod
    def _same(state: FileState, known: FileRecord) -> bool:
        return (known.size, known.mtime_ns, known.ctime_ns, known.ino) == (
            state.size, state.mtime_ns, state.ctime_ns, state.ino
        )  # fmt: skip

    def set_last_check(self, entry: dict[str, Any]) -> None:
        self._last_check = entry

    def save_record(self) -> None:
        """Write the account's record: only entries for files that still exist.

        The login check on disk is kept unless a new one was set: a verify may have
        recorded one since this writer's record was observed.
        """
        from bfprov.observed.records import read_record

        self.files = {
            rel: rec for rel, rec in self.files.items() if rel in self._written or self.exists(rel)
        }
        last_check = self._last_check
        if last_check is None and self._had_record:
            current = read_record(self.directory)
            last_check = current.last_check if current else None
        record = Record(files=dict(sorted(self.files.items())), last_check=last_check)
        data = record.to_json()
        self.write(f"{RECORD_DIR}/{RECORD_FILE}", data, SECRET_MODE)
        # The record does not describe itself.
        self.files.pop(f"{RECORD_DIR}/{RECORD_FILE}", None)


def refresh_record(
    output_dir: Path, name: str, record: Record | None, states: tuple[FileState, ...]
) -> None:
    """Bring an account's record up to date with files observed sound (nothing else)."""
    with AccountWriter(output_dir, name, record) as writer:
        writer.refresh(states)
        writer.save_record()


def record_check(output_dir: Path, name: str, record: Record | None, entry: dict[str, Any]) -> None:
    """Keep the latest login check in an existing account's record (nothing else changes)."""
    with AccountWriter(output_dir, name, record) as writer:
        writer.set_last_check(entry)
        writer.save_record()


def write_deliveries(directory: Path, deliveries: Mapping[str, Delivery]) -> None:
    """Keep an account's record of deliveries to publishing targets (no secret in it)."""
    data = {label: d.to_json() for label, d in sorted(deliveries.items())}
    path = directory / RECORD_DIR / PUBLISHED_FILE
    write_file(path, (json.dumps(data, indent=2) + "\n").encode(), SECRET_MODE, overwrite=True)
