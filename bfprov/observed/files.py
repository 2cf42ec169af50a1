"""Files and directories as found: listings without following links, bytes, `FileState`.

Nothing here follows a symbolic link. A file bfprov wrote is recognised by its record
(stat signature, then SHA-256) and its recorded facts reused; any other file is parsed
and judged afresh.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.errors import BfprovError
from bfprov.layout import CNF_NAME
from bfprov.observed.facts import FileFacts, PemFacts, Unreadable

if TYPE_CHECKING:
    from bfprov.observed.records import Record


@dataclass(frozen=True)
class FileState:
    """One file as found: its stat signature and, when judged, what it holds."""

    path: str  # relative to the account directory
    regular: bool  # False for a symlink, a directory or anything else
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    sha256: str | None = None
    facts: FileFacts | None = None  # None: not judged, or nothing to judge (cnf, a foreign p12)
    fresh: bool = False  # the record knew this very file (same stat signature)

    @property
    def problem(self) -> str | None:
        """Why the file cannot be used as it is, if it cannot."""
        if not self.regular:
            return f"{self.path} is not a regular file (symbolic links are not followed)"
        if isinstance(self.facts, Unreadable):
            return f"{self.path}: {self.facts.problem}"
        return None

    def signature(self) -> tuple[object, ...]:
        """What changes whenever the file is replaced, written or has its mode changed."""
        return (
            self.path,
            self.regular,
            self.mode,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.ino,
        )


def unjudged(rel: str, st: os.stat_result) -> FileState:
    """A file's state from its stat alone (its content not read)."""
    return FileState(
        rel,
        stat.S_ISREG(st.st_mode),
        stat.S_IMODE(st.st_mode),
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
    )


def file_state(directory: str, rel: str, st: os.stat_result, record: Record | None) -> FileState:
    """A file's state, its content judged: from the record while it knows the file."""
    regular = stat.S_ISREG(st.st_mode)
    sha: str | None = None
    facts: FileFacts | None = None
    fresh = False
    if regular:
        known = record.files.get(rel) if record else None
        if known is not None and known.same_stat(st):
            sha, facts, fresh = known.sha256, known.facts, True
        else:
            data = read_bytes(f"{directory}/{rel}")
            sha = hashlib.sha256(data).hexdigest()
            if known is not None and known.sha256 == sha:
                facts = known.facts
            else:
                # Unknown to the records, or changed since bfprov wrote it: judge it
                # afresh. A p12 bfprov cannot vouch for has no facts: it is rewritten.
                facts = _inspect(_kind(rel), data)
    return FileState(
        path=rel,
        regular=regular,
        mode=stat.S_IMODE(st.st_mode),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        ino=st.st_ino,
        sha256=sha,
        facts=facts,
        fresh=fresh,
    )


def _kind(name: str) -> str:
    if name == CNF_NAME:
        return "cnf"
    return name.rsplit(".", 1)[-1]


def _inspect(kind: str, data: bytes) -> FileFacts | None:
    """Judge a file's content deeply. Costly: only for files not known from the record."""
    from bfprov import crypto

    try:
        if kind == "key":
            return crypto.inspect_key(data)
        if kind == "crt":
            return crypto.inspect_certificate(data)
        if kind == "csr":
            return crypto.inspect_csr(data)
        if kind == "pem":
            cert, key = crypto.inspect_combined_pem(data)
            return PemFacts(cert.fingerprint_sha256, key.spki_sha256)
    except BfprovError as exc:
        return Unreadable(str(exc))
    # p12 cannot be opened without its password (read only when writing); cnf is
    # compared by digest. Neither has facts of its own.
    return None


# --- reading without following links -------------------------------------------------------


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a regular file without following a symbolic link at its last component.

    O_NONBLOCK: a FIFO planted in place of a file must not hang bfprov.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BfprovError(f"{path} is a symbolic link; bfprov does not follow links") from None
        raise BfprovError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BfprovError(f"{path} is not a regular file")
        chunks = [os.read(fd, st.st_size + 1)]  # one read, unless the file grew meanwhile
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 16))
        return b"".join(chunks)
    except OSError as exc:
        raise BfprovError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def lstat(path: str | os.PathLike[str]) -> os.stat_result | None:
    """The path's own stat (a link is not followed), or None when it does not exist."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def listing(directory: str | os.PathLike[str]) -> dict[str, os.stat_result]:
    """Each entry of a directory with its own stat; empty when the directory is missing."""
    out: dict[str, os.stat_result] = {}
    try:
        with os.scandir(directory) as it:
            for entry in it:
                out[entry.name] = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        pass
    except (NotADirectoryError, PermissionError) as exc:
        raise _unreadable(directory, exc) from None
    return out


def names(directory: str | os.PathLike[str]) -> list[str]:
    """The names in a directory, without a stat of each (the errors of `listing`)."""
    try:
        return os.listdir(directory)  # noqa: PTH208 (names only: no Path per entry)
    except FileNotFoundError:
        return []
    except (NotADirectoryError, PermissionError) as exc:
        raise _unreadable(directory, exc) from None


def _unreadable(directory: str | os.PathLike[str], exc: OSError) -> BfprovError:
    if isinstance(exc, NotADirectoryError):
        return BfprovError(f"{directory} is not a directory")
    return BfprovError(f"cannot read {directory}: permission denied")
