"""Making material: keys, the self-signed certificate, CSRs, the combined PEM and PKCS#12.

Everything follows Betfair's certificate guide: an RSA key, a self-signed certificate
with exactly the guide's `[ssl_client]` extensions, a SHA-256 signature.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as _pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bfprov.crypto.facts import (
    NS_CERT_TYPE,
    NS_CERT_TYPE_CLIENT,
    SUBJECT_OIDS,
    CertFacts,
    InvalidMaterial,
    KeyFacts,
    key_usage,
)
from bfprov.crypto.inspect import certificate_facts
from bfprov.crypto.pem import check_belongs, load_certificate, single_block, spki_sha256

if TYPE_CHECKING:
    from bfprov.desired.models import P12Profile, Subject

# OpenSSL 3's `pkcs12 -export` default iteration count. A higher count would buy
# nothing: the .p12 lies beside the unencrypted .key with the same file mode.
_P12_ITERATIONS = 2048


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


def spki_sha256_of(key: rsa.RSAPrivateKey) -> str:
    """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
    return spki_sha256(key.public_key())


def key_facts_of(key: rsa.RSAPrivateKey) -> KeyFacts:
    """Facts of a key bfprov just generated (written as PKCS#8), without parsing it back."""
    return KeyFacts(algorithm="rsa", bits=key.key_size, spki_sha256=spki_sha256_of(key),
                    encoding="pkcs8")  # fmt: skip


def x509_name(subject: Subject) -> x509.Name:
    """The subject as an X.509 name, attributes in OpenSSL's order (C, ST, L, O, OU, CN, email).

    String types match `string_mask = utf8only`: C is a PrintableString, emailAddress an
    IA5String, everything else a UTF8String.
    """
    attributes = []
    for field, oid in SUBJECT_OIDS:
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
    return pem, certificate_facts(certificate, signed_here=True)


def _build_certificate(
    key: rsa.RSAPrivateKey, subject: Subject, days: int, now: datetime
) -> x509.Certificate:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    not_before = now.astimezone(UTC).replace(microsecond=0)
    name = x509_name(subject)
    return (
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
        .add_extension(key_usage(digital_signature=True, key_encipherment=True), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


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
    certificate = load_certificate(single_block(cert_pem, b"CERTIFICATE", "certificate"))
    check_belongs(certificate, key)
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
    certificate = load_certificate(single_block(cert_pem, b"CERTIFICATE", "certificate"))
    check_belongs(certificate, key)
    return _pkcs12.serialize_key_and_certificates(name, key, certificate, None, encryption)
