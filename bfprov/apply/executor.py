"""Carries out one account's change, step by step, through the store.

Computation (keys, certificates, PKCS#12) comes from `crypto`, bytes on disk from
`observe`, every write goes through `store.AccountWriter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bfprov import crypto
from bfprov.apply.store import AccountWriter
from bfprov.desired.models import Output
from bfprov.layout import CNF_NAME, MODES, STAGED
from bfprov.observed.facts import P12Facts, PemFacts
from bfprov.observed.files import read_bytes
from bfprov.plan.model import (
    ArchiveFiles,
    Change,
    FixModes,
    NewPair,
    Promote,
    RemoveLeftovers,
    Restore,
    WriteDerived,
)

if TYPE_CHECKING:
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric import rsa
    from pydantic import SecretStr

    from bfprov.desired.models import Account, Target
    from bfprov.observed.account import ObservedAccount
    from bfprov.publish.deliver import Delivered


@dataclass
class Outcome:
    """What happened to one account."""

    account: str
    created: bool = False
    staged: str | None = None  # path of the staged .crt to upload
    promoted: bool = False
    restored: str | None = None  # the live .crt brought back from the archive
    promotion_pending: bool = False
    written: list[str] = field(default_factory=list)
    fingerprint: str | None = None  # of the certificate concerned (new, staged or live)
    delivered: Delivered | None = None  # deliveries to publishing targets, and hooks

    @property
    def kind(self) -> str:
        """What happened to the account's pair, in one word: `created`, `staged`,
        `promoted`, `rolled_back`, `pending` (a staged pair waits for its upload) or
        `updated` (the live pair stays; its files or targets may have changed)."""
        if self.created:
            return "created"
        if self.staged:
            return "staged"
        if self.promoted:
            return "promoted"
        if self.restored:
            return "rolled_back"
        return "pending" if self.promotion_pending else "updated"

    @property
    def went_live(self) -> bool:
        """A new live pair: created, promoted or rolled back."""
        return self.kind in LIVE_KINDS


# The kinds of outcome that leave a new live pair.
LIVE_KINDS = frozenset({"created", "promoted", "rolled_back"})


@dataclass(frozen=True)
class Inputs:
    """What executing a change needs besides the disk."""

    target: Target
    observed: ObservedAccount
    change: Change
    now: datetime
    cnf_text: str | None
    p12_password: SecretStr | None
    promote: bool  # the staged pair's login succeeded (or the operator vouches)
    key: rsa.RSAPrivateKey | None = None  # the new key, when the change makes one


def execute(inputs: Inputs) -> Outcome:
    """Execute every step of the change, in order; save the record at the end."""
    target, obs, change = inputs.target, inputs.observed, inputs.change
    live = obs.live.crt_facts
    outcome = Outcome(account=target.name, fingerprint=live.fingerprint_sha256 if live else None)
    with AccountWriter(target.output_dir, target.name, obs.record) as w:
        for step in change.steps:
            carry_out = _STEPS.get(type(step))
            if carry_out is not None:  # the others (orphans, publishing) are apply.run's
                carry_out(w, inputs, step, outcome)
        w.prune_archive(target.archive_keep)
        w.refresh(obs.stale)
        w.save_record()
    return outcome


def _remove_leftovers(
    w: AccountWriter, inputs: Inputs, step: RemoveLeftovers, outcome: Outcome
) -> None:
    for path in step.paths:
        w.remove(path)


def _archive_files(w: AccountWriter, inputs: Inputs, step: ArchiveFiles, outcome: Outcome) -> None:
    w.archive(step.paths)
    if any(path.startswith(f"{STAGED}/") for path in step.paths):
        w.remove_empty_dir(STAGED)


def _fix_modes(w: AccountWriter, inputs: Inputs, step: FixModes, outcome: Outcome) -> None:
    for path, mode in step.modes:
        w.chmod(path, mode)


def _write_derived_step(
    w: AccountWriter, inputs: Inputs, step: WriteDerived, outcome: Outcome
) -> None:
    stem = inputs.observed.live.stem
    assert stem is not None
    _rewrite_derived(w, inputs, stem, step.outputs, outcome)


def _promote_step(w: AccountWriter, inputs: Inputs, step: Promote, outcome: Outcome) -> None:
    if step.resume or inputs.promote:
        _promote(w, inputs, outcome)
    else:
        outcome.promotion_pending = True


def _restore_step(w: AccountWriter, inputs: Inputs, step: Restore, outcome: Outcome) -> None:
    _restore(w, inputs, step.generation, outcome)


def _new_pair(w: AccountWriter, inputs: Inputs, step: NewPair, outcome: Outcome) -> None:
    account = inputs.target.account
    stem = account.stem
    if step.reuse_key:
        key_pem = read_bytes(inputs.target.directory / f"{stem}.key")
        key = crypto.load_private_key(key_pem)
    else:
        assert inputs.key is not None, "the change makes a new key: apply.run made it"
        key = inputs.key
        key_pem = crypto.private_key_pem(key)
    crt_pem, cert = crypto.issue_certificate(
        key, account.subject, account.validity.days, inputs.now
    )
    prefix = f"{STAGED}/" if step.staged else ""
    if not step.reuse_key:
        w.write(f"{prefix}{stem}.key", key_pem, MODES["key"], crypto.key_facts_of(key))
    # The key goes first: until the certificate lands there is a key without a
    # certificate, never a certificate that does not match its key.
    w.write(f"{prefix}{stem}.crt", crt_pem, MODES["crt"], cert)
    outcome.written += [f"{prefix}{stem}.key", f"{prefix}{stem}.crt"]
    outcome.fingerprint = cert.fingerprint_sha256
    if step.staged:
        outcome.staged = str(inputs.target.directory / STAGED / f"{stem}.crt")
        return
    outcome.created = True
    _write_derived(w, inputs, stem, key, key_pem, crt_pem, _wanted(account), outcome, cert)


def _wanted(account: Account) -> tuple[Output, ...]:
    return tuple(o for o in account.outputs if o not in (Output.KEY, Output.CRT))


def _rewrite_derived(
    w: AccountWriter, inputs: Inputs, stem: str, outputs: tuple[Output, ...], outcome: Outcome
) -> None:
    directory = inputs.target.directory
    key_pem = read_bytes(directory / f"{stem}.key")
    crt_pem = read_bytes(directory / f"{stem}.crt")
    key = (
        crypto.load_private_key(key_pem) if Output.P12 in outputs or Output.CSR in outputs else None
    )
    _write_derived(w, inputs, stem, key, key_pem, crt_pem, outputs, outcome)


def _write_derived(
    w: AccountWriter,
    inputs: Inputs,
    stem: str,
    key: rsa.RSAPrivateKey | None,
    key_pem: bytes,
    crt_pem: bytes,
    outputs: tuple[Output, ...],
    outcome: Outcome,
    cert: crypto.CertFacts | None = None,
) -> None:
    account = inputs.target.account
    cert = cert or crypto.inspect_certificate(crt_pem)
    outcome.fingerprint = cert.fingerprint_sha256
    for output in outputs:
        if output is Output.PEM:
            data = crypto.combined_pem(crt_pem, key_pem)
            facts = PemFacts(cert.fingerprint_sha256, cert.spki_sha256)
            w.write(f"{stem}.pem", data, MODES["pem"], facts)
            outcome.written.append(f"{stem}.pem")
        elif output is Output.P12:
            assert key is not None and inputs.p12_password is not None
            password = inputs.p12_password.get_secret_value().encode()
            data = crypto.pkcs12(key, crt_pem, password, account.p12.profile, account.name.encode())
            p12 = P12Facts(cert.fingerprint_sha256, account.p12.profile)
            w.write(f"{stem}.p12", data, MODES["p12"], p12)
            outcome.written.append(f"{stem}.p12")
        elif output is Output.CSR:
            assert key is not None
            data = crypto.csr_for_certificate(key, crt_pem)
            w.write(f"{stem}.csr", data, MODES["csr"], crypto.inspect_csr(data))
            outcome.written.append(f"{stem}.csr")
        elif output is Output.CNF:
            assert inputs.cnf_text is not None
            data = inputs.cnf_text.encode()
            w.write(CNF_NAME, data, MODES["cnf"])
            outcome.written.append(CNF_NAME)


def _retire_live(w: AccountWriter, obs: ObservedAccount, keep_key: bool = False) -> None:
    """Move the live generation into this run's archive: certificate first, then key."""
    live = obs.live
    if live.crt is not None:
        w.archive([live.crt.path])
    if live.key is not None and not keep_key:
        w.archive([live.key.path])
    if live.stem is not None:
        w.archive([f"{live.stem}.{ext}" for ext in ("pem", "p12", "csr")])


