"""Pure presentation: plans and outcomes as Rich text (plain off a terminal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from bfprov.planner import Action

if TYPE_CHECKING:
    from bfprov.planner import Change, Plan

SYMBOLS: dict[Action, tuple[str, str]] = {
    Action.CREATE: ("+", "green"),
    Action.ROTATE: ("-/+", "yellow"),
    Action.UPDATE: ("~", "cyan"),
    Action.PROMOTE: (">", "magenta"),
    Action.ORPHAN: ("-", "red"),
}


def change_text(change: Change) -> Text:
    symbol, style = SYMBOLS[change.action]
    text = Text()
    text.append(f"  {symbol:>3} ", style=f"bold {style}")
    text.append(change.account, style="bold")
    label = change.action.value
    if change.requires_upload:
        label += ", upload needed"
    text.append(f" ({label})\n", style=style)
    for reason in change.reasons:
        text.append(f"        {reason}\n")
    return text


def plan_text(plan: Plan) -> Text:
    """The plan the way Terraform shows one."""
    if not plan.has_changes:
        n = len(plan.noop)
        return Text(f"No changes. {n} account{'s' if n != 1 else ''} match the profiles.")
    text = Text("bfprov will perform these actions:\n\n")
    for change in plan.changes:
        text.append_text(change_text(change))
    text.append("\n")
    text.append_text(summary_text(plan))
    return text


def summary_text(plan: Plan) -> Text:
    s = plan.summary()
    parts = [
        f"{s['create']} to create",
        f"{s['rotate']} to rotate",
        f"{s['update']} to update",
        f"{s['promote']} to promote",
    ]
    if s["orphan"]:
        parts.append(f"{s['orphan']} orphaned")
    parts.append(f"{s['noop']} unchanged")
    text = Text("Plan: ", style="bold")
    text.append(", ".join(parts) + ".")
    return text
