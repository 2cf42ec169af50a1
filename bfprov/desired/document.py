"""The models that mirror a profile's YAML: every field as written, every overridable
one optional. They give the JSON Schema (`bfprov schema`) and the per-field errors;
`profile` merges `defaults` into each entry to make an `Account`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from bfprov.desired.fields import (
    AccountName,
    JurisdictionField,
    KeySpec,
    Labels,
    Output,
    P12Spec,
    SecretRef,
    Subject,
    Validity,
    clean,
)
from bfprov.desired.targets import HooksConfig, PublishEntry

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class AccountDefaults(BaseModel):
    """Fields an account may take from `defaults`; each overrides field by field."""

    model_config = _FROZEN

    jurisdiction: JurisdictionField | None = None
    app_key: SecretRef | None = None
    password: SecretRef | None = None
    key: KeySpec | None = None
    subject: Subject | None = None
    validity: Validity | None = None
    outputs: list[Output] | None = None
    p12: P12Spec | None = None
    labels: Labels | None = Field(
        None,
        description="free key/value strings to select accounts by; an account's labels "
        "are merged over those of defaults key by key",
    )
    publish: list[PublishEntry] | None = Field(
        None,
        description="where the live pair is delivered (vault, aws_secrets_manager, "
        "kubernetes); an account's list replaces that of defaults",
    )
    hooks: HooksConfig | None = Field(
        None, description="commands run after a pair goes live (on_live) or a failure"
    )
    notify: list[SecretRef] | None = Field(
        None,
        description="Apprise URLs told of uploads pending, promotions and failures; each a "
        "secret reference ({env: NAME} or {file: PATH}), since they hold tokens",
    )


class AccountEntry(AccountDefaults):
    """One item of `accounts:`."""

    name: AccountName
    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _whole_number(value: Any) -> Any:
    # YAML's `true` and `1.0` would otherwise pass as 1.
    if type(value) is not int:
        raise ValueError("version must be the number 1")
    return value


_Path = Annotated[str, StringConstraints(min_length=1), BeforeValidator(clean)]


class ProfileDocument(BaseModel):
    """A profile file."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="bfprov profile")

    version: Annotated[Literal[1], BeforeValidator(_whole_number)]
    output_dir: _Path | None = Field(
        None, description="where account directories go, relative to this file"
    )
    templates: _Path | None = Field(
        None, description="a directory of Jinja templates overriding the bundled ones"
    )
    archive_keep: int = Field(
        3, ge=1, le=100, description="earlier generations kept per account in archive/"
    )
    defaults: AccountDefaults = Field(default_factory=AccountDefaults)
    accounts: list[AccountEntry] = Field(default_factory=list)
