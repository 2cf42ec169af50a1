"""The shared first half of plan, apply and promote: profiles -> observed -> plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.desired.models import Output
from bfprov.desired.profile import load_profiles

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bfprov.desired.models import Desired
    from bfprov.observed.observe import Observed
    from bfprov.plan.model import Plan
    from bfprov.publish.observe import TargetState  # the type only: publish builds them
    from bfprov.settings import Settings


def load(settings: Settings) -> Desired:
    """Load and validate the profiles, printing their warnings."""
    desired = load_profiles(settings.profiles, settings)
    console.detail(
        f"profiles {settings.profiles}: {len(desired.targets)} accounts; output "
        f"{', '.join(map(str, desired.output_dirs)) or '-'}; identity URL "
        f"{settings.identity_url or 'Betfair'}; CA bundle {settings.ca_bundle or 'system'}"
    )
    for warning in desired.warnings:
        console.warn(warning)
    _warn_if_tracked(desired)
    return desired


def _warn_if_tracked(desired: Desired) -> None:
    from bfprov.observed.gitcheck import exposed

    for output_dir in desired.output_dirs:
        account = next((t.name for t in desired.targets if t.output_dir == output_dir), "x")
        root = exposed(output_dir, account)
        if root is not None:
            console.warn(
                f"output_dir {output_dir} lies in the git work tree {root} and is not "
                "ignored: private keys could be committed; add it to .gitignore"
            )


def render_cnfs(desired: Desired) -> dict[str, str | None]:
    """The openssl.cnf each account should have (None where cnf is not an output)."""
    from bfprov.desired.render import render_openssl_cnf, template_dirs

    return {
        t.name: render_openssl_cnf(t.account, template_dirs(t.templates))
        if Output.CNF in t.account.outputs
        else None
        for t in desired.targets
    }


@dataclass(frozen=True)
class Snapshot:
    """Desired and observed state at one moment, and the plan between them."""

    desired: Desired
    observed: Observed
    plan: Plan
    cnf_texts: dict[str, str | None]
    now: datetime
    publications: Mapping[str, tuple[TargetState, ...]] = field(default_factory=dict)

    def desired_digest(self) -> str:
        """A digest of the desired state (secret references, never secret values)."""
        h = hashlib.sha256()
        for t in self.desired.targets:
            h.update(t.account.model_dump_json().encode())
            h.update(f"{t.output_dir}\0{t.templates}\0".encode())
            h.update((self.cnf_texts.get(t.name) or "").encode())
        return h.hexdigest()


def snapshot(
    desired: Desired,
    *,
    orphans: bool = True,
    now: datetime | None = None,
    replace: frozenset[str] = frozenset(),
) -> Snapshot:
    """Observe the disk and plan against it (publishing targets: `publish.planning`).

    `replace` names accounts that get a new key whatever their state (`--replace`).
    """
    # Imported here: `validate` loads profiles through this module and must not pay for
    # observing (which brings in `cryptography`).
    from bfprov.observed.observe import observe
    from bfprov.plan.planner import plan as make_plan

    now = now or datetime.now(UTC)
    cnf_texts = render_cnfs(desired)
    expected = {
        name: hashlib.sha256(text.encode()).hexdigest() if text is not None else None
        for name, text in cnf_texts.items()
    }
    observed = observe(desired, orphans=orphans)
    plan = make_plan(desired, observed, now, expected, replace)
    return Snapshot(desired, observed, plan, cnf_texts, now)
