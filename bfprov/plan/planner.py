"""Pure planning: (desired, observed, now) -> Plan. Every change carries all its reasons.

The plan is data. `plan` prints it; `apply` executes the very same value, step by step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bfprov.desired.models import Output
from bfprov.layout import CNF_NAME, DIR_MODE, MODES, STAGED
from bfprov.observed.observe import csr_facts

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bfprov.crypto import CertFacts
    from bfprov.desired.models import Account, Desired, Target
    from bfprov.observed.observe import FileState, Observed, ObservedAccount, Pair

FORMAT_VERSION = 1


class Action(StrEnum):
    CREATE = "create"
    ROTATE = "rotate"
    UPDATE = "update"
    PROMOTE = "promote"
    ORPHAN = "orphan"
    NOOP = "noop"


# Steps: what apply does for a change, in order. Paths are relative to the account dir.
@dataclass(frozen=True)
class ArchiveFiles:
    """Move files out of the way into the archive (never deleted outright)."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class RemoveLeftovers:
    paths: tuple[str, ...]


@dataclass(frozen=True)
class NewPair:
    """Generate a key (or reuse the live one) and a certificate, live or staged."""

    staged: bool
    reuse_key: bool = False


@dataclass(frozen=True)
class WriteDerived:
    """(Re)write derived files of the live pair: pem, p12, csr, cnf."""

    outputs: tuple[Output, ...]


@dataclass(frozen=True)
class FixModes:
    modes: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Promote:
    """Make the staged pair live; `resume` finishes an interrupted promotion."""

    resume: bool = False


@dataclass(frozen=True)
class ArchiveOrphan:
    pass


@dataclass(frozen=True)
class Restore:
    """Bring an archived generation back as the live pair (`bfprov rollback`)."""

    generation: str


Step = (
    ArchiveFiles
    | RemoveLeftovers
    | NewPair
    | WriteDerived
    | FixModes
    | Promote
    | ArchiveOrphan
    | Restore
)


@dataclass(frozen=True)
class Change:
    account: str
    action: Action
    reasons: tuple[str, ...]
    requires_upload: bool
    steps: tuple[Step, ...] = ()
    needs_login: bool = False  # a promotion waits for a successful login with the staged pair

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "action": self.action.value,
            "reasons": list(self.reasons),
            "requires_upload": self.requires_upload,
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    noop: tuple[str, ...]
    digests: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action if a is not Action.NOOP}
        for c in self.changes:
            counts[c.action.value] += 1
        counts["noop"] = len(self.noop)
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "changes": [c.to_json() for c in self.changes],
            "summary": self.summary(),
        }


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if abs(days) >= 1:
        n = int(days)
        return f"{n} day{'s' if n != 1 else ''}"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


_SUBJECT_LABELS = {
    "country": "C",
    "state": "ST",
    "locality": "L",
    "organization": "O",
    "organizational_unit": "OU",
    "common_name": "CN",
    "email_address": "emailAddress",
}


def _subject_diff(have: tuple[tuple[str, str], ...], want: tuple[tuple[str, str], ...]) -> str:
    h, w = dict(have), dict(want)
    parts = []
    for key in sorted(set(h) | set(w)):
        if h.get(key) != w.get(key):
            label = _SUBJECT_LABELS.get(key, key)
            parts.append(f"{label} {h.get(key, '(none)')!r} -> {w.get(key, '(none)')!r}")
    return "subject differs: " + ", ".join(parts)


def pair_problems(pair: Pair, account: Account, now: datetime, where: str) -> list[str]:
    """Why this complete pair cannot serve as the account's certificate (empty: it can)."""
    from bfprov.crypto import subject_values

    problems: list[str] = []
    kf, cf = pair.key_facts, pair.crt_facts
    key_path = pair.key.path if pair.key else f"{where} key"
    if kf is None:
        problems.append(_problem(pair.key, f"{key_path} is unreadable"))
    elif kf.algorithm != "rsa":
        problems.append(f"{key_path} is {kf.algorithm.upper()}, Betfair needs RSA")
    elif kf.bits != account.key.size:
        problems.append(f"{key_path} is {kf.bits}-bit, the profile asks for {account.key.size}")
    if cf is None:
        problems.append(_problem(pair.crt, f"{where} certificate is unreadable"))
        return problems
    if kf is not None and kf.spki_sha256 != cf.spki_sha256:
        problems.append(f"{where} certificate does not match the key")
    want = subject_values(account.subject)
    if tuple(sorted(cf.subject)) != tuple(sorted(want)):
        problems.append(_subject_diff(cf.subject, want))
    if not cf.issuer_is_subject:
        problems.append(f"{where} certificate is not self-signed (its issuer is not its subject)")
    elif not cf.self_signature_valid:
        problems.append(f"{where} certificate's signature does not verify (damaged or tampered)")
    problems.extend(f"{where} certificate: {p}" for p in cf.extension_problems)
    if cf.signature_hash != "sha256":
        problems.append(f"{where} certificate is signed with {cf.signature_hash}, not SHA-256")
    problems.extend(_expiry(cf, account, now, where))
    return problems


def _problem(state: FileState | None, fallback: str) -> str:
    if state is not None and state.problem:
        return state.problem
    return fallback


