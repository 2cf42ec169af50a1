"""`bfprov rollback ACCOUNT`: bring back the newest archived generation as the live pair."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from bfprov import console
from bfprov.apply.executor import Inputs
from bfprov.apply.lock import apply_lock
from bfprov.apply.run import run_jobs
from bfprov.desired.secret import p12_password
from bfprov.errors import BfprovError
from bfprov.observed.account import observe_account
from bfprov.observed.observe import archived_generations
from bfprov.plan.operations import rollback as plan_rollback
from bfprov.plan.snapshot import load, render_cnfs
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import carry_out
from bfprov.publish.preflight import check
from bfprov.views.apply import deliveries, delivery_failures
from bfprov.views.plan import change_text

if TYPE_CHECKING:
    from bfprov.settings import Settings


def rollback(
    settings: Settings, *, account: str, yes: bool = False, lock_timeout: float = 0.0
) -> int:
    """The current live pair goes to the archive; the newest archived one comes back.

    It publishes and runs hooks, so, like apply, it shows what it will do and asks first
    (`yes`: do not ask; off a terminal without `yes` it refuses).
    """
    everything = load(settings)
    desired = everything.select([account])
    check(everything, settings.profiles, desired)  # it publishes: nothing changes unless it can
    target = desired.targets[0]
    with apply_lock(target.output_dir, timeout=lock_timeout, command="rollback"):
        observed = observe_account(target)
        generations = archived_generations(target)
        if not generations:
            raise BfprovError(f"{account} has no archived generation with a key pair to restore")
        generation = generations[-1]
        password = p12_password(target)
        change = plan_rollback(account, generation.name, target.publications)
        if not console.quiet():  # what it will do, targets included, as apply shows it
            console.say("bfprov will perform these actions:\n")
            console.say(change_text(change))
        if not yes:
            console.confirm("Roll back?", "rollback")
        job = Inputs(
            target=target,
            observed=observed,
            change=change,
            now=datetime.now(UTC),
            cnf_text=render_cnfs(desired)[account],
            p12_password=password,
            promote=False,
        )
        breaker = Breaker(timeout=settings.publish_timeout)
        [outcome] = carry_out(partial(run_jobs, [job], None), breaker)
    facts = generation.pair.crt_facts
    fingerprint = facts.fingerprint_sha256[:16] if facts else "?"
    console.say(
        f"Rolled {account} back to the generation archived at {generation.name} "
        f"(certificate {fingerprint}...); the replaced pair is in the archive."
    )
    console.say(
        "Betfair keeps only the last uploaded certificate: upload the restored one again\n"
        f"  {outcome.restored}\n  at {target.account.jurisdiction.upload_url}\n"
        "then run `bfprov verify`."
    )
    if facts is not None and facts.not_after <= datetime.now(UTC):
        console.warn(f"the restored certificate expired on {facts.not_after:%Y-%m-%d}")
    for line in deliveries(account, outcome.delivered):
        console.say(line)
    return 1 if console.errors(delivery_failures([outcome])) else 0
