"""Reading material back into facts the planner compares; each function parses its input once.

A certificate's extensions are checked against the guide's `[ssl_client]` section, and
every difference is reported in plain words.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from bfprov.crypto.facts import (
    CLIENT_KEY_USAGES,
    EKU_NAMES,
    EXTENSION_NAMES,
    KEY_USAGE_FLAGS,
    NS_CERT_TYPE,
    NS_CERT_TYPE_BITS,
    SUBJECT_OIDS,
    TOLERATED_EXTENSIONS,
    CertFacts,
    CsrFacts,
    InvalidMaterial,
    KeyFacts,
)
from bfprov.crypto.pem import (
    algorithm_of,
    bits_of,
    describe_label,
    load_certificate,
    load_key,
    pem_blocks,
    single_block,
    spki_sha256,
)

_FIELD_OF_OID = {oid: field for field, oid in SUBJECT_OIDS}


def inspect_key(pem: bytes) -> KeyFacts:
    """Facts about a PEM private key of any type.

    A key that is not RSA is reported, not refused (algorithm "ec", ...). Raises
    InvalidMaterial if the data is unreadable, encrypted or not a private key.
    """
    key, encoding = load_key(pem)
    return KeyFacts(
        algorithm=algorithm_of(key),
        bits=bits_of(key),
        spki_sha256=spki_sha256(key.public_key()),
        encoding=encoding,
    )


def inspect_certificate(pem: bytes) -> CertFacts:
    """Facts about a PEM certificate: identity, key, subject, validity, extensions.

    Raises InvalidMaterial unless the data holds exactly one certificate, or if it also
    holds a private key (a .crt is meant to be shared).
    """
    blocks = pem_blocks(pem)
    if any(label.endswith(b"PRIVATE KEY") for label, _ in blocks):
        raise InvalidMaterial(
            "the certificate file also holds a private key; a certificate file is "
            "meant to be shared, so it must hold the certificate alone"
        )
    return certificate_facts(load_certificate(single_block(pem, b"CERTIFICATE", "certificate")))


def inspect_csr(pem: bytes) -> CsrFacts:
    """Facts about a PEM certificate signing request. Raises InvalidMaterial if unreadable."""
    blocks = [
        block
        for label, block in pem_blocks(pem)
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
    except (ValueError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        raise InvalidMaterial("the certificate signing request cannot be read") from exc
    return CsrFacts(
        spki_sha256=spki_sha256(public_key),
        subject=subject,
        signature_valid=signature_valid,
    )


def inspect_combined_pem(data: bytes) -> tuple[CertFacts, KeyFacts]:
    """Facts about a combined PEM file: exactly one certificate followed by one private key.

    Raises InvalidMaterial for anything else (other order, extra or missing blocks).
    """
    blocks = pem_blocks(data)
    labels = [label for label, _ in blocks]
    if len(blocks) != 2 or labels[0] != b"CERTIFICATE" or not labels[1].endswith(b"PRIVATE KEY"):
        found = ", ".join(describe_label(label) for label in labels) or "nothing in PEM form"
        raise InvalidMaterial(
            f"a combined PEM file must hold the certificate then the private key; found {found}"
        )
    cert = certificate_facts(load_certificate(blocks[0][1]))
    return cert, inspect_key(blocks[1][1])


def certificate_facts(cert: x509.Certificate, *, signed_here: bool = False) -> CertFacts:
    """The facts of a parsed certificate. `signed_here`: bfprov just signed it with its own
    key, so its signature is not checked again."""
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
        spki_sha256=spki_sha256(public_key),
        key_algorithm=algorithm_of(public_key),
        key_bits=bits_of(public_key),
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


# --- the [ssl_client] extensions -------------------------------------------------------


def _extension_problems(cert: x509.Certificate) -> tuple[str, ...]:
    """Everything that differs from the `[ssl_client]` extensions, in plain words."""
    try:
        extensions = {ext.oid: ext for ext in cert.extensions}
    except (ValueError, x509.DuplicateExtension) as exc:
        return (f"the extensions cannot be read ({exc})",)
    problems: list[str] = []
    for oid, check in _EXPECTED:
        name = EXTENSION_NAMES[oid]
        ext = extensions.pop(oid, None)
        if ext is None:
            problems.append(f"{name} is missing")
            continue
        if ext.critical:
            problems.append(f"{name} is marked critical")
        problems.extend(check(ext.value))
    for oid in extensions:
        if oid not in TOLERATED_EXTENSIONS:
            problems.append(f"unexpected extension {EXTENSION_NAMES.get(oid, oid.dotted_string)}")
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
    types = _bit_string_flags(raw, NS_CERT_TYPE_BITS)
    if types is None:
        return ["nsCertType cannot be read"]
    if types != ["SSL Client"]:
        return [f"nsCertType is {', '.join(types) or 'empty'} instead of SSL Client only"]
    return []


def _check_key_usage(value: x509.ExtensionType) -> list[str]:
    assert isinstance(value, x509.KeyUsage)
    problems = [
        f"keyUsage lacks {name}"
        for attr, name in KEY_USAGE_FLAGS
        if attr in CLIENT_KEY_USAGES and not getattr(value, attr)
    ]
    problems.extend(
        f"keyUsage also allows {name}"
        for attr, name in KEY_USAGE_FLAGS
        if attr not in CLIENT_KEY_USAGES and getattr(value, attr)
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
        f"extendedKeyUsage also allows {EKU_NAMES.get(oid, oid.dotted_string)}"
        for oid in usages
        if oid != ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return problems


_EXPECTED: tuple[tuple[x509.ObjectIdentifier, Callable[[x509.ExtensionType], list[str]]], ...] = (
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
