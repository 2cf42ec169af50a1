"""What can be wrong with an account's files, in the words the plan shows: the key pair,
the derived files of the live pair, and modes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov.crypto import CsrFacts, subject_values
from bfprov.desired.models import Output
from bfprov.layout import CNF_NAME, DIR_MODE, MODES, STAGED
from bfprov.observed.facts import P12Facts, PemFacts
from bfprov.plan.renewal import expiry_problems

if TYPE_CHECKING:
    from datetime import datetime

    from bfprov.desired.models import Account
    from bfprov.observed.account import ObservedAccount, Pair
    from bfprov.observed.files import FileState

_SUBJECT_LABELS = {
    "country": "C",
    "state": "ST",
    "locality": "L",
    "organization": "O",
    "organizational_unit": "OU",
    "common_name": "CN",
    "email_address": "emailAddress",
}


def pair_problems(pair: Pair, account: Account, now: datetime, where: str) -> list[str]:
    """Why this complete pair cannot serve as the account's certificate (empty: it can)."""
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
    problems.extend(expiry_problems(cf, account, now, where))
    return problems


def _problem(state: FileState | None, fallback: str) -> str:
    if state is not None and state.problem:
        return state.problem
    return fallback


def _subject_diff(have: tuple[tuple[str, str], ...], want: tuple[tuple[str, str], ...]) -> str:
    h, w = dict(have), dict(want)
    parts = []
    for key in sorted(set(h) | set(w)):
        if h.get(key) != w.get(key):
            label = _SUBJECT_LABELS.get(key, key)
            parts.append(f"{label} {h.get(key, '(none)')!r} -> {w.get(key, '(none)')!r}")
    return "subject differs: " + ", ".join(parts)


def derived_reasons(
    account: Account, obs: ObservedAccount, expected_cnf: str | None
) -> tuple[list[str], list[Output]]:
    """What is wrong with the derived files of a sound live pair, and which to rewrite."""
    live = obs.live
    assert live.key_facts is not None and live.crt_facts is not None and live.stem is not None
    fingerprint, spki = live.crt_facts.fingerprint_sha256, live.key_facts.spki_sha256
    reasons: list[str] = []
    rewrite: list[Output] = []
    for output in (Output.PEM, Output.P12, Output.CSR, Output.CNF):
        if output not in account.outputs:
            continue
        name = CNF_NAME if output is Output.CNF else f"{live.stem}.{output.value}"
        state = obs.derived.get(output.value)
        facts = state.facts if state is not None else None
        why = None
        if state is None:
            why = f"{name} is missing"
        elif state.problem:
            why = state.problem
        elif output is Output.PEM:
            if not isinstance(facts, PemFacts) or (facts.fingerprint_sha256, facts.spki_sha256) != (
                fingerprint,
                spki,
            ):
                why = f"{name} does not hold the live certificate and key"
        elif output is Output.P12:
            if not isinstance(facts, P12Facts):
                why = f"{name} was not written by bfprov or changed since"
            elif facts.fingerprint_sha256 != fingerprint:
                why = f"{name} does not hold the live certificate"
            elif facts.profile != account.p12.profile:
                why = (
                    f"{name} uses the {facts.profile} profile, "
                    f"the profile asks for {account.p12.profile}"
                )
        elif output is Output.CSR:
            if not isinstance(facts, CsrFacts) or facts.spki_sha256 != spki:
                why = f"{name} is not a request for the live key"
            elif not facts.signature_valid:
                why = f"{name} has a signature that does not verify (damaged or tampered)"
            elif tuple(sorted(facts.subject)) != tuple(sorted(live.crt_facts.subject)):
                why = f"{name} subject differs from the live certificate"
        elif output is Output.CNF and state.sha256 != expected_cnf:
            why = f"{name} differs from the rendered template"
        if why:
            reasons.append(why)
            rewrite.append(output)
    return reasons, rewrite


def mode_fixes(obs: ObservedAccount) -> tuple[list[str], list[tuple[str, int]]]:
    """Modes more open than the layout allows: the reasons, and (path, mode) to set."""
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
