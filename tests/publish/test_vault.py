"""The Vault/OpenBao target against a real OpenBao dev server on loopback."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bfprov import crypto
from bfprov.desired.models import Subject
from bfprov.desired.targets import VaultConfig
from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError, Target
from bfprov.publish.kinds import make_target
from tests.support import needs
from tests.support.lossy_proxy import LossyProxy
from tests.support.servers import Bao, MakeBundle, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
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


def test_bfprovs_own_versions_are_no_conflict_whatever_the_record_says(
    vault_target: Target, openbao: Bao, make_bundle: MakeBundle
) -> None:
    """The metadata says which version bfprov wrote last: a record that a lost reply or a
    kill left behind (an older version, or none) is no conflict."""
    first = vault_target.publish(make_bundle(), last_version=None)
    second = vault_target.publish(make_bundle(), last_version=first.version)
    assert second.version == "2"
    assert vault_target.publish(make_bundle(), last_version="1").version == "3"
    fourth = make_bundle()
    assert vault_target.publish(fourth, last_version=None).version == "4"
    observed = vault_target.observe()
    assert observed is not None and observed.fingerprint == fourth.fingerprint
    meta = client(openbao).secrets.kv.v2.read_secret_metadata(
        path="test_bfprovs_own_versions_are_no_conflict_whatever_the_record_says/alice"
    )
    custom = meta["data"]["custom_metadata"]
    assert {k: v for k, v in custom.items() if not k.startswith("prior_")} == payload.metadata(
        fourth
    ) | {"version": "4"}


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


def test_a_token_that_may_not_write_metadata_writes_nothing(
    vault_target: Target,
    openbao: Bao,
    make_bundle: MakeBundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The description is written before the data: a token that may write the data only
    fails before writing anything, so the data never outruns its description."""
    root = client(openbao)
    root.sys.create_or_update_policy(
        name="data-only",
        policy='path "secret/data/partial/*" { capabilities = ["create", "update"] }\n'
        'path "secret/metadata/partial/*" { capabilities = ["read"] }',
    )
    token = root.auth.token.create(policies=["data-only"], ttl="5m")["auth"]["client_token"]
    monkeypatch.setenv(TOKEN_ENV, token)
    config = VaultConfig(
        address=openbao.address, token={"env": TOKEN_ENV}, path="partial/{account}"
    )
    with pytest.raises(PublishError) as exc:
        make_target(config, "alice", tmp_path, timeout=5).publish(make_bundle(), last_version=None)
    assert exc.value.reason == "permission denied (check the token and its policy)"
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version(path="partial/alice", raise_on_deleted_version=True)
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    target = make_target(config, "alice", tmp_path, timeout=5)
    assert target.observe() is None
    bundle = make_bundle()
    assert target.publish(bundle, last_version=None).version == "1"
    assert target.observe() == Published(
        bundle.fingerprint, bundle.not_after.replace(microsecond=0), "1"
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


# --- lost replies: idempotent delivery -------------------------------------------------


@pytest.fixture
def lossy(openbao: Bao) -> Iterator[LossyProxy]:
    with LossyProxy(openbao.address) as proxy:
        yield proxy


def _through(
    proxy: LossyProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str
) -> Target:
    config = VaultConfig(address=proxy.url, token={"env": TOKEN_ENV}, path=path)
    return make_target(config, "alice", tmp_path, timeout=5)


@pytest.mark.parametrize("lost", ["data", "metadata"])
def test_a_lost_reply_is_never_a_conflict(
    lost: str,
    lossy: LossyProxy,
    openbao: Bao,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_bundle: MakeBundle,
) -> None:
    """The write happened, its reply never came back: the retry finds the pair there (or
    writes it), whatever version bfprov's record names, and the target holds the pair."""
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    path = f"lost-{lost}/{{account}}"
    target = _through(lossy, monkeypatch, tmp_path, path)
    first = target.publish(make_bundle(), last_version=None)
    second = make_bundle()
    lossy.lose_reply("POST", f"/v1/secret/{lost}/lost-{lost}/alice")
    with pytest.raises(PublishError, match="unreachable"):
        target.publish(second, last_version=first.version)
    assert lossy.lost  # the request reached OpenBao; only its reply was lost
    # Observing (metadata only) says what the target holds: the new pair, or still the
    # old one when only the description went through; never a value nobody wrote.
    observed = target.observe()
    assert observed is not None and observed.fingerprint in (first.fingerprint, second.fingerprint)
    # The retry, with the version bfprov had on record before, converges: no conflict.
    again = target.publish(second, last_version=first.version)
    assert again.fingerprint == second.fingerprint
    assert target.observe() == Published(
        second.fingerprint, second.not_after.replace(microsecond=0), again.version
    )
    kv = client(openbao).secrets.kv.v2
    data = kv.read_secret_version(path=f"lost-{lost}/alice", raise_on_deleted_version=True)
    assert data["data"]["data"] == payload.data(second)
    assert data["data"]["metadata"]["version"] == int(again.version or 0) == 2
    # And a retry with no record at all (a kill before bfprov recorded anything).
    assert target.publish(second, last_version=None) == again


def test_a_lost_reply_to_a_first_write_is_never_a_conflict(
    lossy: LossyProxy,
    openbao: Bao,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_bundle: MakeBundle,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    target = _through(lossy, monkeypatch, tmp_path, "lost-first/{account}")
    bundle = make_bundle()
    lossy.lose_reply("POST", "/v1/secret/data/lost-first/alice")
    with pytest.raises(PublishError, match="unreachable"):
        target.publish(bundle, last_version=None)
    observed = target.observe()
    assert observed is not None and observed.fingerprint == bundle.fingerprint
    assert target.publish(bundle, last_version=None).version == "1"


def test_another_pair_written_out_of_band_is_still_a_conflict(
    vault_target: Target, openbao: Bao, make_bundle: MakeBundle
) -> None:
    """Idempotence is for the pair being delivered: a value bfprov did not write stays."""
    vault_target.publish(make_bundle(), last_version=None)
    path = "test_another_pair_written_out_of_band_is_still_a_conflict/alice"
    client(openbao).secrets.kv.v2.create_or_update_secret(path=path, secret={"tls.crt": "x"})
    for last in (None, "1", "2"):
        with pytest.raises(PublishError, match="conflict"):
            vault_target.publish(make_bundle(), last_version=last)
    observed = vault_target.observe()
    assert observed is not None and (observed.fingerprint, observed.version) == (None, "2")


def test_a_write_in_between_is_a_conflict_and_undoes_the_description(
    lossy: LossyProxy,
    openbao: Bao,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_bundle: MakeBundle,
) -> None:
    """Someone writes between bfprov's description and its data: check-and-set refuses
    bfprov's write, the description is put back, and their version is not taken for
    bfprov's."""
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    target = _through(lossy, monkeypatch, tmp_path, "between/{account}")
    first = target.publish(make_bundle(), last_version=None)
    kv = client(openbao).secrets.kv.v2
    lossy.before(
        "POST",
        "/v1/secret/data/between/alice",
        lambda: kv.create_or_update_secret(path="between/alice", secret={"tls.crt": "x"}),
    )
    with pytest.raises(PublishError) as exc:
        target.publish(make_bundle(), last_version=first.version)
    assert exc.value.reason == (
        "conflict: the secret changed while bfprov wrote it (from version 1, now at version 2)"
    )
    observed = target.observe()
    assert observed is not None and (observed.fingerprint, observed.version) == (None, "2")
    custom = kv.read_secret_metadata(path="between/alice")["data"]["custom_metadata"]
    assert (custom["fingerprint"], custom["version"]) == (first.fingerprint, "1")


def test_a_description_whose_data_never_came_is_put_right(
    lossy: LossyProxy,
    openbao: Bao,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make_bundle: MakeBundle,
) -> None:
    """The description of the next version went through, its data never did: the current
    version still holds the pair it held, and delivering that pair again says so plainly."""
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    target = _through(lossy, monkeypatch, tmp_path, "never-came/{account}")
    first = make_bundle()
    target.publish(first, last_version=None)
    lossy.lose_reply("POST", "/v1/secret/metadata/never-came/alice")
    with pytest.raises(PublishError, match="unreachable"):
        target.publish(make_bundle(), last_version="1")
    observed = target.observe()
    assert observed is not None and (observed.fingerprint, observed.version) == (
        first.fingerprint,
        "1",
    )
    assert target.publish(first, last_version="1").version == "1"
    custom = client(openbao).secrets.kv.v2.read_secret_metadata(path="never-came/alice")
    assert custom["data"]["custom_metadata"] == payload.metadata(first) | {"version": "1"}
