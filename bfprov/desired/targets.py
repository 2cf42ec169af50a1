"""The profile's `publish:` list and `hooks:` section, as validated, immutable values.

Desired state, so they live with the profile's models: each target kind's settings are a
model here with its `kind` name and its `identity` (the one label that names the target
in plans, records, messages and metrics, computed once per account in `TargetRef`). What
a kind does with its settings lives in `bfprov.publish` (one module per kind).

`publish` is a list of one-key mappings (`- vault: {...}`), the shape the SPEC shows; each
item becomes a `PublishEntry` whose `target` is the one configuration it names.
Messages quote the offending value; no field here holds a secret (the Vault token is a
`SecretRef`, which refuses literals without echoing them).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, ClassVar
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

from bfprov.desired import age
from bfprov.desired.fields import SecretRef, quote
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
            raise ValueError(f"{quote(value)}: only {PLACEHOLDER} may appear in braces")
        if not rule.fullmatch(rest):
            raise ValueError(f"{quote(value)} is not {what}")
        return value

    return BeforeValidator(check)


def _url(value: Any) -> Any:
    """http(s) URL; plain http only on loopback, where nothing crosses a network. No user
    or password (credentials come from their own secret references), query or fragment."""
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    # Quoted without its user and password: an address's password is a secret.
    shown = quote(shown_address(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown} is not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError(
            f"{shown} (user and password not shown): an address takes no user or password; "
            "give the credentials as a secret reference"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{shown} would send secrets in clear; use https (http only on loopback)")
    if "?" in value:
        raise ValueError(f"{shown} (query not shown): an address takes no query ('?...')")
    if "#" in value:
        raise ValueError(f"{shown} (fragment not shown): an address takes no fragment ('#...')")
    try:
        parts.port  # noqa: B018 (it raises for a port that is not a number in range)
    except ValueError:
        raise ValueError(f"{shown} has an invalid port") from None
    return value.rstrip("/")


def shown_address(address: str) -> str:
    """`address` as a message may show it: without any `user:password@`, query or
    fragment (a password, or a token in a query, is a secret)."""
    address = re.split(r"[?#]", address, maxsplit=1)[0]
    scheme, sep, rest = address.partition("://")
    if not sep:
        return address.rpartition("@")[2]
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine's loopback (`localhost`, 127.0.0.0/8, ::1)."""
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
            raise ValueError(f"{quote(value)} is not {what}")
        return value

    return BeforeValidator(check)


def segment_problem(path: str) -> str | None:
    """Why `path` is not a clean Vault path (relative, no empty, `.` or `..` segment)."""
    if path.startswith("/"):
        reason = "starts with '/'"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        reason = "has an empty, '.' or '..' segment"
    else:
        return None
    return f"{quote(path)} {reason}; a path has no leading '/' and no empty, '.' or '..' segment"


def _segments(value: Any) -> Any:
    if isinstance(value, str) and (why := segment_problem(value)) is not None:
        raise ValueError(why)
    return value


def _recipient(value: Any) -> Any:
    if isinstance(value, str) and (why := age.problem(value)) is not None:
        shown = "this value" if age.is_secret_key(value) else quote(value, 70)
        raise ValueError(f"{shown} {why}")
    return value


