"""The target kinds, registered once: a kind's name -> the module that implements it.

Adding a kind is one new module in this package plus one line in `KINDS` (and its
settings model, with its `kind` name and `identity`, in `bfprov.desired.targets`). A
kind's module is a `Kind`: `make` builds the target (`base.Target`: observe, publish,
stage), `key`, `names` and `needs` are what `preflight` checks before anything is
written; `observe_many`, when a kind has it, observes many targets at once. A kind's
optional dependency (hvac, boto3) is imported only when a target of that kind is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from bfprov.desired.targets import TargetConfig, TargetRef
    from bfprov.publish.base import Published, PublishError, Target

    # A kind may also observe many targets at once (AWS: a listing): `observe_many(refs,
    # timeout)` gives what each holds, in order (None: nothing; PublishError: not seen).
    ObserveMany = Callable[[Sequence[TargetRef], float], list[Published | PublishError | None]]

DEFAULT_TIMEOUT = 10.0  # seconds, for connecting and for each reply

KINDS = {
    "vault": "bfprov.publish.vault",
    "aws_secrets_manager": "bfprov.publish.aws",
    "kubernetes": "bfprov.publish.kubernetes",
}


class Kind(Protocol):
    """What a kind's module provides."""

    def make(self, config: TargetConfig, account: str, profile_dir: Path, timeout: float) -> Target:
        """The target, ready to observe, publish and stage (PublishError if it cannot be)."""
        ...

    def key(self, ref: TargetRef) -> tuple[str, ...]:
        """What makes two targets one (two accounts must never share one)."""
        ...

    def names(self, ref: TargetRef, homes: set[Path]) -> list[str]:
        """Problems of its names once `{account}` is filled in (`homes`: the profiles'
        directories)."""
        ...

    def needs(self, ref: TargetRef) -> list[str]:
        """Problems of what writing to it needs: a token, a package, a command."""
        ...


def observer(kind: str) -> ObserveMany | None:
    """The kind's `observe_many`, when it has one."""
    many: ObserveMany | None = getattr(module(kind), "observe_many", None)
    return many


def module(kind: str) -> Kind:
    """The module that implements `kind`."""
    return cast("Kind", importlib.import_module(KINDS[kind]))


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
    return module(config.kind).make(config, account, profile_dir, timeout)


def build(ref: TargetRef, *, timeout: float = DEFAULT_TIMEOUT) -> Target:
    """The target a plan's reference names."""
    return make_target(ref.config, ref.account, ref.profile_dir, timeout=timeout)
