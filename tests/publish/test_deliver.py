"""Delivery (`publish.deliver`) used directly, against plain Kubernetes manifest targets
(files: no server needed): what each target holds, what is recorded, the audit trail's
order, a target that fails recorded with its reason, and the hooks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from bfprov import crypto
from bfprov.apply.executor import Inputs, Outcome, execute
from bfprov.desired.models import Desired, Target
from bfprov.layout import EVENTS_FILE, RECORD_DIR
from bfprov.plan.model import Action, Change, Publish
from bfprov.plan.snapshot import snapshot
from bfprov.publish.breaker import Breaker
from bfprov.publish.deliver import Delivered, carry_out, deliver_change, publish, run_hooks
from bfprov.publish.observe import read_deliveries
from tests.support.fleet import profile_text

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa

LoadDesired = Callable[[str], Desired]

HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps([os.environ["BFPROV_EVENT"], os.environ["BFPROV_FINGERPRINT"]]) + "\\n")
"""


def profile(root: Path) -> str:
    """alice, published to two manifest directories, `good` and `blocked`; both hooks."""
    (root / "hook.py").write_text(HOOK)
    hook = json.dumps([sys.executable, str(root / "hook.py"), str(root / "hooks.jsonl")])
    defaults = f"""\
  publish:
    - kubernetes: {{dir: good, namespace: bots, name: 'betfair-{{account}}'}}
    - kubernetes: {{dir: blocked, namespace: bots, name: 'betfair-{{account}}'}}
  hooks:
    on_live: {hook}
    on_failure: {hook}
"""
    return profile_text("alice", defaults=defaults)


def created(desired: Desired, key: rsa.RSAPrivateKey) -> tuple[Target, Outcome]:
    """alice's pair, written by the executor as apply writes it."""
    [target] = desired.targets
    target.output_dir.mkdir(exist_ok=True)
    snap = snapshot(desired, orphans=False)
    [change] = [c for c in snap.plan.changes if c.action is Action.CREATE]
    observed = snap.observed.accounts["alice"]
    return target, execute(Inputs(target, observed, change, snap.now, None, None, False, key))


def manifest(root: Path, directory: str) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(root / directory / "betfair-alice.yaml")
    return loaded


def events(target: Target) -> list[tuple[str, str | None]]:
    lines = (target.output_dir / RECORD_DIR / EVENTS_FILE).read_text().splitlines()
    return [(e["event"], e.get("target")) for e in map(json.loads, lines)]


def block(root: Path) -> None:
    """A file bfprov did not write where the `blocked` target's manifest goes."""
    (root / "blocked").mkdir()
    (root / "blocked" / "betfair-alice.yaml").write_text("kind: ConfigMap\n")


def test_publish_writes_each_target_and_records_it(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    target, outcome = created(load_desired(profile(tmp_path)), rsa_key_1024)
    good, blocked = target.publications
    delivered = Delivered()
    publish(target, target.publications, delivered, went_live="created")
    assert delivered.ok
    assert delivered.published == [good.label, blocked.label]
    fingerprint = outcome.fingerprint
    for directory in ("good", "blocked"):
        held = manifest(tmp_path, directory)["metadata"]["annotations"]["bfprov.io/fingerprint"]
        assert held == fingerprint
    records = read_deliveries(target.directory)
    assert {label: (d.fingerprint, d.error) for label, d in records.items()} == {
        good.label: (fingerprint, None),
        blocked.label: (fingerprint, None),
    }
    assert records[good.label].owed == "created"  # until the hook ran (settle)
    assert events(target)[-2:] == [("published", good.label), ("published", blocked.label)]


def test_a_failing_target_is_recorded_with_its_reason_and_the_others_still_get_the_pair(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    block(tmp_path)
    target, outcome = created(load_desired(profile(tmp_path)), rsa_key_1024)
    good, blocked = target.publications
    delivered = Delivered()
    publish(target, target.publications, delivered, went_live="created")
    assert not delivered.ok
    assert delivered.published == [good.label]
    [failure] = delivered.failed
    assert failure.startswith(blocked.label) and "bfprov did not write it" in failure
    assert delivered.failed_fingerprint == outcome.fingerprint
    records = read_deliveries(target.directory)
    assert records[good.label].fingerprint == outcome.fingerprint
    assert records[blocked.label].fingerprint is None
    assert "bfprov did not write it" in (records[blocked.label].error or "")
    assert records[blocked.label].owed == "created"  # its on_live is still owed
    assert (tmp_path / "blocked" / "betfair-alice.yaml").read_text() == "kind: ConfigMap\n"
    assert events(target)[-2:] == [("published", good.label), ("publish_failed", blocked.label)]


def test_run_hooks_runs_the_hook_with_its_event_and_records_it(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    target, outcome = created(load_desired(profile(tmp_path)), rsa_key_1024)
    delivered = Delivered()
    run_hooks(target, "created", outcome.fingerprint, delivered)
    run_hooks(target, "failed", outcome.fingerprint, delivered)
    assert [h.ok for h in delivered.hooks] == [True, True]
    runs = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert runs == [["created", outcome.fingerprint], ["failed", outcome.fingerprint]]
    assert [e for e, _ in events(target)[-2:]] == ["hook", "hook"]


def test_carry_out_delivers_each_outcome_then_runs_its_hook(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    """Delivered through the run's pool: a target fails, the other is written, on_failure
    runs (not on_live), and the outcome comes back with what was delivered."""
    block(tmp_path)
    target, outcome = created(load_desired(profile(tmp_path)), rsa_key_1024)
    change = Change("alice", Action.CREATE, (), False, (Publish(target.publications),))

    def run(submit: Callable[[Target, Change, Outcome], None]) -> list[Outcome]:
        submit(target, change, outcome)
        return [outcome]

    [done] = carry_out(run, Breaker())
    assert done.delivered is not None
    assert done.delivered.published == [target.publications[0].label]
    assert len(done.delivered.failed) == 1
    runs = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert runs == [["failed", outcome.fingerprint]]
    kinds = [e for e, _ in events(target)]
    assert kinds[-3:] == ["published", "publish_failed", "hook"]


def test_deliver_change_runs_on_live_once_every_target_has_the_pair(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    target, outcome = created(load_desired(profile(tmp_path)), rsa_key_1024)
    change = Change("alice", Action.CREATE, (), False, (Publish(target.publications),))
    delivered = deliver_change(target, change, outcome)
    assert delivered is not None and delivered.ok
    runs = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert runs == [["created", outcome.fingerprint]]
    assert all(d.owed is None for d in read_deliveries(target.directory).values())  # settled
    crt = (target.directory / "client-1024.crt").read_bytes()
    assert crypto.inspect_certificate(crt).fingerprint_sha256 == outcome.fingerprint
