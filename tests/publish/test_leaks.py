"""Every message the publishing code can produce, searched for a token and key material."""

from __future__ import annotations

import base64
import logging
import sys
from typing import TYPE_CHECKING, Any

import pytest

from bfprov.desired.targets import AwsSecretsManagerConfig, KubernetesConfig, VaultConfig
from bfprov.publish.base import PublishError
from bfprov.publish.hooks import HookContext, HookEvent, run_hook
from bfprov.publish.kinds import make_target
from tests.support import needs
from tests.support.servers import REGION, AgeIdentity, Bao, MakeBundle, Moto, free_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")

TOKEN_ENV = "BFPROV_TEST_LEAK_TOKEN"


def forbidden(token: str, *blobs: bytes) -> list[str]:
    """The token, and each blob as PEM lines longer than a header, and in base64."""
    needles = [token]
    for blob in blobs:
        needles.append(base64.b64encode(blob).decode()[:48])
        needles += [
            line
            for line in blob.decode("ascii", "replace").splitlines()
            if len(line) >= 40 and not line.startswith("-----")
        ]
    return needles


def texts_of(action: Callable[[], object]) -> list[str]:
    """What an action's failure can show: its message, repr and arguments."""
    try:
        result = action()
    except PublishError as exc:
        return [str(exc), repr(exc), *map(str, exc.args), exc.label, exc.reason]
    return [repr(result)]


def test_no_message_holds_a_token_or_key_material(
    openbao: Bao,
    aws: Moto,
    age_identity: AgeIdentity,
    make_bundle: MakeBundle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sops_on_path: str,
) -> None:
    caplog.set_level(logging.WARNING)  # what a default Python logging setup shows
    bundle = make_bundle(p12=True)
    assert bundle.p12 is not None
    needles = forbidden(openbao.token, bundle.key_pem, bundle.p12)
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    vault = VaultConfig(address=openbao.address, token={"env": TOKEN_ENV}, path="leak/{account}")
    down = VaultConfig(
        address=f"http://127.0.0.1:{free_port()}", token={"env": TOKEN_ENV}, path="x"
    )
    sm = AwsSecretsManagerConfig(region=REGION, name="leak/{account}", endpoint_url=aws.endpoint)
    broken_recipient = age_identity.recipient[:-1] + (
        "q" if age_identity.recipient[-1] != "q" else "p"
    )
    # Validation refuses this recipient; built without it, to hear what sops says of it.
    sops = KubernetesConfig.model_construct(
        dir="k8s", namespace="bots", name="n-{account}", sops_age_recipients=[broken_recipient]
    )
    (tmp_path / "blocked").write_text("a file where a directory should be")
    blocked = KubernetesConfig(dir="blocked", namespace="bots", name="n-{account}")
    vault_target = make_target(vault, "alice", tmp_path, timeout=5)
    aws_target = make_target(sm, "alice", tmp_path, timeout=5)
    client: Any = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.endpoint)

    actions: list[Callable[[], object]] = [
        lambda: vault_target.publish(bundle, last_version=None),
        lambda: vault_target.publish(bundle, last_version=None),  # a conflict
        lambda: vault_target.publish(bundle, last_version="7"),  # a conflict
        lambda: vault_target.publish(bundle, last_version="x"),
        vault_target.observe,
        lambda: make_target(down, "alice", tmp_path, timeout=1).publish(bundle, last_version="1"),
        lambda: aws_target.publish(bundle, last_version=None),
        lambda: aws_target.stage(make_bundle(p12=True)),
        aws_target.observe,
        lambda: client.delete_secret(SecretId="leak/alice", RecoveryWindowInDays=7),
        lambda: aws_target.publish(bundle, last_version=None),  # scheduled for deletion
        lambda: make_target(sops, "alice", tmp_path).publish(bundle, last_version=None),
        lambda: make_target(blocked, "alice", tmp_path).publish(bundle, last_version=None),
    ]
    texts = [repr(bundle), str(bundle)]
    for action in actions:
        texts += texts_of(action)
    monkeypatch.setenv(TOKEN_ENV, openbao.token[::-1])  # a wrong token
    texts += texts_of(lambda: make_target(vault, "alice", tmp_path).observe())
    monkeypatch.setitem(sys.modules, "hvac", None)
    texts += texts_of(lambda: make_target(vault, "alice", tmp_path))

    hook = run_hook(
        [sys.executable, "-c", "import os, sys; print(sorted(os.environ)); sys.exit(1)"],
        HookContext(
            "alice",
            HookEvent.FAILED,
            tmp_path,
            tmp_path / "c.crt",
            tmp_path / "c.key",
            bundle.fingerprint,
            "com",
        ),
        timeout=20,
    )
    texts += [hook.describe(), repr(hook), hook.output]
    texts += [record.getMessage() for record in caplog.records]

    assert len(texts) > 30
    leaks = [(needle[:12], text) for text in texts for needle in needles if needle in text]
    assert leaks == []
