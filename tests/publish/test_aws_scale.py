"""AWS observation at scale: a plan lists secrets in pages instead of one call per account.

Counted through a counting proxy on loopback in front of moto's server (what a bill
would count), for a fleet of 250 accounts; SPEC's bound (1,000 accounts, at most 20
Secrets Manager calls) follows from calls growing as ceil(n / 100), never per account.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from bfprov.cli import main
from bfprov.desired.targets import AwsSecretsManagerConfig, TargetRef
from bfprov.publish.aws import AwsTarget
from bfprov.publish.aws_list import observe_many
from bfprov.publish.base import PublishError
from bfprov.publish.kinds import make_target
from tests.support.loopback_http import counting_proxy
from tests.support.servers import REGION, MakeBundle, Moto

if TYPE_CHECKING:
    from pathlib import Path

boto3 = pytest.importorskip("boto3")  # the [aws] extra

FLEET = 250

PROFILE_HEAD = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  password: {{env: BF_PASSWORD}}
  outputs: [key, crt]
  publish:
    - aws_secrets_manager:
        region: {region}
        name: {prefix}/{{account}}
        endpoint_url: {endpoint}
accounts:
"""


def test_a_plan_lists_secrets_in_pages(
    aws: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = "scale"
    names = [f"acct{i:04d}" for i in range(FLEET)]
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.endpoint)
    for name in names:
        sm.create_secret(Name=f"{prefix}/{name}", SecretString="{}")
    # Secrets the name filter's prefix also matches, and one elsewhere: never confused.
    sm.create_secret(Name=f"{prefix}/acct0001-other", SecretString="{}")
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    with counting_proxy(aws.endpoint) as proxy:
        profile = tmp_path / "fleet.yaml"
        profile.write_text(
            PROFILE_HEAD.format(region=REGION, prefix=prefix, endpoint=proxy.url)
            + "".join(
                f"  - {{name: {n}, username: {n}, subject: {{common_name: {n}}}}}\n" for n in names
            )
        )
        assert main(["plan", "--json", "--profiles", str(profile)]) == 0
        calls = dict(proxy.operations)
    out = capsys.readouterr().out
    assert '"create"' in out
    assert sum(calls.values()) <= math.ceil(FLEET / 100) + 1, calls
    assert set(calls) == {"ListSecrets"}, calls


def test_observe_many_agrees_with_observe(
    aws: Moto, tmp_path: Path, make_bundle: MakeBundle
) -> None:
    """Every state a secret can be in reads the same through the listing as one by one."""
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.endpoint)
    accounts = ["live", "oob", "gone", "deleting", "never", "live-twin"]
    configs = [
        AwsSecretsManagerConfig(region=REGION, name="many/{account}", endpoint_url=aws.endpoint)
        for _ in accounts
    ]
    targets = [
        make_target(c, a, tmp_path, timeout=5) for c, a in zip(configs, accounts, strict=True)
    ]
    for target in targets[:4]:
        target.publish(make_bundle(), last_version=None)
    targets[5].publish(make_bundle(), last_version=None)
    sm.put_secret_value(SecretId="many/oob", SecretString='{"tls.crt": "x"}')
    sm.delete_secret(SecretId="many/gone", ForceDeleteWithoutRecovery=True)
    sm.delete_secret(SecretId="many/deleting", RecoveryWindowInDays=7)
    one_by_one: list[Any] = []
    for target in targets:
        assert isinstance(target, AwsTarget)
        try:
            one_by_one.append(target.observe())
        except PublishError as exc:
            one_by_one.append(str(exc))
    wanted = [TargetRef.of(c, a, tmp_path) for c, a in zip(configs, accounts, strict=True)]
    listed = [str(r) if isinstance(r, PublishError) else r for r in observe_many(wanted, 5)]
    assert listed == one_by_one
    assert listed[0] is not None and listed[0].fingerprint is not None
    assert listed[1] is not None and listed[1].fingerprint is None
    assert listed[2] is None and listed[4] is None
    assert "scheduled for deletion" in str(listed[3])


def test_observe_many_of_an_endpoint_that_fails_names_each_target(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    configs = [
        AwsSecretsManagerConfig(region=REGION, name="x/{account}", endpoint_url=endpoint)
    ] * 2
    refs = [TargetRef.of(c, a, tmp_path) for c, a in zip(configs, ["a", "b"], strict=True)]
    results = observe_many(refs, 1)
    assert [str(r) for r in results] == [
        f"aws_secrets_manager {endpoint} x/{a}: unreachable: could not connect to the endpoint"
        for a in ("a", "b")
    ]


def test_a_listing_that_lags_a_write_is_not_taken_for_a_deletion(
    aws: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ListSecrets is eventually consistent: a secret bfprov recorded writing that the
    listing lacks is described on its own, not planned as missing."""
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    with counting_proxy(aws.endpoint) as proxy:
        profile = tmp_path / "fleet.yaml"
        profile.write_text(
            PROFILE_HEAD.format(region=REGION, prefix="lag", endpoint=proxy.url)
            + "  - {name: alice, username: alice, subject: {common_name: alice}}\n"
        )
        assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0

        def lagging(operation: str, body: bytes) -> bytes:
            if operation != "ListSecrets":
                return body
            return json.dumps(json.loads(body) | {"SecretList": []}).encode()

        proxy.rewrite = lagging
        proxy.reset()
        capsys.readouterr()
        assert main(["plan", "--detailed-exitcode", "--profiles", str(profile)]) == 0
        assert dict(proxy.operations) == {"ListSecrets": 1, "DescribeSecret": 1}
    assert "No changes" in capsys.readouterr().out
