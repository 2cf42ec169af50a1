"""Idempotent delivery through the command line: a lost reply or a kill converges.

SPEC: a target that already holds the pair being delivered counts as delivered, whoever
wrote it and whatever bfprov's record says. Each fault here happens for real: a loopback
proxy in front of OpenBao loses the reply to a write that OpenBao did (tests.lossy_proxy),
or `bfprov` is killed (os._exit, as SIGKILL: no cleanup) after the targets were written
and before its record of them. The next `apply` must converge: no conflict, `status` and
`bfprov_published` say every target holds the live pair, the owed `on_live` runs once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.lossy_proxy import LossyProxy
from tests.support.targets_fleet import TargetsFleet, search_for_secrets

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def fleet(targets_fleet: TargetsFleet) -> TargetsFleet:
    """conftest's fleet that publishes to every target kind."""
    return targets_fleet


# Runs bfprov, killed the moment it is about to record a delivery of the live pair.
KILLED_BEFORE_THE_RECORD = """
import os, sys
from bfprov import crypto
import bfprov.publish.deliver as deliver

real = deliver.write_deliveries

def write_deliveries(directory, records):
    crt = next(directory.glob("client-*.crt"))
    live = crypto.inspect_certificate(crt.read_bytes()).fingerprint_sha256
    if any(r.fingerprint == live and r.error is None for r in records.values()):
        os._exit(137)  # the targets hold the pair; bfprov's record does not say so
    real(directory, records)

deliver.write_deliveries = write_deliveries
from bfprov.cli import main
from tests.support.targets_fleet import TargetsFleet, search_for_secrets
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def proxied(fleet: TargetsFleet) -> Iterator[LossyProxy]:
    """The fleet's Vault target reached through a proxy that can lose replies."""
    with LossyProxy(fleet.bao.address) as proxy:
        fleet.vault_address = proxy.url
        fleet.write_profile()
        yield proxy


def converged(fleet: TargetsFleet, events: list[str]) -> None:
    """Every target holds the live pair, status and metrics say so, the plan is clean,
    and the hooks ran exactly as `events` (an owed on_live once, and not again)."""
    live = fleet.fingerprint()
    assert fleet.held() == {"vault": live, "aws": live, "kubernetes": live}
    labels = fleet.labels().values()
    assert fleet.status()["alice"] == dict.fromkeys(labels, True)
    assert fleet.metrics() == {("alice", label): 1.0 for label in labels}
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == events
    assert fleet.hooks()[-1]["env"]["BFPROV_FINGERPRINT"] == live
    assert fleet.plan()[0] == 0
    fleet.ok("apply", "--yes", "--no-verify")
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == events
    search_for_secrets(fleet, fleet.bao.token)


def test_a_lost_reply_to_the_vault_data_write_converges(
    fleet: TargetsFleet, proxied: LossyProxy
) -> None:
    proxied.lose_reply("POST", f"/v1/secret/data/{fleet.prefix}/alice")
    code, _, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    assert proxied.lost, "the write reached OpenBao"
    assert f"{fleet.labels()['vault']}: unreachable" in err
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == ["failed"]

    out = fleet.ok("apply", "--yes", "--no-verify")
    assert "conflict" not in out
    converged(fleet, ["failed", "created"])


def test_a_lost_reply_to_the_vault_metadata_write_converges(
    fleet: TargetsFleet, proxied: LossyProxy
) -> None:
    fleet.ok("apply", "--yes", "--no-verify")
    fleet.rotate()
    fleet.ok("apply", "--yes", "--no-verify")
    proxied.lose_reply("POST", f"/v1/secret/metadata/{fleet.prefix}/alice")
    code, _, err = fleet.run("promote", "alice", "--no-verify")
    assert code == 1
    assert proxied.lost, "the write reached OpenBao"
    assert f"{fleet.labels()['vault']}: " in err and "unreachable" in err

    fleet.ok("apply", "--yes", "--no-verify")
    converged(fleet, ["created", "failed", "promoted"])


@pytest.mark.parametrize("killed", ["apply", "promote"])
def test_a_kill_between_write_and_record_converges(fleet: TargetsFleet, killed: str) -> None:
    events = ["created"]
    if killed == "promote":
        fleet.ok("apply", "--yes", "--no-verify")
        fleet.rotate()
        fleet.ok("apply", "--yes", "--no-verify")
        argv = ["promote", "alice", "--no-verify"]
        events.append("promoted")
    else:
        argv = ["apply", "--yes", "--no-verify"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_THE_RECORD, *argv, "--profiles", str(fleet.profile)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 137, done.stderr
    fleet.texts += [done.stdout, done.stderr]
    live = fleet.fingerprint()
    assert fleet.held() == {"vault": live, "aws": live, "kubernetes": live}
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == events[:-1]

    fleet.ok("apply", "--yes", "--no-verify")
    converged(fleet, events)


def test_a_target_repaired_out_of_band_counts_as_published_after_an_apply_with_nothing_to_do(
    fleet: TargetsFleet,
) -> None:
    fleet.ok("apply", "--yes", "--no-verify")
    labels = fleet.labels()
    secret = f"{fleet.prefix}/alice"
    fleet.sm().delete_secret(SecretId=secret, RecoveryWindowInDays=7)
    code, _, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1 and "scheduled for deletion" in err
    assert fleet.status()["alice"][labels["aws"]] is False

    fleet.sm().restore_secret(SecretId=secret)  # repaired out of band
    assert fleet.plan()[0] == 0
    out = fleet.ok("apply", "--yes", "--no-verify")
    assert "Published" not in out  # nothing to do, nothing written
    live = fleet.fingerprint()
    assert fleet.held() == {"vault": live, "aws": live, "kubernetes": live}
    assert fleet.status()["alice"] == dict.fromkeys(labels.values(), True)
    assert fleet.metrics() == {("alice", label): 1.0 for label in labels.values()}
    assert fleet.plan()[0] == 0
