"""Reads the output directories into `Observed` values: the only module that reads them.

It never writes and never follows a symbolic link. Files bfprov wrote are recognised by
their record (stat signature, then SHA-256) and their recorded facts reused; any other
file is parsed and judged afresh.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from bfprov.errors import BfprovError
from bfprov.layout import (
    ARCHIVE,
    CNF_NAME,
    PAIR_STEM,
    RECORD_DIR,
    RECORD_PATH,
    STAGED,
    TEMP_FILE,
    WATCHED_SUFFIXES,
)
from bfprov.observed.records import FileRecord, Record

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bfprov.crypto import CertFacts, CsrFacts, KeyFacts
    from bfprov.desired.models import Desired, Target


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
    facts: dict[str, Any] | None = None  # parsed facts, or {"problem": "..."}
    fresh: bool = False  # the record knew this very file (same stat signature)

    @property
    def problem(self) -> str | None:
        if not self.regular:
            return f"{self.path} is not a regular file (symbolic links are not followed)"
        if self.facts is not None and "problem" in self.facts:
            return f"{self.path}: {self.facts['problem']}"
        return None

    def signature(self) -> tuple[object, ...]:
        return (
            self.path,
            self.regular,
            self.mode,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.ino,
        )


@dataclass(frozen=True)
class Pair:
    """A key and certificate found together (live, at the top level, or staged)."""

    stem: str | None
    key: FileState | None
    crt: FileState | None
    key_facts: KeyFacts | None = None
    crt_facts: CertFacts | None = None

    @property
    def empty(self) -> bool:
        return self.key is None and self.crt is None

    @property
    def complete(self) -> bool:
        return self.key is not None and self.crt is not None

    @property
    def matched(self) -> bool:
        """Both halves readable and belonging together."""
        return (
            self.key_facts is not None
            and self.crt_facts is not None
            and self.key_facts.spki_sha256 == self.crt_facts.spki_sha256
        )


@dataclass(frozen=True)
class ObservedAccount:
    """Everything the planner needs to know about one account directory."""

    name: str
    directory: Path
    exists: bool
    dir_mode: int | None
    live: Pair
    staged: Pair
    staged_dir_mode: int | None
    derived: dict[str, FileState]  # by output: pem, p12, csr, cnf
    strays: tuple[FileState, ...]
    leftovers: tuple[str, ...]  # temporary files of an interrupted write
    other_modes: dict[str, int] = field(default_factory=dict)  # .bfprov, archive dirs
    record: Record | None = None
    files: tuple[FileState, ...] = ()

    @property
    def stale(self) -> tuple[FileState, ...]:
        """Sound files the record does not know as they are: worth recording again."""
        return tuple(
            f for f in self.files
            if f.regular and not f.fresh and f.sha256 and f.facts is not None
            and "problem" not in f.facts
        )  # fmt: skip

    def digest(self) -> str:
        """A digest of everything observed, to tell whether a saved plan is stale."""
        h = hashlib.sha256(self.name.encode())
        h.update(repr((self.exists, self.dir_mode, self.staged_dir_mode)).encode())
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(repr(f.signature()).encode())
        h.update(repr(sorted(self.leftovers)).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Observed:
    accounts: dict[str, ObservedAccount]
    orphans: dict[str, Path]  # directory name -> output_dir holding it

    def digests(self) -> dict[str, str]:
        out = {name: acc.digest() for name, acc in self.accounts.items()}
        for name, parent in self.orphans.items():
            out[f"orphan:{name}"] = str(parent)
        return out


def _lstat(path: str | Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def read_bytes(path: str | Path) -> bytes:
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


def _inspect(kind: str, data: bytes) -> dict[str, Any]:
    """Judge a file's content deeply. Costly: only for files not known from the record."""
    from bfprov import crypto

    try:
        if kind == "key":
            return _dump(crypto.inspect_key(data))
        if kind == "crt":
            return _dump(crypto.inspect_certificate(data))
        if kind == "csr":
            return _dump(crypto.inspect_csr(data))
        if kind == "pem":
            cert, key = crypto.inspect_combined_pem(data)
            return {"cert": cert.fingerprint_sha256, "spki": key.spki_sha256}
    except BfprovError as exc:
        return {"problem": str(exc)}
    # p12 cannot be opened without its password (read only when writing); cnf is
    # compared by digest. Neither has facts of its own.
    return {}


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(kind: type) -> TypeAdapter[Any]:
    # Building an adapter compiles a schema (milliseconds): once per type, not per file.
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def _dump(value: object) -> dict[str, Any]:
    result: dict[str, Any] = _adapter(type(value)).dump_python(value, mode="json")
    return result


