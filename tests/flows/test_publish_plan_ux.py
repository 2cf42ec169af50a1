"""What plan, apply and rollback say about publishing (issue 19), against real servers.

`plan` names the targets each create, promotion and rollback delivers to, and each
`AWSPENDING` a rotation writes (only AWS keeps a pending version); its summary counts
publications. `apply` prints each write it made, and its summary counts a drift repair as
published (not updated) and a failed publication as failed (not done). `rollback` asks
for confirmation like apply.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support.targets_fleet import Switch, TargetsFleet, search_for_secrets

if TYPE_CHECKING:
    from typing import Any


@pytest.fixture
def fleet(targets_fleet: TargetsFleet) -> TargetsFleet:
    """conftest's fleet that publishes to every target kind."""
    return targets_fleet


def _change(plan: dict[str, Any]) -> dict[str, Any]:
    [change] = plan["changes"]
    result: dict[str, Any] = change
    return result


def test_plan_names_every_delivery_and_apply_prints_every_write(fleet: TargetsFleet) -> None:
    labels = fleet.labels()
    every = list(labels.values())

    # Create: the plan names the three targets, and counts three publications.
    code, out, _ = fleet.run("plan")
    assert code == 0
    assert "new account: nothing on disk yet" in out
    for label in every:
        assert f"will publish to {label}" in out
    assert "AWSPENDING" not in out
    assert "Plan: 1 to create, 0 to rotate, 0 to update, 0 to promote, 3 to publish, " in out
    _, plan = fleet.plan()
    change = _change(plan)
    assert change["publish_to"] == every
    assert "stage_to" not in change
    assert plan["summary"]["publish"] == 0  # SPEC: the summary counts accounts by action
    out = fleet.ok("apply", "--yes", "--no-verify")
    for label in every:
        assert f"Published alice to {label}" in out
    assert "Apply complete: 1 created, 0 staged for rotation, 0 promoted, 0 updated, " in out
    assert "3 published." in out

    # Rotation: only AWS keeps a pending version; nothing is published as live.
    fleet.rotate()
    code, out, _ = fleet.run("plan")
    assert f"will write AWSPENDING to {labels['aws']}" in out
    assert out.count("AWSPENDING") == 1
    assert "will publish to" not in out and "to publish" not in out
    change = _change(fleet.plan()[1])
    assert change["action"] == "rotate"
    assert change["stage_to"] == [labels["aws"]]
    assert "publish_to" not in change
    out = fleet.ok("apply", "--yes", "--no-verify")
    assert f"Staged alice: AWSPENDING written to {labels['aws']}" in out
    assert out.count("AWSPENDING written") == 1 and "Published" not in out
    assert "Apply complete: 0 created, 1 staged for rotation, 0 promoted, 0 updated." in out

    # Promotion: the plan names the targets the promoted pair goes to.
    code, out, _ = fleet.run("plan")
    for label in every:
        assert f"will publish to {label}" in out
    change = _change(fleet.plan()[1])
    assert (change["action"], change["publish_to"]) == ("promote", every)
    fleet.ok("promote", "alice", "--no-verify")
    promoted = fleet.fingerprint()

    # Rollback shows what it will deliver, and asks first: with no terminal, no --yes,
    # it refuses and changes nothing.
    before = fleet.files()
    code, out, err = fleet.run("rollback", "alice")
    assert code == 1
    assert "rollback needs confirmation: run it on a terminal, or pass --yes" in err
    for label in every:
        assert f"will publish to {label}" in out
    assert fleet.files() == before
    assert fleet.held() == {"vault": promoted, "aws": promoted, "kubernetes": promoted}
    assert [h["env"]["BFPROV_EVENT"] for h in fleet.hooks()] == ["created", "promoted"]
    out = fleet.ok("rollback", "alice", "--yes")
    for label in every:
        assert f"Published alice to {label}" in out
    assert fleet.fingerprint() != promoted
    search_for_secrets(fleet, fleet.bao.token)


def test_apply_counts_drift_repairs_as_published_and_failures_as_failed(
    fleet: TargetsFleet, own_moto: Switch
) -> None:
    fleet.names = ("alice", "bob")
    fleet.aws_endpoint = f"http://127.0.0.1:{own_moto.port}"
    fleet.write_profile()
    fleet.ok("apply", "--yes", "--no-verify")

    # Out of band: both Vault secrets and alice's manifest go.
    for name in fleet.names:
        fleet.vault().delete_metadata_and_all_versions(path=f"{fleet.prefix}/{name}")
    (fleet.k8s / "betfair-alice.yaml").unlink()
    code, out, _ = fleet.run("plan")
    assert "Plan: 0 to create, 0 to rotate, 0 to update, 0 to promote, 3 to publish, " in out
    assert out.count("will publish to") == 3
    out = fleet.ok("apply", "--yes", "--no-verify")
    assert "Apply complete: 0 created, 0 staged for rotation, 0 promoted, 0 updated, " in out
    assert "3 published." in out

    # AWS goes down and bob's manifest goes: one repair is done, two are not.
    own_moto.stop()
    (fleet.k8s / "betfair-bob.yaml").unlink()
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    assert err.count("publication failed") == 2
    assert f"Published bob to {fleet.labels('bob')['kubernetes']}" in out
    assert "Apply complete: 0 created, 0 staged for rotation, 0 promoted, 0 updated, " in out
    assert "1 published, 2 failed to publish." in out
    own_moto.start()


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0)])
def test_rollback_asks_on_a_terminal(fleet: TargetsFleet, answer: str, code: int) -> None:
    """On a terminal, rollback asks; 'n' changes nothing, 'y' rolls back and publishes."""
    fleet.ok("apply", "--yes", "--no-verify")
    first = fleet.fingerprint()
    fleet.rotate()
    fleet.ok("apply", "--yes", "--no-verify")
    fleet.ok("promote", "alice", "--no-verify")
    promoted = fleet.fingerprint()
    before = fleet.files()

    controller, terminal = os.openpty()
    try:
        done = subprocess.Popen(
            [sys.executable, "-m", "bfprov", "rollback", "alice", "--profiles", str(fleet.profile)],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        os.close(terminal)
        os.write(controller, f"{answer}\n".encode())
        out, err = done.communicate(timeout=120)
    finally:
        os.close(controller)
    assert done.returncode == code, err
    assert "bfprov will perform these actions" in out
    assert "rollback to the generation archived at" in out
    assert "Roll back?" in out
    if answer == "n":
        assert "rollback cancelled; nothing was changed" in err
        assert fleet.files() == before
        assert fleet.held() == {"vault": promoted, "aws": promoted, "kubernetes": promoted}
    else:
        assert fleet.fingerprint() == first
        assert fleet.held() == {"vault": first, "aws": first, "kubernetes": first}
        assert f"Published alice to {fleet.labels()['vault']}" in out
