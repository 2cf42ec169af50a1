"""Keys, certificates, CSRs and PKCS#12 as values: nothing here touches the disk.

Everything follows Betfair's certificate guide: an RSA key, a self-signed certificate
with exactly the guide's `[ssl_client]` extensions, a SHA-256 signature. The
`inspect_*` functions read material back into small facts that the planner compares;
each parses its input once.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x448,
    x25519,
)
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

    from bfprov.desired.models import P12Profile, Subject


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


# Subject attributes in the order OpenSSL writes them from the rendered openssl.cnf,
# keyed by the field names of models.Subject.
_SUBJECT_OIDS: tuple[tuple[str, x509.ObjectIdentifier], ...] = (
    ("country", NameOID.COUNTRY_NAME),
    ("state", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("common_name", NameOID.COMMON_NAME),
    ("email_address", NameOID.EMAIL_ADDRESS),
)
_FIELD_OF_OID = {oid: field for field, oid in _SUBJECT_OIDS}

NS_CERT_TYPE = x509.ObjectIdentifier("2.16.840.1.113730.1.1")
# DER of the BIT STRING `nsCertType = client` produces: bit 0 ("SSL Client") set.
NS_CERT_TYPE_CLIENT = b"\x03\x02\x07\x80"
_NS_CERT_TYPE_BITS = (
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
_TOLERATED_EXTENSIONS = frozenset(
    {ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
)
_EXTENSION_NAMES = {
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
_KEY_USAGE_FLAGS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}

# OpenSSL 3's `pkcs12 -export` default iteration count. A higher count would buy
# nothing: the .p12 lies beside the unencrypted .key with the same file mode.
_P12_ITERATIONS = 2048

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_KEY_ENCODINGS = {b"PRIVATE KEY": "pkcs8", b"RSA PRIVATE KEY": "pkcs1", b"EC PRIVATE KEY": "sec1"}


# --- making material -------------------------------------------------------------------


def generate_key(bits: int) -> rsa.RSAPrivateKey:
    """A new RSA private key of `bits` bits, public exponent 65537."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (label "PRIVATE KEY"), as OpenSSL 3's genrsa writes."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Read an unencrypted RSA key from PKCS#1 or PKCS#8 PEM.

    Raises InvalidMaterial if the data is unreadable, encrypted, or not an RSA key.
    """
    key, _ = _load_key(pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidMaterial(f"the private key is {_algorithm(key)}, not RSA")
    return key


def subject_values(subject: Subject) -> tuple[tuple[str, str], ...]:
    """The subject's attributes as sorted (field, value) pairs, the shape of CertFacts.subject."""
    return tuple(
        sorted(
            (field, value)
            for field, _ in _SUBJECT_OIDS
            if (value := getattr(subject, field)) is not None
        )
    )


def x509_name(subject: Subject) -> x509.Name:
    """The subject as an X.509 name, attributes in OpenSSL's order (C, ST, L, O, OU, CN, email).

    String types match `string_mask = utf8only`: C is a PrintableString, emailAddress an
    IA5String, everything else a UTF8String.
    """
    attributes = []
    for field, oid in _SUBJECT_OIDS:
        value = getattr(subject, field)
        if value is None:
            continue
        if oid == NameOID.EMAIL_ADDRESS and not value.isascii():
            # IA5String is 7-bit; OpenSSL refuses such an address too.
            raise InvalidMaterial("the subject's emailAddress must be plain ASCII")
        attributes.append(x509.NameAttribute(oid, value))
    return x509.Name(attributes)


def self_signed_certificate(
    key: rsa.RSAPrivateKey, subject: Subject, days: int, now: datetime
) -> bytes:
    """A self-signed certificate (PEM) with exactly the `[ssl_client]` extensions.

    Valid from `now` (truncated to whole seconds, must be timezone-aware) for `days`
    days; SHA-256 signature; random positive serial number.
    """
    return _build_certificate(key, subject, days, now).public_bytes(serialization.Encoding.PEM)


def issue_certificate(
    key: rsa.RSAPrivateKey, subject: Subject, days: int, now: datetime
) -> tuple[bytes, CertFacts]:
    """`self_signed_certificate`, with the facts `inspect_certificate` would find in it,
    taken from the certificate just built (no parsing back, no check of the signature
    just made)."""
    certificate = _build_certificate(key, subject, days, now)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return pem, _certificate_facts(certificate, signed_here=True)


def _build_certificate(
    key: rsa.RSAPrivateKey, subject: Subject, days: int, now: datetime
) -> x509.Certificate:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    not_before = now.astimezone(UTC).replace(microsecond=0)
    name = x509_name(subject)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(NS_CERT_TYPE, NS_CERT_TYPE_CLIENT), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate


