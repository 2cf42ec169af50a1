"""`bfprov validate`: check the profiles and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov import console
from bfprov.plan.snapshot import load
from bfprov.publish.preflight import check

if TYPE_CHECKING:
    from bfprov.settings import Settings


def validate(settings: Settings) -> int:
    desired = load(settings)
    check(desired, settings.profiles)
    n = len(desired.targets)
    sources = len({t.source for t in desired.targets})
    console.say(
        f"{settings.profiles}: {n} account{'s' if n != 1 else ''} in "
        f"{sources} file{'s' if sources != 1 else ''}, valid."
    )
    return 0
