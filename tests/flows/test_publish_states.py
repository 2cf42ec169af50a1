"""Publishing as a state machine: random runs of a small fleet against real servers.

Two accounts publish to a real OpenBao (through a loopback proxy that can be switched
off and can lose replies), moto's Secrets Manager and plain Kubernetes manifests;
bfprov runs in this process, as a user runs it, and logins go to the embedded emulator.
Steps: apply, rotate (`apply --replace`), upload and promote, rollback, a target deleted
or overwritten out of band, OpenBao down and up again, a lost reply to a Vault write,
and a run killed between a write and its record (the record removed).

After every step the invariants are checked against the targets themselves:
- no target holds another account's pair, and what a target serves as live holds every
  field, its key matching its certificate;
- the live (and staged) pair on disk is never torn;
- AWS stages are valid: one AWSCURRENT; AWSPENDING only for the staged pair on disk;
- with the servers up, `apply` then `plan` is clean (only uploads may be pending), and then
  `status --json` and `bfprov_published` agree with what each target holds;
- no token, password, app key, p12 password or key material in any output, record or
  event.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bfprov import crypto
from bfprov.layout import PUBLISHED_FILE, RECORD_DIR
from bfprov.sandbox import Emulator
from tests.support import needs
from tests.support.fleet import (
    APP_KEY,
    PASSWORD,
    SECRET_ENV,
    STEM,
    PublishFleet,
    aws_target,
    kubernetes_target,
    leaks,
    vault_target,
)
from tests.support.proxy import Proxy
from tests.support.servers import REGION, Bao, Moto

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

hvac = needs.module("hvac", "pip install 'bfprov[vault]'")
boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")

NAMES = ("alice", "bob")
KINDS = ("vault", "aws", "kubernetes")
TOKEN_ENV = "STATES_VAULT_TOKEN"
FIELDS = {"tls.crt", "tls.key", "tls-combined.pem", "keystore.p12"}  # p12 is an output
_runs = itertools.count()


def pair_of(crt: bytes, key: bytes) -> str:
    """The certificate's fingerprint, once its key is seen to match it."""
    facts = crypto.inspect_certificate(crt)
    assert crypto.inspect_key(key).spki_sha256 == facts.spki_sha256, "a torn pair"
    return facts.fingerprint_sha256


def owner(crt: bytes) -> str:
    """The account a certificate was made for: its subject is '<account> gen N'."""
    subject = dict(crypto.inspect_certificate(crt).subject)
    return subject["common_name"].split()[0]


class World:
    """The servers and the environment every example shares."""

    def __init__(self, root: Path, bao: Bao, moto: Moto, emulator: Emulator, capsys: Any) -> None:
        self.root, self.bao, self.moto, self.emulator, self.capsys = (
            root,
            bao,
            moto,
            emulator,
            capsys,
        )
        self.kv = hvac.Client(url=bao.address, token=bao.token).secrets.kv.v2
        self.sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.endpoint)


