"""The one interface every publishing target implements, and the factory that builds one.

A target is built for one account (its label names the account's secret or file), reads
only metadata when observed, and never puts a token or key material in a message.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bfprov.errors import BfprovError
from bfprov.publish.config import (
    AwsSecretsManagerConfig,
    KubernetesConfig,
    VaultConfig,
    render,
)
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from datetime import datetime
    from types import ModuleType

    from bfprov.publish.bundle import Bundle
    from bfprov.publish.config import TargetConfig

DEFAULT_TIMEOUT = 10.0  # seconds, for connecting and for each reply
_MAX_REASON = 300


@dataclass(frozen=True)
class Published:
    """What a target holds, from its metadata alone.

    `fingerprint` and `not_after` are None when the target holds a value bfprov did not
    write (changed out of band): a drift, like a different fingerprint. `version` is the
    target's own version id (Vault's version number, the AWS version id), when it has one.
    """

    fingerprint: str | None
    not_after: datetime | None
    version: str | None = None


class PublishError(BfprovError):
    """A target failed: the message names the target and the reason, on one line.

    The reason often quotes a server: it is cleaned of control characters and cut here,
    so output, records, events and history all get the same safe text.

    `written_version` is set when the pair itself was written (as that version) but a
    later step failed: it is then the version bfprov last wrote, to be recorded as such.
    """

    def __init__(
        self, label: str, reason: str, *, sep: str = ": ", written_version: str | None = None
    ) -> None:
        self.label = label
        self.reason = clean_text(reason, _MAX_REASON) or "failed"
        self.written_version = written_version
        super().__init__(f"{label}{sep}{self.reason}")


class Target(Protocol):
    """One account's publication at one place (a Vault path, an AWS secret, a manifest)."""

    @property
    def label(self) -> str:
        """Stable and secret-free, for messages: `vault https://h:8200 secret/betfair/alice`."""
        ...

    def observe(self) -> Published | None:
        """What the target holds (metadata only, never key material); None when nothing."""
        ...

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Make `bundle` the live pair. `last_version` is the version bfprov last wrote
        (None when it never wrote one); targets with check-and-set refuse to overwrite a
        value that changed since."""
        ...

    def stage(self, bundle: Bundle) -> Published | None:
        """Offer `bundle` as the next pair without making it live (AWS: AWSPENDING).
        Targets without such a notion do nothing and return None."""
        ...


def target_label(config: TargetConfig, account: str, profile_dir: Path) -> str:
    """The target's label, known even when the target cannot be built (a missing package,
    an unreadable token): records and messages are keyed by it."""
    if isinstance(config, VaultConfig):
        return f"vault {config.address} {config.mount}/{render(config.path, account)}"
    if isinstance(config, AwsSecretsManagerConfig):
        where = config.endpoint_url or config.region
        return f"aws_secrets_manager {where} {render(config.name, account)}"
    return f"kubernetes {manifest_path(config, account, profile_dir)}"


def manifest_path(config: KubernetesConfig, account: str, profile_dir: Path) -> Path:
    """Where a Kubernetes target's manifest goes: `dir` is relative to the profile."""
    name = f"{render(config.name, account)}.yaml"
    return Path(os.path.normpath(profile_dir / config.dir / name))


def make_target(
    config: TargetConfig,
    account: str,
    profile_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Target:
    """The target `config` describes, for `account`.

    `profile_dir` is the directory of the profile file that named the target: the
    Kubernetes `dir`, the Vault `ca_bundle` and a `{file: ...}` token are relative to it.
    Raises PublishError when the target's package is not installed or its settings
    cannot be used for this account.
    """
    if isinstance(config, VaultConfig):
        from bfprov.publish.vault import VaultTarget

        return VaultTarget(config, account, profile_dir, timeout, _extra("hvac", "vault"))
    if isinstance(config, AwsSecretsManagerConfig):
        from bfprov.publish.aws import AwsTarget

        return AwsTarget(config, account, timeout, _extra("boto3", "aws"))
    if isinstance(config, KubernetesConfig):
        from bfprov.publish.kubernetes import KubernetesTarget

        return KubernetesTarget(config, account, profile_dir, timeout)
    raise TypeError(f"unknown target configuration {type(config).__name__}")


def _extra(module: str, extra: str) -> ModuleType:
    """Import an optional dependency when a target first needs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PublishError(
            f"{extra} target",
            f"needs the {module} package: pip install 'bfprov[{extra}]'",
            sep=" ",
        ) from None
