"""The profile's `publish:` list and `hooks:` section, as validated, immutable values.

`publish` is a list of one-key mappings (`- vault: {...}`), the shape the SPEC shows; each
item becomes a `PublishEntry` whose `target` is the one configuration it names.
Messages quote the offending value; no field here holds a secret (the Vault token is a
`SecretRef`, which refuses literals without echoing them).
"""

from __future__ import annotations

import re
from datetime import timedelta
from ipaddress import ip_address
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from bfprov.desired.fields import SecretRef
from bfprov.durations import parse_duration

_FROZEN = ConfigDict(extra="forbid", frozen=True)
PLACEHOLDER = "{account}"


def render(template: str, account: str) -> str:
    """The template with `{account}` replaced; nothing else is interpreted."""
    return template.replace(PLACEHOLDER, account)


def _template(pattern: str, what: str) -> Any:
    """A validator: only `{account}` may appear in braces, and the rest matches `pattern`."""
    rule = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        rest = value.replace(PLACEHOLDER, "a")
        if "{" in rest or "}" in rest:
            raise ValueError(f"{value!r}: only {PLACEHOLDER} may appear in braces")
        if not rule.fullmatch(rest):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return BeforeValidator(check)


def _url(value: Any) -> Any:
    """http(s) URL; plain http only on loopback, where nothing crosses a network."""
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(
            f"{value!r} would send secrets in clear; use https (http only on loopback)"
        )
    return value.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"timeout {value!r} is not a duration like '60s', '2m' or '1h'")
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"timeout: {exc}") from None
    if not delta:
        raise ValueError(f"timeout {value!r} must be longer than 0")
    return delta


def _matching(pattern: str, what: str) -> Any:
    """A validator whose message quotes the value (pydantic's own pattern message does not)."""
    rule = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not rule.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return BeforeValidator(check)


Url = Annotated[str, BeforeValidator(_url)]
KvPath = Annotated[str, _template(r"[A-Za-z0-9_.@+=-]+(/[A-Za-z0-9_.@+=-]+)*", "a KV path")]
Mount = Annotated[str, _matching(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", "a mount path")]
AwsName = Annotated[str, _template(r"[A-Za-z0-9/_+=.@-]{1,512}", "a Secrets Manager name")]
Region = Annotated[str, _matching(r"[a-z]{2}(-[a-z]+)+-\d+", "an AWS region like eu-west-1")]
# A DNS label; the name template is checked again once `{account}` is known.
Namespace = Annotated[
    str, _matching(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", "a Kubernetes namespace")
]
K8sName = Annotated[str, _template(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", "a Kubernetes name")]
AgeRecipient = Annotated[
    str, _matching(r"age1[02-9ac-hj-np-z]{58}", "an age recipient (age1 and 58 characters)")
]
Argv = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
EnvName = Annotated[str, _matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")]
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(lambda d: f"{int(d.total_seconds())}s", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+[smh]$"}),
]


class VaultConfig(BaseModel):
    """HashiCorp Vault or OpenBao, KV version 2."""

    model_config = _FROZEN

    address: Url
    token: SecretRef
    mount: Mount = "secret"
    path: KvPath
    ca_bundle: Annotated[str, Field(min_length=1)] | None = None  # relative to the profile


class AwsSecretsManagerConfig(BaseModel):
    """AWS Secrets Manager; credentials come from boto3's usual chain."""

    model_config = _FROZEN

    region: Region
    name: AwsName
    endpoint_url: Url | None = None


class KubernetesConfig(BaseModel):
    """A `kubernetes.io/tls` Secret manifest, for GitOps; optionally SOPS-encrypted."""

    model_config = _FROZEN

    dir: Annotated[str, Field(min_length=1)]  # relative to the profile file
    namespace: Namespace
    name: K8sName
    sops_age_recipients: Annotated[list[AgeRecipient], Field(min_length=1)] | None = None


TargetConfig = VaultConfig | AwsSecretsManagerConfig | KubernetesConfig


class PublishEntry(BaseModel):
    """One item of `publish:`: a mapping with exactly one of the target kinds."""

    model_config = _FROZEN

    vault: VaultConfig | None = None
    aws_secrets_manager: AwsSecretsManagerConfig | None = None
    kubernetes: KubernetesConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        kinds = ("vault", "aws_secrets_manager", "kubernetes")
        if not isinstance(value, dict):
            # Not quoted: a value out of place could be a secret pasted in the wrong spot.
            raise ValueError("each publish item is a mapping like {vault: {...}}")
        if len(value) != 1:
            keys = ", ".join(map(str, value)) or "none"
            raise ValueError(
                f"each publish item names exactly one target ({', '.join(kinds)}); got {keys}"
            )
        ((kind, settings),) = value.items()
        if settings is None:
            raise ValueError(f"{kind!r} needs its settings, like {kind}: {{...}}")
        return value

    @property
    def target(self) -> TargetConfig:
        """The configuration this item names."""
        config = self.vault or self.aws_secrets_manager or self.kubernetes
        assert config is not None  # _one_key, and every kind is a required model
        return config


class HooksConfig(BaseModel):
    """Commands run after a pair goes live, or when an account fails; argv, no shell."""

    model_config = _FROZEN

    on_live: Argv | None = None
    on_failure: Argv | None = None
    timeout: Duration = timedelta(seconds=60)
    # Variables of bfprov's environment a hook also receives, beyond the allow-list
    # (bfprov.children); the profile refuses a name that a secret reference reads.
    pass_env: Annotated[
        list[EnvName],
        Field(description="environment variables passed to hooks as they are (never a secret's)"),
    ] = []


PublishList = list[PublishEntry]
