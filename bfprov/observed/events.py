"""The audit trail: `<output_dir>/.bfprov/events.jsonl`, one JSON object a line.

Every change, publication, hook run and login check is one Event; `apply.events` appends
them, this module reads them back for `bfprov history`. An event holds no secret: the
account's name, what happened, the certificate's fingerprint, the publishing target or
the loginStatus, who and where (user, host) and which bfprov. A line torn by a crash
(or edited into nonsense) is skipped, never fatal.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from bfprov.layout import EVENTS_FILE, RECORD_DIR

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

MAX_LINE = 64 * 1024  # longer lines are not bfprov's: skipped


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


def read_events(output_dirs: Iterable[Path]) -> Iterator[Event]:
    """Every readable event of these output directories, oldest first."""
    found: list[Event] = []
    for output_dir in output_dirs:
        try:
            fd = os.open(events_path(output_dir), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            from bfprov.errors import BfprovError

            raise BfprovError(f"cannot read {events_path(output_dir)}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            found += [e for e in map(parse_line, fh) if e is not None]
    found.sort(key=lambda e: e.time)  # stable: same-second events keep their order
    yield from found
