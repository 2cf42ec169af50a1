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
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bfprov import crypto
from bfprov.cli import main
from tests import needs
from tests.servers import (  # noqa: F401 (fixtures, for the tests below)
    MOTO,
    REGION,
    AgeIdentity,
    Bao,
    Moto,
    age_identity,
    aws,
    free_port,
    moto_server,
    openbao,
    sops_env,
    sops_on_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

hvac = needs.module("hvac", "pip install 'bfprov[vault]'")
boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")

BITS = 1024  # fast keys (a warning says so): these tests are about delivery
STEM = f"client-{BITS}"
PASSWORD = "Pw-4f0d &=%+ SECRET"
APP_KEY = "AppKey-91c2e7-SECRET"
P12_PASSWORD = "P12-77a1b3-SECRET"
TOKEN_ENV = "VAULT_TOKEN"  # not BF_*: a hook must not see it because the profile names it

HOOK = """\
import json, os, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
"""


@dataclass
class Fleet:
    """A profile with every target and both hooks, and all that bfprov printed."""

    root: Path
    bao: Bao
    aws_endpoint: str
    age: AgeIdentity
    capsys: pytest.CaptureFixture[str]
    names: tuple[str, ...] = ("alice",)
    prefix: str = "t"
    generation: int = 1
    vault_address: str = ""
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.profile = self.root / "fleet.yaml"
        self.out = self.root / "certs"
        self.k8s = self.root / "k8s"
        self.hook_log = self.root / "hooks.jsonl"
        self.hook = self.root / "hook.py"
        self.hook.write_text(HOOK.format(log=str(self.hook_log)))
        self.vault_address = self.vault_address or self.bao.address
        self.write_profile()

    # --- the profile --------------------------------------------------------------------

    def write_profile(self) -> None:
        accounts = "".join(
            f"  - {{name: {n}, username: {n}, password: {{env: BF_PASSWORD}}, "
            f"subject: {{common_name: {n} gen {self.generation}}}}}\n"
            for n in self.names
        )
        hook = json.dumps([sys.executable, str(self.hook), "{account}"])
        self.profile.write_text(
            "version: 1\n"
            "output_dir: certs\n"
            "defaults:\n"
            "  app_key: {env: BF_APP_KEY}\n"
            f"  key: {{size: {BITS}}}\n"
            "  outputs: [key, crt, pem, p12]\n"
            "  p12: {password: {env: BF_P12_PASSWORD}}\n"
            "  publish:\n"
            "    - vault:\n"
            f"        address: {self.vault_address}\n"
            f"        token: {{env: {TOKEN_ENV}}}\n"
            f"        path: {self.prefix}/{{account}}\n"
            "    - aws_secrets_manager:\n"
            f"        region: {REGION}\n"
            f"        name: {self.prefix}/{{account}}\n"
            f"        endpoint_url: {self.aws_endpoint}\n"
            "    - kubernetes:\n"
            "        dir: k8s\n"
            "        namespace: bots\n"
            "        name: betfair-{account}\n"
            f"        sops_age_recipients: [{self.age.recipient}]\n"
            "  hooks:\n"
            f"    on_live: {hook}\n"
            f"    on_failure: {hook}\n"
            "    timeout: 30s\n"
            "accounts:\n"
            f"{accounts}"
        )

    def rotate(self) -> None:
        """A new subject: the next apply stages a new pair."""
        self.generation += 1
        self.write_profile()

    # --- running bfprov -----------------------------------------------------------------

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "--profiles", str(self.profile)])
        captured = self.capsys.readouterr()
        self.texts += [captured.out, captured.err]
        return code, captured.out, captured.err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, f"{args}: exit {code}\n{out}\n{err}"
        return out

    def plan(self, *extra: str) -> tuple[int, dict[str, Any]]:
        code, out, err = self.run("plan", "--json", "--detailed-exitcode", *extra)
        assert code in (0, 2), err
        result: dict[str, Any] = json.loads(out)
        return code, result

    def status(self) -> dict[str, dict[str, bool]]:
        rows = json.loads(self.ok("status", "--json"))
        rows = rows["accounts"] if isinstance(rows, dict) else rows
        return {r["account"]: r["published"] for r in rows}

    def metrics(self) -> dict[tuple[str, str], float]:
        text = self.ok("status", "--prometheus")
        found = re.findall(r'^bfprov_published\{account="([^"]+)",target="([^"]+)"\} (\S+)$',
                           text, re.M)  # fmt: skip
        return {(a, t): float(v) for a, t, v in found}

    # --- what is where ------------------------------------------------------------------

    def directory(self, name: str = "alice") -> Path:
        return self.out / name

    def fingerprint(self, name: str = "alice") -> str:
        crt = (self.directory(name) / f"{STEM}.crt").read_bytes()
        return crypto.inspect_certificate(crt).fingerprint_sha256

    def labels(self, name: str = "alice") -> dict[str, str]:
        return {
            "vault": f"vault {self.vault_address} secret/{self.prefix}/{name}",
            "aws": f"aws_secrets_manager {self.aws_endpoint} {self.prefix}/{name}",
            "kubernetes": f"kubernetes {self.k8s / f'betfair-{name}.yaml'}",
        }

    def files(self, name: str = "alice") -> dict[str, bytes]:
        """Every file of the account's directory (pair, derived files, staged, archive)."""
        root = self.directory(name)
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".bfprov" not in p.parts
        }

    def vault(self) -> Any:
        return hvac.Client(url=self.bao.address, token=self.bao.token).secrets.kv.v2

    def vault_fingerprint(self, name: str = "alice") -> str | None:
        try:
            meta = self.vault().read_secret_metadata(path=f"{self.prefix}/{name}")["data"]
        except hvac.exceptions.InvalidPath:
            return None
        fingerprint: str | None = (meta.get("custom_metadata") or {}).get("fingerprint")
        return fingerprint

    def vault_data(self, name: str = "alice") -> dict[str, str]:
        reply = self.vault().read_secret_version(
            path=f"{self.prefix}/{name}", raise_on_deleted_version=True
        )
        data: dict[str, str] = reply["data"]["data"]
        return data

    def sm(self) -> Any:
        return boto3.client("secretsmanager", region_name=REGION, endpoint_url=self.aws_endpoint)

    def aws_stages(self, name: str = "alice") -> dict[str, str]:
        """Stage -> version id (the pair's fingerprint)."""
        secret = self.sm().describe_secret(SecretId=f"{self.prefix}/{name}")
        return {
            stage: vid for vid, stages in secret["VersionIdsToStages"].items() for stage in stages
        }

    def manifest(self, name: str = "alice") -> dict[str, Any]:
        """The SOPS-encrypted manifest, decrypted by sops (SOPS_AGE_KEY_FILE)."""
        done = subprocess.run(
            ["sops", "--decrypt", str(self.k8s / f"betfair-{name}.yaml")],
            capture_output=True,
            check=True,
        )
        from ruamel.yaml import YAML

        result: dict[str, Any] = YAML(typ="safe").load(done.stdout)
        return result

    def held(self, name: str = "alice") -> dict[str, str | None]:
        """The fingerprint each target holds as live, read from the targets themselves."""
        k8s = self.manifest(name)["metadata"]["annotations"]["bfprov.io/fingerprint"]
        return {
            "vault": self.vault_fingerprint(name),
            "aws": self.aws_stages(name).get("AWSCURRENT"),
            "kubernetes": k8s,
        }

    def hooks(self) -> list[dict[str, Any]]:
        if not self.hook_log.exists():
            return []
        return [json.loads(line) for line in self.hook_log.read_text().splitlines()]

    def events(self) -> list[dict[str, Any]]:
        path = self.out / ".bfprov" / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def fleet(
    tmp_path: Path,
    openbao: Bao,
    aws: Moto,
    sops_env: AgeIdentity,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> Fleet:
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_P12_PASSWORD", P12_PASSWORD)
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return Fleet(tmp_path, openbao, aws.endpoint, sops_env, capsys, prefix=prefix)


def search_for_secrets(fleet: Fleet, token: str) -> None:
    """No token, password, app key, p12 password or key material anywhere bfprov wrote
    for people or for itself: outputs, plan files, records, published.json, events."""
    keys = [p.read_text() for p in fleet.out.rglob(f"{STEM}.key")]
    assert keys
    needles = [token, PASSWORD, APP_KEY, P12_PASSWORD, "PRIVATE KEY"]
    for key in keys:
        lines = [line for line in key.splitlines() if not line.startswith("-----")]
        needles += [lines[1], lines[-2]]  # whole base64 lines of the key
        needles.append(base64.b64encode(key.encode()).decode()[:48])
    blobs = list(fleet.texts)
    blobs += [p.read_text() for p in fleet.root.glob("*.plan.json")]
    records = [p for p in fleet.out.rglob("*") if p.is_file() and ".bfprov" in p.parts]
    assert any(p.name == "published.json" for p in records)
    assert any(p.name == "events.jsonl" for p in records)
    blobs += [p.read_text() for p in records]
    leaks = [(n[:10], b[:80]) for b in blobs for n in needles if n in b]
    assert leaks == []


def check_hook_runs(fleet: Fleet, expected: list[tuple[str, str]], token: str) -> None:
    """Each hook run had the argv, the SPEC's variables, and never a secret."""
    runs = fleet.hooks()
    assert [(r["argv"][0], r["env"]["BFPROV_EVENT"]) for r in runs] == expected
    secrets = (PASSWORD, APP_KEY, P12_PASSWORD, token)
    for run in runs:
        env = run["env"]
        name = run["argv"][0]
        assert env["BFPROV_ACCOUNT"] == name
        assert env["BFPROV_ACCOUNT_DIR"] == str(fleet.directory(name))
        assert env["BFPROV_CRT"] == str(fleet.directory(name) / f"{STEM}.crt")
        assert env["BFPROV_KEY"] == str(fleet.directory(name) / f"{STEM}.key")
        assert re.fullmatch(r"[0-9a-f]{64}", env["BFPROV_FINGERPRINT"])
        assert env["BFPROV_JURISDICTION"] == "com"
        for name in ("BF_PASSWORD", "BF_APP_KEY", "BF_P12_PASSWORD", TOKEN_ENV):
            assert name not in env
        assert not [s for s in secrets if s in json.dumps(env)]


# --- the lifecycle ---------------------------------------------------------------------


def test_create_rotate_promote_rollback_through_every_target(fleet: Fleet) -> None:
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


def test_out_of_band_deletes_are_planned_and_restored(fleet: Fleet) -> None:
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


def test_out_of_band_changes_are_planned_and_repaired(fleet: Fleet) -> None:
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


class Switch:
    """A moto server of the test's own on a fixed port, to stop and start again (moto
    keeps its state in this process, so a restarted server holds the same secrets)."""

    def __init__(self, server_class: Any) -> None:
        self.port = free_port()
        self._class = server_class
        self._server: Any = None

    def start(self) -> None:
        self._server = self._class(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def own_moto() -> Iterator[Switch]:
    switch = Switch(needs.module("moto.server", MOTO).ThreadedMotoServer)
    switch.start()
    try:
        yield switch
    finally:
        switch.stop()


def test_a_target_that_is_down_fails_the_apply_and_the_next_one_converges(
    fleet: Fleet, own_moto: Switch
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
    fleet: Fleet, own_moto: Switch
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
