"""`bfprov promote ACCOUNT...`: make staged pairs live once their login works."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.commands._pipeline import load, snapshot
from bfprov.errors import BfprovError
from bfprov.executor import Inputs, execute
from bfprov.models import Output
from bfprov.planner import Change, Promote, RemoveLeftovers
from bfprov.secret import reveal
from bfprov.store import apply_lock

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.settings import Settings


def promote(settings: Settings, *, accounts: Sequence[str], verify: bool) -> int:
    desired = load(settings).select(list(accounts))
    with contextlib.ExitStack() as locks:
        for output_dir in desired.output_dirs:
            locks.enter_context(apply_lock(output_dir))
        snap = snapshot(desired, orphans=False)
        changes = {c.account: c for c in snap.plan.changes}
        jobs: list[Inputs] = []
        for target in desired.targets:
            change = changes.get(target.name)
            steps = tuple(
                s
                for s in (change.steps if change else ())
                if isinstance(s, Promote | RemoveLeftovers)
            )
            if not any(isinstance(s, Promote) for s in steps):
                raise BfprovError(f"{target.name} has no staged pair to promote")
            assert change is not None
            password = None
            if Output.P12 in target.account.outputs:
                assert target.account.p12.password is not None
                password = reveal(
                    target.account.p12.password,
                    target.source.parent,
                    f"{target.name}: p12.password",
                )
            jobs.append(
                Inputs(
                    target=target,
                    observed=snap.observed.accounts[target.name],
                    change=Change(
                        target.name,
                        change.action,
                        change.reasons,
                        change.requires_upload,
                        steps,
                        change.needs_login,
                    ),
                    now=snap.now,
                    cnf_text=snap.cnf_texts.get(target.name),
                    p12_password=password,
                    promote=False,
                )
            )
        if verify:
            from bfprov.commands.verify import staged_login_check

            check = staged_login_check(settings)
            refused = [
                j.target.name
                for j in jobs
                if j.change.needs_login and not check(j.target, j.observed)
            ]
            if refused:
                raise BfprovError(
                    f"not promoted: the staged pair of {', '.join(refused)} cannot log in yet "
                    "(upload its staged .crt first); nothing was changed"
                )
        for job in jobs:
            outcome = execute(Inputs(**{**job.__dict__, "promote": True}))
            if outcome.promoted:
                console.say(f"Promoted the staged pair of {job.target.name}: it is now live.")
    return 0
