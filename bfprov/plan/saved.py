"""Saved plans (`plan --out FILE`, `apply FILE`): what they hold, and when they are stale.

A saved plan holds the changes, the selection it was made for (`--account`, `--select`)
and the accounts it replaces (`--replace`), a digest of the desired state (secret
references, never secret values) and digests of what was observed: never a secret or
key material. `apply FILE` works on exactly that selection, with those replacements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from bfprov.desired.selection import Selection
from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from bfprov.plan.snapshot import Snapshot


def saved_plan(
    snap: Snapshot, selection: Selection | None = None, replace: Iterable[str] = ()
) -> dict[str, object]:
    """The plan as saved by `plan --out`: no secret, no key material."""
    data = snap.plan.to_json()
    data["created_at"] = snap.now.isoformat(timespec="seconds")
    data["selection"] = (selection or Selection()).to_json()
    data["replace"] = sorted(replace)
    data["desired_digest"] = snap.desired_digest()
    data["observed"] = dict(sorted(snap.plan.digests.items()))
    return data


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan as read back: its file, its content, its selection and replacements."""

    path: Path
    data: dict[str, object]
    selection: Selection
    replace: frozenset[str]

    def agree(self, selection: Selection, replace: Iterable[str]) -> None:
        """Refuse a command line that asks for another selection or other replacements
        than the plan was made for (none given: the plan's own are used)."""
        wanted = frozenset(replace)
        if selection.everything and not wanted:
            return
        if selection != self.selection or wanted != self.replace:
            made = " ".join(
                [str(self.selection), *(f"--replace {n}" for n in sorted(self.replace))]
            )
            raise BfprovError(
                f"the saved plan {self.path} was made for {made}: `apply {self.path}` "
                "applies exactly that; drop --account/--select/--replace, or plan again"
            )


def read_saved_plan(path: Path) -> SavedPlan:
    """Read a plan saved by `plan --out`; one line of error if it is not one."""
    try:
        saved: object = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BfprovError(f"no saved plan at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BfprovError(f"{path} is not a saved bfprov plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format_version") != 1 or "observed" not in saved:
        raise BfprovError(f"{path} is not a saved bfprov plan (format_version 1)")
    replace = saved.get("replace", [])
    try:
        selection = Selection.from_json(saved.get("selection"))
        if not isinstance(replace, list) or not all(isinstance(n, str) for n in replace):
            raise ValueError("replace is not a list of names")
    except (ValueError, BfprovError) as exc:
        raise BfprovError(f"{path} is not a saved bfprov plan: {exc}") from None
    return SavedPlan(path, saved, selection, frozenset(replace))


def requested(
    plan_file: Path | None, selection: Selection, replace: Sequence[str]
) -> tuple[SavedPlan | None, Selection, Sequence[str]]:
    """What `apply [FILE]` works on: with a saved plan, that plan and exactly its selection
    and replacements (the command line must agree); without one, the command line's."""
    if plan_file is None:
        return None, selection, replace
    saved = read_saved_plan(plan_file)
    saved.agree(selection, replace)
    return saved, saved.selection, sorted(saved.replace)


def check_saved_plan(saved: SavedPlan, snap: Snapshot) -> None:
    """Refuse a saved plan if anything it looked at has changed since."""
    path = saved.path
    now = saved_plan(snap)
    if saved.data.get("desired_digest") != now["desired_digest"]:
        raise BfprovError(f"the saved plan {path} is stale: the profiles changed since; plan again")
    old = saved.data["observed"] if isinstance(saved.data["observed"], dict) else {}
    new = cast("dict[str, str]", now["observed"])
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        names = ", ".join(k.removeprefix("orphan:") for k in changed[:5])
        raise BfprovError(
            f"the saved plan {path} is stale: {names} changed on disk since; plan again"
        )
    changes = saved.data.get("changes")
    actions = [
        (c.get("account"), c.get("action"))
        for c in (changes if isinstance(changes, list) else [])
        if isinstance(c, dict)
    ]
    if actions != [(c.account, c.action.value) for c in snap.plan.changes]:
        raise BfprovError(f"the saved plan {path} no longer matches what needs doing; plan again")
