"""The Vault/OpenBao target against a real OpenBao dev server on loopback."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bfprov import crypto
from bfprov.desired.models import Subject
from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError, Target, make_target
from bfprov.publish.config import VaultConfig
from tests import needs
from tests.servers import (  # noqa: F401 (fixtures, for the tests below)
    Bao,
    MakeBundle,
    free_port,
    make_bundle,
    openbao,
    openbao_tls,
    publish_key,
)

if TYPE_CHECKING:
    from pathlib import Path

hvac = needs.module("hvac", "pip install 'bfprov[vault]'")

TOKEN_ENV = "BFPROV_TEST_VAULT_TOKEN"


@pytest.fixture
def vault_target(
    openbao: Bao, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Target:
    """A target at a path of its own (the server lives for the whole session)."""
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    config = VaultConfig(
        address=openbao.address,
        token={"env": TOKEN_ENV},
        path=f"{request.node.name}/{{account}}",
    )
    return make_target(config, "alice", tmp_path, timeout=5)


def client(bao: Bao) -> Any:
    return hvac.Client(url=bao.address, token=bao.token)


def test_publish_then_observe(vault_target: Target, openbao: Bao, make_bundle: MakeBundle) -> None:
    assert vault_target.observe() is None
    bundle = make_bundle(p12=True)
    published = vault_target.publish(bundle, last_version=None)
    assert published.fingerprint == bundle.fingerprint
    assert published.version == "1"
    observed = vault_target.observe()
    assert observed == published
    assert observed is not None
    assert observed.not_after == bundle.not_after.replace(microsecond=0)
    # What a bot reads: the data keys, and the description as custom_metadata.
    path = "test_publish_then_observe/alice"
    secret = client(openbao).secrets.kv.v2.read_secret_version(
        path=path, raise_on_deleted_version=True
    )
    assert secret["data"]["data"] == payload.data(bundle)
    assert secret["data"]["metadata"]["custom_metadata"] == payload.metadata(bundle) | {
        "version": "1"
    }
    assert vault_target.label == f"vault {openbao.address} secret/{path}"


def test_check_and_set_on_the_version_bfprov_wrote(
    vault_target: Target, make_bundle: MakeBundle
) -> None:
    first = vault_target.publish(make_bundle(), last_version=None)
    second = vault_target.publish(make_bundle(), last_version=first.version)
    assert second.version == "2"
    with pytest.raises(PublishError) as stale:
        vault_target.publish(make_bundle(), last_version="1")
    assert str(stale.value) == (
        f"{vault_target.label}: conflict: the secret changed since bfprov wrote version 1 "
        "(now at version 2)"
    )
    with pytest.raises(PublishError, match="conflict: a secret bfprov did not write"):
        vault_target.publish(make_bundle(), last_version=None)
    observed = vault_target.observe()
    assert observed is not None and observed.fingerprint == second.fingerprint


def test_deleted_out_of_band_observes_as_none(
    vault_target: Target, openbao: Bao, make_bundle: MakeBundle
) -> None:
    path = "test_deleted_out_of_band_observes_as_none/alice"
    kv = client(openbao).secrets.kv.v2
    published = vault_target.publish(make_bundle(), last_version=None)
    kv.delete_latest_version_of_secret(path=path)  # `bao kv delete`: a soft delete
    assert vault_target.observe() is None
    again = vault_target.publish(make_bundle(), last_version=published.version)
    assert vault_target.observe() == again
    kv.delete_metadata_and_all_versions(path=path)  # `bao kv metadata delete`
    assert vault_target.observe() is None


def test_changed_out_of_band_observes_without_fingerprint(
    vault_target: Target, openbao: Bao, make_bundle: MakeBundle
) -> None:
    vault_target.publish(make_bundle(), last_version=None)
    path = "test_changed_out_of_band_observes_without_fingerprint/alice"
    client(openbao).secrets.kv.v2.create_or_update_secret(path=path, secret={"tls.crt": "x"})
    observed = vault_target.observe()
    assert observed is not None
    assert (observed.fingerprint, observed.version) == (None, "2")


def test_observe_reads_metadata_only(
    vault_target: Target,
    openbao: Bao,
    make_bundle: MakeBundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A token that may read metadata and nothing else is enough to observe."""
    published = vault_target.publish(make_bundle(), last_version=None)
    root = client(openbao)
    root.sys.create_or_update_policy(
        name="metadata-only", policy='path "secret/metadata/*" { capabilities = ["read"] }'
    )
    token = root.auth.token.create(policies=["metadata-only"], ttl="5m")["auth"]["client_token"]
    monkeypatch.setenv(TOKEN_ENV, token)
    config = VaultConfig(
        address=openbao.address,
        token={"env": TOKEN_ENV},
        path="test_observe_reads_metadata_only/{account}",
    )
    narrow = make_target(config, "alice", tmp_path, timeout=5)
    assert narrow.observe() == published
    with pytest.raises(PublishError, match="permission denied") as denied:
        narrow.publish(make_bundle(), last_version=published.version)
    assert token not in str(denied.value)


