"""Shared fixtures. RSA keys are slow to make: each size is generated once per session."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bfprov import crypto
from bfprov.desired.models import Account, Desired
from bfprov.desired.profile import load_profiles
from bfprov.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# --- keys ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rsa_key_2048() -> rsa.RSAPrivateKey:
    """One 2048-bit RSA key for the whole session."""
    return crypto.generate_key(2048)


@pytest.fixture(scope="session")
def rsa_key_1024() -> rsa.RSAPrivateKey:
    """One 1024-bit RSA key for the whole session."""
    return crypto.generate_key(1024)


@pytest.fixture(scope="session")
def key_pem_2048(rsa_key_2048: rsa.RSAPrivateKey) -> bytes:
    """`rsa_key_2048` as unencrypted PKCS#8 PEM."""
    return crypto.private_key_pem(rsa_key_2048)


# --- accounts --------------------------------------------------------------------------


def _account(subject: dict[str, str] | None = None, **fields: Any) -> Account:
    data: dict[str, Any] = {
        "name": "alice",
        "username": "alice@example.com",
        "password": {"env": "P"},
        "app_key": {"env": "A"},
        "subject": subject if subject is not None else {"common_name": "alice bot"},
    }
    data.update(fields)
    return Account.model_validate(data)


@pytest.fixture
def make_account() -> Callable[..., Account]:
    """make_account(subject={...}, **fields): a validated Account, "alice" by default."""
    return _account


@pytest.fixture
def load_desired(tmp_path: Path) -> Callable[[str], Desired]:
    """load_desired(profile_text): the profile written to tmp_path/fleet.yaml, loaded as
    bfprov loads it (output_dir relative to it; no BFPROV_ setting overrides it)."""

    def load(text: str) -> Desired:
        profile = tmp_path / "fleet.yaml"
        profile.write_text(text)
        settings = Settings(profiles=profile, output_dir=None, identity_url=None)
        return load_profiles(profile, settings)

    return load


# --- the openssl command line ----------------------------------------------------------

RunOpenssl = Callable[..., subprocess.CompletedProcess[str]]


def _run_openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


@pytest.fixture
def openssl() -> RunOpenssl:
    """openssl(*args, cwd=None): run the real openssl command; fails the test on error."""
    return _run_openssl


@pytest.fixture
def betfair_procedure() -> Callable[[Path, str, bytes, int], tuple[bytes, bytes]]:
    """betfair_procedure(dir, cnf_text, key_pem, days) -> (csr, crt) made by Betfair's guide.

    Writes openssl.cnf and client-2048.key in `dir`, then runs, unchanged:
    openssl req -new -config openssl.cnf -key client-2048.key -out client-2048.csr
    openssl x509 -req -days N -in client-2048.csr -signkey client-2048.key
        -out client-2048.crt -extfile openssl.cnf -extensions ssl_client
    """

    def run(directory: Path, cnf: str, key_pem: bytes, days: int = 365) -> tuple[bytes, bytes]:
        (directory / "openssl.cnf").write_text(cnf, encoding="utf-8")
        (directory / "client-2048.key").write_bytes(key_pem)
        _run_openssl(
            "req", "-new", "-config", "openssl.cnf", "-key", "client-2048.key",
            "-out", "client-2048.csr", cwd=directory,
        )  # fmt: skip
        _run_openssl(
            "x509", "-req", "-days", str(days), "-in", "client-2048.csr",
            "-signkey", "client-2048.key", "-out", "client-2048.crt",
            "-extfile", "openssl.cnf", "-extensions", "ssl_client", cwd=directory,
        )  # fmt: skip
        return (directory / "client-2048.csr").read_bytes(), (
            directory / "client-2048.crt"
        ).read_bytes()

    return run


# --- a real browser: Debian's chromium, driven by Playwright ---------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package: a browser download cannot work here)."""
    from tests.support import needs

    sync_api = needs.module("playwright.sync_api", "pip install playwright")
    if not CHROMIUM.exists():
        needs.missing("Debian's chromium package is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


# --- real servers on loopback (tests/support/servers.py): visible to every test ---------------

from tests.support.servers import (  # noqa: E402
    age_identity,
    aws,
    make_bundle,
    moto_server,
    openbao,
    openbao_tls,
    publish_key,
    sops_env,
    sops_on_path,
)

__all__ = [
    "age_identity",
    "aws",
    "make_bundle",
    "moto_server",
    "openbao",
    "openbao_tls",
    "publish_key",
    "sops_env",
    "sops_on_path",
]


# --- the one fleet builder (tests/support/fleet.py) ------------------------------------

from tests.support import needs  # noqa: E402
from tests.support.fleet import CliFleet, PublishFleet  # noqa: E402
from tests.support.servers import MOTO, AgeIdentity, Bao, Moto  # noqa: E402
from tests.support.targets_fleet import (  # noqa: E402
    APP_KEY,
    P12_PASSWORD,
    PASSWORD,
    TOKEN_ENV,
    Switch,
    TargetsFleet,
)

MakeCliFleet = Callable[..., CliFleet]
MakePublishFleet = Callable[..., PublishFleet]


@pytest.fixture
def cli_fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> MakeCliFleet:
    """cli_fleet(profile_text, root=tmp_path, profile_path="fleet.yaml"): a CliFleet."""

    def make(profile_text: str, root: Path | None = None, **kw: Any) -> CliFleet:
        return CliFleet(root or tmp_path, capsys, profile_text, **kw)

    return make


@pytest.fixture
def publish_fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> MakePublishFleet:
    """publish_fleet(names=..., targets=..., ...): a PublishFleet in tmp_path."""

    def make(root: Path | None = None, **kw: Any) -> PublishFleet:
        return PublishFleet(root or tmp_path, capsys, **kw)

    return make


@pytest.fixture
def targets_fleet(
    tmp_path: Path,
    openbao: Bao,
    aws: Moto,
    sops_env: AgeIdentity,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> TargetsFleet:
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    monkeypatch.setenv("BF_PASSWORD", PASSWORD)
    monkeypatch.setenv("BF_APP_KEY", APP_KEY)
    monkeypatch.setenv("BF_P12_PASSWORD", P12_PASSWORD)
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return TargetsFleet(tmp_path, openbao, aws.endpoint, sops_env, capsys, prefix=prefix)


@pytest.fixture
def own_moto() -> Iterator[Switch]:
    switch = Switch(needs.module("moto.server", MOTO).ThreadedMotoServer)
    switch.start()
    try:
        yield switch
    finally:
        switch.stop()
