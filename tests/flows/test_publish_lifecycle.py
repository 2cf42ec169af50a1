"""The publishing lifecycle through the command line, against real servers on loopback.

One profile names all three targets (an OpenBao dev server, moto's Secrets Manager, a
SOPS-encrypted Kubernetes manifest) and both hooks; bfprov runs in this process, as a
user runs it. Each test walks part of issue #15's "Done when":
create publishes; a rotation leaves every live target alone (AWS gets AWSPENDING);
promotion publishes the new pair and runs `on_live`; rollback publishes the old one; a
secret deleted out of band is planned (exit 2) and restored; a target that is down gives
exit 1 naming it, nothing lost, and the next apply converges; and no token, password or
key material appears in any output, plan file, record or event.
"""

from __future__ import annotations

import base64
import json
import sys

import pytest

from bfprov import crypto
from tests.support import needs
from tests.support.targets_fleet import (
    STEM,
    Switch,
    TargetsFleet,
    check_hook_runs,
    search_for_secrets,
)

hvac = needs.module("hvac", "pip install 'bfprov[vault]'")
boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")


@pytest.fixture
def fleet(targets_fleet: TargetsFleet) -> TargetsFleet:
    """conftest's fleet that publishes to every target kind."""
    return targets_fleet


# --- the lifecycle ---------------------------------------------------------------------


def test_create_rotate_promote_rollback_through_every_target(fleet: TargetsFleet) -> None:
    labels = fleet.labels()

    # Create: the new live pair goes to every target, then on_live runs once.
    code, plan = fleet.plan("--out", str(fleet.root / "create.plan.json"))
    assert code == 2
    [change] = plan["changes"]
    assert change["action"] == "create"
    out = fleet.ok("apply", str(fleet.root / "create.plan.json"), "--yes", "--no-verify")
    for label in labels.values():
        assert f"Published alice to {label}" in out
    first = fleet.fingerprint()
    assert fleet.held() == {"vault": first, "aws": first, "kubernetes": first}
    live = fleet.directory()
    data = fleet.vault_data()
    assert data["tls.crt"] == (live / f"{STEM}.crt").read_text()
    assert data["tls.key"] == (live / f"{STEM}.key").read_text()
    assert set(data) == {"tls.crt", "tls.key", "tls-combined.pem", "keystore.p12"}
    secret = json.loads(
        fleet.sm().get_secret_value(SecretId=f"{fleet.prefix}/alice")["SecretString"]
    )
    assert secret["fingerprint"] == first and secret["account"] == "alice"
    manifest = fleet.manifest()
    assert manifest["type"] == "kubernetes.io/tls"
    assert base64.b64decode(manifest["data"]["tls.key"]) == (live / f"{STEM}.key").read_bytes()
    raw_manifest = (fleet.k8s / "betfair-alice.yaml").read_text()
    assert "ENC[" in raw_manifest and "sops:" in raw_manifest
    assert (fleet.k8s / "betfair-alice.yaml").stat().st_mode & 0o777 == 0o600
    check_hook_runs(fleet, [("alice", "created")], fleet.bao.token)
    code, plan = fleet.plan()
    assert (code, plan["changes"]) == (0, [])
    assert fleet.status() == {"alice": dict.fromkeys(labels.values(), True)}
    assert fleet.metrics() == {("alice", label): 1.0 for label in labels.values()}

    # Rotation: every live target is left alone; AWS holds the staged pair as AWSPENDING.
    vault_version = fleet.vault().read_secret_metadata(path=f"{fleet.prefix}/alice")["data"][
        "current_version"
    ]
    manifest_bytes = (fleet.k8s / "betfair-alice.yaml").read_bytes()
    fleet.rotate()
    fleet.ok("apply", "--yes", "--no-verify")
    staged = crypto.inspect_certificate(
        (live / "staged" / f"{STEM}.crt").read_bytes()
    ).fingerprint_sha256
    assert staged != first
    assert fleet.held() == {"vault": first, "aws": first, "kubernetes": first}
    assert fleet.aws_stages()["AWSPENDING"] == staged
    meta = fleet.vault().read_secret_metadata(path=f"{fleet.prefix}/alice")["data"]
    assert meta["current_version"] == vault_version
    assert (fleet.k8s / "betfair-alice.yaml").read_bytes() == manifest_bytes
    assert len(fleet.hooks()) == 1  # nothing went live
    assert fleet.status()["alice"] == dict.fromkeys(labels.values(), True)

    # Promotion: the new pair goes to every target, AWSPREVIOUS keeps the old, on_live runs.
    out = fleet.ok("promote", "alice", "--no-verify")
    assert fleet.fingerprint() == staged
    assert fleet.held() == {"vault": staged, "aws": staged, "kubernetes": staged}
    stages = fleet.aws_stages()
    assert stages["AWSPREVIOUS"] == first and "AWSPENDING" not in stages
    check_hook_runs(fleet, [("alice", "created"), ("alice", "promoted")], fleet.bao.token)
    assert fleet.hooks()[-1]["env"]["BFPROV_FINGERPRINT"] == staged
    assert fleet.plan()[1]["changes"] == []

    # Rollback: the old pair goes back to every target, on_live runs again.
    out = fleet.ok("rollback", "alice", "--yes")
    for label in labels.values():
        assert f"Published alice to {label}" in out
    assert fleet.fingerprint() == first
    assert fleet.held() == {"vault": first, "aws": first, "kubernetes": first}
    assert fleet.aws_stages()["AWSPREVIOUS"] == staged
    check_hook_runs(
        fleet,
        [("alice", "created"), ("alice", "promoted"), ("alice", "rolled_back")],
        fleet.bao.token,
    )
    assert fleet.hooks()[-1]["env"]["BFPROV_FINGERPRINT"] == first
    assert fleet.status() == {"alice": dict.fromkeys(labels.values(), True)}

    # The audit trail: a `published` event per target and delivery, and every hook run.
    events = fleet.events()
    published = [(e["target"], e["fingerprint"]) for e in events if e["event"] == "published"]
    for fingerprint in (first, staged, first):
        for label in labels.values():
            assert (label, fingerprint) in published
    assert len(published) == 3 * len(labels)
    staged_events = [e for e in events if e["event"] == "staged_published"]
    assert [(e["target"], e["fingerprint"]) for e in staged_events] == [(labels["aws"], staged)]
    hooks = [e for e in events if e["event"] == "hook"]
    assert len(hooks) == 3 and all(e["target"] == sys.executable for e in hooks)
    history = fleet.ok("history", "alice", "--json")
    assert labels["vault"] in history

    search_for_secrets(fleet, fleet.bao.token)