def test_data_written_but_metadata_refused_names_the_version(
    vault_target: Target,
    openbao: Bao,
    make_bundle: MakeBundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The version written is handed back, so the next publish is not a false conflict."""
    root = client(openbao)
    root.sys.create_or_update_policy(
        name="data-only",
        policy='path "secret/data/partial/*" { capabilities = ["create", "update"] }',
    )
    token = root.auth.token.create(policies=["data-only"], ttl="5m")["auth"]["client_token"]
    monkeypatch.setenv(TOKEN_ENV, token)
    config = VaultConfig(
        address=openbao.address, token={"env": TOKEN_ENV}, path="partial/{account}"
    )
    with pytest.raises(PublishError) as exc:
        make_target(config, "alice", tmp_path, timeout=5).publish(make_bundle(), last_version=None)
    assert exc.value.written_version == "1"
    assert exc.value.reason == (
        "wrote version 1 but not its metadata: permission denied (check the token and its policy)"
    )
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    target = make_target(config, "alice", tmp_path, timeout=5)
    observed = target.observe()
    assert observed is not None and (observed.fingerprint, observed.version) == (None, "1")
    bundle = make_bundle()
    assert target.publish(bundle, last_version=exc.value.written_version).version == "2"
    assert target.observe() == Published(
        bundle.fingerprint, bundle.not_after.replace(microsecond=0), "2"
    )


def test_stage_writes_nothing(vault_target: Target, make_bundle: MakeBundle) -> None:
    assert vault_target.stage(make_bundle()) is None
    assert vault_target.observe() is None


def test_a_token_from_a_file_relative_to_the_profile(
    openbao: Bao, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "vault-token").write_text(openbao.token + "\n")
    config = VaultConfig(
        address=openbao.address, token={"file": "secrets/vault-token"}, path="file-token/{account}"
    )
    target = make_target(config, "bob", tmp_path, timeout=5)
    assert target.publish(make_bundle("bob"), last_version=None).version == "1"


def test_a_missing_token_names_the_reference(openbao: Bao, tmp_path: Path) -> None:
    config = VaultConfig(
        address=openbao.address, token={"env": "NO_SUCH_VAR_X"}, path="p/{account}"
    )
    with pytest.raises(PublishError) as exc:
        make_target(config, "alice", tmp_path)
    assert "environment variable NO_SUCH_VAR_X is not set" in str(exc.value)
    assert str(exc.value).startswith(f"vault {openbao.address} secret/p/alice: ")


def test_a_wrong_token_is_refused_without_echoing_it(
    openbao: Bao, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    wrong = "s.wrong-token-" + "q" * 20
    monkeypatch.setenv(TOKEN_ENV, wrong)
    config = VaultConfig(address=openbao.address, token={"env": TOKEN_ENV}, path="w/{account}")
    target = make_target(config, "alice", tmp_path, timeout=5)
    bundle = make_bundle()
    for attempt in (target.observe, lambda: target.publish(bundle, last_version=None)):
        with pytest.raises(PublishError, match="permission denied") as exc:
            attempt()
        assert wrong not in str(exc.value)
        assert bundle.key_pem.decode() not in str(exc.value)


def test_a_target_that_is_down_fails_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "t" * 26)
    address = f"http://127.0.0.1:{free_port()}"
    config = VaultConfig(address=address, token={"env": TOKEN_ENV}, path="betfair/{account}")
    target = make_target(config, "alice", tmp_path, timeout=2)
    started = time.monotonic()
    with pytest.raises(PublishError) as exc:
        target.publish(make_bundle(), last_version=None)
    assert time.monotonic() - started < 2
    assert (
        str(exc.value) == f"vault {address} secret/betfair/alice: unreachable: connection refused"
    )


def test_https_with_the_servers_ca(
    openbao_tls: Bao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle
) -> None:
    assert openbao_tls.ca is not None
    monkeypatch.setenv(TOKEN_ENV, openbao_tls.token)
    config = VaultConfig(
        address=openbao_tls.address,
        token={"env": TOKEN_ENV},
        path="tls/{account}",
        ca_bundle=str(openbao_tls.ca),
    )
    published = make_target(config, "alice", tmp_path, timeout=5).publish(
        make_bundle(), last_version=None
    )
    assert published.version == "1"


def test_https_with_another_ca_fails_verification(
    openbao_tls: Bao, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publish_key: object
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert isinstance(publish_key, rsa.RSAPrivateKey)
    other = crypto.self_signed_certificate(
        publish_key, Subject(common_name="another CA"), 1, datetime.now(UTC)
    )
    (tmp_path / "other-ca.pem").write_bytes(other)
    monkeypatch.setenv(TOKEN_ENV, openbao_tls.token)
    for ca_bundle in ("other-ca.pem", None):  # relative to the profile; the system's CAs
        config = VaultConfig(
            address=openbao_tls.address,
            token={"env": TOKEN_ENV},
            path="tls/{account}",
            ca_bundle=ca_bundle,
        )
        with pytest.raises(PublishError, match="TLS failed: certificate verify failed") as exc:
            make_target(config, "alice", tmp_path, timeout=5).observe()
        assert openbao_tls.token not in str(exc.value)


def test_a_missing_ca_bundle_is_named(openbao: Bao, tmp_path: Path) -> None:
    config = VaultConfig(
        address=openbao.address, token={"env": TOKEN_ENV}, path="p", ca_bundle="nope.pem"
    )
    with pytest.raises(PublishError, match=r"ca_bundle .*nope\.pem is not a file"):
        make_target(config, "alice", tmp_path)


def test_without_hvac_one_line_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)  # makes `import hvac` fail
    config = VaultConfig(address="https://vault.example.com:8200", token={"env": "X"}, path="p")
    with pytest.raises(PublishError) as exc:
        make_target(config, "alice", tmp_path)
    assert str(exc.value) == "vault target needs the hvac package: pip install 'bfprov[vault]'"