class Publishing(RuleBasedStateMachine):
    """One example: a fresh fleet, its own Vault paths, AWS names and manifest directory."""

    world: World

    def __init__(self) -> None:
        super().__init__()
        run = next(_runs)
        self.prefix = f"states{run}"
        self.lacking: dict[tuple[str, str], set[str]] = {}
        self.proxy = Proxy(self.world.bao.address)
        self.proxy.start()
        root = self.world.root / self.prefix
        root.mkdir()
        targets = (
            vault_target(self.proxy.address, TOKEN_ENV, path=f"{self.prefix}/{{account}}")
            + aws_target(self.world.moto.endpoint, REGION, name=f"{self.prefix}/{{account}}")
            + kubernetes_target()
        )
        self.fleet = PublishFleet(root, self.world.capsys, names=NAMES, targets=targets)
        self.fleet.ok("apply", "--yes", "--no-verify")

    def teardown(self) -> None:
        self.proxy.stop()

    # --- where things are ---------------------------------------------------------------

    def path(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def label(self, kind: str, name: str) -> str:
        if kind == "vault":
            return f"vault {self.proxy.address} secret/{self.path(name)}"
        if kind == "aws":
            return f"aws_secrets_manager {self.world.moto.endpoint} {self.path(name)}"
        return f"kubernetes {self.fleet.root / 'k8s' / f'betfair-{name}.yaml'}"

    def archived(self, name: str) -> bool:
        archive = self.fleet.directory(name) / "archive"
        return archive.is_dir() and any(archive.glob(f"*/{STEM}.key"))

    # --- steps --------------------------------------------------------------------------

    def _tolerant(self, *args: str) -> int:
        """A run that may fail (a target down or faulty): one clear line, no traceback."""
        code, out, err = self.fleet.run(*args)
        assert code in (0, 1), f"{args}: exit {code}\n{out}\n{err}"
        assert "Traceback" not in out + err, err
        return code

    @rule()
    def apply(self) -> None:
        self._tolerant("apply", "--yes", "--no-verify")

    @rule(name=st.sampled_from(NAMES))
    def rotate(self, name: str) -> None:
        self._tolerant("apply", "--yes", "--no-verify", "--replace", name)

    @rule(name=st.sampled_from(NAMES))
    def upload_and_promote(self, name: str) -> None:
        staged = self.fleet.directory(name) / "staged" / f"{STEM}.crt"
        if not staged.exists():
            return
        self.world.emulator.upload(name, staged.read_bytes())
        self._tolerant("promote", name)
        if self.proxy.running:
            assert not staged.exists(), "an uploaded staged pair was not promoted"

    @rule(name=st.sampled_from(NAMES))
    def rollback(self, name: str) -> None:
        if not self.archived(name):
            return
        code, out, err = self.fleet.run("rollback", name, "--yes")
        assert code in (0, 1) and "Traceback" not in out + err, f"exit {code}\n{out}\n{err}"

    @rule(name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS), overwrite=st.booleans())
    def out_of_band(self, name: str, kind: str, overwrite: bool) -> None:
        """Someone deletes the target, or (AWS, Kubernetes) writes another value there.
        A Vault value someone else wrote is a conflict by design (check-and-set), so
        Vault's secret is deleted: its latest version, or everything."""
        path = self.path(name)
        if kind == "vault":
            if overwrite:
                self.world.kv.delete_latest_version_of_secret(path=path)
            else:
                self.world.kv.delete_metadata_and_all_versions(path=path)
        elif kind == "aws":
            if overwrite:
                self.world.sm.put_secret_value(SecretId=path, SecretString='{"x": "y"}')
            else:
                self.world.sm.delete_secret(SecretId=path, ForceDeleteWithoutRecovery=True)
        else:
            manifest = self.fleet.root / "k8s" / f"betfair-{name}.yaml"
            if overwrite and manifest.exists():
                manifest.write_text(
                    manifest.read_text().replace(
                        "bfprov.io/fingerprint: ", "bfprov.io/fingerprint: ab", 1
                    )
                )
            else:
                manifest.unlink(missing_ok=True)

    @rule()
    def vault_down(self) -> None:
        self.proxy.stop()

    @rule()
    def vault_up(self) -> None:
        self.proxy.start()

    @precondition(lambda self: self.proxy.running)
    @rule(name=st.sampled_from(NAMES), write=st.sampled_from(["data", "metadata"]))
    def lost_reply(self, name: str, write: str) -> None:
        """The secret is gone (so apply writes it again); the reply to that write is lost
        on its way back, after the server acted on it."""
        self.world.kv.delete_metadata_and_all_versions(path=self.path(name))
        where = f"/v1/secret/{write}/{self.path(name)}"
        self.proxy.drop_replies(lambda method, p: method in ("POST", "PUT") and p == where)
        self._tolerant("apply", "--yes", "--no-verify")
        self.proxy.clear_drops()

    @rule(name=st.sampled_from(NAMES))
    def killed_before_the_record(self, name: str) -> None:
        """A pair went to every target, and the run died before recording it: the same as
        the record of an apply that wrote, removed."""
        self.world.kv.delete_metadata_and_all_versions(path=self.path(name))
        self._tolerant("apply", "--yes", "--no-verify")
        (self.fleet.directory(name) / RECORD_DIR / PUBLISHED_FILE).unlink(missing_ok=True)

    # --- what the targets hold ----------------------------------------------------------

    def vault_live(self, name: str) -> dict[str, str] | None:
        try:
            reply = self.world.kv.read_secret_version(
                path=self.path(name), raise_on_deleted_version=True
            )
        except (hvac.exceptions.InvalidPath, hvac.exceptions.VaultError):
            return None
        data: dict[str, str] = reply["data"]["data"]
        return data

    def aws_versions(self, name: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """Stage -> version id, and stage -> the value (JSON) that version holds."""
        try:
            described = self.world.sm.describe_secret(SecretId=self.path(name))
        except self.world.sm.exceptions.ResourceNotFoundException:
            return {}, {}
        stages = {s: vid for vid, ss in described.get("VersionIdsToStages", {}).items() for s in ss}
        values = {}
        for stage in ("AWSCURRENT", "AWSPENDING"):
            if stage in stages:
                reply = self.world.sm.get_secret_value(SecretId=self.path(name), VersionStage=stage)
                values[stage] = json.loads(reply["SecretString"])
        return stages, values

    def k8s_live(self, name: str) -> dict[str, str] | None:
        manifest = self.fleet.manifest(name)
        if manifest is None:
            return None
        return {k: base64.b64decode(v).decode("latin-1") for k, v in manifest["data"].items()}

    def held(self, name: str) -> dict[str, str | None]:
        """Per target, the fingerprint of the pair it serves as live, checked whole (key
        matching certificate, made for this account); None: nothing, or not bfprov's.
        Also checks AWS's stages and notes the fields each live version lacks."""
        stages, values = self.aws_versions(name)
        self.check_stages(name, stages, values)
        found = {
            "vault": self.vault_live(name),
            "aws": values.get("AWSCURRENT"),
            "kubernetes": self.k8s_live(name),
        }
        result: dict[str, str | None] = {}
        for kind, data in found.items():
            if data is None or "tls.crt" not in data:
                result[kind] = None  # nothing there, or a value bfprov did not write
                continue
            crt, key = data["tls.crt"].encode(), data["tls.key"].encode()
            assert owner(crt) == name, f"{kind} of {name} holds {owner(crt)}'s pair"
            result[kind] = pair_of(crt, key)
            assert data["tls-combined.pem"] == data["tls.crt"] + data["tls.key"]
            self.lacking[(kind, name)] = FIELDS - set(data)
        return result

    def check_stages(
        self, name: str, stages: dict[str, str], values: dict[str, dict[str, str]]
    ) -> None:
        """One AWSCURRENT (a dict: one version a stage); AWSPENDING only for the staged
        pair on disk."""
        assert not stages or "AWSCURRENT" in stages, f"{name}: AWS stages {stages}"
        if "AWSPENDING" in stages:
            staged = self.fleet.fingerprint(name, staged=True)
            assert staged is not None, f"AWSPENDING of {name} without a staged pair"
            pending = values["AWSPENDING"]
            assert owner(pending["tls.crt"].encode()) == name
            assert pair_of(pending["tls.crt"].encode(), pending["tls.key"].encode()) == staged

    # --- invariants (read-only ones first: Hypothesis runs them in name order) ----------

    @invariant()
    def a_pairs_on_disk_are_whole(self) -> None:
        for name in NAMES:
            for where in (self.fleet.directory(name), self.fleet.directory(name) / "staged"):
                crt, key = where / f"{STEM}.crt", where / f"{STEM}.key"
                if crt.exists() or key.exists():
                    assert owner(crt.read_bytes()) == name
                    pair_of(crt.read_bytes(), key.read_bytes())

    @invariant()
    def b_targets_hold_their_own_accounts_pairs_and_valid_stages(self) -> None:
        for name in NAMES:
            self.held(name)

    @invariant()
    def c_no_secret_anywhere(self) -> None:
        assert leaks(self.fleet, self.world.bao.token) == []

    @invariant()
    def d_converges_then_status_tells_the_truth(self) -> None:
        """With every server up: `apply` then `plan` is clean, every target holds the live
        pair, status and metrics say so, and every live version holds every field SPEC
        lists (p12 is an output)."""
        if not self.proxy.running:
            return
        self.lacking.clear()
        code, out, err = self.fleet.run("apply", "--yes", "--no-verify")
        assert code == 0, f"apply with every server up: exit {code}\n{out}\n{err}"
        code, plan = self.fleet.plan()
        pending = [
            c for c in plan["changes"] if c["action"] != "promote" or not c["requires_upload"]
        ]
        assert pending == [], f"plan after apply: {pending}"
        truth = {
            name: {self.label(kind, name): fp == self.fleet.fingerprint(name)
                   for kind, fp in self.held(name).items()}
            for name in NAMES
        }  # fmt: skip
        assert all(all(v.values()) for v in truth.values()), f"after apply: {truth}"
        assert self.fleet.status() == truth, "status --json"
        assert self.fleet.metrics() == truth, "bfprov_published"
        lacking = {where: fields for where, fields in self.lacking.items() if fields}
        assert lacking == {}, f"live versions without a field: {lacking}"


@pytest.fixture
def world(
    tmp_path: Path,
    openbao: Bao,
    aws: Moto,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    # moto's server runs in this process: its request log is not bfprov's output.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES"):
        monkeypatch.delenv(name, raising=False)
    with Emulator(tmp_path / "sandbox") as emulator:
        for name in NAMES:
            emulator.add_account(name, PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emulator.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emulator.ca_path))
        yield World(tmp_path, openbao, aws, emulator, capsys)


SETTINGS = settings(
    max_examples=6,
    stateful_step_count=9,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),  # no shrinking: each example costs seconds
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def test_publishing_keeps_its_invariants(world: World) -> None:
    machine = type("Machine", (Publishing,), {"world": world})
    run_state_machine_as_test(machine, settings=SETTINGS)
