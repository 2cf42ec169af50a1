"""bfprov's own records of what it wrote, kept per account in `.bfprov/record.json`.

A record remembers, for every file bfprov wrote, its stat signature, its SHA-256 and the
facts learnt when it was written. The observer trusts those facts while the file is
unchanged and inspects it deeply otherwise, which keeps a no-op plan of a large fleet
cheap. Records hold no secret and no key material: only digests and public facts.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RECORD_DIR = ".bfprov"
RECORD_FILE = "record.json"
RECORD_PATH = f"{RECORD_DIR}/{RECORD_FILE}"


class FileRecord(BaseModel):
    """What bfprov knew of one file when it last wrote or checked it."""

    model_config = ConfigDict(frozen=True)

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    sha256: str
    facts: dict[str, Any] = Field(default_factory=dict)

    def same_stat(self, st: os.stat_result) -> bool:
        # ctime cannot be set from user space, so any write to the file since we
        # recorded it (even one that restores mtime) shows up here.
        return (self.size, self.mtime_ns, self.ctime_ns, self.ino) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        )


class Record(BaseModel):
    """The record of one account directory; paths are relative to it."""

    model_config = ConfigDict(frozen=True)

    version: int = 1
    files: dict[str, FileRecord] = Field(default_factory=dict)
    last_check: dict[str, Any] | None = None
