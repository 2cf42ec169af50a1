"""The audit trail: `<output_dir>/.bfprov/events.jsonl`, one JSON object a line.

Every change, publication, hook run and login check is one Event; `apply.events` appends
them, this module reads them back for `bfprov history`. An event holds no secret: the
account's name, what happened, the certificate's fingerprint, the publishing target or
the loginStatus, who and where (user, host) and which bfprov. A line torn by a crash
(or edited into nonsense) is skipped, never fatal.
"""

from __future__ import annotations

import errno
import heapq
import json
import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, BinaryIO

from bfprov.errors import BfprovError
from bfprov.layout import EVENTS_FILE, RECORD_DIR

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

MAX_LINE = 16 * 1024  # SPEC: bfprov writes no longer line; a longer one is skipped


@dataclass(frozen=True)
class Event:
    """One entry of the audit trail."""

    time: str  # ISO 8601, UTC
    account: str
    event: str  # created, staged, promoted, updated, rolled_back, orphan_archived,
    # published, publish_failed, hook, login_check
    fingerprint: str | None = None  # SHA-256 of the certificate concerned
    target: str | None = None  # a publishing target or a hook's program
    login_status: str | None = None  # for login_check
    pair: str | None = None  # live or staged, for login_check
    detail: str | None = None  # reasons, an error: plain words, never a secret
    user: str = ""
    host: str = ""
    version: str = ""

    def to_json(self) -> dict[str, object]:
        """The event as written: fields without a value are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


_FIELDS = {f.name for f in fields(Event)}
_REQUIRED = ("time", "account", "event")


def events_path(output_dir: Path) -> Path:
    """Where an output directory keeps its audit trail."""
    return output_dir / RECORD_DIR / EVENTS_FILE


def parse_line(line: bytes) -> Event | None:
    """One line as an Event; None for a torn, foreign or malformed line."""
    if len(line) > MAX_LINE:
        return None
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in _REQUIRED):
        return None
    known = {k: v for k, v in data.items() if k in _FIELDS}
    if not all(v is None or isinstance(v, str) for v in known.values()):
        return None
    return Event(**known)


def read_events(output_dirs: Iterable[Path], *, since: str | None = None) -> Iterator[Event]:
    """Every readable event of these output directories, oldest first, read as a stream.

    Each trail is written in the order things happened, so the trails are merged (not
    sorted whole): memory stays flat however long they grow. `since` (ISO 8601, UTC)
    leaves out older events. A trail or its directory that is a symbolic link is refused.
    """
    streams = [_stream(d, since) for d in output_dirs]
    yield from heapq.merge(*streams, key=lambda e: e.time)


def _stream(output_dir: Path, since: str | None) -> Iterator[Event]:
    fh = _open_trail(output_dir)
    if fh is None:
        return
    with fh:
        for line in _lines(fh):
            e = parse_line(line)
            if e is not None and (since is None or e.time >= since):
                yield e


def _lines(fh: BinaryIO) -> Iterator[bytes]:
    """The file's lines, none longer than MAX_LINE: a longer one (not bfprov's) is skipped
    without ever being held whole."""
    while line := fh.readline(MAX_LINE + 1):
        if len(line) <= MAX_LINE:
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = fh.readline(MAX_LINE + 1)


def _open_trail(output_dir: Path) -> BinaryIO | None:
    """The trail, opened without following a link at any step bfprov owns; None if absent."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    root = sub = -1
    try:
        root = os.open(output_dir, flags | os.O_DIRECTORY)
        sub = os.open(RECORD_DIR, flags | os.O_DIRECTORY, dir_fd=root)
        fd = os.open(EVENTS_FILE, flags | os.O_NONBLOCK, dir_fd=sub)
    except FileNotFoundError:
        return None
    except OSError as exc:
        where = events_path(output_dir)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BfprovError(
                f"cannot read {where}: it or its directory is a symbolic link or not a "
                "directory; bfprov does not follow links"
            ) from None
        raise BfprovError(f"cannot read {where}: {exc.strerror}") from None
    finally:
        for d in (sub, root):
            if d >= 0:
                os.close(d)
    return os.fdopen(fd, "rb")
