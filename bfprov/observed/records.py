"""bfprov's own records of what it wrote, kept per account in `.bfprov/record.json`.

A record remembers, for every file bfprov wrote, its stat signature, its SHA-256 and the
facts learnt when it was written. The observer trusts those facts while the file is
unchanged and inspects it deeply otherwise, which keeps a no-op plan of a large fleet
cheap. Records hold no secret and no key material: only digests and public facts.

This module reads records and says how they are encoded; the store is their only writer.
A record is a cache: one that cannot be read in full is treated as absent, which costs
the next plan a deeper look at every file and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from bfprov.crypto import CertFacts, CsrFacts, KeyFacts
from bfprov.desired.models import P12Profile
from bfprov.errors import BfprovError
from bfprov.layout import RECORD_PATH
from bfprov.observed.facts import P12Facts, PemFacts, RecordedFacts
from bfprov.observed.files import read_bytes

# 2: facts tagged by kind ({"kind": "cert", ...}). A record of another version keeps its
# login check, but its file entries are ignored (the files are looked at afresh).
FORMAT_VERSION = 2


# Plain dataclasses, not pydantic models: a plan of a large fleet reads thousands of
# records, and they are bfprov's own files (decoded strictly below, field by field).
@dataclass(frozen=True)
class FileRecord:
    """What bfprov knew of one file when it last wrote or checked it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    sha256: str
    facts: RecordedFacts | None = None  # None: nothing to know beyond the digest (cnf)

    @classmethod
    def of(cls, st: os.stat_result, sha256: str, facts: RecordedFacts | None) -> FileRecord:
        """The entry for a file as `st` shows it now."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256, facts)

    def same_stat(self, st: os.stat_result) -> bool:
        """Whether `st` shows the very file recorded (same size, times and inode)."""
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

    version: int = FORMAT_VERSION
    files: dict[str, FileRecord] = field(default_factory=dict)
    # Written by `verify`, read by `status`: kept as the JSON object they exchange.
    last_check: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        """The record as the store writes it."""
        data = {
            "version": self.version,
            "files": {rel: _encode_entry(entry) for rel, entry in sorted(self.files.items())},
            "last_check": self.last_check,
        }
        # Compact: the C encoder (indent= would fall back to the pure-Python one, a third
        # of apply's per-account CPU). `jq . record.json` shows it indented.
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def read_record(directory: str | os.PathLike[str]) -> Record | None:
    """The account's record as it is now (None when missing or damaged)."""
    try:
        data = read_bytes(f"{os.fspath(directory)}/{RECORD_PATH}")
    except BfprovError:
        return None
    try:
        return parse_record(data)
    except (ValueError, KeyError, TypeError, AttributeError):
        # A damaged record only costs a deeper look at every file.
        return None


def parse_record(data: bytes) -> Record:
    """A record from its JSON; raises ValueError, KeyError or TypeError if malformed."""
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise TypeError("a record is a JSON object")
    last_check = raw.get("last_check")
    last_check = last_check if isinstance(last_check, dict) else None
    version = raw.get("version")
    if version != FORMAT_VERSION:
        return Record(files={}, last_check=last_check)
    files = {_str(rel): _decode_entry(entry) for rel, entry in raw["files"].items()}
    return Record(version=version, files=files, last_check=last_check)


# --- encoding: {"size": ..., "facts": {"kind": "cert", ...}} --------------------------------


def _encode_entry(entry: FileRecord) -> dict[str, object]:
    return {
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "ctime_ns": entry.ctime_ns,
        "ino": entry.ino,
        "sha256": entry.sha256,
        "facts": encode_facts(entry.facts) if entry.facts is not None else None,
    }


def encode_facts(facts: RecordedFacts) -> dict[str, object]:
    """Facts as JSON-ready values, tagged with their kind."""
    # vars(), not asdict(): no deep copy; tuples encode as JSON arrays.
    data: dict[str, object] = {"kind": _KIND[type(facts)], **vars(facts)}
    if isinstance(facts, CertFacts):
        data["not_before"] = facts.not_before.isoformat()
        data["not_after"] = facts.not_after.isoformat()
    return data


