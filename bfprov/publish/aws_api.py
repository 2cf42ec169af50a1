"""Secrets Manager's API as bfprov uses it: the client, what its replies must look like,
and its failures as one-line PublishErrors. Shared by the target (`aws`) and the listing
(`aws_list`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from types import ModuleType

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
TAG_FINGERPRINT = "bfprov:fingerprint"
TAG_NOT_AFTER = "bfprov:not-after"
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


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
        return PublishError(label, "no answer in time", timed_out=True)
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


class Description(BaseModel):
    """What is read of a DescribeSecret reply (or a ListSecrets entry)."""

    Name: str
    VersionIdsToStages: dict[str, list[str]] = {}
    SecretVersionsToStages: dict[str, list[str]] = {}  # ListSecrets' name for it
    Tags: list[_Tag] = []


class Listing(BaseModel):
    """A ListSecrets page."""

    SecretList: list[Description]
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
    """A Secrets Manager client: `timeout` to connect and per reply, one attempt."""
    from botocore.config import Config

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # One attempt: botocore retries a request that timed out, which would triple
            # what a silent endpoint costs a run (SPEC: two timeouts in all); the next
            # apply retries what failed.
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )


def published_from(stages: dict[str, list[str]], tags: list[dict[str, str]]) -> Published | None:
    """What a secret holds, from its version stages and tags."""
    current = next((vid for vid, labels in stages.items() if CURRENT in labels), None)
    if current is None:
        return None
    if not FINGERPRINT.match(current):
        return Published(fingerprint=None, not_after=None, version=current)
    tag = {t["Key"]: t["Value"] for t in tags}
    not_after = tag.get(TAG_NOT_AFTER) if tag.get(TAG_FINGERPRINT) == current else None
    return Published(current, payload.parse_time(not_after), current)
