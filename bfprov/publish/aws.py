"""AWS Secrets Manager, through boto3.

The pair is a JSON `SecretString` holding the whole payload. Each version's id is the
certificate's fingerprint (bfprov passes it as the ClientRequestToken, 64 hex digits), so
the version stages alone say which pair is live (`AWSCURRENT`), previous (`AWSPREVIOUS`)
and staged (`AWSPENDING`): observing reads `DescribeSecret`, never a value (a whole
fleet is observed through listings instead: publish.aws_list). The live fingerprint and
expiry are also tags, for people and IAM conditions.

A reply that is not the API's (a proxy's HTML page, an empty answer, JSON of another
shape) is a PublishError naming the target: botocore would take an HTML 200 for an
empty success, so every reply must carry the request id AWS gives each one, and what is
read of a description is checked before it is trusted.

Every change of the live pair goes through UpdateSecretVersionStage (a new pair is first
written under a bfprov-only label): one code path for a new pair, a promotion of the
staged one and a rollback to the previous one, with AWS moving AWSPREVIOUS itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bfprov.desired.fields import quote
from bfprov.desired.targets import AwsSecretsManagerConfig, render
from bfprov.publish import bundle as payload
from bfprov.publish.aws_api import (
    CURRENT,
    PENDING,
    TAG_FINGERPRINT,
    TAG_NOT_AFTER,
    Description,
    check_reply,
    failure,
    make_client,
    published_from,
)
from bfprov.publish.aws_list import observe_many
from bfprov.publish.base import Published, PublishError, extra
from bfprov.publish.needs import address_key, package

if TYPE_CHECKING:
    from types import ModuleType

    from bfprov.desired.targets import TargetRef
    from bfprov.publish.bundle import Bundle

INCOMING = "bfprov-incoming"  # a new version's label until AWSCURRENT is moved to it
__all__ = ["key", "make", "names", "needs", "observe_many"]  # the kind (publish.kinds)


def make(
    config: AwsSecretsManagerConfig, account: str, profile_dir: Path, timeout: float
) -> AwsTarget:
    """The kind's entry point (see `bfprov.publish.kinds`)."""
    return AwsTarget(config, account, timeout, extra("boto3", "aws"))