def test_out_of_band_deletes_are_planned_and_restored(fleet: TargetsFleet) -> None:
    """Vault: metadata and all versions deleted (alice), only the latest version deleted
    (bob); AWS: deleted without recovery; Kubernetes: the file removed."""
    fleet.names = ("alice", "bob")
    fleet.write_profile()
    fleet.ok("apply", "--yes", "--no-verify")
    before = {n: fleet.files(n) for n in fleet.names}
    fingerprints = {n: fleet.fingerprint(n) for n in fleet.names}
    assert fleet.plan()[0] == 0

    vault = fleet.vault()
    vault.delete_metadata_and_all_versions(path=f"{fleet.prefix}/alice")
    vault.delete_latest_version_of_secret(path=f"{fleet.prefix}/bob")
    for name in fleet.names:
        fleet.sm().delete_secret(SecretId=f"{fleet.prefix}/{name}", ForceDeleteWithoutRecovery=True)
        (fleet.k8s / f"betfair-{name}.yaml").unlink()

    # plan sees it (reading metadata only); --no-refresh trusts bfprov's records, and so
    # does status (it never goes to the network): it still says every target holds it.
    code, plan = fleet.plan("--out", str(fleet.root / "drift.plan.json"))
    assert code == 2
    assert [c["action"] for c in plan["changes"]] == ["publish", "publish"]
    assert plan["summary"]["publish"] == 2
    for change in plan["changes"]:
        assert change["requires_upload"] is False
        labels = fleet.labels(change["account"])
        assert sorted(change["reasons"]) == sorted(
            f"{lbl} lacks the live pair" for lbl in labels.values()
        )
    assert fleet.plan("--no-refresh")[0] == 0
    assert all(all(v.values()) for v in fleet.status().values())

    # apply restores them all; no new pair went live, so no hook runs.
    out = fleet.ok("apply", str(fleet.root / "drift.plan.json"), "--yes", "--no-verify")
    assert out.count("Published") == 6
    for name in fleet.names:
        fp = fingerprints[name]
        assert fleet.held(name) == {"vault": fp, "aws": fp, "kubernetes": fp}
        assert fleet.files(name) == before[name]
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == ["created", "created"]
    assert fleet.plan()[0] == 0

    search_for_secrets(fleet, fleet.bao.token)


def test_out_of_band_changes_are_planned_and_repaired(fleet: TargetsFleet) -> None:
    """A value bfprov did not write (AWS) or another certificate (Kubernetes) is drift;
    Vault's check-and-set refuses to overwrite a version someone else wrote."""
    fleet.ok("apply", "--yes", "--no-verify")
    fp = fleet.fingerprint()
    labels = fleet.labels()
    fleet.sm().put_secret_value(SecretId=f"{fleet.prefix}/alice", SecretString='{"x": "y"}')
    manifest = fleet.k8s / "betfair-alice.yaml"
    manifest.write_text(manifest.read_text().replace(fp, "ab" * 32))
    fleet.vault().create_or_update_secret(path=f"{fleet.prefix}/alice", secret={"x": "y"})

    code, plan = fleet.plan()
    assert code == 2
    [change] = plan["changes"]
    assert change["action"] == "publish"
    assert sorted(change["reasons"]) == sorted([
        f"{labels['vault']} holds a value bfprov did not write",
        f"{labels['aws']} holds a value bfprov did not write",
        f"{labels['kubernetes']} holds another certificate (abababababababab...)",
    ])  # fmt: skip

    code, _, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    assert f"alice: publication failed: {labels['vault']}: conflict" in err
    assert fleet.aws_stages()["AWSCURRENT"] == fp
    assert fleet.held()["kubernetes"] == fp
    assert fleet.status()["alice"] == {
        labels["vault"]: False, labels["aws"]: True, labels["kubernetes"]: True
    }  # fmt: skip
    # The operator removes the foreign secret; the next apply converges.
    fleet.vault().delete_metadata_and_all_versions(path=f"{fleet.prefix}/alice")
    fleet.ok("apply", "--yes", "--no-verify")
    assert fleet.held() == {"vault": fp, "aws": fp, "kubernetes": fp}
    assert fleet.plan()[0] == 0
    search_for_secrets(fleet, fleet.bao.token)