def certificate_signing_request(key: rsa.RSAPrivateKey, subject: Subject) -> bytes:
    """A PEM certificate signing request for `subject`, signed with SHA-256, no extensions."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509_name(subject))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_for_certificate(key: rsa.RSAPrivateKey, cert_pem: bytes) -> bytes:
    """A SHA-256 CSR for `key` carrying the certificate's subject exactly (`x509 -x509toreq`).

    Raises InvalidMaterial if the certificate is unreadable or belongs to another key.
    """
    certificate = _load_certificate(_single_block(cert_pem, b"CERTIFICATE", "certificate"))
    _check_belongs(certificate, key)
    csr = x509.CertificateSigningRequestBuilder().subject_name(certificate.subject)
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def combined_pem(cert_pem: bytes, key_pem: bytes) -> bytes:
    """The certificate then the key, byte for byte what `cat crt key` gives."""
    return cert_pem + key_pem


def pkcs12(
    key: rsa.RSAPrivateKey,
    cert_pem: bytes,
    password: bytes,
    profile: P12Profile,
    name: bytes,
) -> bytes:
    """A password-protected PKCS#12 file (DER) holding the key and its certificate.

    `modern`: PBES2 (PBKDF2, AES-256-CBC) with an HMAC-SHA256 MAC, OpenSSL 3's default.
    `legacy`: PBES1 3-key triple DES with an HMAC-SHA1 MAC, for Java 8, older .NET and
    macOS Keychain. `name` is the friendly name (the alias Java shows).
    """
    if not password:
        raise InvalidMaterial("the PKCS#12 password is empty")
    mac: hashes.HashAlgorithm
    if profile == "modern":
        algorithm, mac = _pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA256()
    elif profile == "legacy":
        # SHA-1 is what the readers this profile exists for understand.
        algorithm, mac = _pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1()  # noqa: S303
    else:
        raise ValueError(f"unknown PKCS#12 profile {profile!r}")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(_P12_ITERATIONS)
        .key_cert_algorithm(algorithm)
        .hmac_hash(mac)
        .build(password)
    )
    certificate = _load_certificate(_single_block(cert_pem, b"CERTIFICATE", "certificate"))
    _check_belongs(certificate, key)
    return _pkcs12.serialize_key_and_certificates(name, key, certificate, None, encryption)


def spki_sha256_of(key: rsa.RSAPrivateKey) -> str:
    """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
    return _spki_sha256(key.public_key())


# --- reading material back -------------------------------------------------------------


def key_facts_of(key: rsa.RSAPrivateKey) -> KeyFacts:
    """Facts of a key bfprov just generated (written as PKCS#8), without parsing it back."""
    return KeyFacts(algorithm="rsa", bits=key.key_size, spki_sha256=spki_sha256_of(key),
                    encoding="pkcs8")  # fmt: skip


def inspect_key(pem: bytes) -> KeyFacts:
    """Facts about a PEM private key of any type.

    A key that is not RSA is reported, not refused (algorithm "ec", ...). Raises
    InvalidMaterial if the data is unreadable, encrypted or not a private key.
    """
    key, encoding = _load_key(pem)
    return KeyFacts(
        algorithm=_algorithm(key),
        bits=_bits(key),
        spki_sha256=_spki_sha256(key.public_key()),
        encoding=encoding,
    )


def inspect_certificate(pem: bytes) -> CertFacts:
    """Facts about a PEM certificate: identity, key, subject, validity, extensions.

    Raises InvalidMaterial unless the data holds exactly one certificate, or if it also
    holds a private key (a .crt is meant to be shared).
    """
    blocks = _pem_blocks(pem)
    if any(label.endswith(b"PRIVATE KEY") for label, _ in blocks):
        raise InvalidMaterial(
            "the certificate file also holds a private key; a certificate file is "
            "meant to be shared, so it must hold the certificate alone"
        )
    return _certificate_facts(_load_certificate(_single_block(pem, b"CERTIFICATE", "certificate")))