def _decode(kind: type[Any], facts: dict[str, Any] | None, fast: Callable[[], Any]) -> Any:
    """Facts from a record: built directly (fast), or validated when that fails."""
    if not facts or "problem" in facts:
        return None
    try:
        return fast()
    except (KeyError, TypeError, ValueError):
        try:
            return _adapter(kind).validate_python(facts)
        except ValidationError:
            return None


def key_facts(facts: dict[str, Any] | None) -> KeyFacts | None:
    from bfprov.crypto import KeyFacts

    def fast() -> KeyFacts:
        assert facts is not None
        return KeyFacts(str(facts["algorithm"]), int(facts["bits"]), str(facts["spki_sha256"]),
                        str(facts["encoding"]))  # fmt: skip

    result: KeyFacts | None = _decode(KeyFacts, facts, fast)
    return result


def cert_facts(facts: dict[str, Any] | None) -> CertFacts | None:
    from bfprov.crypto import CertFacts

    def fast() -> CertFacts:
        assert facts is not None
        return CertFacts(
            fingerprint_sha256=str(facts["fingerprint_sha256"]),
            spki_sha256=str(facts["spki_sha256"]),
            key_algorithm=str(facts["key_algorithm"]),
            key_bits=int(facts["key_bits"]),
            subject=tuple((str(k), str(v)) for k, v in facts["subject"]),
            issuer_is_subject=bool(facts["issuer_is_subject"]),
            not_before=_utc(facts["not_before"]),
            not_after=_utc(facts["not_after"]),
            signature_hash=facts["signature_hash"],
            extension_problems=tuple(str(p) for p in facts["extension_problems"]),
            self_signature_valid=bool(facts.get("self_signature_valid", True)),
        )

    result: CertFacts | None = _decode(CertFacts, facts, fast)
    return result


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a time without a zone")
    return value


def csr_facts(facts: dict[str, Any] | None) -> CsrFacts | None:
    from bfprov.crypto import CsrFacts

    if not facts or "problem" in facts:
        return None
    result: CsrFacts = _adapter(CsrFacts).validate_python(facts)
    return result


def _kind(name: str) -> str:
    if name == CNF_NAME:
        return "cnf"
    return name.rsplit(".", 1)[-1]


def _file_state(directory: Path, rel: str, st: os.stat_result, record: Record | None) -> FileState:
    regular = stat.S_ISREG(st.st_mode)
    sha: str | None = None
    facts: dict[str, Any] | None = None
    fresh = False
    if regular:
        known = record.files.get(rel) if record else None
        if known is not None and known.same_stat(st):
            sha, facts, fresh = known.sha256, known.facts, True
        else:
            data = read_bytes(directory / rel)
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


def read_record(directory: str | Path) -> Record | None:
    """The account's record as it is now (None when missing or damaged)."""
    path = f"{os.fspath(directory)}/{RECORD_PATH}"
    try:
        data = read_bytes(path)
    except BfprovError:
        return None
    try:
        return _parse_record(data)
    except (ValueError, KeyError, TypeError, AttributeError):
        # A damaged record only costs a deeper look at every file.
        return None


