"""The Kubernetes target: plain and SOPS-encrypted Secret manifests, read back for real."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from ruamel.yaml import YAML

from bfprov.desired.targets import KubernetesConfig
from bfprov.publish.base import Published, PublishError
from bfprov.publish.kinds import make_target
from tests.support.servers import AgeIdentity, MakeBundle

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.publish.bundle import Bundle


def load(text: str | bytes) -> Any:
    return YAML(typ="safe").load(text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def expected_data(bundle: Bundle) -> dict[str, str]:
    data = {
        "tls.crt": b64(bundle.cert_pem),
        "tls.key": b64(bundle.key_pem),
        "tls-combined.pem": b64(bundle.cert_pem + bundle.key_pem),
    }
    if bundle.p12 is not None:
        data["keystore.p12"] = b64(bundle.p12)
    return data


def test_plain_manifest(tmp_path: Path, make_bundle: MakeBundle) -> None:
    profile_dir = tmp_path / "profiles"
    config = KubernetesConfig(dir="../k8s", namespace="bots", name="betfair-{account}")
    target = make_target(config, "alice", profile_dir)
    path = tmp_path / "k8s" / "betfair-alice.yaml"  # dir is relative to the profile
    assert target.label == f"kubernetes {path}"
    assert target.observe() is None
    bundle = make_bundle(p12=True)
    assert target.publish(bundle, last_version=None) == Published(
        bundle.fingerprint, bundle.not_after
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path.read_text()) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": "betfair-alice",
            "namespace": "bots",
            "labels": {"app.kubernetes.io/managed-by": "bfprov"},
            "annotations": {
                "bfprov.io/fingerprint": bundle.fingerprint,
                "bfprov.io/not-after": bundle.not_after_text,
                "bfprov.io/account": "alice",
                "bfprov.io/jurisdiction": "com",
            },
        },
        "data": expected_data(bundle),
    }
    observed = target.observe()
    assert observed is not None
    assert observed.fingerprint == bundle.fingerprint
    assert observed.not_after == bundle.not_after.replace(microsecond=0)
    # No p12: no keystore entry.
    plain = make_bundle()
    target.publish(plain, last_version=None)
    assert "keystore.p12" not in load(path.read_text())["data"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["betfair-alice.yaml"]


def test_stage_writes_nothing(tmp_path: Path, make_bundle: MakeBundle) -> None:
    config = KubernetesConfig(dir="k8s", namespace="bots", name="betfair-{account}")
    target = make_target(config, "alice", tmp_path)
    assert target.stage(make_bundle()) is None
    assert not (tmp_path / "k8s").exists()


def test_a_file_that_is_not_bfprovs_observes_without_fingerprint(
    tmp_path: Path, make_bundle: MakeBundle
) -> None:
    config = KubernetesConfig(dir=".", namespace="bots", name="betfair-{account}")
    target = make_target(config, "alice", tmp_path)
    for text in ("{not: [yaml", "- a list\n", "kind: Secret\nmetadata: {}\n"):
        (tmp_path / "betfair-alice.yaml").write_text(text)
        assert target.observe() == Published(None, None)


def test_sops_manifest_decrypts_to_the_pair(
    tmp_path: Path, sops_env: AgeIdentity, make_bundle: MakeBundle
) -> None:
    config = KubernetesConfig(
        dir="k8s",
        namespace="bots",
        name="betfair-{account}",
        sops_age_recipients=[sops_env.recipient],
    )
    target = make_target(config, "alice", tmp_path, timeout=20)
    bundle = make_bundle(p12=True)
    target.publish(bundle, last_version=None)
    path = tmp_path / "k8s" / "betfair-alice.yaml"
    assert sorted(os.listdir(path.parent)) == ["betfair-alice.yaml"]  # no plaintext copy
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    on_disk = path.read_text()
    for secret in (
        bundle.key_pem.decode(),
        b64(bundle.key_pem),
        "PRIVATE KEY",
        b64(bundle.p12 or b""),
    ):
        assert secret not in on_disk
    manifest = load(on_disk)
    assert manifest["sops"]["age"][0]["recipient"] == sops_env.recipient
    assert all(v.startswith("ENC[") for v in manifest["data"].values())
    # The annotations stay readable: observing decrypts nothing.
    observed = target.observe()
    assert observed is not None and observed.fingerprint == bundle.fingerprint

    decrypted = subprocess.run(
        ["sops", "--decrypt", str(path)], capture_output=True, check=True, timeout=20
    ).stdout
    secret = load(decrypted)
    assert secret["data"] == expected_data(bundle)
    assert base64.b64decode(secret["data"]["tls.key"]) == bundle.key_pem
    assert secret["metadata"]["annotations"]["bfprov.io/fingerprint"] == bundle.fingerprint


def test_sops_failure_names_the_target_and_writes_nothing(
    tmp_path: Path,
    make_bundle: MakeBundle,
    age_identity: AgeIdentity,
    sops_on_path: str,
) -> None:
    # A well-formed recipient whose checksum is wrong: sops refuses it. (Validation refuses
    # it first; built without validation here, to see what a sops failure looks like.)
    broken = age_identity.recipient[:-1] + ("q" if age_identity.recipient[-1] != "q" else "p")
    config = KubernetesConfig.model_construct(
        dir="k8s", namespace="bots", name="betfair-{account}", sops_age_recipients=[broken]
    )
    target = make_target(config, "alice", tmp_path, timeout=20)
    bundle = make_bundle()
    with pytest.raises(PublishError) as exc:
        target.publish(bundle, last_version=None)
    message = str(exc.value)
    assert message.startswith(f"{target.label}: sops failed: ")
    assert f'malformed recipient "{broken}": invalid checksum' in message
    assert "\n" not in message
    assert "PRIVATE KEY" not in message and b64(bundle.key_pem)[:40] not in message
    assert not (tmp_path / "k8s" / "betfair-alice.yaml").exists()


def test_without_sops_one_line(
    tmp_path: Path,
    make_bundle: MakeBundle,
    age_identity: AgeIdentity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    config = KubernetesConfig(
        dir="k8s",
        namespace="bots",
        name="n-{account}",
        sops_age_recipients=[age_identity.recipient],
    )
    with pytest.raises(PublishError, match="needs the sops command on PATH"):
        make_target(config, "alice", tmp_path).publish(make_bundle(), last_version=None)


def test_an_account_name_kubernetes_refuses(tmp_path: Path) -> None:
    config = KubernetesConfig(dir="k8s", namespace="bots", name="betfair-{account}")
    with pytest.raises(PublishError) as exc:
        make_target(config, "bot_1", tmp_path)
    assert "'betfair-bot_1' (from 'betfair-{account}') is not a valid Kubernetes name" in str(
        exc.value
    )


def test_an_unwritable_directory_is_a_publish_error(
    tmp_path: Path, make_bundle: MakeBundle
) -> None:
    (tmp_path / "k8s").write_text("a file where the directory should be")
    config = KubernetesConfig(dir="k8s", namespace="bots", name="betfair-{account}")
    target = make_target(config, "alice", tmp_path)
    with pytest.raises(PublishError) as exc:
        target.publish(make_bundle(), last_version=None)
    assert str(exc.value).startswith(f"{target.label}: ")


@pytest.mark.parametrize(
    "content",
    [
        "version: 1\noutput_dir: certs\naccounts: []\n",  # a profile
        "apiVersion: v1\nkind: Secret\nmetadata: {name: betfair-alice, labels: {app: x}}\n",
        "{not: [yaml",
    ],
)
def test_a_file_bfprov_did_not_write_is_never_replaced(
    tmp_path: Path, make_bundle: MakeBundle, content: str
) -> None:
    theirs = tmp_path / "k8s" / "betfair-alice.yaml"
    theirs.parent.mkdir()
    theirs.write_text(content)
    config = KubernetesConfig(dir="k8s", namespace="bots", name="betfair-{account}")
    target = make_target(config, "alice", tmp_path)
    with pytest.raises(PublishError) as exc:
        target.publish(make_bundle(), last_version=None)
    assert str(exc.value).startswith(f"{target.label}: {theirs} exists and bfprov did not write")
    assert theirs.read_text() == content


def test_a_sops_manifest_bfprov_wrote_is_replaced(
    tmp_path: Path, sops_env: AgeIdentity, make_bundle: MakeBundle
) -> None:
    config = KubernetesConfig(
        dir="k8s",
        namespace="bots",
        name="betfair-{account}",
        sops_age_recipients=[sops_env.recipient],
    )
    target = make_target(config, "alice", tmp_path, timeout=20)
    target.publish(make_bundle(), last_version=None)
    # Encrypted, the labels stay readable: bfprov knows the file for its own.
    assert load((tmp_path / "k8s" / "betfair-alice.yaml").read_text())["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "bfprov"
    }
    second = make_bundle()
    target.publish(second, last_version=None)
    observed = target.observe()
    assert observed is not None and observed.fingerprint == second.fingerprint
