"""Appends to the audit trail, `<output_dir>/.bfprov/events.jsonl` (see observed.events).

Each batch is appended with one write to a file opened O_APPEND (never through a link),
then synced. If the file does not end with a newline (a crash tore its last line), the
batch starts with one, so the torn line stays alone and is skipped by readers.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import os
import socket
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from bfprov import __version__
from bfprov.apply.files import DIR_FLAGS, open_dir, os_error, write_all
from bfprov.layout import DIR_MODE, EVENTS_FILE, RECORD_DIR, SECRET_MODE
from bfprov.observed.events import MAX_LINE, Event

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from bfprov.apply.executor import Outcome


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return str(os.getuid())


@functools.cache
def who() -> Mapping[str, str]:
    """Who and where, in every event (and beside the apply lock): user, host, version.

    Asked once, when first needed, rather than when the module is imported: a command
    that writes no event never looks up the user or the host.
    """
    return MappingProxyType({"user": _user(), "host": socket.gethostname(), "version": __version__})


def event(
    account: str,
    kind: str,
    *,
    fingerprint: str | None = None,
    target: str | None = None,
    login_status: str | None = None,
    pair: str | None = None,
    detail: str | None = None,
) -> Event:
    """An event of now, by this user on this host."""
    return Event(
        time=datetime.now(UTC).isoformat(timespec="seconds"),
        account=account,
        event=kind,
        fingerprint=fingerprint,
        target=target,
        login_status=login_status,
        pair=pair,
        detail=detail,
        **who(),
    )


def append_events(output_dir: Path, events: Sequence[Event]) -> None:
    """Append `events` to the output directory's audit trail, durably."""
    if not events:
        return
    data = b"".join(line(e) for e in events)
    root = open_dir(output_dir)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(RECORD_DIR, DIR_MODE, dir_fd=root)
        sub = os.open(RECORD_DIR, DIR_FLAGS, dir_fd=root)
        try:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(EVENTS_FILE, flags, SECRET_MODE, dir_fd=sub)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a torn last line stays alone
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            os.close(sub)
    except OSError as exc:
        raise os_error(exc, str(output_dir / RECORD_DIR / EVENTS_FILE)) from None
    finally:
        os.close(root)


def line(e: Event) -> bytes:
    """The event as one line of the trail, at most MAX_LINE bytes: long fields are cut
    (marked with "..."), never the line."""
    fields = e.to_json()
    text = _encode(fields)
    while len(text) > MAX_LINE:
        name = max(_CUTTABLE, key=lambda k: len(str(fields.get(k) or "")))
        value = str(fields[name])
        excess = len(text) - MAX_LINE
        # JSON may spend up to 6 bytes on a character (\uXXXX), UTF-8 up to 4.
        keep = max(0, len(value) - excess // 6 - 8)
        fields[name] = value[:keep] + "..."
        text = _encode(fields)
    return text


_CUTTABLE = ("detail", "target", "account", "login_status", "pair", "fingerprint")


def _encode(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def outcome_event(outcome: Outcome, reasons: Sequence[str]) -> Event | None:
    """What an account's executed change did, as an event (None when it did nothing)."""
    kind = outcome.kind
    if kind == "pending":  # the staged pair waits: an event only if files were rewritten
        if not outcome.written:
            return None
        kind = "updated"
    return event(outcome.account, kind, fingerprint=outcome.fingerprint, detail="; ".join(reasons))


def log_outcomes(items: Iterable[tuple[Path, Outcome, Sequence[str]]]) -> None:
    """Append the events of executed changes: (output_dir, outcome, the change's reasons)."""
    by_dir: dict[Path, list[Event]] = {}
    for output_dir, outcome, reasons in items:
        e = outcome_event(outcome, reasons)
        if e is not None:
            by_dir.setdefault(output_dir, []).append(e)
    for output_dir, events in by_dir.items():
        append_events(output_dir, events)
