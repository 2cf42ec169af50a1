"""Everything a publishing target needs, checked before anything is written.

`validate`, `plan` and `apply` call `check` once the profiles are loaded (apply before its
lock, its first write): a profile that cannot publish writes nothing, and `plan` never
shows a missing token as drift. Checked here:

- identity: a target (Vault address, mount and path; AWS region, endpoint and name; a
  manifest's file) belongs to one account, once `{account}` is filled in;
- names once `{account}` is filled in: Vault paths without empty, `.` or `..` segments,
  Secrets Manager names, Kubernetes names;
- a manifest is never beside the profiles, and never replaces a file bfprov did not write;
- for the accounts about to be worked on: the Vault token (its variable set, its file
  readable) and `ca_bundle`, the packages a target needs, sops for encrypted manifests.

Each kind's module (see `kinds`) says what it checks: `key` (its identity), `names` and
`needs`. What is static in a target's settings (addresses, recipients, path segments of
the template) is checked where the profile is validated (`desired.targets`), with the
value's line and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.desired.profile import ProfileError
from bfprov.desired.targets import TargetRef
from bfprov.publish import kinds
from bfprov.publish.needs import installed

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import Desired, Target


@dataclass(frozen=True)
class Entry:
    """One publishing target of one account, placed in its profile."""

    ref: TargetRef
    place: str  # `file:line:col: path` of the item in the profile

    @property
    def account(self) -> str:
        return self.ref.account

    def problem(self, why: str, more: str = "") -> str:
        return f"{self.place} ({self.account}{more}): {self.ref.label}: {why}"


def check(desired: Desired, profiles: Path, selected: Desired | None = None) -> None:
    """Raise ProfileError listing every problem `preflight` finds."""
    problems = preflight(desired, profiles, selected)
    if problems:
        raise ProfileError(problems)


def preflight(desired: Desired, profiles: Path, selected: Desired | None = None) -> list[str]:
    """Every reason the publishing targets of `desired` (all accounts of the profiles)
    cannot be written, one line each. Secrets, files and packages are looked at for the
    accounts of `selected` only (all when None): a selection leaves the others alone."""
    entries = [
        Entry(ref, _place(t, i)) for t in desired.targets for i, ref in enumerate(t.publications)
    ]
    chosen = {t.name for t in (selected or desired).targets}
    installed.cache_clear()  # once per check, not per account; a test may uninstall one
    homes = _profile_dirs(desired, profiles)
    # One line per problem of a `publish` item, however many accounts share it (a token
    # missing for a whole fleet's defaults is one line, not thousands).
    found: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        kind = kinds.module(entry.ref.kind)
        whys = kind.names(entry.ref, homes)
        if entry.account in chosen:
            whys += kind.needs(entry.ref)
        for why in whys:
            found.setdefault((entry.place, why), []).append(entry)
    problems = _repeats(entries)
    for (_, why), alike in found.items():
        first, others = alike[0], len(alike) - 1
        more = f" and {others} other account{'s' if others != 1 else ''}" if others else ""
        problems.append(first.problem(why, more))
    return problems


def _place(target: Target, index: int) -> str:
    if index < len(target.publish_at):
        return target.publish_at[index]
    return f"{target.source}: publish[{index}]"


def _repeats(entries: list[Entry]) -> list[str]:
    """A target named twice: by two accounts, or twice in one account's list."""
    seen: dict[tuple[str, ...], Entry] = {}
    problems = []
    for entry in entries:
        first = seen.setdefault(kinds.module(entry.ref.kind).key(entry.ref), entry)
        if first is entry:
            continue
        if first.account == entry.account:
            why = f"listed twice for {entry.account} (first at {first.place})"
        else:
            why = (
                f"is also {first.account}'s target (at {first.place}): a target belongs to one "
                f"account, or {first.account} and {entry.account} would overwrite each other's "
                "pair on every run (put {account} in it)"
            )
        problems.append(entry.problem(why))
    return problems


def _profile_dirs(desired: Desired, profiles: Path) -> set[Path]:
    """The directory `--profiles` names (or holds the file it names), and every directory
    holding a profile file that was read."""
    dirs = {t.source.parent for t in desired.targets}
    try:
        given = profiles.resolve()
        dirs.add(given if given.is_dir() else given.parent)
    except (OSError, RuntimeError):
        pass
    return dirs
