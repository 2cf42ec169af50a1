"""The executor (`apply.executor.execute`) on small, real inputs: a profile loaded as
bfprov loads it, the disk observed and planned (`plan.snapshot`), one change executed.
No command line: what each step writes is checked on disk and by parsing it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bfprov import crypto
from bfprov.apply.executor import Inputs, execute
from bfprov.desired.models import Desired
from bfprov.plan.model import Action, NewPair, Promote
from bfprov.plan.snapshot import snapshot
from tests.support.fleet import profile_text

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa


LoadDesired = Callable[[str], Desired]


def profile(generation: int) -> str:
    return profile_text("alice", outputs="key, crt, pem", common_name=f"alice gen {generation}")


def inputs_for(desired: Desired, key: rsa.RSAPrivateKey | None, *, promote: bool) -> Inputs:
    """The one change the plan has for alice, as apply.run hands it to the executor
    (apply.run makes the output directory, under its lock)."""
    for output_dir in desired.output_dirs:
        output_dir.mkdir(mode=0o700, exist_ok=True)
    snap = snapshot(desired, orphans=False)
    [change] = snap.plan.changes
    [target] = desired.targets
    return Inputs(
        target=target,
        observed=snap.observed.accounts["alice"],
        change=change,
        now=snap.now,
        cnf_text=None,
        p12_password=None,
        promote=promote,
        key=key,
    )


def test_a_create_writes_the_pair_and_its_derived_files(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    desired = load_desired(profile(1))
    inputs = inputs_for(desired, rsa_key_1024, promote=False)
    assert inputs.change.action is Action.CREATE
    outcome = execute(inputs)
    alice = tmp_path / "certs" / "alice"
    crt = crypto.inspect_certificate((alice / "client-1024.crt").read_bytes())
    key = crypto.inspect_key((alice / "client-1024.key").read_bytes())
    assert (outcome.kind, outcome.went_live) == ("created", True)
    assert outcome.fingerprint == crt.fingerprint_sha256
    assert crt.spki_sha256 == key.spki_sha256  # the pair matches
    assert dict(crt.subject)["common_name"] == "alice gen 1"
    assert (alice / "client-1024.key").stat().st_mode & 0o777 == 0o600
    pem = (alice / "client-1024.pem").read_bytes()
    assert (alice / "client-1024.crt").read_bytes() in pem
    assert set(outcome.written) >= {"client-1024.key", "client-1024.crt", "client-1024.pem"}
    # Executed, the plan has nothing left to do.
    assert snapshot(desired, orphans=False).plan.changes == ()


def test_a_rotation_stages_and_a_promotion_moves_staged_to_live(
    load_desired: LoadDesired,
    rsa_key_1024: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    execute(inputs_for(load_desired(profile(1)), rsa_key_1024, promote=False))
    alice = tmp_path / "certs" / "alice"
    first = (alice / "client-1024.crt").read_bytes()

    desired = load_desired(profile(2))
    staging = inputs_for(desired, crypto.generate_key(1024), promote=False)
    assert any(isinstance(s, NewPair) and s.staged for s in staging.change.steps)
    staged = execute(staging)
    assert (staged.kind, staged.went_live) == ("staged", False)
    assert (alice / "client-1024.crt").read_bytes() == first  # live untouched
    staged_crt = (alice / "staged" / "client-1024.crt").read_bytes()
    staged_key = (alice / "staged" / "client-1024.key").read_bytes()

    waiting = inputs_for(desired, None, promote=False)
    assert any(isinstance(s, Promote) for s in waiting.change.steps)
    assert execute(waiting).kind == "pending"  # no login yet: nothing moves
    assert (alice / "staged" / "client-1024.crt").read_bytes() == staged_crt

    promoted = execute(replace(inputs_for(desired, None, promote=False), promote=True))
    assert (promoted.kind, promoted.went_live) == ("promoted", True)
    assert (alice / "client-1024.crt").read_bytes() == staged_crt
    assert (alice / "client-1024.key").read_bytes() == staged_key
    assert not (alice / "staged").exists()
    [generation] = (alice / "archive").iterdir()
    assert (generation / "client-1024.crt").read_bytes() == first
    assert promoted.fingerprint == crypto.inspect_certificate(staged_crt).fingerprint_sha256