def _restore(w: AccountWriter, inputs: Inputs, generation: str, outcome: Outcome) -> None:
    """Bring an archived generation back: the current live one takes its place there."""
    from bfprov.layout import ARCHIVE
    from bfprov.observed.observe import Generation, archived_generations

    found: Generation | None = next(
        (g for g in archived_generations(inputs.target) if g.name == generation), None
    )
    assert found is not None and found.pair.key and found.pair.crt and found.pair.stem
    _retire_live(w, inputs.observed)
    stem = found.pair.stem
    w.move(found.pair.key.path, f"{stem}.key")
    w.move(found.pair.crt.path, f"{stem}.crt")
    # The generation's own derived files are rewritten below from the restored pair.
    for ext in ("pem", "p12", "csr"):
        w.remove(f"{ARCHIVE}/{generation}/{stem}.{ext}")
    w.remove_empty_dir(f"{ARCHIVE}/{generation}")
    outcome.restored = str(inputs.target.directory / f"{stem}.crt")
    outcome.written += [f"{stem}.key", f"{stem}.crt"]
    _rewrite_derived(w, inputs, stem, _wanted(inputs.target.account), outcome)


def _promote(w: AccountWriter, inputs: Inputs, outcome: Outcome) -> None:
    """Make the staged pair live; the old generation goes to the archive.

    Order matters for crash consistency: the live certificate leaves first, then the
    live key; the staged key comes in, then the staged certificate. At every instant a
    live certificate, if there is one, matches the live key.
    """
    obs = inputs.observed
    staged = obs.staged
    _retire_live(w, obs, keep_key=_same_key(obs))
    stem = staged.stem or inputs.target.account.stem
    if staged.key is not None:
        w.move(staged.key.path, f"{stem}.key")
    if staged.crt is not None:
        w.move(staged.crt.path, f"{stem}.crt")
    w.remove_empty_dir(STAGED)
    outcome.promoted = True
    outcome.written += [f"{stem}.key", f"{stem}.crt"]
    _rewrite_derived(w, inputs, stem, _wanted(inputs.target.account), outcome)


def _same_key(obs: ObservedAccount) -> bool:
    """An interrupted promotion already moved the staged key into place."""
    return (
        obs.staged.key is None
        and obs.live.key_facts is not None
        and obs.staged.crt_facts is not None
        and obs.live.key_facts.spki_sha256 == obs.staged.crt_facts.spki_sha256
    )


# The executor's steps, by kind: how each is carried out through the account's writer.
_STEPS: dict[type, Callable[[AccountWriter, Inputs, Any, Outcome], None]] = {
    RemoveLeftovers: _remove_leftovers,
    ArchiveFiles: _archive_files,
    FixModes: _fix_modes,
    WriteDerived: _write_derived_step,
    NewPair: _new_pair,
    Promote: _promote_step,
    Restore: _restore_step,
}
