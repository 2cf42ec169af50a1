"""What can be wrong with an account's files, in the words the plan shows: the key pair,
the derived files of the live pair, and modes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.crypto import CsrFacts, subject_values
from bfprov.desired.models import Output
from bfprov.layout import CNF_NAME, DIR_MODE, MODES, STAGED
from bfprov.observed.facts import P12Facts, PemFacts
from bfprov.plan.renewal import expiry_problems

if TYPE_CHECKING:
    from collections.abc import Callable
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


@dataclass(frozen=True)
class _Live:
    """What a derived file of the live pair is checked against."""

    account: Account
    fingerprint: str
    spki: str
    subject: tuple[tuple[str, str], ...]
    expected_cnf: str | None


def _pem_problem(name: str, state: FileState, live: _Live) -> str | None:
    facts = state.facts
    if not isinstance(facts, PemFacts) or (facts.fingerprint_sha256, facts.spki_sha256) != (
        live.fingerprint,
        live.spki,
    ):
        return f"{name} does not hold the live certificate and key"
    return None


def _p12_problem(name: str, state: FileState, live: _Live) -> str | None:
    facts = state.facts
    if not isinstance(facts, P12Facts):
        return f"{name} was not written by bfprov or changed since"
    if facts.fingerprint_sha256 != live.fingerprint:
        return f"{name} does not hold the live certificate"
    if facts.profile != live.account.p12.profile:
        return (
            f"{name} uses the {facts.profile} profile, "
            f"the profile asks for {live.account.p12.profile}"
        )
    return None


def _csr_problem(name: str, state: FileState, live: _Live) -> str | None:
    facts = state.facts
    if not isinstance(facts, CsrFacts) or facts.spki_sha256 != live.spki:
        return f"{name} is not a request for the live key"
    if not facts.signature_valid:
        return f"{name} has a signature that does not verify (damaged or tampered)"
    if tuple(sorted(facts.subject)) != live.subject:
        return f"{name} subject differs from the live certificate"
    return None


def _cnf_problem(name: str, state: FileState, live: _Live) -> str | None:
    if state.sha256 != live.expected_cnf:
        return f"{name} differs from the rendered template"
    return None


# Each derived output, in the order the plan names them, and what can be wrong with it
# once it exists and reads cleanly.
_DERIVED_PROBLEMS: dict[Output, Callable[[str, FileState, _Live], str | None]] = {
    Output.PEM: _pem_problem,
    Output.P12: _p12_problem,
    Output.CSR: _csr_problem,
    Output.CNF: _cnf_problem,
}


def derived_reasons(
    account: Account, obs: ObservedAccount, expected_cnf: str | None
) -> tuple[list[str], list[Output]]:
    """What is wrong with the derived files of a sound live pair, and which to rewrite."""
    pair = obs.live
    assert pair.key_facts is not None and pair.crt_facts is not None and pair.stem is not None
    live = _Live(
        account=account,
        fingerprint=pair.crt_facts.fingerprint_sha256,
        spki=pair.key_facts.spki_sha256,
        subject=tuple(sorted(pair.crt_facts.subject)),
        expected_cnf=expected_cnf,
    )
    reasons: list[str] = []
    rewrite: list[Output] = []
    for output, problem in _DERIVED_PROBLEMS.items():
        if output not in account.outputs:
            continue
        name = CNF_NAME if output is Output.CNF else f"{pair.stem}.{output.value}"
        state = obs.derived.get(output.value)
        if state is None:
            why: str | None = f"{name} is missing"
        else:
            why = state.problem or problem(name, state, live)
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
