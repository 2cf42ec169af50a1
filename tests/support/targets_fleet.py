"""A fleet that publishes to every target kind at once, and both hooks, for the flows.

One profile names all three targets (an OpenBao dev server, moto's Secrets Manager, a
SOPS-encrypted Kubernetes manifest) and both hooks; `TargetsFleet` is a `CliFleet` that
writes it and reads back what each target holds. conftest.py hands it out as the
`targets_fleet` fixture; `Switch` is a moto server of a test's own (`own_moto`).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bfprov import crypto
from tests.support import needs
from tests.support.fleet import CliFleet
from tests.support.servers import REGION, AgeIdentity, Bao, free_port

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
class TargetsFleet(CliFleet):
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
        super().__init__(self.root, self.capsys, "")
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
        hvac = needs.module("hvac", "pip install 'bfprov[vault]'")
        return hvac.Client(url=self.bao.address, token=self.bao.token).secrets.kv.v2

    def vault_fingerprint(self, name: str = "alice") -> str | None:
        hvac = needs.module("hvac", "pip install 'bfprov[vault]'")
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
        boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")
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


def search_for_secrets(fleet: TargetsFleet, token: str) -> None:
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


def check_hook_runs(fleet: TargetsFleet, expected: list[tuple[str, str]], token: str) -> None:
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
