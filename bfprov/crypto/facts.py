"""What the planner learns about keys, certificates and CSRs, and the guide's `[ssl_client]`.

Betfair's certificate guide asks for a self-signed certificate carrying exactly these
extensions: basicConstraints CA:FALSE, nsCertType client, keyUsage digitalSignature and
keyEncipherment, extendedKeyUsage clientAuth. `make` builds them, `inspect` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # at run time: the facts' fields must resolve (records)
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from bfprov.desired.models import Subject


class InvalidMaterial(BfprovError):
    """Key, certificate or CSR data that cannot be used; the message says why."""


@dataclass(frozen=True)
class KeyFacts:
    """What the planner needs to know about a private key."""

    algorithm: str
    bits: int
    spki_sha256: str
    encoding: str


@dataclass(frozen=True)
class CertFacts:
    """What the planner needs to know about a certificate."""

    fingerprint_sha256: str
    spki_sha256: str
    key_algorithm: str
    key_bits: int
    subject: tuple[tuple[str, str], ...]
    issuer_is_subject: bool
    not_before: datetime
    not_after: datetime
    signature_hash: str | None
    extension_problems: tuple[str, ...]
    self_signature_valid: bool = True  # the certificate verifies with its own key


@dataclass(frozen=True)
class CsrFacts:
    """What the planner needs to know about a certificate signing request."""

    spki_sha256: str
    subject: tuple[tuple[str, str], ...]
    signature_valid: bool


# --- subjects --------------------------------------------------------------------------

# Subject attributes in the order OpenSSL writes them from the rendered openssl.cnf,
# keyed by the field names of models.Subject.
SUBJECT_OIDS: tuple[tuple[str, x509.ObjectIdentifier], ...] = (
    ("country", NameOID.COUNTRY_NAME),
    ("state", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("common_name", NameOID.COMMON_NAME),
    ("email_address", NameOID.EMAIL_ADDRESS),
)


def subject_values(subject: Subject) -> tuple[tuple[str, str], ...]:
    """The subject's attributes as sorted (field, value) pairs, the shape of CertFacts.subject."""
    return tuple(
        sorted(
            (field, value)
            for field, _ in SUBJECT_OIDS
            if (value := getattr(subject, field)) is not None
        )
    )


# --- the [ssl_client] extensions -------------------------------------------------------

NS_CERT_TYPE = x509.ObjectIdentifier("2.16.840.1.113730.1.1")
# DER of the BIT STRING `nsCertType = client` produces: bit 0 ("SSL Client") set.
NS_CERT_TYPE_CLIENT = b"\x03\x02\x07\x80"
NS_CERT_TYPE_BITS = (
    "SSL Client",
    "SSL Server",
    "S/MIME",
    "Object Signing",
    "unused bit 4",
    "SSL CA",
    "S/MIME CA",
    "Object Signing CA",
)
# OpenSSL's x509 -req adds a subjectKeyIdentifier, other tools an authorityKeyIdentifier:
# neither changes what the certificate may do, so neither is a problem.
TOLERATED_EXTENSIONS = frozenset(
    {ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
)
EXTENSION_NAMES = {
    ExtensionOID.BASIC_CONSTRAINTS: "basicConstraints",
    NS_CERT_TYPE: "nsCertType",
    ExtensionOID.KEY_USAGE: "keyUsage",
    ExtensionOID.EXTENDED_KEY_USAGE: "extendedKeyUsage",
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: "subjectAltName",
    ExtensionOID.ISSUER_ALTERNATIVE_NAME: "issuerAltName",
    ExtensionOID.CERTIFICATE_POLICIES: "certificatePolicies",
    ExtensionOID.POLICY_MAPPINGS: "policyMappings",
    ExtensionOID.POLICY_CONSTRAINTS: "policyConstraints",
    ExtensionOID.NAME_CONSTRAINTS: "nameConstraints",
    ExtensionOID.INHIBIT_ANY_POLICY: "inhibitAnyPolicy",
    ExtensionOID.CRL_DISTRIBUTION_POINTS: "crlDistributionPoints",
    ExtensionOID.FRESHEST_CRL: "freshestCRL",
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "authorityInfoAccess",
    ExtensionOID.SUBJECT_INFORMATION_ACCESS: "subjectInfoAccess",
    ExtensionOID.TLS_FEATURE: "tlsFeature",
    ExtensionOID.OCSP_NO_CHECK: "noCheck",
    ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS: "ct_precert_scts",
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES: "subjectDirectoryAttributes",
    x509.ObjectIdentifier("2.16.840.1.113730.1.13"): "nsComment",
}
# (attribute of x509.KeyUsage, OpenSSL's name)
KEY_USAGE_FLAGS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
CLIENT_KEY_USAGES = frozenset({"digital_signature", "key_encipherment"})  # what [ssl_client] sets
EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A keyUsage extension value with the given flags set and every other one clear."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
