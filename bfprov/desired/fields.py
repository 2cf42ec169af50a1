"""The field types a profile is made of: jurisdictions, outputs, secret references,
subject, key, validity and renewal windows, PKCS#12 options, account names and labels.

Validators here quote the value they refuse (`quote`); no validator of a secret's field
ever sees a secret (`SecretRef` refuses literals without echoing them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from bfprov.durations import bounded

# A PEM block, an age secret key, a URL's password: a secret pasted in the wrong place.
_SECRET_LOOKING = re.compile(r"-----BEGIN|AGE-SECRET-KEY-|://[^/?#@]*:[^/?#@]*@", re.IGNORECASE)
SECRET_LOOKING = "(a value that looks like a secret, not shown)"  # noqa: S105 (a message)


def looks_secret(value: str) -> bool:
    """Whether `value` looks like a secret, which no message may quote."""
    return _SECRET_LOOKING.search(value) is not None


def quote(value: object, limit: int = 40) -> str:
    """`value` as a message shows it: strings quoted, control characters escaped, long
    ones cut at `limit` characters; one that looks like a secret (`looks_secret`) is not
    shown at all. Never call it on a secret."""
    if isinstance(value, str):
        if looks_secret(value):
            return SECRET_LOOKING
        shown = repr(value[:limit])
        return shown[:-1] + "..." + shown[-1] if len(value) > limit else shown
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= limit else text[:limit] + "..."
    return (
        "a mapping"
        if isinstance(value, dict)
        else "a list"
        if isinstance(value, list)
        else "a value"
    )


class Jurisdiction(StrEnum):
    """A Betfair jurisdiction; the value is the top-level domain of its hosts."""

    COM = "com"
    IT = "it"
    ES = "es"
    RO = "ro"
    SE = "se"

    @property
    def upload_url(self) -> str:
        """The page where the operator uploads the certificate by hand."""
        return f"https://myaccount.betfair.{self.value}/accountdetails/mysecurity?showAPI=1"

    @property
    def login_url(self) -> str:
        return f"https://identitysso-cert.betfair.{self.value}/api/certlogin"

    @property
    def logout_url(self) -> str:
        return f"https://identitysso.betfair.{self.value}/api/logout"


def _check_jurisdiction(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == "dk":
        raise ValueError(
            "jurisdiction 'dk' is refused: Danish residents cannot use Betfair's "
            "non-interactive (bot) login"
        )
    if isinstance(value, str) and value not in {j.value for j in Jurisdiction}:
        raise ValueError(
            f"unknown jurisdiction {quote(value)}; expected one of "
            + ", ".join(j.value for j in Jurisdiction)
        )
    return value


JurisdictionField = Annotated[Jurisdiction, BeforeValidator(_check_jurisdiction)]


class Output(StrEnum):
    """A file bfprov can write for an account; the value is the file extension."""

    KEY = "key"
    CRT = "crt"
    PEM = "pem"
    P12 = "p12"
    CSR = "csr"
    CNF = "cnf"


DEFAULT_OUTPUTS: tuple[Output, ...] = (Output.KEY, Output.CRT, Output.PEM, Output.CNF)

P12Profile = Literal["modern", "legacy"]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class SecretRef(BaseModel):
    """Where a secret comes from: an environment variable or a file. Never the secret."""

    model_config = _FROZEN

    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    file: Annotated[str, StringConstraints(min_length=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_literals(cls, value: Any) -> Any:
        # The literal is never echoed back: it is probably the secret itself.
        if not isinstance(value, dict):
            raise ValueError(
                "a secret must be a reference, {env: NAME} or {file: PATH}, never a literal value"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference takes exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """A printable description of the reference (never the value)."""
        return f"environment variable {self.env}" if self.env else f"file {self.file}"


_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[dh])$")
_SHARE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)%$")


@dataclass(frozen=True)
class RenewWindow:
    """`renew_before`: a fixed duration (`30d`, `36h`) or a share of the lifetime (`25%`)."""

    text: str
    duration: timedelta | None = None
    share: float | None = None

    @classmethod
    def parse(cls, value: Any) -> RenewWindow:
        if isinstance(value, RenewWindow):
            return value
        if not isinstance(value, str):
            raise ValueError(
                f"{quote(value)} is not a duration like '30d' or '36h', nor a share like '25%'"
            )
        text = value.strip()
        if m := _DURATION.match(text):
            unit = 86400 if m["unit"] == "d" else 3600
            return cls(text=text, duration=bounded(float(m["n"]) * unit, text))
        if m := _SHARE.match(text):
            share = float(m["n"]) / 100
            if not 0 < share < 1:
                raise ValueError(f"{quote(text)}: a share must lie between 0% and 100%")
            return cls(text=text, share=share)
        raise ValueError(
            f"renew_before {quote(text)} is not a duration like '30d' or '36h', "
            "nor a share like '25%'"
        )

    def before_expiry(self, lifetime: timedelta) -> timedelta:
        """How long before expiry renewal is due, for a certificate of this lifetime."""
        if self.duration is not None:
            return self.duration
        assert self.share is not None
        return lifetime * self.share

    def __str__(self) -> str:
        return self.text


RenewWindowField = Annotated[
    RenewWindow,
    BeforeValidator(RenewWindow.parse),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[dh]|\d+(\.\d+)?%)$"}),
]


def _no_control_chars(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{quote(value)} must not contain control characters")
    if value != value.strip():
        raise ValueError(f"{quote(value)} must not start or end with white space")
    return value


def clean(value: Any) -> Any:
    return _no_control_chars(value) if isinstance(value, str) else value


# Subject attributes: non-empty, no control characters, RFC 5280 upper bounds.
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64), BeforeValidator(clean)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128), BeforeValidator(clean)]


def _country(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError(
            f"country {quote(value)} must be a two-letter ISO 3166 code in capitals, like GB"
        )
    return value


class Subject(BaseModel):
    """The certificate subject; every attribute optional here, CN required on `Account`."""

    model_config = _FROZEN

    country: Annotated[str, BeforeValidator(_country)] | None = Field(
        None, description="C: two-letter ISO 3166 code, upper case"
    )
    state: Text128 | None = Field(None, description="ST")
    locality: Text128 | None = Field(None, description="L")
    organization: Text64 | None = Field(None, description="O")
    organizational_unit: Text64 | None = Field(None, description="OU")
    common_name: Text64 | None = Field(None, description="CN (required, at most 64 characters)")
    email_address: (
        # ASCII only: emailAddress is an IA5String, and openssl refuses anything else.
        Annotated[str, StringConstraints(pattern=r"^[!-?A-~]+@[!-?A-~]+$", max_length=128)] | None
    ) = Field(None, description="emailAddress")

    def merged(self, override: Subject) -> Subject:
        """This subject with every attribute that `override` sets replaced."""
        return self.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


class KeySpec(BaseModel):
    """The key pair: RSA, 1024 or 2048 bits, as Betfair requires."""

    model_config = _FROZEN

    type: Literal["rsa"] = Field("rsa", description="only RSA is accepted by Betfair")
    size: int = Field(2048, description="1024 (accepted with a warning) or 2048")

    @field_validator("size")
    @classmethod
    def _betfair_sizes(cls, size: int) -> int:
        if size not in (1024, 2048):
            raise ValueError(f"key size {size} is not accepted by Betfair: use 2048 (or 1024)")
        return size


class Validity(BaseModel):
    model_config = _FROZEN

    days: int = Field(365, ge=1, le=3650, description="certificate lifetime in days")
    renew_before: RenewWindowField = Field(
        default_factory=lambda: RenewWindow.parse("30d"),
        description="renew this long before expiry: '30d', '36h' or a share like '25%'",
    )
    renew_jitter: RenewWindowField | None = Field(
        None,
        description="spread a fleet's renewals: each account renews up to this much earlier "
        "(a duration like '5d'), by an amount fixed per account so plans stay stable",
    )

    @field_validator("renew_jitter")
    @classmethod
    def _jitter_is_a_duration(cls, value: RenewWindow | None) -> RenewWindow | None:
        if value is not None and value.duration is None:
            raise ValueError(
                f"renew_jitter {quote(value.text)} must be a duration like '5d' or '12h', "
                "not a share"
            )
        return value


class P12Spec(BaseModel):
    model_config = _FROZEN

    profile: P12Profile = Field(
        "modern",
        description="modern: AES-256/PBKDF2 (OpenSSL 3, Java 11+); "
        "legacy: 3DES/SHA-1 MAC (Java 8, older .NET, macOS Keychain)",
    )
    password: SecretRef | None = None


_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _account_name(value: Any) -> Any:
    if isinstance(value, str) and not _ACCOUNT_NAME.match(value):
        raise ValueError(
            f"account name {quote(value)} is not a safe directory name: lower-case letters, "
            "digits, '.', '_' and '-', at most 64, starting with a letter or digit"
        )
    return value


AccountName = Annotated[
    str,
    BeforeValidator(_account_name),
    Field(
        description="the account's directory name: [a-z0-9][a-z0-9._-]{0,63}",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
    ),
]


_LABEL_KEY = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"
_LABEL_VALUE_MAX = 63


def _label_key(value: Any) -> Any:
    if not isinstance(value, str) or not re.fullmatch(_LABEL_KEY, value):
        raise ValueError(
            f"label key {quote(value)} is not valid: letters, digits, '.', '_', '/' and '-', "
            "at most 63, starting with a letter or digit"
        )
    return value


def _label_value(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"label value {quote(value)} must be a string (quote it in YAML)")
    if len(value) > _LABEL_VALUE_MAX:
        raise ValueError(f"label value {quote(value)} is longer than 63 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"label value {quote(value)} must not contain control characters")
    return value


# Free key/value strings to select accounts by (`--select KEY=VALUE`), like Kubernetes'.
Labels = Annotated[
    dict[
        Annotated[str, BeforeValidator(_label_key)], Annotated[str, BeforeValidator(_label_value)]
    ],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": _LABEL_KEY},
            "additionalProperties": {"type": "string", "maxLength": _LABEL_VALUE_MAX},
        }
    ),
]
