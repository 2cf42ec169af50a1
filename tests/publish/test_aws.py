"""The AWS Secrets Manager target against moto's server on loopback."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from bfprov.desired.targets import AwsSecretsManagerConfig
from bfprov.publish import bundle as payload
from bfprov.publish.base import PublishError, Target
from bfprov.publish.kinds import make_target
from tests.support import needs
from tests.support.lossy_proxy import LossyProxy
from tests.support.servers import REGION, MakeBundle, Moto, free_port

if TYPE_CHECKING:
    from pathlib import Path

boto3 = needs.module("boto3", "pip install 'bfprov[aws]'")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A secret name of the test's own (the server lives for the whole session)."""
    return f"{request.node.name}/alice"


@pytest.fixture
def target(aws: Moto, name: str, tmp_path: Path) -> Target:
    config = AwsSecretsManagerConfig(
        region=REGION, name=name.replace("/alice", "/{account}"), endpoint_url=aws.endpoint
    )
    return make_target(config, "alice", tmp_path, timeout=5)


@pytest.fixture
def sm(aws: Moto) -> Any:
    """A plain boto3 client: how the tests (and bots) read the server's state."""
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.endpoint)


def stages(sm: Any, name: str) -> dict[str, list[str]]:
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    return {v["VersionId"]: sorted(v["VersionStages"]) for v in versions if v["VersionStages"]}


def value(sm: Any, name: str, stage: str) -> dict[str, str]:
    reply = sm.get_secret_value(SecretId=name, VersionStage=stage)
    loaded: dict[str, str] = json.loads(reply["SecretString"])
    return loaded


def test_publish_then_observe(target: Target, sm: Any, name: str, make_bundle: MakeBundle) -> None:
    assert target.observe() is None
    bundle = make_bundle(p12=True)
    published = target.publish(bundle, last_version=None)
    assert published.fingerprint == bundle.fingerprint
    assert target.observe() == published
    assert value(sm, name, "AWSCURRENT") == payload.payload(bundle)
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags["bfprov:fingerprint"] == bundle.fingerprint
    assert stages(sm, name) == {bundle.fingerprint: ["AWSCURRENT"]}
    assert target.label == f"aws_secrets_manager {sm.meta.endpoint_url} {name}"


def test_a_new_pair_becomes_current_and_the_old_one_previous(
    target: Target, sm: Any, name: str, make_bundle: MakeBundle
) -> None:
    first, second, third = make_bundle(), make_bundle(), make_bundle()
    target.publish(first, last_version=None)
    target.publish(second, last_version=first.fingerprint)
    assert stages(sm, name) == {
        first.fingerprint: ["AWSPREVIOUS"],
        second.fingerprint: ["AWSCURRENT"],
    }
    target.publish(third, last_version=second.fingerprint)
    assert stages(sm, name) == {
        second.fingerprint: ["AWSPREVIOUS"],
        third.fingerprint: ["AWSCURRENT"],
    }
    assert value(sm, name, "AWSCURRENT") == payload.payload(third)
    observed = target.observe()
    assert observed is not None and observed.fingerprint == third.fingerprint
    # Publishing the live pair again changes nothing.
    target.publish(third, last_version=third.fingerprint)
    assert stages(sm, name)[third.fingerprint] == ["AWSCURRENT"]


def test_stage_then_promote(target: Target, sm: Any, name: str, make_bundle: MakeBundle) -> None:
    live, staged = make_bundle(), make_bundle()
    target.publish(live, last_version=None)
    assert target.stage(staged) is not None
    # AWSCURRENT stays on the live pair; runbooks fetch the .crt to upload from AWSPENDING.
    assert stages(sm, name) == {
        live.fingerprint: ["AWSCURRENT"],
        staged.fingerprint: ["AWSPENDING"],
    }
    assert value(sm, name, "AWSPENDING")["tls.crt"] == staged.cert_pem.decode()
    observed = target.observe()
    assert observed is not None and observed.fingerprint == live.fingerprint
    target.stage(staged)  # staging again is harmless
    assert len(stages(sm, name)) == 2

    target.publish(staged, last_version=live.fingerprint)  # the promotion
    assert stages(sm, name) == {
        live.fingerprint: ["AWSPREVIOUS"],
        staged.fingerprint: ["AWSCURRENT"],
    }
    assert value(sm, name, "AWSCURRENT") == payload.payload(staged)
    observed = target.observe()
    assert observed is not None
    assert (observed.fingerprint, observed.not_after) == (staged.fingerprint, staged.not_after)

    target.publish(live, last_version=staged.fingerprint)  # a rollback
    assert stages(sm, name) == {
        live.fingerprint: ["AWSCURRENT"],
        staged.fingerprint: ["AWSPREVIOUS"],
    }


