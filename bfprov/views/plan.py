"""Pure presentation: plans and outcomes as Rich text (plain off a terminal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from bfprov.plan.model import Action

if TYPE_CHECKING:
    from bfprov.plan.model import Change, Plan

PENDING = "AWSPENDING"  # what the one kind of target that keeps a next version calls it

SYMBOLS: dict[Action, tuple[str, str]] = {
    Action.CREATE: ("+", "green"),
    Action.ROTATE: ("-/+", "yellow"),
    Action.UPDATE: ("~", "cyan"),
    Action.PROMOTE: (">", "magenta"),
    Action.PUBLISH: ("=>", "blue"),
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
    for line in deliveries(change):
        text.append(f"        {line}\n", style="dim")
    return text


def deliveries(change: Change) -> list[str]:
    """Each write the change makes to a publishing target, in words."""
    return [f"will publish to {label}" for label in change.publish_to] + [
        f"will write {PENDING} to {label}" for label in change.stage_to
    ]


def plan_text(plan: Plan) -> Text:
    """The plan the way Terraform shows one."""
    if not plan.has_changes:
        n = len(plan.noop)
        matches = "account matches" if n == 1 else "accounts match"
        return Text(f"No changes. {n} {matches} the profiles.")
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
    if plan.publications:  # deliveries to targets, not accounts
        parts.append(f"{plan.publications} to publish")
    if s["orphan"]:
        parts.append(f"{s['orphan']} orphaned")
    parts.append(f"{s['noop']} unchanged")
    text = Text("Plan: ", style="bold")
    text.append(", ".join(parts) + ".")
    return text


_MD_SYMBOLS = {
    Action.CREATE: "➕ create",
    Action.ROTATE: "🔄 rotate",
    Action.UPDATE: "✏️ update",
    Action.PROMOTE: "⏫ promote",
    Action.PUBLISH: "📤 publish",
    Action.ORPHAN: "🗑️ orphan",
}


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: a summary line and a table of changes."""
    s = plan.summary()
    lines = ["### bfprov plan", ""]
    if not plan.has_changes:
        lines.append(f"**No changes.** {s['noop']} account(s) match the profiles.")
        return "\n".join(lines) + "\n"
    uploads = sum(1 for c in plan.changes if c.requires_upload)
    lines.append(
        f"**{s['create']} to create, {s['rotate']} to rotate, {s['update']} to update, "
        f"{s['promote']} to promote, {plan.publications} to publish, {s['orphan']} orphaned, "
        f"{s['noop']} unchanged.**"
        + (f" {uploads} certificate upload(s) will be needed." if uploads else "")
    )
    lines += ["", "| account | action | upload | reasons |", "|---|---|---|---|"]
    for c in plan.changes:
        reasons = "<br>".join(_md_escape(r) for r in (*c.reasons, *deliveries(c)))
        upload = "yes" if c.requires_upload else "no"
        lines.append(f"| `{c.account}` | {_MD_SYMBOLS[c.action]} | {upload} | {reasons} |")
    return "\n".join(lines) + "\n"
