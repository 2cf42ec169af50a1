"""The desired state: what profiles resolve to, as validated, immutable values.

`Account` is one account with its file's defaults merged in and every field resolved;
`Target` places it on disk; `Desired` is all of them. The field types (`fields`) are
re-exported here, where the rest of bfprov imports them from; the models that mirror the
YAML itself are in `document`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bfprov.desired.fields import (
    DEFAULT_OUTPUTS,
    AccountName,
    Jurisdiction,
    KeySpec,
    Output,
    P12Profile,
    P12Spec,
    RenewWindow,
    SecretRef,
    Subject,
    Validity,
)
from bfprov.desired.targets import HooksConfig, PublishEntry, TargetRef

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_OUTPUTS",
    "Account",
    "Desired",
    "Jurisdiction",
    "KeySpec",
    "Output",
    "P12Profile",
    "P12Spec",
    "RenewWindow",
    "SecretRef",
    "Subject",
    "Target",
    "Validity",
]


class Account(BaseModel):
    """One account, defaults merged, every field resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: AccountName
    username: str
    password: SecretRef
    app_key: SecretRef
    jurisdiction: Jurisdiction = Jurisdiction.COM
    key: KeySpec = Field(default_factory=KeySpec)
    subject: Subject
    validity: Validity = Field(default_factory=Validity)
    outputs: tuple[Output, ...] = DEFAULT_OUTPUTS
    p12: P12Spec = Field(default_factory=P12Spec)
    labels: dict[str, str] = Field(default_factory=dict)
    publish: tuple[PublishEntry, ...] = ()
    hooks: HooksConfig | None = None
    notify: tuple[SecretRef, ...] = ()  # Apprise URLs, which hold tokens

    @model_validator(mode="after")
    def _consistent(self) -> Account:
        if not self.subject.common_name:
            raise ValueError("subject.common_name is required")
        missing = [o.value for o in (Output.KEY, Output.CRT) if o not in self.outputs]
        if missing:
            raise ValueError(f"outputs must include key and crt (missing: {', '.join(missing)})")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("outputs lists a format twice")
        if Output.P12 in self.outputs and self.p12.password is None:
            raise ValueError(
                "outputs include p12, so p12.password ({env: ...} or {file: ...}) is required"
            )
        lifetime = timedelta(days=self.validity.days)
        window = self.validity.renew_before.before_expiry(lifetime)
        if window >= lifetime:
            raise ValueError(
                f"validity.renew_before {self.validity.renew_before} is as long as the "
                f"validity ({self.validity.days} days): the certificate would always be due"
            )
        jitter = self.validity.renew_jitter
        if jitter is not None and window + jitter.before_expiry(lifetime) >= lifetime:
            raise ValueError(
                f"validity.renew_before {self.validity.renew_before} plus renew_jitter {jitter} "
                f"is as long as the validity ({self.validity.days} days)"
            )
        return self

    @property
    def stem(self) -> str:
        """The file name stem Betfair's guide uses: client-<bits>."""
        return f"client-{self.key.size}"


@dataclass(frozen=True)
class Target:
    """An account placed on disk."""

    account: Account
    output_dir: Path
    templates: Path | None
    source: Path
    archive_keep: int = 3
    # Where each of `account.publish` is written, `file:line:col: path`, for messages.
    publish_at: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.account.name

    @property
    def directory(self) -> Path:
        return self.output_dir / self.account.name

    @functools.cached_property
    def publications(self) -> tuple[TargetRef, ...]:
        """The account's publishing targets, fully built, in the profile's order."""
        return tuple(
            TargetRef.of(entry.target, self.name, self.source.parent)
            for entry in self.account.publish
        )


@dataclass(frozen=True)
class Desired:
    """The whole desired state: every account of every profile file."""

    targets: tuple[Target, ...]
    output_dirs: tuple[Path, ...]
    warnings: tuple[str, ...] = ()

    def select(
        self, names: tuple[str, ...] | list[str] = (), labels: Mapping[str, str] | None = None
    ) -> Desired:
        """Only the named accounts whose labels hold every `labels` pair (all when both
        are empty). An unknown name, or a selection that keeps no account, is an error."""
        if not names and not labels:
            return self
        from bfprov.errors import BfprovError

        known = {t.name for t in self.targets}
        unknown = sorted(set(names) - known)
        if unknown:
            raise BfprovError(f"no account named {', '.join(unknown)} in the profiles")
        wanted = dict(labels or {})
        targets = tuple(
            t
            for t in self.targets
            if (not names or t.name in names)
            and all(t.account.labels.get(k) == v for k, v in wanted.items())
        )
        if not targets:
            shown = " ".join(f"--select {k}={v}" for k, v in wanted.items())
            among = f" among {', '.join(sorted(set(names)))}" if names else ""
            raise BfprovError(f"no account{among} matches {shown}")
        # Only the output directories of the accounts kept: a selection must not lock,
        # create or look into anything of the accounts left out.
        dirs = {t.output_dir for t in targets}
        return Desired(
            targets=targets,
            output_dirs=tuple(d for d in self.output_dirs if d in dirs),
            warnings=self.warnings,
        )
