"""The whole fleet as found: every account of the profiles, orphaned directories, and the
archived generations a rollback can bring back. Reads, never writes."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.layout import ARCHIVE
from bfprov.observed.account import ObservedAccount, Pair, find_pair, observe_account, pick_stem
from bfprov.observed.files import listing

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import Desired, Target


@dataclass(frozen=True)
class Observed:
    """Every account of the desired state as found, and the directories no profile names."""

    accounts: dict[str, ObservedAccount]
    orphans: dict[str, Path]  # directory name -> output_dir holding it

    def digests(self) -> dict[str, str]:
        """A digest per account (and orphan), to tell whether a saved plan is stale."""
        out = {name: acc.digest() for name, acc in self.accounts.items()}
        for name, parent in self.orphans.items():
            out[f"orphan:{name}"] = str(parent)
        return out


def observe(desired: Desired, *, orphans: bool = True) -> Observed:
    """Observe every account of the desired state (and, optionally, the orphans)."""
    accounts = {t.name: observe_account(t) for t in desired.targets}
    return Observed(accounts=accounts, orphans=find_orphans(desired) if orphans else {})


def find_orphans(desired: Desired) -> dict[str, Path]:
    """Account-like directories in an output directory that no profile names."""
    named: dict[Path, set[str]] = {}
    for t in desired.targets:
        named.setdefault(t.output_dir, set()).add(t.name)
    orphans: dict[str, Path] = {}
    for out in desired.output_dirs:
        for name, st in sorted(listing(out).items()):
            if name.startswith(".") or not stat.S_ISDIR(st.st_mode):
                continue
            if name not in named.get(out, set()):
                orphans[name] = out
    return orphans


@dataclass(frozen=True)
class Generation:
    """An archived generation holding a complete, matching key pair."""

    name: str  # the archive directory: its UTC time
    pair: Pair


def archived_generations(target: Target) -> list[Generation]:
    """Archived generations with a usable pair, oldest first."""
    where = os.fspath(target.directory)
    found: list[Generation] = []
    for name, st in sorted(listing(f"{where}/{ARCHIVE}").items()):
        if not stat.S_ISDIR(st.st_mode):
            continue
        inner = listing(f"{where}/{ARCHIVE}/{name}")
        stem = pick_stem(inner, target.account.stem)
        pair, _ = find_pair(where, f"{ARCHIVE}/{name}/", inner, stem, None)
        if pair.complete and pair.matched:
            found.append(Generation(name, pair))
    return found
