"""Pure planning: (desired, observed, now) -> Plan. Every change carries all its reasons.

Per account, housekeeping first (leftovers, strays, modes, derived files), then what the
key pair needs: nothing, creation, a staged rotation, or promotion. An account named in
`replace` (`--replace`: key compromise, a lost upload) gets a new key whatever its state:
staged like any rotation when it has a live pair, its staged pair (if any) archived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov.layout import STAGED
from bfprov.plan.checks import derived_reasons, mode_fixes, pair_problems
from bfprov.plan.model import (
    Action,
    ArchiveFiles,
    ArchiveOrphan,
    Change,
    FixModes,
    NewPair,
    Plan,
    Promote,
    RemoveLeftovers,
    Step,
    WriteDerived,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from bfprov.desired.models import Account, Desired, Target
    from bfprov.observed.account import ObservedAccount, Pair
    from bfprov.observed.observe import Observed


REPLACEMENT = "replacement requested"


def plan_account(
    target: Target,
    obs: ObservedAccount,
    now: datetime,
    expected_cnf: str | None,
    replace: bool = False,
) -> Change:
    """The change one account needs (action NOOP when it needs none).

    Housekeeping steps come first (leftovers, strays, modes, derived files of a sound
    live pair); the pair step (new pair, promotion) comes last, because a promotion
    waits for a login and may not happen in this run.
    """
    account = target.account
    live = obs.live
    reasons: list[str] = []
    steps: list[Step] = []

    if obs.leftovers:
        reasons.append(f"temporary files of an interrupted write: {', '.join(obs.leftovers)}")
        steps.append(RemoveLeftovers(obs.leftovers))
    if obs.strays:
        names = tuple(s.path for s in obs.strays)
        reasons.append(
            "stray files beside the live pair (betfairlightweight would pick one at random): "
            + ", ".join(names)
        )
        steps.append(ArchiveFiles(names))
    mode_reasons, fixes = mode_fixes(obs)
    if fixes:
        reasons.extend(mode_reasons)
        steps.append(FixModes(tuple(fixes)))
    if live.matched:
        derived, rewrite = derived_reasons(account, obs, expected_cnf)
        if rewrite:
            reasons.extend(derived)
            steps.append(WriteDerived(tuple(rewrite)))
    housekeeping = Action.UPDATE if steps else Action.NOOP

    decide = _replacement if replace else _pair_decision
    action, pair_reasons, pair_steps = decide(account, obs, now)
    reasons.extend(pair_reasons)
    steps.extend(pair_steps)
    if action is Action.NOOP:
        action = housekeeping
    resume = any(isinstance(s, Promote) and s.resume for s in steps)
    return Change(
        account=account.name,
        action=action,
        reasons=tuple(reasons),
        requires_upload=action in (Action.CREATE, Action.ROTATE, Action.PROMOTE) and not resume,
        steps=tuple(steps),
        needs_login=action is Action.PROMOTE and not resume,
    )


def _pair_decision(
    account: Account, obs: ObservedAccount, now: datetime
) -> tuple[Action, list[str], list[Step]]:
    """What the key pair needs: nothing, creation, a staged rotation, or promotion."""
    live, staged = obs.live, obs.staged
    reasons: list[str] = []
    steps: list[Step] = []
    discarded_staged = False

    if staged.complete:
        staged_problems = pair_problems(staged, account, now, "staged")
        if not staged_problems:
            crt = staged.crt.path if staged.crt else STAGED
            reasons.append(
                f"staged pair awaits upload and a successful login: upload {crt} at "
                f"{account.jurisdiction.upload_url}"
            )
            return Action.PROMOTE, reasons, [Promote()]
        reasons.append("staged pair no longer fits the profile: " + "; ".join(staged_problems))
        steps.append(ArchiveFiles(_paths(staged)))
        discarded_staged = True
    elif not staged.empty:
        if (
            staged.crt is not None
            and staged.crt_facts is not None
            and live.key_facts is not None
            and live.crt is None
            and staged.crt_facts.spki_sha256 == live.key_facts.spki_sha256
        ):
            reasons.append("a promotion was interrupted: it will be completed")
            return Action.PROMOTE, reasons, [Promote(resume=True)]
        reasons.append("incomplete staged pair (an interrupted rotation) is archived")
        steps.append(ArchiveFiles(_paths(staged)))
        discarded_staged = True

    if not live.complete:
        reasons.extend(_missing(obs))
        reuse = (
            live.key is not None
            and live.crt is None
            and live.key_facts is not None
            and live.key_facts.algorithm == "rsa"
            and live.key_facts.bits == account.key.size
            and live.stem == account.stem
        )
        if reuse:
            reasons.append("the key on disk is kept and a certificate is issued for it")
        elif not live.empty:
            steps.append(ArchiveFiles(_paths(live)))
        steps.append(NewPair(staged=False, reuse_key=reuse))
        return Action.CREATE, reasons, steps

    problems = pair_problems(live, account, now, "live")
    if problems:
        reasons.extend(problems)
        steps.append(NewPair(staged=True))
        return Action.ROTATE, reasons, steps
    return (Action.UPDATE if discarded_staged else Action.NOOP), reasons, steps


def _replacement(
    account: Account, obs: ObservedAccount, now: datetime
) -> tuple[Action, list[str], list[Step]]:
    """A new key whatever the state: the staged pair (complete or not, even one awaiting
    upload) is archived, never promoted; the key on disk is never reused."""
    live, staged = obs.live, obs.staged
    reasons: list[str] = []
    steps: list[Step] = []
    if not staged.empty:
        steps.append(ArchiveFiles(_paths(staged)))
    if not live.complete:
        reasons.extend(_missing(obs))
        reasons.append(REPLACEMENT)
        if not staged.empty:
            reasons.append("the staged pair is archived")
        if not live.empty:
            steps.append(ArchiveFiles(_paths(live)))
        steps.append(NewPair(staged=False))
        return Action.CREATE, reasons, steps
    reasons.append(REPLACEMENT)
    if not staged.empty:
        reasons.append("the staged pair is archived and a new one staged in its place")
    reasons.extend(pair_problems(live, account, now, "live"))
    steps.append(NewPair(staged=True))
    return Action.ROTATE, reasons, steps


def _missing(obs: ObservedAccount) -> list[str]:
    """Why an account has no complete live pair: one reason when nothing is there (a new
    account), one per missing file when only some are."""
    if not obs.exists:
        return ["new account: nothing on disk yet"]
    if obs.live.key is None and obs.live.crt is None:
        return ["no key or certificate on disk"]
    return ["no key on disk" if obs.live.key is None else "no certificate on disk"]


def _paths(pair: Pair) -> tuple[str, ...]:
    return tuple(f.path for f in (pair.crt, pair.key) if f is not None)


def plan(
    desired: Desired,
    observed: Observed,
    now: datetime,
    expected_cnf: Mapping[str, str | None],
    replace: frozenset[str] = frozenset(),
) -> Plan:
    """The whole plan: one change per account that needs one, plus the orphans.

    `replace` names accounts that get a new key whatever their state."""
    changes: list[Change] = []
    noop: list[str] = []
    for target in desired.targets:
        change = plan_account(
            target,
            observed.accounts[target.name],
            now,
            expected_cnf.get(target.name),
            replace=target.name in replace,
        )
        if change.action is Action.NOOP:
            noop.append(target.name)
        else:
            changes.append(change)
    for name, parent in sorted(observed.orphans.items()):
        changes.append(
            Change(
                account=name,
                action=Action.ORPHAN,
                reasons=(
                    f"{parent / name} is not named by any profile (archived only with --prune)",
                ),
                requires_upload=False,
                steps=(ArchiveOrphan(),),
            )
        )
    return Plan(changes=tuple(changes), noop=tuple(noop), digests=observed.digests())
