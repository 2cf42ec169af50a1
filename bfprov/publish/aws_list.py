"""AWS Secrets Manager targets of a whole fleet observed at once, through listings.

One `DescribeSecret` per account costs a fleet of 1,000 accounts 1,000 calls; listing
secrets in pages (`ListSecrets`, stages and tags included, never a value) costs about
ceil(secrets / 100), per (region, endpoint).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from bfprov.desired.targets import AwsSecretsManagerConfig, render
from bfprov.publish.aws_api import Listing, check_reply, failure, make_client, published_from
from bfprov.publish.base import Published, PublishError, extra

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bfprov.desired.targets import TargetRef


Observation = Published | None | PublishError
_PAGE = 100  # ListSecrets' largest page
_MAX_VALUES = 10  # values of one ListSecrets filter


def observe_many(refs: Sequence[TargetRef], timeout: float) -> list[Observation]:
    """What each target's secret holds, like AwsTarget.observe, in the order given: a
    PublishError where it could not be observed.

    Secrets are listed in pages of 100 (`ListSecrets`: stages and tags, never a value),
    one listing per (region, endpoint): a fleet costs about ceil(secrets / 100) calls,
    not one per account. The listing's name filter matches prefixes, so its entries are
    matched to the wanted names exactly afterwards.
    """
    configs = [_config(ref) for ref in refs]
    results: list[Observation] = [None] * len(refs)
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault((config.region, config.endpoint_url), []).append(i)
    for (region, endpoint), indexes in groups.items():
        labels = {i: refs[i].label for i in indexes}
        names = {i: render(configs[i].name, refs[i].account) for i in indexes}
        try:
            client = make_client(extra("boto3", "aws"), region, endpoint, timeout)
            found = _list(client, labels[indexes[0]], sorted(set(names.values())))
        except PublishError as exc:
            for i in indexes:
                results[i] = PublishError(labels[i], exc.reason, timed_out=exc.timed_out)
            continue
        for i in indexes:
            results[i] = _entry_state(labels[i], found.get(names[i]))
    return results


def _entry_state(label: str, entry: dict[str, Any] | None) -> Observation:
    if entry is None:
        return None
    if entry.get("DeletedDate"):
        return PublishError(label, "the secret is scheduled for deletion; restore it or wait")
    return published_from(entry.get("SecretVersionsToStages") or {}, entry.get("Tags") or [])


def _list(client: Any, label: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The ListSecrets entries of `names`, by name (scheduled deletions included)."""
    wanted = set(names)
    # A few names are filtered one by one; a fleet by the prefix its names share (all
    # secrets when they share none).
    # Character by character, as ListSecrets matches (not path components).
    prefixes = names if len(names) <= _MAX_VALUES else [os.path.commonprefix(names)]  # noqa: RUF071
    request: dict[str, Any] = {"IncludePlannedDeletion": True, "MaxResults": _PAGE}
    if any(prefixes):
        request["Filters"] = [{"Key": "name", "Values": prefixes}]
    found: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    while True:
        try:
            page = client.list_secrets(**request)
        except Exception as exc:
            raise failure(label, exc, "ListSecrets") from None
        check_reply(label, "ListSecrets", page, Listing)
        found |= {e["Name"]: e for e in page["SecretList"] if e["Name"] in wanted}
        token = page.get("NextToken")
        if not token:
            return found
        if token in seen:  # a server that pages in a circle
            raise PublishError(
                label, "the reply to ListSecrets is not the Secrets Manager API's: paging loops"
            )
        seen.add(token)
        request["NextToken"] = token


def _config(ref: TargetRef) -> AwsSecretsManagerConfig:
    assert isinstance(ref.config, AwsSecretsManagerConfig)  # the registry sends only these
    return ref.config
