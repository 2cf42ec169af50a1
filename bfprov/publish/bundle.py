"""What a target receives: one account's pair, and the payload every target holds."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bfprov import crypto

# The payload's key names, the same for every target (SPEC: "What every target holds").
CRT = "tls.crt"
KEY = "tls.key"
COMBINED = "tls-combined.pem"
P12 = "keystore.p12"
FINGERPRINT = "fingerprint"
NOT_AFTER = "not_after"
ACCOUNT = "account"
JURISDICTION = "jurisdiction"


@dataclass(frozen=True)
class Bundle:
    """An account's pair, as values; its repr never shows key material."""

    account: str
    jurisdiction: str
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    p12: bytes | None = field(repr=False)
    fingerprint: str  # lowercase hex SHA-256 of the certificate's DER
    not_after: datetime  # UTC

    @classmethod
    def from_pems(
        cls,
        account: str,
        jurisdiction: str,
        cert_pem: bytes,
        key_pem: bytes,
        p12: bytes | None = None,
    ) -> Bundle:
        """A bundle whose fingerprint and expiry are read from the certificate itself."""
        facts = crypto.inspect_certificate(cert_pem)
        return cls(
            account=account,
            jurisdiction=jurisdiction,
            cert_pem=cert_pem,
            key_pem=key_pem,
            p12=p12,
            fingerprint=facts.fingerprint_sha256,
            not_after=facts.not_after,
        )

    def __repr__(self) -> str:
        p12 = ", p12" if self.p12 is not None else ""
        return (
            f"Bundle(account={self.account!r}, jurisdiction={self.jurisdiction!r}, "
            f"fingerprint={self.fingerprint!r}, not_after={self.not_after_text!r}{p12})"
        )

    __str__ = __repr__

    @property
    def not_after_text(self) -> str:
        """`not_after` in ISO 8601, UTC, whole seconds: 2026-01-31T12:00:00+00:00."""
        return self.not_after.replace(microsecond=0).isoformat()


def data(bundle: Bundle) -> dict[str, str]:
    """The key material entries: PEM texts, and the PKCS#12 in base64 when there is one."""
    entries = {
        CRT: bundle.cert_pem.decode("ascii"),
        KEY: bundle.key_pem.decode("ascii"),
        COMBINED: crypto.combined_pem(bundle.cert_pem, bundle.key_pem).decode("ascii"),
    }
    if bundle.p12 is not None:
        entries[P12] = base64.b64encode(bundle.p12).decode("ascii")
    return entries


def metadata(bundle: Bundle) -> dict[str, str]:
    """The entries that describe the pair and hold nothing secret."""
    return {
        FINGERPRINT: bundle.fingerprint,
        NOT_AFTER: bundle.not_after_text,
        ACCOUNT: bundle.account,
        JURISDICTION: bundle.jurisdiction,
    }


def payload(bundle: Bundle) -> dict[str, str]:
    """Everything a target holds: the key material entries, then the metadata."""
    return data(bundle) | metadata(bundle)


def parse_time(value: Any) -> datetime | None:
    """A `not_after` read back from a target; None when it is missing or not ISO 8601."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