def jitter_offset(account: Account) -> timedelta:
    """How much earlier than renew_before this account renews: fixed per account name."""
    jitter = account.validity.renew_jitter
    if jitter is None or jitter.duration is None:
        return timedelta(0)
    seconds = int(jitter.duration.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(account.name.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def renewal_window(account: Account, lifetime: timedelta) -> timedelta:
    """How long before expiry the account's certificate is due for renewal."""
    return account.validity.renew_before.before_expiry(lifetime) + jitter_offset(account)


def _expiry(cf: CertFacts, account: Account, now: datetime, where: str) -> list[str]:
    left = cf.not_after - now
    if left <= timedelta(0):
        return [f"{where} certificate expired on {cf.not_after:%Y-%m-%d}"]
    if cf.not_before > now:
        return [f"{where} certificate is not valid before {cf.not_before:%Y-%m-%d %H:%M} UTC"]
    window = renewal_window(account, cf.not_after - cf.not_before)
    if left <= window:
        rule = f"renew_before {account.validity.renew_before}"
        if account.validity.renew_jitter is not None:
            rule += f" + {_days(jitter_offset(account))} of renew_jitter"
        return [f"{where} certificate expires in {_days(left)} on {cf.not_after:%Y-%m-%d} ({rule})"]
    return []


def _derived_reasons(
    target: Target, obs: ObservedAccount, expected_cnf: str | None
) -> tuple[list[str], list[Output]]:
    """What is wrong with the derived files of a sound live pair."""
    account = target.account
    live = obs.live
    assert live.key_facts is not None and live.crt_facts is not None and live.stem is not None
    reasons: list[str] = []
    rewrite: list[Output] = []
    for output in (Output.PEM, Output.P12, Output.CSR, Output.CNF):
        if output not in account.outputs:
            continue
        name = CNF_NAME if output is Output.CNF else f"{live.stem}.{output.value}"
        state = obs.derived.get(output.value)
        why = None
        if state is None:
            why = f"{name} is missing"
        elif not state.regular or (state.facts and "problem" in state.facts):
            why = state.problem
        elif output is Output.PEM:
            assert state.facts is not None
            if (state.facts.get("cert"), state.facts.get("spki")) != (
                live.crt_facts.fingerprint_sha256,
                live.key_facts.spki_sha256,
            ):
                why = f"{name} does not hold the live certificate and key"
        elif output is Output.P12:
            facts = state.facts or {}
            if "cert" not in facts:
                why = f"{name} was not written by bfprov or changed since"
            elif facts["cert"] != live.crt_facts.fingerprint_sha256:
                why = f"{name} does not hold the live certificate"
            elif facts.get("profile") != account.p12.profile:
                why = (
                    f"{name} uses the {facts.get('profile')} profile, "
                    f"the profile asks for {account.p12.profile}"
                )
        elif output is Output.CSR:
            csr = csr_facts(state.facts)
            if csr is None or csr.spki_sha256 != live.key_facts.spki_sha256:
                why = f"{name} is not a request for the live key"
            elif not csr.signature_valid:
                why = f"{name} has a signature that does not verify (damaged or tampered)"
            elif tuple(sorted(csr.subject)) != tuple(sorted(live.crt_facts.subject)):
                why = f"{name} subject differs from the live certificate"
        elif output is Output.CNF and state.sha256 != expected_cnf:
            why = f"{name} differs from the rendered template"
        if why:
            reasons.append(why)
            rewrite.append(output)
    return reasons, rewrite


def _mode_fixes(obs: ObservedAccount) -> tuple[list[str], list[tuple[str, int]]]:
    reasons: list[str] = []
    fixes: list[tuple[str, int]] = []

    def check(path: str, mode: int | None, want: int, what: str) -> None:
        if mode is not None and mode & ~want:
            reasons.append(f"{what} mode {mode:04o} is too open (want {want:04o})")
            fixes.append((path, want))

    check(".", obs.dir_mode, DIR_MODE, "account directory")
    check(STAGED, obs.staged_dir_mode, DIR_MODE, "staged directory")
    for name, mode in sorted(obs.other_modes.items()):
        check(name, mode, DIR_MODE, f"{name} directory")
    files = [p for p in (obs.live.key, obs.live.crt, obs.staged.key, obs.staged.crt) if p]
    files += [obs.derived[k] for k in sorted(obs.derived)]
    for f in files:
        if f.regular:
            kind = "cnf" if f.path == CNF_NAME else f.path.rsplit(".", 1)[-1]
            check(f.path, f.mode, MODES[kind], f.path)
    return reasons, fixes


def plan_account(
    target: Target, obs: ObservedAccount, now: datetime, expected_cnf: str | None
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
    mode_reasons, fixes = _mode_fixes(obs)
    if fixes:
        reasons.extend(mode_reasons)
        steps.append(FixModes(tuple(fixes)))
    if live.matched:
        derived_reasons, rewrite = _derived_reasons(target, obs, expected_cnf)
        if rewrite:
            reasons.extend(derived_reasons)
            steps.append(WriteDerived(tuple(rewrite)))
    housekeeping = Action.UPDATE if steps else Action.NOOP

    action, pair_reasons, pair_steps = _pair_decision(account, obs, now)
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
        if not obs.exists:
            reasons.append("no account directory yet")
        if live.key is None:
            reasons.append("no key on disk")
        if live.crt is None:
            reasons.append("no certificate on disk")
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


def _paths(pair: Pair) -> tuple[str, ...]:
    return tuple(f.path for f in (pair.crt, pair.key) if f is not None)


def plan(
    desired: Desired,
    observed: Observed,
    now: datetime,
    expected_cnf: Mapping[str, str | None],
) -> Plan:
    """The whole plan: one change per account that needs one, plus the orphans."""
    changes: list[Change] = []
    noop: list[str] = []
    for target in desired.targets:
        change = plan_account(
            target, observed.accounts[target.name], now, expected_cnf.get(target.name)
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