def decode_facts(raw: Mapping[str, object]) -> RecordedFacts:
    """Facts from their tagged JSON form; raises ValueError, KeyError or TypeError."""
    return _DECODERS[_str(raw["kind"])](raw)


def _decode_entry(raw: Mapping[str, object]) -> FileRecord:
    size, mtime_ns, ctime_ns, ino = raw["size"], raw["mtime_ns"], raw["ctime_ns"], raw["ino"]
    sha256, facts = raw["sha256"], raw["facts"]
    # Checked inline, not through _int(): this runs for every file of every account.
    if not (type(size) is type(mtime_ns) is type(ctime_ns) is type(ino) is int):
        raise TypeError("a file entry's stat signature is made of integers")
    return FileRecord(
        size=size,
        mtime_ns=mtime_ns,
        ctime_ns=ctime_ns,
        ino=ino,
        sha256=_str(sha256),
        facts=None if facts is None else decode_facts(_mapping(facts)),
    )


def _key(raw: Mapping[str, object]) -> KeyFacts:
    return KeyFacts(
        algorithm=_str(raw["algorithm"]),
        bits=_int(raw["bits"]),
        spki_sha256=_str(raw["spki_sha256"]),
        encoding=_str(raw["encoding"]),
    )


def _cert(raw: Mapping[str, object]) -> CertFacts:
    signature_hash = raw["signature_hash"]
    return CertFacts(
        fingerprint_sha256=_str(raw["fingerprint_sha256"]),
        spki_sha256=_str(raw["spki_sha256"]),
        key_algorithm=_str(raw["key_algorithm"]),
        key_bits=_int(raw["key_bits"]),
        subject=_pairs(raw["subject"]),
        issuer_is_subject=_bool(raw["issuer_is_subject"]),
        not_before=_utc(raw["not_before"]),
        not_after=_utc(raw["not_after"]),
        signature_hash=None if signature_hash is None else _str(signature_hash),
        extension_problems=tuple(_str(p) for p in _list(raw["extension_problems"])),
        self_signature_valid=_bool(raw["self_signature_valid"]),
    )


def _csr(raw: Mapping[str, object]) -> CsrFacts:
    return CsrFacts(
        spki_sha256=_str(raw["spki_sha256"]),
        subject=_pairs(raw["subject"]),
        signature_valid=_bool(raw["signature_valid"]),
    )


def _pem(raw: Mapping[str, object]) -> PemFacts:
    return PemFacts(
        fingerprint_sha256=_str(raw["fingerprint_sha256"]), spki_sha256=_str(raw["spki_sha256"])
    )


def _p12(raw: Mapping[str, object]) -> P12Facts:
    profile = raw["profile"]
    if profile == "modern" or profile == "legacy":
        return P12Facts(fingerprint_sha256=_str(raw["fingerprint_sha256"]), profile=profile)
    raise ValueError(f"a PKCS#12 profile is one of {get_args(P12Profile)}")


_DECODERS: dict[str, Callable[[Mapping[str, object]], RecordedFacts]] = {
    "key": _key,
    "cert": _cert,
    "csr": _csr,
    "pem": _pem,
    "p12": _p12,
}
_KIND: dict[type, str] = {
    KeyFacts: "key",
    CertFacts: "cert",
    CsrFacts: "csr",
    PemFacts: "pem",
    P12Facts: "p12",
}


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("expected an array")
    return value


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in _list(value):
        key, text = _list(item)
        pairs.append((_str(key), _str(text)))
    return tuple(pairs)


def _utc(value: object) -> datetime:
    parsed = datetime.fromisoformat(_str(value))
    if parsed.tzinfo is None:
        raise ValueError("a time without a zone")
    return parsed