# --- a target that is down -------------------------------------------------------------


def test_a_target_that_is_down_fails_the_apply_and_the_next_one_converges(
    fleet: TargetsFleet, own_moto: Switch
) -> None:
    fleet.aws_endpoint = f"http://127.0.0.1:{own_moto.port}"
    fleet.write_profile()
    fleet.ok("apply", "--yes", "--no-verify")
    labels = fleet.labels()
    fp = fleet.fingerprint()

    # AWS goes down, and its secret was deleted meanwhile; the Kubernetes file too.
    fleet.sm().delete_secret(SecretId=f"{fleet.prefix}/alice", ForceDeleteWithoutRecovery=True)
    (fleet.k8s / "betfair-alice.yaml").unlink()
    own_moto.stop()
    before = fleet.files()

    code, plan = fleet.plan()
    assert code == 2
    [change] = plan["changes"]
    assert change["action"] == "publish"
    assert any(
        r.startswith(f"{labels['aws']} cannot be observed: unreachable") for r in change["reasons"]
    )

    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    assert f"alice: publication failed: {labels['aws']}: unreachable" in err
    assert f"Published alice to {labels['kubernetes']}" in out  # the others still delivered
    assert fleet.files() == before  # local files untouched
    assert fleet.status()["alice"] == {
        labels["vault"]: True, labels["aws"]: False, labels["kubernetes"]: True
    }  # fmt: skip
    assert fleet.metrics()[("alice", labels["aws"])] == 0.0
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == ["created", "failed"]
    check_hook_runs(fleet, [("alice", "created"), ("alice", "failed")], fleet.bao.token)
    failures = [e for e in fleet.events() if e["event"] == "publish_failed"]
    assert [e["target"] for e in failures] == [labels["aws"]]
    code, plan = fleet.plan()
    assert code == 2 and plan["changes"][0]["action"] == "publish"

    # AWS is back: the next apply delivers, and the plan is empty.
    own_moto.start()
    fleet.ok("apply", "--yes", "--no-verify")
    assert fleet.held() == {"vault": fp, "aws": fp, "kubernetes": fp}
    assert fleet.files() == before
    assert fleet.plan()[0] == 0
    assert fleet.status()["alice"] == dict.fromkeys(labels.values(), True)
    search_for_secrets(fleet, fleet.bao.token)


def test_a_promotion_a_target_missed_runs_on_live_once_the_retry_delivers_it(
    fleet: TargetsFleet, own_moto: Switch
) -> None:
    fleet.aws_endpoint = f"http://127.0.0.1:{own_moto.port}"
    fleet.write_profile()
    fleet.ok("apply", "--yes", "--no-verify")
    fleet.rotate()
    fleet.ok("apply", "--yes", "--no-verify")
    labels = fleet.labels()
    own_moto.stop()

    # The promotion itself happens (the operator vouched); AWS misses it: exit 1.
    code, out, err = fleet.run("promote", "alice", "--no-verify")
    assert code == 1
    assert f"alice: publication failed: {labels['aws']}: unreachable" in err
    promoted = fleet.fingerprint()
    assert "Promoted the staged pair of alice" in out
    assert fleet.vault_fingerprint() == promoted
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == ["created", "failed"]
    assert fleet.status()["alice"][labels["aws"]] is False
    before = fleet.files()

    # The next apply delivers it, and only then runs the on_live the promotion owed.
    own_moto.start()
    code, plan = fleet.plan()
    assert code == 2 and [c["action"] for c in plan["changes"]] == ["publish"]
    out = fleet.ok("apply", "--yes", "--no-verify")
    assert f"Published alice to {labels['aws']}" in out
    assert fleet.held() == {"vault": promoted, "aws": promoted, "kubernetes": promoted}
    assert fleet.files() == before
    check_hook_runs(
        fleet, [("alice", "created"), ("alice", "failed"), ("alice", "promoted")], fleet.bao.token
    )
    assert fleet.hooks()[-1]["env"]["BFPROV_FINGERPRINT"] == promoted
    fleet.ok("apply", "--yes", "--no-verify")  # nothing to do: the hook is not run again
    assert len(fleet.hooks()) == 3
    assert fleet.plan()[0] == 0
    search_for_secrets(fleet, fleet.bao.token)
