"""Saved plans (`plan --out FILE`, `apply FILE`): what they hold, and when they are stale.

A saved plan holds the changes, a digest of the desired state (secret references,
never secret values) and digests of what was observed: never a secret or key material.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.plan.snapshot import Snapshot


def saved_plan(snap: Snapshot) -> dict[str, object]:
    """The plan as saved by `plan --out`: no secret, no key material."""
    data = snap.plan.to_json()
    data["created_at"] = snap.now.isoformat(timespec="seconds")
    data["desired_digest"] = snap.desired_digest()
    data["observed"] = dict(sorted(snap.plan.digests.items()))
    return data


def check_saved_plan(path: Path, snap: Snapshot) -> None:
    """Refuse a saved plan if anything it looked at has changed since."""
    try:
        saved: object = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BfprovError(f"no saved plan at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BfprovError(f"{path} is not a saved bfprov plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format_version") != 1 or "observed" not in saved:
        raise BfprovError(f"{path} is not a saved bfprov plan (format_version 1)")
    now = saved_plan(snap)
    if saved.get("desired_digest") != now["desired_digest"]:
        raise BfprovError(f"the saved plan {path} is stale: the profiles changed since; plan again")
    old = saved["observed"] if isinstance(saved["observed"], dict) else {}
    new = cast("dict[str, str]", now["observed"])
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        names = ", ".join(k.removeprefix("orphan:") for k in changed[:5])
        raise BfprovError(
            f"the saved plan {path} is stale: {names} changed on disk since; plan again"
        )
    changes = saved.get("changes")
    actions = [
        (c.get("account"), c.get("action"))
        for c in (changes if isinstance(changes, list) else [])
        if isinstance(c, dict)
    ]
    if actions != [(c.account, c.action.value) for c in snap.plan.changes]:
        raise BfprovError(f"the saved plan {path} no longer matches what needs doing; plan again")
