"""One account directory as found: its live and staged pairs, derived files, strays and
leftovers of an interrupted write."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bfprov.crypto import CertFacts, KeyFacts
from bfprov.errors import BfprovError
from bfprov.layout import (
    ARCHIVE,
    CNF_NAME,
    PAIR_STEM,
    RECORD_DIR,
    STAGED,
    TEMP_FILE,
    WATCHED_SUFFIXES,
)
from bfprov.observed.facts import Unreadable
from bfprov.observed.files import FileState, file_state, listing, lstat, names, unjudged
from bfprov.observed.records import read_record

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from bfprov.desired.models import Target
    from bfprov.observed.records import Record


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


NO_PAIR = Pair(None, None, None)


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
            if f.regular and not f.fresh and f.sha256 is not None
            and not isinstance(f.facts, Unreadable)
        )  # fmt: skip

    def digest(self) -> str:
        """A digest of everything observed, to tell whether a saved plan is stale."""
        h = hashlib.sha256(self.name.encode())
        h.update(repr((self.exists, self.dir_mode, self.staged_dir_mode)).encode())
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(repr(f.signature()).encode())
        h.update(repr(sorted(self.leftovers)).encode())
        return h.hexdigest()


def pick_stem(found: Iterable[str], preferred: str) -> str | None:
    """The stem of the pair among these names: the profile's, else the largest key size."""
    stems = {n.rsplit(".", 1)[0] for n in found if n.endswith((".key", ".crt"))}
    if preferred in stems:
        return preferred
    others = sorted(s for s in stems if PAIR_STEM.match(s))
    return others[-1] if others else None


def find_pair(
    directory: str,
    prefix: str,
    entries: dict[str, os.stat_result],
    stem: str | None,
    record: Record | None,
) -> tuple[Pair, list[FileState]]:
    """The pair named `stem` among a directory's entries, and its files' states."""
    if stem is None:
        return NO_PAIR, []
    files: list[FileState] = []
    key = crt = None
    if (st := entries.get(f"{stem}.key")) is not None:
        key = file_state(directory, f"{prefix}{stem}.key", st, record)
        files.append(key)
    if (st := entries.get(f"{stem}.crt")) is not None:
        crt = file_state(directory, f"{prefix}{stem}.crt", st, record)
        files.append(crt)
    pair = Pair(
        stem=stem,
        key=key,
        crt=crt,
        key_facts=key.facts if key and isinstance(key.facts, KeyFacts) else None,
        crt_facts=crt.facts if crt and isinstance(crt.facts, CertFacts) else None,
    )
    return pair, files


def observe_account(target: Target) -> ObservedAccount:
    """Observe one account directory."""
    directory = target.directory
    where = os.fspath(directory)  # plain strings below: no Path per file on a large fleet
    dst = lstat(where)
    if dst is None:
        return ObservedAccount(target.name, directory, False, None, NO_PAIR, NO_PAIR, None, {},
                               (), ())  # fmt: skip
    if stat.S_ISLNK(dst.st_mode):
        raise BfprovError(f"{directory} is a symbolic link; bfprov does not follow links")
    if not stat.S_ISDIR(dst.st_mode):
        raise BfprovError(f"{directory} exists and is not a directory")

    top = listing(where)
    for name in (RECORD_DIR, STAGED, ARCHIVE):
        st = top.get(name)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            # A link here could point anywhere: bfprov neither reads nor writes through it.
            raise BfprovError(
                f"{directory / name} is not a directory (a symbolic link?); bfprov does not "
                "follow links: move it away and run bfprov again"
            )
    record = read_record(where) if RECORD_DIR in top else None
    live_stem = pick_stem(top, target.account.stem)
    live, files = find_pair(where, "", top, live_stem, record)

    staged_st = top.get(STAGED)
    staged = NO_PAIR
    staged_mode = None
    leftovers_staged: list[str] = []
    if staged_st is not None:
        staged_mode = stat.S_IMODE(staged_st.st_mode)
        inner = listing(f"{where}/{STAGED}")
        staged, staged_files = find_pair(
            where, f"{STAGED}/", inner, pick_stem(inner, target.account.stem), record
        )
        files += staged_files
        leftovers_staged = [f"{STAGED}/{n}" for n in inner if TEMP_FILE.match(n)]

    derived_stem = live_stem or target.account.stem
    derived: dict[str, FileState] = {}
    for kind, name in (
        ("pem", f"{derived_stem}.pem"),
        ("p12", f"{derived_stem}.p12"),
        ("csr", f"{derived_stem}.csr"),
        ("cnf", CNF_NAME),
    ):
        if (st := top.get(name)) is not None:
            derived[kind] = file_state(where, name, st, record)
            files.append(derived[kind])

    taken = {f.path for f in files}
    strays = tuple(
        unjudged(n, st)
        for n, st in sorted(top.items())
        if n.endswith(WATCHED_SUFFIXES) and n not in taken
    )
    leftovers_record = (
        [f"{RECORD_DIR}/{n}" for n in names(f"{where}/{RECORD_DIR}") if TEMP_FILE.match(n)]
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
