"""The `publish:` and `hooks:` sections: SPEC's example, defaults, and quoted errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML

from bfprov.desired.models import SecretRef
from bfprov.desired.targets import (
    AwsSecretsManagerConfig,
    HooksConfig,
    KubernetesConfig,
    PublishEntry,
    VaultConfig,
    render,
)

RECIPIENT = "age1kpmag9uwmu9mrsm0v07lyjejwy0lknpq0egkyvsnx6gvf737mscqcgnld4"
SPEC_EXAMPLE = f"""\
publish:
  - vault:
      address: https://vault.example.com:8200
      token: {{env: VAULT_TOKEN}}
      mount: secret
      path: betfair/{{account}}
      ca_bundle: /etc/ssl/vault-ca.pem
  - aws_secrets_manager:
      region: eu-west-1
      name: betfair/{{account}}
      endpoint_url: http://127.0.0.1:5000
  - kubernetes:
      dir: ../k8s
      namespace: bots
      name: betfair-{{account}}
      sops_age_recipients: [{RECIPIENT}]
hooks:
  on_live: [systemctl, restart, "bot@{{account}}"]
  on_failure: [/usr/local/bin/page-oncall, "{{account}}"]
  timeout: 60s
"""
PUBLISH = TypeAdapter(list[PublishEntry])


def messages(data: Any, adapter: TypeAdapter[Any] = PUBLISH) -> list[str]:
    """The errors' messages, as the profile loader shows them (it never prints the input)."""
    with pytest.raises(ValidationError) as exc:
        adapter.validate_python(data)
    return [e["msg"].removeprefix("Value error, ") for e in exc.value.errors()]


def test_the_spec_example() -> None:
    document = YAML(typ="safe").load(SPEC_EXAMPLE)
    vault, aws, kubernetes = (e.target for e in PUBLISH.validate_python(document["publish"]))
    assert vault == VaultConfig(
        address="https://vault.example.com:8200",
        token=SecretRef(env="VAULT_TOKEN"),
        path="betfair/{account}",
        ca_bundle="/etc/ssl/vault-ca.pem",
    )
    assert vault.mount == "secret"
    assert aws == AwsSecretsManagerConfig(
        region="eu-west-1", name="betfair/{account}", endpoint_url="http://127.0.0.1:5000"
    )
    assert kubernetes == KubernetesConfig(
        dir="../k8s", namespace="bots", name="betfair-{account}", sops_age_recipients=[RECIPIENT]
    )
    hooks = HooksConfig.model_validate(document["hooks"])
    assert hooks.on_live == ["systemctl", "restart", "bot@{account}"]
    assert hooks.timeout == timedelta(seconds=60)
    assert render("betfair/{account}", "alice") == "betfair/alice"


def test_defaults() -> None:
    assert HooksConfig() == HooksConfig(on_live=None, on_failure=None, timeout="60s")
    assert HooksConfig(timeout="2m").timeout == timedelta(minutes=2)
    (entry,) = PUBLISH.validate_python(
        [{"aws_secrets_manager": {"region": "us-east-1", "name": "x"}}]
    )
    assert entry.target == AwsSecretsManagerConfig(region="us-east-1", name="x", endpoint_url=None)


def test_the_configuration_is_frozen() -> None:
    hooks = HooksConfig()
    with pytest.raises(ValidationError):
        hooks.timeout = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"s3": {"bucket": "b"}}, "Extra inputs are not permitted"),
        ({"vault": None}, "'vault' needs its settings, like vault: {...}"),
        (
            {"vault": {}, "kubernetes": {}},
            "each publish item names exactly one target (vault, aws_secrets_manager, "
            "kubernetes); got vault, kubernetes",
        ),
        ("vault", "each publish item is a mapping like {vault: {...}}"),
    ],
)
def test_the_shape_of_an_item(item: Any, expected: str) -> None:
    assert expected in messages([item])


VAULT = {"address": "https://v.example.com", "token": {"env": "T"}, "path": "betfair/{account}"}
K8S = {"dir": "k8s", "namespace": "bots", "name": "betfair-{account}"}
AWS = {"region": "eu-west-1", "name": "betfair/{account}"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"vault": VAULT | {"path": "betfair/{acount}"}}, "'betfair/{acount}': only {account}"),
        ({"vault": VAULT | {"path": "/betfair//x"}}, "'/betfair//x' starts with '/'"),
        ({"vault": VAULT | {"path": "betfair/%x"}}, "'betfair/%x' is not a KV path"),
        ({"vault": VAULT | {"mount": "sec ret"}}, "'sec ret' is not a mount path"),
        ({"vault": VAULT | {"address": "ftp://v"}}, "'ftp://v' is not an http(s) URL"),
        (
            {"vault": VAULT | {"address": "http://vault.example.com:8200"}},
            "'http://vault.example.com:8200' would send secrets in clear; use https",
        ),
        ({"aws_secrets_manager": AWS | {"region": "Europe"}}, "'Europe' is not an AWS region"),
        ({"aws_secrets_manager": AWS | {"name": "a b/{account}"}}, "'a b/{account}' is not a"),
        ({"kubernetes": K8S | {"namespace": "Bots"}}, "'Bots' is not a Kubernetes namespace"),
        ({"kubernetes": K8S | {"name": "Betfair-{account}"}}, "'Betfair-{account}' is not a"),
        (
            {"kubernetes": K8S | {"sops_age_recipients": ["age1nope"]}},
            "'age1nope' is not an age recipient",
        ),
    ],
)
def test_errors_quote_the_offending_value(item: Any, expected: str) -> None:
    assert any(expected in m for m in messages([item])), messages([item])


def test_http_is_accepted_on_loopback_only() -> None:
    for address in ("http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200"):
        (entry,) = PUBLISH.validate_python([{"vault": VAULT | {"address": address + "/"}}])
        assert isinstance(entry.target, VaultConfig)
        assert entry.target.address == address


def test_a_literal_token_is_refused_and_not_echoed() -> None:
    literal = "s.Zm9vYmFyLXRva2VuLXZhbHVl"
    found = messages([{"vault": VAULT | {"token": literal}}])
    assert found == [
        "a secret must be a reference, {env: NAME} or {file: PATH}, never a literal value"
    ]
    assert not any(literal in m for m in found)


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("soon", "timeout: 'soon' is not a duration like '30s', '5m', '2h' or '7d'"),
        ("0s", "timeout '0s' must be longer than 0"),
        ("-5s", "timeout: '-5s' is not a duration"),
    ],
)
def test_hook_timeouts(timeout: str, expected: str) -> None:
    found = messages({"timeout": timeout}, TypeAdapter(HooksConfig))
    assert any(expected in m for m in found), found


@pytest.mark.parametrize(("timeout", "seconds"), [("90", 90), ("2m", 120), ("1h", 3600)])
def test_hook_timeouts_read_as_every_bfprov_duration(timeout: str, seconds: int) -> None:
    hooks = TypeAdapter(HooksConfig).validate_python({"timeout": timeout})
    assert hooks.timeout.total_seconds() == seconds


def test_hook_argv_must_not_be_empty() -> None:
    assert messages({"on_live": []}, TypeAdapter(HooksConfig))
    assert messages({"on_live": "systemctl restart bot"}, TypeAdapter(HooksConfig))