def _parse_record(data: bytes) -> Record:
    """A record from its JSON. bfprov wrote it, so building the values directly (not
    validating them) is safe, and several times faster on a large fleet; anything
    malformed raises and the record is ignored."""
    raw = json.loads(data)
    files = {
        str(rel): FileRecord(
            size=int(e["size"]),
            mtime_ns=int(e["mtime_ns"]),
            ctime_ns=int(e["ctime_ns"]),
            ino=int(e["ino"]),
            sha256=str(e["sha256"]),
            facts=dict(e.get("facts") or {}),
        )
        for rel, e in raw["files"].items()
    }
    last_check = raw.get("last_check")
    return Record(
        version=int(raw.get("version", 1)),
        files=files,
        last_check=last_check if isinstance(last_check, dict) else None,
    )


def _listing(directory: str | Path) -> dict[str, os.stat_result]:
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


def _names(directory: str | Path) -> list[str]:
    """The names in a directory, without a stat of each (the errors of _listing)."""
    try:
        return os.listdir(directory)  # noqa: PTH208 (names only: no Path per entry)
    except FileNotFoundError:
        return []
    except (NotADirectoryError, PermissionError) as exc:
        raise _unreadable(directory, exc) from None


def _unreadable(directory: str | Path, exc: OSError) -> BfprovError:
    if isinstance(exc, NotADirectoryError):
        return BfprovError(f"{directory} is not a directory")
    return BfprovError(f"cannot read {directory}: permission denied")


def _pick_stem(names: Iterable[str], preferred: str) -> str | None:
    stems = {n.rsplit(".", 1)[0] for n in names if n.endswith((".key", ".crt"))}
    if preferred in stems:
        return preferred
    others = sorted(s for s in stems if PAIR_STEM.match(s))
    return others[-1] if others else None


def _pair(
    directory: Path,
    prefix: str,
    listing: dict[str, os.stat_result],
    stem: str | None,
    record: Record | None,
) -> tuple[Pair, list[FileState]]:
    if stem is None:
        return Pair(None, None, None), []
    files: list[FileState] = []
    key = crt = None
    if (st := listing.get(f"{stem}.key")) is not None:
        key = _file_state(directory, f"{prefix}{stem}.key", st, record)
        files.append(key)
    if (st := listing.get(f"{stem}.crt")) is not None:
        crt = _file_state(directory, f"{prefix}{stem}.crt", st, record)
        files.append(crt)
    pair = Pair(
        stem=stem,
        key=key,
        crt=crt,
        key_facts=key_facts(key.facts) if key and key.regular else None,
        crt_facts=cert_facts(crt.facts) if crt and crt.regular else None,
    )
    return pair, files


