"""The planner, by tables: (desired, observed) -> action, upload, reasons, steps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bfprov.crypto import CertFacts, CsrFacts, KeyFacts
from bfprov.desired.models import Account, Desired, Output, Target
from bfprov.observed.account import ObservedAccount, Pair
from bfprov.observed.facts import FileFacts, P12Facts, PemFacts, Unreadable
from bfprov.observed.files import FileState
from bfprov.observed.observe import Observed
from bfprov.plan.model import (
    Action,
    ArchiveFiles,
    FixModes,
    NewPair,
    Promote,
    RemoveLeftovers,
    WriteDerived,
)
from bfprov.plan.planner import plan, plan_account

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CNF_SHA = "c" * 64
SUBJECT = (("common_name", "alice bot"), ("country", "GB"))


def account(**fields: Any) -> Account:
    data: dict[str, Any] = {
        "name": "alice",
        "username": "alice@example.com",
        "password": {"env": "P"},
        "app_key": {"env": "A"},
        "subject": {"common_name": "alice bot", "country": "GB"},
        "outputs": ["key", "crt", "pem", "p12", "csr", "cnf"],
        "p12": {"profile": "modern", "password": {"env": "X"}},
    }
    data.update(fields)
    return Account.model_validate(data)


def target(acc: Account | None = None) -> Target:
    return Target(acc or account(), Path("/out"), None, Path("/p/fleet.yaml"))


def key_facts(spki: str = "K1", bits: int = 2048, algorithm: str = "rsa") -> KeyFacts:
    return KeyFacts(algorithm=algorithm, bits=bits, spki_sha256=spki, encoding="pkcs8")


def cert_facts(
    spki: str = "K1",
    *,
    fp: str = "F1",
    subject: tuple[tuple[str, str], ...] = SUBJECT,
    days_left: float = 200,
    lifetime: int = 365,
    problems: tuple[str, ...] = (),
    sig: str | None = "sha256",
) -> CertFacts:
    not_after = NOW + timedelta(days=days_left)
    return CertFacts(
        fingerprint_sha256=fp,
        spki_sha256=spki,
        key_algorithm="rsa",
        key_bits=2048,
        subject=subject,
        issuer_is_subject=True,
        not_before=not_after - timedelta(days=lifetime),
        not_after=not_after,
        signature_hash=sig,
        extension_problems=problems,
    )


def fs(path: str, mode: int = 0o600, facts: FileFacts | None = None, sha: str = "s") -> FileState:
    return FileState(path, True, mode, 1, 1, 1, 1, sha, facts)


def pair(
    prefix: str = "",
    kf: KeyFacts | None = None,
    cf: CertFacts | None = None,
    stem: str = "client-2048",
    key: bool = True,
    crt: bool = True,
) -> Pair:
    return Pair(
        stem=stem,
        key=fs(f"{prefix}{stem}.key") if key else None,
        crt=fs(f"{prefix}{stem}.crt", 0o644) if crt else None,
        key_facts=kf if key else None,
        crt_facts=cf if crt else None,
    )


EMPTY = Pair(None, None, None)


def good_derived(cf: CertFacts | None = None, spki: str = "K1") -> dict[str, FileState]:
    cf = cf or cert_facts(spki)
    return {
        "pem": fs("client-2048.pem", facts=PemFacts(cf.fingerprint_sha256, spki)),
        "p12": fs("client-2048.p12", facts=P12Facts(cf.fingerprint_sha256, "modern")),
        "csr": fs("client-2048.csr", 0o644, facts=CsrFacts(spki, cf.subject, True)),
        "cnf": fs("openssl.cnf", 0o644, sha=CNF_SHA),
    }


def healthy(**overrides: Any) -> ObservedAccount:
    cf = cert_facts()
    base = ObservedAccount(
        name="alice",
        directory=Path("/out/alice"),
        exists=True,
        dir_mode=0o700,
        live=pair(kf=key_facts(), cf=cf),
        staged=EMPTY,
        staged_dir_mode=None,
        derived=good_derived(cf),
        strays=(),
        leftovers=(),
    )
    return replace(base, **overrides)


def without(name: str) -> dict[str, FileState]:
    d = good_derived()
    del d[name]
    return d


def run(obs: ObservedAccount, acc: Account | None = None):  # type: ignore[no-untyped-def]
    return plan_account(target(acc), obs, NOW, CNF_SHA)


CASES: list[tuple[str, ObservedAccount, Account | None, Action, bool, str]] = [
    (
        "nothing on disk",
        replace(healthy(), exists=False, dir_mode=None, live=EMPTY, derived={}),
        None,
        Action.CREATE,
        True,
        "new account: nothing on disk yet",
    ),
    (
        "empty account directory",
        replace(healthy(), live=EMPTY, derived={}),
        None,
        Action.CREATE,
        True,
        "no key or certificate on disk",
    ),
    ("all in order", healthy(), None, Action.NOOP, False, ""),
    (
        "p12 missing",
        healthy(derived=without("p12")),
        None,
        Action.UPDATE,
        False,
        "client-2048.p12 is missing",
    ),
    ("pem missing", healthy(derived=without("pem")), None, Action.UPDATE, False, "pem is missing"),
    ("csr missing", healthy(derived=without("csr")), None, Action.UPDATE, False, "csr is missing"),
    (
        "cnf missing",
        healthy(derived=without("cnf")),
        None,
        Action.UPDATE,
        False,
        "openssl.cnf is missing",
    ),
    (
        "cnf differs",
        healthy(derived={**good_derived(), "cnf": fs("openssl.cnf", 0o644, sha="x")}),
        None,
        Action.UPDATE,
        False,
        "differs from the rendered template",
    ),
    (
        "pem of another pair",
        healthy(
            derived={
                **good_derived(),
                "pem": fs("client-2048.pem", facts=PemFacts("F0", "K0")),
            }
        ),
        None,
        Action.UPDATE,
        False,
        "does not hold the live certificate and key",
    ),
    (
        "p12 not known to bfprov",
        healthy(derived={**good_derived(), "p12": fs("client-2048.p12")}),
        None,
        Action.UPDATE,
        False,
        "was not written by bfprov",
    ),
    (
        "p12 of the other profile",
        healthy(
            derived={
                **good_derived(),
                "p12": fs("client-2048.p12", facts=P12Facts("F1", "legacy")),
            }
        ),
        None,
        Action.UPDATE,
        False,
        "uses the legacy profile, the profile asks for modern",
    ),
    (
        "csr for another key",
        healthy(
            derived={
                **good_derived(),
                "csr": fs("client-2048.csr", 0o644, facts=CsrFacts("K9", SUBJECT, True)),
            }
        ),
        None,
        Action.UPDATE,
        False,
        "not a request for the live key",
    ),
    (
        "key mode 0644",
        healthy(
            live=replace(pair(kf=key_facts(), cf=cert_facts()), key=fs("client-2048.key", 0o644))
        ),
        None,
        Action.UPDATE,
        False,
        "client-2048.key mode 0644 is too open (want 0600)",
    ),
    (
        "account directory 0755",
        healthy(dir_mode=0o755),
        None,
        Action.UPDATE,
        False,
        "account directory mode 0755 is too open",
    ),
    (
        "crt 0600 is not too open",
        healthy(
            live=replace(pair(kf=key_facts(), cf=cert_facts()), crt=fs("client-2048.crt", 0o600))
        ),
        None,
        Action.NOOP,
        False,
        "",
    ),
    (
        "subject differs",
        healthy(),
        account(subject={"common_name": "alice 2", "country": "GB"}),
        Action.ROTATE,
        True,
        "subject differs: CN 'alice bot' -> 'alice 2'",
    ),
    (
        "subject attribute added",
        healthy(),
        account(subject={"common_name": "alice bot", "country": "GB", "organization": "Ex"}),
        Action.ROTATE,
        True,
        "O '(none)' -> 'Ex'",
    ),
    (
        "certificate not matching key",
        healthy(live=pair(kf=key_facts("K2"), cf=cert_facts("K1"))),
        None,
        Action.ROTATE,
        True,
        "live certificate does not match the key",
    ),
    (
        "expired",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=-1))),
        None,
        Action.ROTATE,
        True,
        "live certificate expired on",
    ),
    (
        "inside renew_before 30d",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=10.5))),
        None,
        Action.ROTATE,
        True,
        "expires in 10 days",
    ),
    (
        "outside renew_before 30d",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=31))),
        None,
        Action.NOOP,
        False,
        "",
    ),
    (
        "inside renew_before 25%",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=90))),
        account(validity={"days": 365, "renew_before": "25%"}),
        Action.ROTATE,
        True,
        "(renew_before 25%)",
    ),
    (
        "outside renew_before 25%",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=95))),
        account(validity={"days": 365, "renew_before": "25%"}),
        Action.NOOP,
        False,
        "",
    ),
    (
        "inside renew_before 36h",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=0.5))),
        account(validity={"days": 365, "renew_before": "36h"}),
        Action.ROTATE,
        True,
        "expires in 12 hours",
    ),
    (
        "1024-bit key, profile says 2048",
        healthy(live=pair(kf=key_facts(bits=1024), cf=cert_facts())),
        None,
        Action.ROTATE,
        True,
        "is 1024-bit, the profile asks for 2048",
    ),
    (
        "EC key",
        healthy(live=pair(kf=key_facts(algorithm="ec", bits=256), cf=cert_facts())),
        None,
        Action.ROTATE,
        True,
        "is EC, Betfair needs RSA",
    ),
    (
        "unreadable key",
        healthy(
            live=replace(
                pair(kf=None, cf=cert_facts()),
                key=fs("client-2048.key", facts=Unreadable("not a private key")),
            )
        ),
        None,
        Action.ROTATE,
        True,
        "client-2048.key: not a private key",
    ),
    (
        "extension problem",
        healthy(
            live=pair(
                kf=key_facts(), cf=cert_facts(problems=("extendedKeyUsage lacks clientAuth",))
            )
        ),
        None,
        Action.ROTATE,
        True,
        "live certificate: extendedKeyUsage lacks clientAuth",
    ),
    (
        "sha1 signature",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(sig="sha1"))),
        None,
        Action.ROTATE,
        True,
        "signed with sha1",
    ),
    (
        "stray files",
        healthy(strays=(fs("old.crt"), fs("client-1024.key"))),
        None,
        Action.UPDATE,
        False,
        "stray files beside the live pair",
    ),
    (
        "leftover temp files",
        healthy(leftovers=(".client-2048.key.0123456789ab.tmp",)),
        None,
        Action.UPDATE,
        False,
        "interrupted write",
    ),
    (
        "staged pair ready",
        healthy(staged=pair("staged/", key_facts("K2"), cert_facts("K2", fp="F2"))),
        None,
        Action.PROMOTE,
        True,
        "upload staged/client-2048.crt at https://myaccount.betfair.com/",
    ),
    (
        "staged pair with an old subject",
        healthy(
            staged=pair(
                "staged/", key_facts("K2"), cert_facts("K2", subject=(("common_name", "old"),))
            )
        ),
        None,
        Action.UPDATE,
        False,
        "staged pair no longer fits the profile",
    ),
    (
        "staged key without certificate",
        healthy(staged=pair("staged/", key_facts("K2"), None, crt=False)),
        None,
        Action.UPDATE,
        False,
        "incomplete staged pair",
    ),
    (
        "interrupted promotion",
        healthy(
            live=pair(kf=key_facts("K2"), cf=None, crt=False),
            staged=pair("staged/", None, cert_facts("K2"), key=False),
        ),
        None,
        Action.PROMOTE,
        False,
        "a promotion was interrupted",
    ),
    (
        "key without certificate",
        healthy(live=pair(kf=key_facts(), cf=None, crt=False), derived={}),
        None,
        Action.CREATE,
        True,
        "the key on disk is kept",
    ),
    (
        "certificate without key",
        healthy(live=pair(kf=None, cf=cert_facts(), key=False), derived={}),
        None,
        Action.CREATE,
        True,
        "no key on disk",
    ),
]


@pytest.mark.parametrize(
    ("obs", "acc", "action", "upload", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_table(
    obs: ObservedAccount, acc: Account | None, action: Action, upload: bool, reason: str
) -> None:
    change = run(obs, acc)
    assert change.action is action, change.reasons
    assert change.requires_upload is upload
    if reason:
        assert any(reason in r for r in change.reasons), change.reasons
    else:
        assert change.reasons == ()
        assert change.steps == ()


def test_create_writes_a_live_pair() -> None:
    change = run(replace(healthy(), exists=False, dir_mode=None, live=EMPTY, derived={}))
    assert change.steps == (NewPair(staged=False, reuse_key=False),)
    # One reason for a new account, not one per missing thing (issue 19).
    assert change.reasons == ("new account: nothing on disk yet",)


def test_a_partly_missing_pair_keeps_its_distinct_reasons() -> None:
    no_crt = run(healthy(live=pair(kf=key_facts(), cf=None, crt=False), derived={}))
    assert no_crt.reasons[0] == "no certificate on disk"
    no_key = run(healthy(live=pair(kf=None, cf=cert_facts(), key=False), derived={}))
    assert no_key.reasons[0] == "no key on disk"


def test_rotation_is_staged_and_keeps_housekeeping() -> None:
    change = run(
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=3)), derived=without("pem"))
    )
    assert change.action is Action.ROTATE
    assert change.steps == (WriteDerived(outputs=(Output.PEM,)), NewPair(staged=True))
    assert any("pem is missing" in r for r in change.reasons)


def test_every_reason_is_listed() -> None:
    obs = healthy(
        dir_mode=0o755,
        live=pair(kf=key_facts(), cf=cert_facts(days_left=-5, sig="sha1")),
        strays=(fs("x.pem"),),
    )
    change = run(obs, account(subject={"common_name": "new"}))
    text = " | ".join(change.reasons)
    for part in ("expired", "sha1", "subject differs", "stray", "0755"):
        assert part in text
    assert change.action is Action.ROTATE
    assert isinstance(change.steps[0], ArchiveFiles)
    assert isinstance(change.steps[1], FixModes)
    assert change.steps[-1] == NewPair(staged=True)


def test_promotion_waits_for_login_but_housekeeping_does_not() -> None:
    obs = healthy(staged=pair("staged/", key_facts("K2"), cert_facts("K2")), derived=without("cnf"))
    change = run(obs)
    assert change.needs_login
    assert isinstance(change.steps[0], WriteDerived)
    assert change.steps[-1] == Promote()


def test_interrupted_promotion_needs_no_login() -> None:
    obs = healthy(
        live=pair(kf=key_facts("K2"), cf=None, crt=False),
        staged=pair("staged/", None, cert_facts("K2"), key=False),
    )
    change = run(obs)
    assert change.steps[-1] == Promote(resume=True)
    assert not change.needs_login


def test_stale_staged_pair_is_archived_and_replaced_when_live_needs_rotation() -> None:
    obs = healthy(
        live=pair(kf=key_facts(), cf=cert_facts(days_left=2)),
        staged=pair(
            "staged/", key_facts("K2"), cert_facts("K2", subject=(("common_name", "old"),))
        ),
    )
    change = run(obs)
    assert change.action is Action.ROTATE
    assert change.steps == (
        ArchiveFiles(("staged/client-2048.crt", "staged/client-2048.key")),
        NewPair(staged=True),
    )


def test_leftovers_are_removed_first() -> None:
    change = run(healthy(leftovers=(".a.0123456789ab.tmp",)))
    assert change.steps[0] == RemoveLeftovers((".a.0123456789ab.tmp",))


def test_whole_plan_summary_and_orphans() -> None:
    t_alice, t_bob = target(), target(account(name="bob"))
    observed = Observed(
        accounts={
            "alice": healthy(),
            "bob": replace(
                healthy(), name="bob", exists=False, dir_mode=None, live=EMPTY, derived={}
            ),
        },
        orphans={"carol": Path("/out")},
    )
    desired = Desired(targets=(t_alice, t_bob), output_dirs=(Path("/out"),))
    result = plan(desired, observed, NOW, {"alice": CNF_SHA, "bob": CNF_SHA})
    data = result.to_json()
    assert data["format_version"] == 1
    assert data["summary"] == {
        "create": 1,
        "rotate": 0,
        "update": 0,
        "promote": 0,
        "publish": 0,
        "orphan": 1,
        "noop": 1,
    }
    assert list(data["summary"]) == [  # SPEC's order
        "create", "rotate", "update", "promote", "publish", "orphan", "noop"
    ]  # fmt: skip
    assert [c["account"] for c in data["changes"]] == ["bob", "carol"]
    orphan = data["changes"][1]
    assert orphan["action"] == "orphan" and orphan["requires_upload"] is False
    assert set(data["changes"][0]) == {"account", "action", "reasons", "requires_upload"}


def test_a_certificate_whose_signature_fails_is_rotated() -> None:
    cf = replace(cert_facts(), self_signature_valid=False)
    change = run(healthy(live=pair(kf=key_facts(), cf=cf)))
    assert change.action is Action.ROTATE
    assert any("signature does not verify" in r for r in change.reasons)


def test_a_certificate_issued_by_someone_else_is_rotated() -> None:
    cf = replace(cert_facts(), issuer_is_subject=False, self_signature_valid=False)
    change = run(healthy(live=pair(kf=key_facts(), cf=cf)))
    assert change.action is Action.ROTATE
    assert any("not self-signed" in r for r in change.reasons)


def test_renew_jitter_is_fixed_per_account_and_bounded() -> None:
    from bfprov.plan.renewal import jitter_offset, renewal_window

    accounts = [
        account(
            name=f"bot{i}", validity={"days": 365, "renew_before": "30d", "renew_jitter": "10d"}
        )
        for i in range(50)
    ]
    offsets = [jitter_offset(a) for a in accounts]
    assert all(timedelta(0) <= o < timedelta(days=10) for o in offsets)
    assert len(set(offsets)) > 40  # spread over the jitter
    assert offsets == [jitter_offset(a) for a in accounts]  # stable from run to run
    lifetime = timedelta(days=365)
    assert renewal_window(accounts[0], lifetime) == timedelta(days=30) + offsets[0]


def test_renew_jitter_moves_the_renewal_earlier() -> None:
    from bfprov.plan.renewal import jitter_offset

    acc = account(validity={"days": 365, "renew_before": "30d", "renew_jitter": "20d"})
    offset = jitter_offset(acc)
    just_inside = 30 + offset.total_seconds() / 86400 - 0.01
    change = run(healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=just_inside))), acc)
    assert change.action is Action.ROTATE
    assert any("of renew_jitter" in r for r in change.reasons)
    just_outside = just_inside + 0.02
    change = run(healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=just_outside))), acc)
    assert change.action is Action.NOOP


@pytest.mark.parametrize(
    ("validity", "message"),
    [
        ({"days": 30, "renew_before": "30d"}, "is as long as the validity"),
        ({"days": 30, "renew_before": "720h"}, "is as long as the validity"),
        ({"days": 30, "renew_before": "100%"}, "between 0% and 100%"),
        ({"days": 30, "renew_before": "20d", "renew_jitter": "10d"}, "plus renew_jitter"),
        ({"days": 30, "renew_before": "20d", "renew_jitter": "10%"}, "not a share"),
    ],
)
def test_windows_as_long_as_the_validity_are_refused(
    validity: dict[str, Any], message: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        account(validity=validity)


# --- replacement (`--replace`): a new key whatever the state --------------------------

STAGED_PAIR = ("staged/client-2048.crt", "staged/client-2048.key")
LIVE_PAIR = ("client-2048.crt", "client-2048.key")
REPLACE_CASES: list[tuple[str, ObservedAccount, Action, tuple[Any, ...]]] = [
    ("healthy", healthy(), Action.ROTATE, (NewPair(staged=True),)),
    (
        "due for rotation anyway",
        healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=3))),
        Action.ROTATE,
        (NewPair(staged=True),),
    ),
    (
        "staged pair awaiting upload",
        healthy(staged=pair("staged/", key_facts("K2"), cert_facts("K2"))),
        Action.ROTATE,
        (ArchiveFiles(STAGED_PAIR), NewPair(staged=True)),
    ),
    (
        "incomplete staged pair",
        healthy(staged=pair("staged/", key_facts("K2"), None, crt=False)),
        Action.ROTATE,
        (ArchiveFiles(("staged/client-2048.key",)), NewPair(staged=True)),
    ),
    (
        "nothing on disk",
        replace(healthy(), exists=False, dir_mode=None, live=EMPTY, derived={}),
        Action.CREATE,
        (NewPair(staged=False),),
    ),
    (
        "a key without its certificate is not reused",
        healthy(live=pair(kf=key_facts(), cf=None, crt=False), derived={}),
        Action.CREATE,
        (ArchiveFiles(("client-2048.key",)), NewPair(staged=False, reuse_key=False)),
    ),
    (
        "an interrupted promotion is not resumed",
        healthy(
            live=pair(kf=key_facts("K2"), cf=None, crt=False),
            staged=pair("staged/", None, cert_facts("K2"), key=False),
            derived={},
        ),
        Action.CREATE,
        (
            ArchiveFiles(("staged/client-2048.crt",)),
            ArchiveFiles(("client-2048.key",)),
            NewPair(staged=False),
        ),
    ),
]


@pytest.mark.parametrize(
    ("obs", "action", "steps"),
    [c[1:] for c in REPLACE_CASES],
    ids=[c[0] for c in REPLACE_CASES],
)
def test_replacement_table(obs: ObservedAccount, action: Action, steps: tuple[Any, ...]) -> None:
    change = plan_account(target(), obs, NOW, CNF_SHA, replace=True)
    assert change.action is action
    assert change.steps == steps
    assert "replacement requested" in change.reasons
    assert change.requires_upload and not change.needs_login


def test_replacement_keeps_every_other_reason_and_housekeeping() -> None:
    obs = healthy(live=pair(kf=key_facts(), cf=cert_facts(days_left=3)), derived=without("pem"))
    change = plan_account(target(), obs, NOW, CNF_SHA, replace=True)
    assert change.reasons[:2] == ("client-2048.pem is missing", "replacement requested")
    assert "live certificate expires in 3 days" in change.reasons[2]
    assert change.steps == (WriteDerived(outputs=(Output.PEM,)), NewPair(staged=True))


def test_replacement_of_a_staged_pair_says_it_is_archived() -> None:
    obs = healthy(staged=pair("staged/", key_facts("K2"), cert_facts("K2")))
    change = plan_account(target(), obs, NOW, CNF_SHA, replace=True)
    assert any("staged pair is archived" in r for r in change.reasons)
    assert not any(isinstance(s, Promote) for s in change.steps)


def test_plan_replaces_only_the_named_accounts() -> None:
    t_alice, t_bob = target(), target(account(name="bob"))
    observed = Observed(
        accounts={"alice": healthy(), "bob": replace(healthy(), name="bob")}, orphans={}
    )
    desired = Desired(targets=(t_alice, t_bob), output_dirs=(Path("/out"),))
    cnf = {"alice": CNF_SHA, "bob": CNF_SHA}
    result = plan(desired, observed, NOW, cnf, replace=frozenset({"bob"}))
    assert [(c.account, c.action) for c in result.changes] == [("bob", Action.ROTATE)]
    assert result.noop == ("alice",)
    assert plan(desired, observed, NOW, cnf).changes == ()