def test_stage_without_a_secret_writes_nothing(
    target: Target, sm: Any, name: str, make_bundle: MakeBundle
) -> None:
    assert target.stage(make_bundle()) is None
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=name)


def test_observe_reads_no_value(target: Target, aws: Moto, make_bundle: MakeBundle) -> None:
    """The server's own request log: observing asks for metadata, never a value."""
    target.publish(make_bundle(), last_version=None)
    target.stage(make_bundle())
    operations = aws.record(target.observe)
    assert operations == ["DescribeSecret"]
    for action in (
        lambda: target.publish(make_bundle(), last_version=None),
        lambda: target.stage(make_bundle()),
    ):
        assert "GetSecretValue" not in aws.record(action)


def test_changed_out_of_band_observes_without_fingerprint(
    target: Target, sm: Any, name: str, make_bundle: MakeBundle
) -> None:
    target.publish(make_bundle(), last_version=None)
    sm.put_secret_value(SecretId=name, SecretString='{"tls.crt": "x"}')
    observed = target.observe()
    assert observed is not None and observed.fingerprint is None
    bundle = make_bundle()
    target.publish(bundle, last_version=None)  # repairs it
    observed = target.observe()
    assert observed is not None and observed.fingerprint == bundle.fingerprint


def test_deleted_out_of_band_observes_as_none(
    target: Target, sm: Any, name: str, make_bundle: MakeBundle
) -> None:
    target.publish(make_bundle(), last_version=None)
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert target.observe() is None
    target.publish(make_bundle(), last_version=None)
    assert target.observe() is not None


def test_a_secret_scheduled_for_deletion_is_reported(
    target: Target, sm: Any, name: str, make_bundle: MakeBundle
) -> None:
    target.publish(make_bundle(), last_version=None)
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(PublishError, match="scheduled for deletion") as exc:
        target.publish(make_bundle(), last_version=None)
    assert str(exc.value).startswith(f"{target.label}: ")


def test_a_target_that_is_down_fails_quickly(
    aws: Moto, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = AwsSecretsManagerConfig(region=REGION, name="betfair/{account}", endpoint_url=endpoint)
    target = make_target(config, "alice", tmp_path, timeout=1)
    started = time.monotonic()
    with pytest.raises(PublishError) as exc:
        target.publish(make_bundle(), last_version=None)
    assert time.monotonic() - started < 5  # one retry, after botocore's backoff (< 2 s)
    assert str(exc.value) == (
        f"aws_secrets_manager {endpoint} betfair/alice: unreachable: could not connect to the "
        "endpoint"
    )


def test_without_credentials_one_line(
    aws: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session keeps the credentials it found for earlier tests.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    config = AwsSecretsManagerConfig(region=REGION, name="c/{account}", endpoint_url=aws.endpoint)
    with pytest.raises(PublishError, match="no AWS credentials"):
        make_target(config, "alice", tmp_path, timeout=1).observe()


def test_without_boto3_one_line_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    config = AwsSecretsManagerConfig(region=REGION, name="betfair/{account}")
    with pytest.raises(PublishError) as exc:
        make_target(config, "alice", tmp_path)
    assert str(exc.value) == "aws target needs the boto3 package: pip install 'bfprov[aws]'"


@pytest.mark.parametrize(
    "operation", ["CreateSecret", "PutSecretValue", "UpdateSecretVersionStage", "TagResource"]
)
def test_a_lost_reply_converges_on_the_retry(
    operation: str, aws: Moto, sm: Any, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    """Every reply to `operation` is lost (boto3's own retry too): the retry finds what
    was done, and the stages end as one publish would leave them."""
    name = f"lost-{operation}/alice"
    first, second = make_bundle(), make_bundle()
    with LossyProxy(aws.endpoint) as proxy:
        config = AwsSecretsManagerConfig(
            region=REGION, name=name.replace("/alice", "/{account}"), endpoint_url=proxy.url
        )
        target = make_target(config, "alice", tmp_path, timeout=5)
        if operation != "CreateSecret":
            target.publish(first, last_version=None)
        bundle = first if operation == "CreateSecret" else second
        header = ("X-Amz-Target", f"secretsmanager.{operation}")
        proxy.lose_reply("POST", "/", 10, header=header)  # boto3's retries included
        with pytest.raises(PublishError):
            target.publish(bundle, last_version=None)
        assert proxy.lost, "the request reached the server"
        proxy.heal()
        published = target.publish(bundle, last_version=None)
    assert published.fingerprint == bundle.fingerprint
    expected = {bundle.fingerprint: ["AWSCURRENT"]}
    if bundle is second:
        expected[first.fingerprint] = ["AWSPREVIOUS"]
    assert stages(sm, name) == expected
    assert value(sm, name, "AWSCURRENT") == payload.payload(bundle)
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags["bfprov:fingerprint"] == bundle.fingerprint