Url = Annotated[str, BeforeValidator(_url)]
KvPath = Annotated[
    str,
    _template(r"[A-Za-z0-9_.@+=/-]+", "a KV path"),
    BeforeValidator(_segments),
]
Mount = Annotated[str, _matching(r"[A-Za-z0-9_./-]+", "a mount path"), BeforeValidator(_segments)]
AwsName = Annotated[str, _template(r"[A-Za-z0-9/_+=.@-]{1,512}", "a Secrets Manager name")]
Region = Annotated[str, _matching(r"[a-z]{2}(-[a-z]+)+-\d+", "an AWS region like eu-west-1")]
# A DNS label; the name template is checked again once `{account}` is known.
Namespace = Annotated[
    str, _matching(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", "a Kubernetes namespace")
]
K8sName = Annotated[str, _template(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", "a Kubernetes name")]
AgeRecipient = Annotated[str, BeforeValidator(_recipient)]
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
    kind: ClassVar[str] = "vault"
    keeps_next_version: ClassVar[bool] = False  # no notion of a staged version

    address: Url
    token: SecretRef
    mount: Mount = "secret"
    path: KvPath
    ca_bundle: Annotated[str, Field(min_length=1)] | None = None  # relative to the profile

    def endpoint(self) -> str | None:
        """The server it talks to (a run's breaker counts its timeouts)."""
        return self.address

    def identity(self, account: str, profile_dir: Path) -> str:
        """`vault <address> <mount>/<path>`."""
        return f"vault {self.address} {self.mount}/{render(self.path, account)}"


class AwsSecretsManagerConfig(BaseModel):
    """AWS Secrets Manager; credentials come from boto3's usual chain."""

    model_config = _FROZEN
    kind: ClassVar[str] = "aws_secrets_manager"
    # A staged pair is written as AWSPENDING (the plan names it): a next version it keeps.
    keeps_next_version: ClassVar[bool] = True

    region: Region
    name: AwsName
    endpoint_url: Url | None = None

    def endpoint(self) -> str | None:
        """The server it talks to (a run's breaker counts its timeouts)."""
        return self.endpoint_url or f"https://secretsmanager.{self.region}.amazonaws.com"

    def identity(self, account: str, profile_dir: Path) -> str:
        """`aws_secrets_manager <endpoint or region> <name>`."""
        return (
            f"aws_secrets_manager {self.endpoint_url or self.region} {render(self.name, account)}"
        )


class KubernetesConfig(BaseModel):
    """A `kubernetes.io/tls` Secret manifest, for GitOps; optionally SOPS-encrypted."""

    model_config = _FROZEN
    kind: ClassVar[str] = "kubernetes"
    keeps_next_version: ClassVar[bool] = False  # no notion of a staged version

    dir: Annotated[str, Field(min_length=1)]  # relative to the profile file
    namespace: Namespace
    name: K8sName
    sops_age_recipients: Annotated[list[AgeRecipient], Field(min_length=1)] | None = None

    def manifest(self, account: str, profile_dir: Path) -> Path:
        """Where the manifest goes: `<dir>/<name>.yaml`, `dir` relative to the profile."""
        name = f"{render(self.name, account)}.yaml"
        return Path(os.path.normpath(profile_dir / self.dir / name))

    def endpoint(self) -> str | None:
        """None: a file on disk, never skipped by a run's breaker."""
        return None

    def identity(self, account: str, profile_dir: Path) -> str:
        """`kubernetes <manifest path>`."""
        return f"kubernetes {self.manifest(account, profile_dir)}"


TargetConfig = VaultConfig | AwsSecretsManagerConfig | KubernetesConfig


@dataclass(frozen=True)
class TargetRef:
    """One account's publication at one target, fully built: what plans carry, records
    are keyed by (`label`) and delivery acts on. The label is computed once, here."""

    account: str
    config: TargetConfig = field(repr=False)
    profile_dir: Path = field(repr=False)  # the profile file's directory: paths are relative
    label: str = ""

    @classmethod
    def of(cls, config: TargetConfig, account: str, profile_dir: Path) -> TargetRef:
        """The reference, its label from the kind's identity."""
        return cls(account, config, profile_dir, config.identity(account, profile_dir))

    @property
    def kind(self) -> str:
        return self.config.kind


class PublishEntry(BaseModel):
    """One item of `publish:`: a mapping with exactly one of the target kinds (a kind is
    one field here, named as the profile writes it)."""

    model_config = _FROZEN

    vault: VaultConfig | None = None
    aws_secrets_manager: AwsSecretsManagerConfig | None = None
    kubernetes: KubernetesConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        kinds = tuple(cls.model_fields)
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
        config: TargetConfig | None = next(
            (c for name in type(self).model_fields if (c := getattr(self, name)) is not None),
            None,
        )
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
