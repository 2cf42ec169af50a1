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

from pydantic import BaseModel, ValidationError

from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError, target_label
from bfprov.publish.config import render
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from types import ModuleType

    from bfprov.publish.bundle import Bundle
    from bfprov.publish.config import AwsSecretsManagerConfig

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
INCOMING = "bfprov-incoming"  # a new version's label until AWSCURRENT is moved to it
TAG_FINGERPRINT = "bfprov:fingerprint"
TAG_NOT_AFTER = "bfprov:not-after"
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class AwsTarget:
    """One account's secret in Secrets Manager."""

    def __init__(
        self, config: AwsSecretsManagerConfig, account: str, timeout: float, boto3: ModuleType
    ) -> None:
        self.name = render(config.name, account)
        self.label = target_label(config, account, Path())
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
        check_reply(self.label, "DescribeSecret", secret, _Description)
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


def failure(label: str, exc: Exception, operation: str) -> Exception:
    """A PublishError for failures of the network, credentials or the service; anything
    else is a bug and is handed back as it is."""
    from botocore import exceptions as errors

    if isinstance(exc, errors.ClientError):
        if not _request_id(exc.response):
            return PublishError(label, _not_the_api(operation, exc.response))
        error = exc.response.get("Error", {})
        code, text = error.get("Code", "error"), clean_text(str(error.get("Message", "")))
        return PublishError(label, f"{operation} refused: {code}: {text}")
    if isinstance(exc, errors.NoCredentialsError | errors.PartialCredentialsError):
        return PublishError(label, "no AWS credentials (boto3's chain found none)")
    if isinstance(exc, errors.ConnectTimeoutError | errors.ReadTimeoutError):
        return PublishError(label, "no answer in time")
    if isinstance(exc, errors.EndpointConnectionError):
        return PublishError(label, "unreachable: could not connect to the endpoint")
    if isinstance(exc, errors.SSLError):
        return PublishError(label, "TLS failed: the server certificate was not verified")
    if isinstance(exc, errors.BotoCoreError):
        return PublishError(label, f"{operation} failed: {type(exc).__name__}")
    if isinstance(exc, TypeError | AttributeError | ValueError | KeyError):
        # Raised inside botocore's parser by a body of another shape.
        return PublishError(label, f"the reply to {operation} is not the {_API} (unreadable)")
    return exc


# --- replies ---------------------------------------------------------------------------


_API = "Secrets Manager API's"


class _Tag(BaseModel):
    Key: str
    Value: str


class _Description(BaseModel):
    """What is read of a DescribeSecret reply (or a ListSecrets entry)."""

    Name: str
    VersionIdsToStages: dict[str, list[str]] = {}
    SecretVersionsToStages: dict[str, list[str]] = {}  # ListSecrets' name for it
    Tags: list[_Tag] = []


class Listing(BaseModel):
    """A ListSecrets page."""

    SecretList: list[_Description]
    NextToken: str | None = None


def _request_id(reply: Any) -> str | None:
    meta = reply.get("ResponseMetadata") if isinstance(reply, dict) else None
    found = meta.get("RequestId") if isinstance(meta, dict) else None
    return found if isinstance(found, str) and found else None


def _not_the_api(operation: str, reply: Any) -> str:
    meta = (reply.get("ResponseMetadata") or {}) if isinstance(reply, dict) else {}
    headers = meta.get("HTTPHeaders") or {}
    kind = clean_text(headers.get("content-type") or "no content type", 60)
    error = (reply.get("Error") or {}) if isinstance(reply, dict) else {}
    text = clean_text(str(error.get("Message") or ""), 80) or "no request id"
    status = meta.get("HTTPStatusCode", "?")
    return f"the reply to {operation} is not the {_API}: HTTP {status}, {kind}: {text}"


def check_reply(
    label: str, operation: str, reply: Any, shape: type[BaseModel] | None = None
) -> None:
    """Refuse a reply that did not come from the API, or that `shape` does not fit."""
    if not _request_id(reply):
        raise PublishError(label, _not_the_api(operation, reply))
    if shape is None:
        return
    try:
        shape.model_validate(reply)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        reason = f"the reply to {operation} is not the {_API}: {where}: {error['msg']}"
        raise PublishError(label, reason) from None


def make_client(boto3: ModuleType, region: str, endpoint_url: str | None, timeout: float) -> Any:
    """A Secrets Manager client: `timeout` to connect and per reply, one retry."""
    from botocore.config import Config

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "max_attempts": 2},
        ),
    )


def published_from(stages: dict[str, list[str]], tags: list[dict[str, str]]) -> Published | None:
    """What a secret holds, from its version stages and tags."""
    current = next((vid for vid, labels in stages.items() if CURRENT in labels), None)
    if current is None:
        return None
    if not _FINGERPRINT.match(current):
        return Published(fingerprint=None, not_after=None, version=current)
    tag = {t["Key"]: t["Value"] for t in tags}
    not_after = tag.get(TAG_NOT_AFTER) if tag.get(TAG_FINGERPRINT) == current else None
    return Published(current, payload.parse_time(not_after), current)


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