def inspect_csr(pem: bytes) -> CsrFacts:
    """Facts about a PEM certificate signing request. Raises InvalidMaterial if unreadable."""
    blocks = [
        block
        for label, block in _pem_blocks(pem)
        if label in (b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    ]
    if len(blocks) != 1:
        raise InvalidMaterial(
            "no PEM certificate signing request found"
            if not blocks
            else f"expected one certificate signing request, found {len(blocks)}"
        )
    try:
        csr = x509.load_pem_x509_csr(blocks[0])
        public_key = csr.public_key()
        subject = _name_values(csr.subject)
        signature_valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidMaterial("the certificate signing request cannot be read") from exc
    return CsrFacts(
        spki_sha256=_spki_sha256(public_key),
        subject=subject,
        signature_valid=signature_valid,
    )


def inspect_combined_pem(data: bytes) -> tuple[CertFacts, KeyFacts]:
    """Facts about a combined PEM file: exactly one certificate followed by one private key.

    Raises InvalidMaterial for anything else (other order, extra or missing blocks).
    """
    blocks = _pem_blocks(data)
    labels = [label for label, _ in blocks]
    if len(blocks) != 2 or labels[0] != b"CERTIFICATE" or not labels[1].endswith(b"PRIVATE KEY"):
        found = ", ".join(_describe_label(label) for label in labels) or "nothing in PEM form"
        raise InvalidMaterial(
            f"a combined PEM file must hold the certificate then the private key; found {found}"
        )
    cert = _certificate_facts(_load_certificate(blocks[0][1]))
    return cert, inspect_key(blocks[1][1])


# --- helpers ---------------------------------------------------------------------------


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(label, whole block) for each PEM block, in order; text around them is ignored."""
    return [(m[1], m[0] + b"\n") for m in _PEM_BLOCK.finditer(data)]


def _single_block(data: bytes, label: bytes, what: str) -> bytes:
    blocks = [block for found, block in _pem_blocks(data) if found == label]
    if not blocks:
        raise InvalidMaterial(f"no PEM {what} found")
    if len(blocks) > 1:
        raise InvalidMaterial(f"expected one {what}, found {len(blocks)}")
    return blocks[0]


def _describe_label(label: bytes) -> str:
    text = label.decode("ascii").lower()
    return "private key" if text.endswith("private key") else text


def _load_key(pem: bytes) -> tuple[PrivateKeyTypes, str]:
    """The one private key in `pem`, and its encoding; rejects encrypted keys."""
    blocks = [(label, block) for label, block in _pem_blocks(pem) if label.endswith(b"PRIVATE KEY")]
    if not blocks:
        raise InvalidMaterial("no PEM private key found")
    if len(blocks) > 1:
        raise InvalidMaterial(f"expected one private key, found {len(blocks)}")
    label, block = blocks[0]
    if label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block:
        raise InvalidMaterial("the private key is encrypted; bots need an unencrypted key")
    try:
        # OpenSSL's own RSA check tests p and q for primality: about 35 ms for a
        # 2048-bit key, which a plan over thousands of accounts cannot afford. The
        # arithmetic check below catches any damaged or mismatched component instead.
        key = serialization.load_pem_private_key(
            block, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidMaterial("the private key cannot be read (damaged or not a key)") from exc
    if isinstance(key, rsa.RSAPrivateKey) and not _rsa_consistent(key):
        raise InvalidMaterial("the RSA private key is damaged: its numbers do not fit together")
    return key, _KEY_ENCODINGS.get(label, label.decode("ascii").lower())


def _rsa_consistent(key: rsa.RSAPrivateKey) -> bool:
    numbers = key.private_numbers()
    p, q, d = numbers.p, numbers.q, numbers.d
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    return (
        p > 1
        and q > 1
        and p * q == n
        and 1 < e < n
        and (e * d) % math.lcm(p - 1, q - 1) == 1
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and (numbers.iqmp * q) % p == 1
    )


def _check_belongs(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
    if certificate.public_key() != key.public_key():
        raise InvalidMaterial("the certificate does not belong to the private key")


def _load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InvalidMaterial("the certificate cannot be read (damaged or not PEM)") from exc


def _certificate_facts(cert: x509.Certificate, *, signed_here: bool = False) -> CertFacts:
    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidMaterial("the certificate's public key cannot be read") from exc
    try:
        signature_hash = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        signature_hash = None
    try:
        subject = _name_values(cert.subject)
        issuer_is_subject = cert.issuer == cert.subject
    except ValueError as exc:
        raise InvalidMaterial("the certificate's subject cannot be read") from exc
    return CertFacts(
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        spki_sha256=_spki_sha256(public_key),
        key_algorithm=_algorithm(public_key),
        key_bits=_bits(public_key),
        subject=subject,
        issuer_is_subject=issuer_is_subject,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        signature_hash=signature_hash.name if signature_hash is not None else None,
        extension_problems=_extension_problems(cert),
        self_signature_valid=issuer_is_subject and (signed_here or _self_signed_ok(cert)),
    )


def _self_signed_ok(cert: x509.Certificate) -> bool:
    """Whether the certificate's signature verifies with its own public key."""
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name_values(name: x509.Name) -> tuple[tuple[str, str], ...]:
    values = []
    for attribute in name:
        field = _FIELD_OF_OID.get(attribute.oid, attribute.oid.dotted_string)
        value = attribute.value
        values.append((field, value if isinstance(value, str) else value.hex()))
    return tuple(sorted(values))


def _extension_problems(cert: x509.Certificate) -> tuple[str, ...]:
    """Everything that differs from the `[ssl_client]` extensions, in plain words."""
    try:
        extensions = {ext.oid: ext for ext in cert.extensions}
    except (ValueError, x509.DuplicateExtension) as exc:
        return (f"the extensions cannot be read ({exc})",)
    problems: list[str] = []
    for oid, check in _EXPECTED:
        name = _EXTENSION_NAMES[oid]
        ext = extensions.pop(oid, None)
        if ext is None:
            problems.append(f"{name} is missing")
            continue
        if ext.critical:
            problems.append(f"{name} is marked critical")
        problems.extend(check(ext.value))
    for oid in extensions:
        if oid not in _TOLERATED_EXTENSIONS:
            problems.append(f"unexpected extension {_EXTENSION_NAMES.get(oid, oid.dotted_string)}")
    return tuple(problems)


def _check_basic_constraints(value: x509.ExtensionType) -> list[str]:
    assert isinstance(value, x509.BasicConstraints)
    problems = []
    if value.ca:
        problems.append("basicConstraints says CA:TRUE instead of CA:FALSE")
    if value.path_length is not None:
        problems.append("basicConstraints sets a path length")
    return problems


def _check_ns_cert_type(value: x509.ExtensionType) -> list[str]:
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    types = _bit_string_flags(raw, _NS_CERT_TYPE_BITS)
    if types is None:
        return ["nsCertType cannot be read"]
    if types != ["SSL Client"]:
        return [f"nsCertType is {', '.join(types) or 'empty'} instead of SSL Client only"]
    return []


def _check_key_usage(value: x509.ExtensionType) -> list[str]:
    assert isinstance(value, x509.KeyUsage)
    problems = [
        f"keyUsage lacks {name}"
        for attr, name in _KEY_USAGE_FLAGS
        if attr in ("digital_signature", "key_encipherment") and not getattr(value, attr)
    ]
    problems.extend(
        f"keyUsage also allows {name}"
        for attr, name in _KEY_USAGE_FLAGS
        if attr not in ("digital_signature", "key_encipherment") and getattr(value, attr)
    )
    # encipher_only and decipher_only are only defined alongside keyAgreement.
    return problems


def _check_extended_key_usage(value: x509.ExtensionType) -> list[str]:
    assert isinstance(value, x509.ExtendedKeyUsage)
    usages = list(value)
    problems = []
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        problems.append("extendedKeyUsage lacks clientAuth")
    problems.extend(
        f"extendedKeyUsage also allows {_EKU_NAMES.get(oid, oid.dotted_string)}"
        for oid in usages
        if oid != ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return problems


_EXPECTED = (
    (ExtensionOID.BASIC_CONSTRAINTS, _check_basic_constraints),
    (NS_CERT_TYPE, _check_ns_cert_type),
    (ExtensionOID.KEY_USAGE, _check_key_usage),
    (ExtensionOID.EXTENDED_KEY_USAGE, _check_extended_key_usage),
)


def _bit_string_flags(der: bytes, names: tuple[str, ...]) -> list[str] | None:
    """The names of the bits set in a DER BIT STRING (short form), or None if malformed."""
    if len(der) < 3 or der[0] != 0x03 or der[1] != len(der) - 2 or der[2] > 7:
        return None
    bits = der[3:]
    flags = []
    for index in range(len(bits) * 8):
        if bits[index // 8] & (0x80 >> (index % 8)):
            flags.append(names[index] if index < len(names) else f"bit {index}")
    return flags


def _spki_sha256(public_key: PublicKeyTypes) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


_ALGORITHMS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((rsa.RSAPrivateKey, rsa.RSAPublicKey), "rsa"),
    ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), "ec"),
    ((ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey), "ed25519"),
    ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "ed448"),
    ((dsa.DSAPrivateKey, dsa.DSAPublicKey), "dsa"),
    ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "x25519"),
    ((x448.X448PrivateKey, x448.X448PublicKey), "x448"),
)


def _algorithm(key: object) -> str:
    for types, name in _ALGORITHMS:
        if isinstance(key, types):
            return name
    return type(key).__name__.lower()


def _bits(key: object) -> int:
    # RSA, EC, DSA and DH keys have a size; Edwards and Montgomery keys do not.
    size = getattr(key, "key_size", 0)
    return size if isinstance(size, int) else 0