class AwsTarget:
    """One account's secret in Secrets Manager."""

    def __init__(
        self, config: AwsSecretsManagerConfig, account: str, timeout: float, boto3: ModuleType
    ) -> None:
        self.name = render(config.name, account)
        self.label = config.identity(account, Path())
        self._client = make_client(boto3, config.region, config.endpoint_url, timeout)

    def observe(self) -> Published | None:
        """The AWSCURRENT version's fingerprint (its id) and expiry (a tag)."""
        secret = self._describe()
        if secret is None:
            return None
        return published_from(secret.get("VersionIdsToStages") or {}, secret.get("Tags") or [])

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Make the pair AWSCURRENT; the one before it becomes AWSPREVIOUS.

        `last_version` is not used: Secrets Manager keeps every version, so nothing is
        lost by moving AWSCURRENT, and the drift check is the planner's.
        """
        fp = bundle.fingerprint
        secret = self._describe()
        if secret is None:
            self._call(
                "CreateSecret",
                Name=self.name,
                ClientRequestToken=fp,
                SecretString=_secret_string(bundle),
                Tags=_tags(bundle),
            )
            return Published(fp, bundle.not_after, fp)
        stages: dict[str, list[str]] = secret.get("VersionIdsToStages") or {}
        if fp not in stages:
            self._put(bundle, INCOMING)
        current = _holding(secret, CURRENT)
        if current != fp:
            move: dict[str, str] = {"MoveToVersionId": fp}
            if current is not None:
                move["RemoveFromVersionId"] = current
            self._call("UpdateSecretVersionStage", SecretId=self.name, VersionStage=CURRENT, **move)
        # The live pair is no longer incoming nor pending (read back: a put of a version
        # that already existed, deprecated, may not have attached INCOMING).
        labels = _labels(self._describe(), fp)
        for label in (INCOMING, PENDING):
            if label in labels:
                self._call(
                    "UpdateSecretVersionStage",
                    SecretId=self.name,
                    VersionStage=label,
                    RemoveFromVersionId=fp,
                )
        self._call("TagResource", SecretId=self.name, Tags=_tags(bundle))
        return Published(fp, bundle.not_after, fp)

    def stage(self, bundle: Bundle) -> Published | None:
        """Write the pair as AWSPENDING, AWSCURRENT untouched; runbooks fetch its `.crt`.

        Secrets Manager makes a secret's first version AWSCURRENT whatever its labels, so
        when the secret does not exist yet nothing is written (a staged pair is never made
        live) and None is returned; publishing the live pair comes first.
        """
        secret = self._describe()
        if secret is None:
            return None
        fp = bundle.fingerprint
        stages: dict[str, list[str]] = secret.get("VersionIdsToStages") or {}
        if fp not in stages:
            self._put(bundle, PENDING)
        elif PENDING not in stages[fp]:
            move: dict[str, str] = {"MoveToVersionId": fp}
            if (pending := _holding(secret, PENDING)) is not None:
                move["RemoveFromVersionId"] = pending
            self._call("UpdateSecretVersionStage", SecretId=self.name, VersionStage=PENDING, **move)
        return Published(fp, bundle.not_after, fp)

    # --- helpers ----------------------------------------------------------------------

    def _describe(self) -> dict[str, Any] | None:
        """The secret's description (no value), or None when there is no secret."""
        try:
            secret: dict[str, Any] = self._client.describe_secret(SecretId=self.name)
        except self._client.exceptions.ResourceNotFoundException:
            return None
        except Exception as exc:
            raise self._error(exc, "DescribeSecret") from None
        check_reply(self.label, "DescribeSecret", secret, Description)
        if secret.get("DeletedDate"):
            raise PublishError(
                self.label, "the secret is scheduled for deletion; restore it or wait"
            )
        return secret

    def _put(self, bundle: Bundle, label: str) -> None:
        self._call(
            "PutSecretValue",
            SecretId=self.name,
            ClientRequestToken=bundle.fingerprint,
            SecretString=_secret_string(bundle),
            VersionStages=[label],
        )

    def _call(self, operation: str, **kwargs: Any) -> Any:
        method = getattr(self._client, re.sub(r"(?<!^)([A-Z])", r"_\1", operation).lower())
        try:
            reply = method(**kwargs)
        except Exception as exc:
            raise self._error(exc, operation) from None
        check_reply(self.label, operation, reply)
        return reply

    def _error(self, exc: Exception, operation: str) -> Exception:
        """A PublishError for failures of the network, credentials or the service."""
        return failure(self.label, exc, operation)


def _holding(secret: dict[str, Any], label: str) -> str | None:
    """The id of the version that carries `label`."""
    stages: dict[str, list[str]] = secret.get("VersionIdsToStages") or {}
    return next((vid for vid, labels in stages.items() if label in labels), None)


def _labels(secret: dict[str, Any] | None, version: str) -> list[str]:
    stages: dict[str, list[str]] = (secret or {}).get("VersionIdsToStages") or {}
    return stages.get(version, [])


def _secret_string(bundle: Bundle) -> str:
    return json.dumps(payload.payload(bundle), sort_keys=True)


def _tags(bundle: Bundle) -> list[dict[str, str]]:
    return [
        {"Key": TAG_FINGERPRINT, "Value": bundle.fingerprint},
        {"Key": TAG_NOT_AFTER, "Value": bundle.not_after_text},
    ]


# --- checked before anything is written (see `preflight`) -------------------------------

_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def key(ref: TargetRef) -> tuple[str, ...]:
    """What makes two secrets one: the region, the endpoint and the name."""
    config = _config(ref)
    name = render(config.name, ref.account)
    return ("aws", config.region, address_key(config.endpoint_url), name)


def names(ref: TargetRef, homes: set[Path]) -> list[str]:
    """The name, once `{account}` is filled in, is one Secrets Manager takes."""
    config = _config(ref)
    name = render(config.name, ref.account)
    if _NAME.fullmatch(name):
        return []
    return [
        f"the name ({len(name)} characters, from {quote(config.name)}) is not a Secrets Manager "
        "name: at most 512 of letters, digits and /_+=.@-"
    ]


def needs(ref: TargetRef) -> list[str]:
    """boto3 (credentials are boto3's chain's business, found when first used)."""
    return package("boto3", "aws")


def _config(ref: TargetRef) -> AwsSecretsManagerConfig:
    assert isinstance(ref.config, AwsSecretsManagerConfig)  # the registry sends only these
    return ref.config