def observe_account(target: Target) -> ObservedAccount:
    """Observe one account directory."""
    directory = target.directory
    where = os.fspath(directory)  # plain strings below: no Path per file on a large fleet
    dst = _lstat(where)
    if dst is None:
        empty = Pair(None, None, None)
        return ObservedAccount(target.name, directory, False, None, empty, empty, None, {}, (), ())
    if stat.S_ISLNK(dst.st_mode):
        raise BfprovError(f"{directory} is a symbolic link; bfprov does not follow links")
    if not stat.S_ISDIR(dst.st_mode):
        raise BfprovError(f"{directory} exists and is not a directory")

    top = _listing(where)
    for name in (RECORD_DIR, STAGED, ARCHIVE):
        st = top.get(name)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            # A link here could point anywhere: bfprov neither reads nor writes through it.
            raise BfprovError(
                f"{directory / name} is not a directory (a symbolic link?); bfprov does not "
                "follow links: move it away and run bfprov again"
            )
    record = read_record(where) if RECORD_DIR in top else None
    live_stem = _pick_stem(top, target.account.stem)
    live, files = _pair(directory, "", top, live_stem, record)

    staged_st = top.get(STAGED)
    staged = Pair(None, None, None)
    staged_mode = None
    if staged_st is not None:
        staged_mode = stat.S_IMODE(staged_st.st_mode)
        inner = _listing(f"{where}/{STAGED}")
        staged, staged_files = _pair(
            directory, f"{STAGED}/", inner, _pick_stem(inner, target.account.stem), record
        )
        files += staged_files
        leftovers_staged = [f"{STAGED}/{n}" for n in inner if TEMP_FILE.match(n)]
    else:
        leftovers_staged = []

    derived_stem = live_stem or target.account.stem
    derived: dict[str, FileState] = {}
    for kind, name in (
        ("pem", f"{derived_stem}.pem"),
        ("p12", f"{derived_stem}.p12"),
        ("csr", f"{derived_stem}.csr"),
        ("cnf", CNF_NAME),
    ):
        if (st := top.get(name)) is not None:
            derived[kind] = _file_state(directory, name, st, record)
            files.append(derived[kind])

    taken = {f.path for f in files}
    strays = tuple(
        FileState(
            n,
            stat.S_ISREG(st.st_mode),
            stat.S_IMODE(st.st_mode),
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        )
        for n, st in sorted(top.items())
        if n.endswith(WATCHED_SUFFIXES) and n not in taken
    )
    leftovers_record = (
        [f"{RECORD_DIR}/{n}" for n in _names(f"{where}/{RECORD_DIR}") if TEMP_FILE.match(n)]
        if RECORD_DIR in top
        else []
    )
    leftovers = tuple(
        sorted([n for n in top if TEMP_FILE.match(n)] + leftovers_staged + leftovers_record)
    )
    other_modes = {
        n: stat.S_IMODE(st.st_mode)
        for n, st in top.items()
        if n in (RECORD_DIR, ARCHIVE) and stat.S_ISDIR(st.st_mode)
    }
    return ObservedAccount(
        name=target.name,
        directory=directory,
        exists=True,
        dir_mode=stat.S_IMODE(dst.st_mode),
        live=live,
        staged=staged,
        staged_dir_mode=staged_mode,
        derived=derived,
        strays=strays,
        leftovers=leftovers,
        other_modes=other_modes,
        record=record,
        files=tuple(files) + strays,
    )


def find_orphans(desired: Desired) -> dict[str, Path]:
    """Account-like directories in an output directory that no profile names."""
    named: dict[Path, set[str]] = {}
    for t in desired.targets:
        named.setdefault(t.output_dir, set()).add(t.name)
    orphans: dict[str, Path] = {}
    for out in desired.output_dirs:
        for name, st in sorted(_listing(out).items()):
            if name.startswith(".") or not stat.S_ISDIR(st.st_mode):
                continue
            if name not in named.get(out, set()):
                orphans[name] = out
    return orphans


def observe(desired: Desired, *, orphans: bool = True) -> Observed:
    """Observe every account of the desired state (and, optionally, the orphans)."""
    accounts = {t.name: observe_account(t) for t in desired.targets}
    return Observed(accounts=accounts, orphans=find_orphans(desired) if orphans else {})


def read_live_pair(target: Target, stem: str) -> tuple[bytes, bytes]:
    """The live key and certificate bytes, for rewriting derived files."""
    return (
        read_bytes(target.directory / f"{stem}.key"),
        read_bytes(target.directory / f"{stem}.crt"),
    )


def dump_facts(value: object) -> dict[str, Any]:
    """Facts as stored in records."""
    return _dump(value)


@dataclass(frozen=True)
class Generation:
    """An archived generation holding a complete, matching key pair."""

    name: str  # the archive directory: its UTC time
    pair: Pair


def archived_generations(target: Target) -> list[Generation]:
    """Archived generations with a usable pair, oldest first."""
    archive = target.directory / ARCHIVE
    found: list[Generation] = []
    for name, st in sorted(_listing(archive).items()):
        if not stat.S_ISDIR(st.st_mode):
            continue
        inner = _listing(archive / name)
        pair, _ = _pair(
            target.directory, f"{ARCHIVE}/{name}/", inner, _pick_stem(inner, target.account.stem),
            None,
        )  # fmt: skip
        if pair.complete and pair.matched:
            found.append(Generation(name, pair))
    return found
