"""The target kinds, registered once: a kind's name -> the module that implements it.

Adding a kind is one new module in this package plus one line in `KINDS` (and its
settings model in `bfprov.desired.targets`). A kind's module defines
`make(config, account, profile_dir, timeout) -> Target`; it is imported only when a
profile names that kind, so an optional dependency (hvac, boto3) is needed only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.targets import TargetConfig, TargetRef
    from bfprov.publish.base import Target

DEFAULT_TIMEOUT = 10.0  # seconds, for connecting and for each reply

KINDS = {
    "vault": "bfprov.publish.vault",
    "aws_secrets_manager": "bfprov.publish.aws",
    "kubernetes": "bfprov.publish.kubernetes",
}


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
    module = importlib.import_module(KINDS[config.kind])
    target: Target = module.make(config, account, profile_dir, timeout)
    return target


def build(ref: TargetRef, *, timeout: float = DEFAULT_TIMEOUT) -> Target:
    """The target a plan's reference names."""
    return make_target(ref.config, ref.account, ref.profile_dir, timeout=timeout)
