"""bfprov's own records of what it wrote, kept per account in `.bfprov/record.json`.

A record remembers, for every file bfprov wrote, its stat signature, its SHA-256 and the
facts learnt when it was written. The observer trusts those facts while the file is
unchanged and inspects it deeply otherwise, which keeps a no-op plan of a large fleet
cheap. Records hold no secret and no key material: only digests and public facts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


# Plain dataclasses, not pydantic models: a plan of a large fleet reads thousands of
# records, and they are bfprov's own files (observe parses them defensively).
@dataclass(frozen=True)
class FileRecord:
    """What bfprov knew of one file when it last wrote or checked it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    sha256: str
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, st: os.stat_result, sha256: str, facts: dict[str, Any]) -> FileRecord:
        """The entry for a file as `st` shows it now."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256, facts)

    def same_stat(self, st: os.stat_result) -> bool:
        # ctime cannot be set from user space, so any write to the file since we
        # recorded it (even one that restores mtime) shows up here.
        return (self.size, self.mtime_ns, self.ctime_ns, self.ino) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        )


@dataclass(frozen=True)
class Record:
    """The record of one account directory; paths are relative to it."""

    version: int = 1
    files: dict[str, FileRecord] = field(default_factory=dict)
    last_check: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        # vars(), not asdict(): no deep copy of every entry's facts.
        data = {
            "version": self.version,
            "files": {rel: vars(entry) for rel, entry in sorted(self.files.items())},
            "last_check": self.last_check,
        }
        # Compact: the C encoder (indent= would fall back to the pure-Python one, a third
        # of apply's per-account CPU). `jq . record.json` shows it indented.
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"
