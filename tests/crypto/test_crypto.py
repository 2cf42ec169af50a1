"""bfprov.crypto: real certificates, parsed back and read by the real openssl and keytool."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from bfprov import crypto
from bfprov.crypto import InvalidMaterial
from bfprov.desired.models import Subject
from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa

    RunOpenssl = Callable[..., subprocess.CompletedProcess[str]]

NOW = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
SUBJECT = Subject(
    country="GB",
    state="London",
    locality="Zürich-Köln",
    organization="Example Trading Ltd",
    organizational_unit="Security Team",
    common_name="alice bot é 日本",
    email_address="alice@example.com",
)
# The guide's [ssl_client] section, with a non-interactive [req] in front.
GUIDE_CNF = """\
[ req ]
prompt = no
distinguished_name = dn
default_md = sha256
string_mask = utf8only
utf8 = yes

[ dn ]
C = GB
ST = London
L = London
O = Example Trading Ltd
OU = Security Team
CN = Test API-NG Certificate

[ ssl_client ]
basicConstraints = CA:FALSE
nsCertType = client
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""
GUIDE_SUBJECT = Subject(
    country="GB",
    state="London",
    locality="London",
    organization="Example Trading Ltd",
    organizational_unit="Security Team",
    common_name="Test API-NG Certificate",
)


@pytest.fixture(scope="module")
def cert_pem(rsa_key_2048: rsa.RSAPrivateKey) -> bytes:
    return crypto.self_signed_certificate(rsa_key_2048, SUBJECT, 365, NOW)


@pytest.fixture(scope="module")
def cert(cert_pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- the certificate -------------------------------------------------------------------


def test_certificate_has_exactly_the_ssl_client_extensions(cert: x509.Certificate) -> None:
    extensions = list(cert.extensions)
    assert [e.oid for e in extensions] == [
        ExtensionOID.BASIC_CONSTRAINTS,
        crypto.NS_CERT_TYPE,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
    ]
    assert not any(e.critical for e in extensions)

    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    assert basic.path_length is None

    ns_cert_type = cert.extensions.get_extension_for_oid(crypto.NS_CERT_TYPE).value
    assert isinstance(ns_cert_type, x509.UnrecognizedExtension)
    assert ns_cert_type.value == b"\x03\x02\x07\x80"

    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    assert not any(
        (
            usage.content_commitment,
            usage.data_encipherment,
            usage.key_agreement,
            usage.key_cert_sign,
            usage.crl_sign,
        )
    )
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_certificate_is_self_signed_with_sha256(
    cert: x509.Certificate, rsa_key_2048: rsa.RSAPrivateKey
) -> None:
    assert cert.version is x509.Version.v3
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.public_key() == rsa_key_2048.public_key()
    assert 0 < cert.serial_number < 2**159


def test_serial_numbers_are_random(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    serials = {
        x509.load_pem_x509_certificate(
            crypto.self_signed_certificate(rsa_key_1024, SUBJECT, 1, NOW)
        ).serial_number
        for _ in range(3)
    }
    assert len(serials) == 3


def test_subject_round_trips_with_non_ascii(
    tmp_path: Path, cert: x509.Certificate, cert_pem: bytes, openssl: RunOpenssl
) -> None:
    assert cert.subject == crypto.x509_name(SUBJECT)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice bot é 日本"
    assert cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "Zürich-Köln"
    # The string types OpenSSL gives with `string_mask = utf8only`.
    dump = openssl("asn1parse", "-in", _write(tmp_path / "c.crt", cert_pem)).stdout
    assert "PRINTABLESTRING   :GB" in dump
    assert "IA5STRING         :alice@example.com" in dump
    assert "UTF8STRING        :Security Team" in dump
    assert crypto.inspect_certificate(cert.public_bytes(serialization.Encoding.PEM)).subject == (
        crypto.subject_values(SUBJECT)
    )


def test_subject_values_are_sorted_pairs_of_set_fields() -> None:
    assert crypto.subject_values(Subject(common_name="bob", country="IT")) == (
        ("common_name", "bob"),
        ("country", "IT"),
    )


def test_x509_name_refuses_a_non_ascii_email_address() -> None:
    with pytest.raises(InvalidMaterial, match="ASCII"):
        crypto.x509_name(Subject.model_construct(common_name="x", email_address="é@example.com"))


def test_validity_starts_now_in_whole_seconds(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    paris = timezone(timedelta(hours=1))
    pem = crypto.self_signed_certificate(rsa_key_1024, SUBJECT, 30, NOW.astimezone(paris))
    facts = crypto.inspect_certificate(pem)
    assert facts.not_before == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert facts.not_after == facts.not_before + timedelta(days=30)
    assert facts.not_before.tzinfo is not None


def test_a_naive_now_is_refused(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="timezone"):
        crypto.self_signed_certificate(rsa_key_1024, SUBJECT, 1, datetime(2025, 1, 1))


def test_openssl_reads_the_betfair_extensions(
    tmp_path: Path, cert_pem: bytes, openssl: RunOpenssl
) -> None:
    text = openssl("x509", "-noout", "-text", "-in", _write(tmp_path / "c.crt", cert_pem)).stdout
    for expected in (
        "Signature Algorithm: sha256WithRSAEncryption",
        "Netscape Cert Type",
        "SSL Client",
        "TLS Web Client Authentication",
        "Digital Signature, Key Encipherment",
        "CA:FALSE",
        "Public-Key: (2048 bit)",
    ):
        assert expected in text
    assert "critical" not in text
    assert "Subject Alternative Name" not in text


def test_inspect_certificate_of_a_generated_certificate(
    cert_pem: bytes, cert: x509.Certificate, rsa_key_2048: rsa.RSAPrivateKey
) -> None:
    facts = crypto.inspect_certificate(cert_pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert facts.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_2048)
    assert (facts.key_algorithm, facts.key_bits) == ("rsa", 2048)
    assert facts.issuer_is_subject
    assert facts.signature_hash == "sha256"
    assert facts.extension_problems == ()


def test_facts_of_an_issued_certificate_are_what_inspection_finds(
    rsa_key_1024: rsa.RSAPrivateKey,
) -> None:
    subject = Subject(common_name="bot é 1", country="GB", organization="Bench Ltd",
                      locality="London", email_address="ops@example.com")  # fmt: skip
    pem, facts = crypto.issue_certificate(rsa_key_1024, subject, 30, NOW)
    inspected = crypto.inspect_certificate(pem)
    assert facts == inspected
    assert inspected.self_signature_valid and facts.extension_problems == ()


def test_a_1024_bit_certificate(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    facts = crypto.inspect_certificate(
        crypto.self_signed_certificate(rsa_key_1024, SUBJECT, 1, NOW)
    )
    assert (facts.key_algorithm, facts.key_bits) == ("rsa", 1024)
    assert facts.extension_problems == ()


def test_spki_sha256_is_the_hash_openssl_gives(
    tmp_path: Path, key_pem_2048: bytes, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    key = _write(tmp_path / "k.key", key_pem_2048)
    out = tmp_path / "pub.der"
    openssl("pkey", "-in", key, "-pubout", "-outform", "DER", "-out", out)
    assert crypto.spki_sha256_of(rsa_key_2048) == hashlib.sha256(out.read_bytes()).hexdigest()


# --- certificates made elsewhere -------------------------------------------------------


def test_the_guides_openssl_procedure_has_no_extension_problems(
    tmp_path: Path,
    key_pem_2048: bytes,
    rsa_key_2048: rsa.RSAPrivateKey,
    betfair_procedure: Callable[[Path, str, bytes, int], tuple[bytes, bytes]],
) -> None:
    csr_pem, crt_pem = betfair_procedure(tmp_path, GUIDE_CNF, key_pem_2048, 365)
    crt = x509.load_pem_x509_certificate(crt_pem)
    # OpenSSL 3 adds a subjectKeyIdentifier: tolerated.
    crt.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    facts = crypto.inspect_certificate(crt_pem)
    assert facts.extension_problems == ()
    assert facts.subject == crypto.subject_values(GUIDE_SUBJECT)
    assert facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_2048)
    assert facts.signature_hash == "sha256"
    assert facts.issuer_is_subject
    assert facts.not_after - facts.not_before == timedelta(days=365)
    assert crypto.inspect_csr(csr_pem).subject == crypto.subject_values(GUIDE_SUBJECT)


def _good_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.BasicConstraints(ca=False, path_length=None), False),
        (x509.UnrecognizedExtension(crypto.NS_CERT_TYPE, b"\x03\x02\x07\x80"), False),
        (_key_usage(), False),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ]


def _key_usage(**flags: bool) -> x509.KeyUsage:
    return crypto.key_usage(**{"digital_signature": True, "key_encipherment": True, **flags})


def _replace(
    extensions: list[tuple[x509.ExtensionType, bool]], new: x509.ExtensionType, critical: bool
) -> list[tuple[x509.ExtensionType, bool]]:
    return [(new, critical) if e.oid == new.oid else (e, c) for e, c in extensions]


def _certificate(
    key: rsa.RSAPrivateKey, extensions: list[tuple[x509.ExtensionType, bool]]
) -> bytes:
    name = crypto.x509_name(SUBJECT)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _san() -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName([x509.DNSName("bot.example.com")])


PROBLEM_CASES = {
    "subjectAltName": (
        lambda k: [*_good_extensions(), (_san(), False)],
        ("unexpected extension subjectAltName",),
    ),
    "serverAuth instead of clientAuth": (
        lambda k: _replace(
            _good_extensions(), x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
        ),
        ("extendedKeyUsage lacks clientAuth", "extendedKeyUsage also allows serverAuth"),
    ),
    "no extensions at all": (
        lambda k: [],
        (
            "basicConstraints is missing",
            "nsCertType is missing",
            "keyUsage is missing",
            "extendedKeyUsage is missing",
        ),
    ),
    "a CA": (
        lambda k: _replace(_good_extensions(), x509.BasicConstraints(ca=True, path_length=0), True),
        (
            "basicConstraints is marked critical",
            "basicConstraints says CA:TRUE instead of CA:FALSE",
            "basicConstraints sets a path length",
        ),
    ),
    "nsCertType server and client": (
        lambda k: _replace(
            _good_extensions(),
            x509.UnrecognizedExtension(crypto.NS_CERT_TYPE, b"\x03\x02\x06\xc0"),
            False,
        ),
        ("nsCertType is SSL Client, SSL Server instead of SSL Client only",),
    ),
    "critical keyUsage with keyCertSign": (
        lambda k: _replace(_good_extensions(), _key_usage(key_cert_sign=True), True),
        ("keyUsage is marked critical", "keyUsage also allows keyCertSign"),
    ),
    "keyUsage lacking keyEncipherment": (
        lambda k: _replace(_good_extensions(), _key_usage(key_encipherment=False), False),
        ("keyUsage lacks keyEncipherment",),
    ),
    "key identifiers are tolerated": (
        lambda k: [
            *_good_extensions(),
            (x509.SubjectKeyIdentifier.from_public_key(k.public_key()), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(k.public_key()), False),
        ],
        (),
    ),
}


@pytest.mark.parametrize("case", PROBLEM_CASES, ids=list(PROBLEM_CASES))
def test_inspect_certificate_reports_extension_problems(
    case: str, rsa_key_1024: rsa.RSAPrivateKey
) -> None:
    extensions, expected = PROBLEM_CASES[case]
    facts = crypto.inspect_certificate(_certificate(rsa_key_1024, extensions(rsa_key_1024)))
    assert facts.extension_problems == expected


def test_inspect_certificate_reports_a_sha1_signature(
    tmp_path: Path,
    key_pem_2048: bytes,
    betfair_procedure: Callable[[Path, str, bytes, int], tuple[bytes, bytes]],
    openssl: RunOpenssl,
) -> None:
    # cryptography refuses to sign with SHA-1, so let openssl do it.
    betfair_procedure(tmp_path, GUIDE_CNF, key_pem_2048, 365)
    openssl(
        "x509", "-req", "-sha1", "-days", "365", "-in", "client-2048.csr",
        "-signkey", "client-2048.key", "-out", "sha1.crt",
        "-extfile", "openssl.cnf", "-extensions", "ssl_client", cwd=tmp_path,
    )  # fmt: skip
    facts = crypto.inspect_certificate((tmp_path / "sha1.crt").read_bytes())
    assert facts.signature_hash == "sha1"
    assert facts.extension_problems == ()


@pytest.mark.parametrize(
    "data",
    [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_inspect_certificate_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InvalidMaterial):
        crypto.inspect_certificate(data)


def test_inspect_certificate_rejects_der(cert: x509.Certificate) -> None:
    with pytest.raises(InvalidMaterial, match="no PEM certificate"):
        crypto.inspect_certificate(cert.public_bytes(serialization.Encoding.DER))


def test_inspect_certificate_rejects_a_certificate_file_holding_a_key(
    cert_pem: bytes, key_pem_2048: bytes
) -> None:
    with pytest.raises(InvalidMaterial, match="also holds a private key") as caught:
        crypto.inspect_certificate(cert_pem + key_pem_2048)
    assert key_pem_2048.decode().splitlines()[1] not in str(caught.value)


def test_inspect_certificate_rejects_two_certificates(cert_pem: bytes) -> None:
    with pytest.raises(InvalidMaterial, match="found 2"):
        crypto.inspect_certificate(cert_pem + cert_pem)


def test_invalid_material_is_a_bfprov_error() -> None:
    assert issubclass(InvalidMaterial, BfprovError)


def test_facts_survive_a_json_round_trip(
    cert_pem: bytes, key_pem_2048: bytes, rsa_key_2048: rsa.RSAPrivateKey
) -> None:
    # bfprov's records keep facts as tagged JSON and read them back.
    from bfprov.observed.facts import P12Facts, PemFacts
    from bfprov.observed.records import decode_facts, encode_facts

    csr_pem = crypto.certificate_signing_request(rsa_key_2048, SUBJECT)
    cert = crypto.inspect_certificate(cert_pem)
    for facts in (
        cert,
        crypto.inspect_key(key_pem_2048),
        crypto.inspect_csr(csr_pem),
        PemFacts(cert.fingerprint_sha256, cert.spki_sha256),
        P12Facts(cert.fingerprint_sha256, "legacy"),
    ):
        dumped = json.loads(json.dumps(encode_facts(facts)))
        assert decode_facts(dumped) == facts


@pytest.mark.parametrize(
    "damage",
    [
        {"kind": "rsa"},  # no such kind
        {"kind": "cert"},  # fields missing
        {"kind": "key", "algorithm": "rsa", "bits": "2048", "spki_sha256": "a", "encoding": "x"},
        {"kind": "p12", "fingerprint_sha256": "f", "profile": "ancient"},
        {"kind": "csr", "spki_sha256": "a", "subject": [["cn"]], "signature_valid": True},
    ],
)
def test_facts_that_do_not_decode_raise(damage: dict[str, object]) -> None:
    from bfprov.observed.records import decode_facts

    with pytest.raises((KeyError, TypeError, ValueError)):
        decode_facts(damage)


# --- the CSR ---------------------------------------------------------------------------


def test_csr_parses_and_verifies(
    tmp_path: Path, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    pem = crypto.certificate_signing_request(rsa_key_2048, SUBJECT)
    csr = x509.load_pem_x509_csr(pem)
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.subject == crypto.x509_name(SUBJECT)
    assert list(csr.extensions) == []
    result = openssl("req", "-verify", "-noout", "-in", _write(tmp_path / "c.csr", pem))
    assert "verify OK" in result.stdout + result.stderr

    facts = crypto.inspect_csr(pem)
    assert facts.signature_valid
    assert facts.subject == crypto.subject_values(SUBJECT)
    assert facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_2048)


def test_csr_for_certificate_copies_the_subject_exactly(
    tmp_path: Path, cert_pem: bytes, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    pem = crypto.csr_for_certificate(rsa_key_2048, cert_pem)
    csr = x509.load_pem_x509_csr(pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert csr.subject.public_bytes() == cert.subject.public_bytes()
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    openssl("req", "-verify", "-noout", "-in", _write(tmp_path / "c.csr", pem))
    facts = crypto.inspect_csr(pem)
    assert facts.signature_valid
    assert facts.spki_sha256 == crypto.inspect_certificate(cert_pem).spki_sha256


def test_csr_for_certificate_refuses_a_certificate_of_another_key(
    cert_pem: bytes, rsa_key_1024: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(InvalidMaterial, match="does not belong"):
        crypto.csr_for_certificate(rsa_key_1024, cert_pem)


def test_inspect_csr_sees_a_broken_signature(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    der = bytearray(
        x509.load_pem_x509_csr(
            crypto.certificate_signing_request(rsa_key_1024, SUBJECT)
        ).public_bytes(serialization.Encoding.DER)
    )
    der[-1] ^= 0x01  # the last byte belongs to the signature
    assert crypto.inspect_csr(_pem(b"CERTIFICATE REQUEST", bytes(der))).signature_valid is False


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n"])
def test_inspect_csr_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InvalidMaterial):
        crypto.inspect_csr(data)


# --- combined PEM ----------------------------------------------------------------------


def test_combined_pem_is_certificate_then_key(
    tmp_path: Path,
    cert_pem: bytes,
    key_pem_2048: bytes,
    rsa_key_2048: rsa.RSAPrivateKey,
    openssl: RunOpenssl,
) -> None:
    combined = crypto.combined_pem(cert_pem, key_pem_2048)
    assert combined == cert_pem + key_pem_2048
    path = _write(tmp_path / "client-2048.pem", combined)
    cert_pub = openssl("x509", "-in", path, "-noout", "-pubkey").stdout
    key_pub = openssl("pkey", "-in", path, "-pubout").stdout
    assert cert_pub == key_pub

    cert_facts, key_facts = crypto.inspect_combined_pem(combined)
    assert cert_facts == crypto.inspect_certificate(cert_pem)
    assert key_facts == crypto.inspect_key(key_pem_2048)
    assert cert_facts.spki_sha256 == key_facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_2048)


@pytest.mark.parametrize("order", ["key then certificate", "certificate alone", "two keys"])
def test_inspect_combined_pem_rejects_anything_but_certificate_then_key(
    order: str, cert_pem: bytes, key_pem_2048: bytes
) -> None:
    data = {
        "key then certificate": key_pem_2048 + cert_pem,
        "certificate alone": cert_pem,
        "two keys": cert_pem + key_pem_2048 + key_pem_2048,
    }[order]
    with pytest.raises(InvalidMaterial, match="certificate then the private key") as caught:
        crypto.inspect_combined_pem(data)
    assert key_pem_2048.decode().splitlines()[1] not in str(caught.value)


# --- PKCS#12 ---------------------------------------------------------------------------


def test_modern_pkcs12(
    tmp_path: Path, cert_pem: bytes, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    data = crypto.pkcs12(rsa_key_2048, cert_pem, b"s3cret pw", "modern", b"alice")
    loaded = crypto_pkcs12.load_pkcs12(data, b"s3cret pw")
    assert loaded.key is not None
    assert loaded.key.public_key() == rsa_key_2048.public_key()
    assert loaded.cert is not None
    assert loaded.cert.certificate == x509.load_pem_x509_certificate(cert_pem)
    assert loaded.cert.friendly_name == b"alice"
    assert loaded.additional_certs == []

    path = _write(tmp_path / "client-2048.p12", data)
    info = openssl("pkcs12", "-info", "-noout", "-in", path, "-passin", "pass:s3cret pw").stderr
    assert "MAC: sha256" in info
    assert info.count("PBES2, PBKDF2, AES-256-CBC") == 2  # certificate and key
    assert "PRF hmacWithSHA256" in info
    assert "Iteration 2048" in info  # OpenSSL 3's own default


def test_legacy_pkcs12(
    tmp_path: Path, cert_pem: bytes, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    data = crypto.pkcs12(rsa_key_2048, cert_pem, b"pw", "legacy", b"alice")
    path = _write(tmp_path / "client-2048.p12", data)
    # No -legacy flag needed: 3DES is in OpenSSL 3's default provider (RC2 is not).
    info = openssl("pkcs12", "-info", "-noout", "-in", path, "-passin", "pass:pw").stderr
    assert "MAC: sha1" in info
    assert info.count("pbeWithSHA1And3-KeyTripleDES-CBC") == 2
    assert "AES" not in info
    loaded = crypto_pkcs12.load_pkcs12(data, b"pw")
    assert loaded.cert is not None
    assert loaded.cert.friendly_name == b"alice"


@pytest.mark.skipif(shutil.which("keytool") is None, reason="Java keytool not installed")
@pytest.mark.parametrize("profile", ["legacy", "modern"])
def test_keytool_lists_the_pkcs12(
    profile: str, tmp_path: Path, cert_pem: bytes, rsa_key_2048: rsa.RSAPrivateKey
) -> None:
    data = crypto.pkcs12(rsa_key_2048, cert_pem, b"pw123456", profile, b"alice")
    path = _write(tmp_path / "client-2048.p12", data)
    result = subprocess.run(
        [
            "keytool",
            "-list",
            "-storetype",
            "PKCS12",
            "-keystore",
            str(path),
            "-storepass",
            "pw123456",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Your keystore contains 1 entry" in result.stdout
    assert "alice," in result.stdout
    assert "PrivateKeyEntry" in result.stdout
    fingerprint = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()
    assert fingerprint.upper() in result.stdout.replace(":", "")


def test_pkcs12_refuses_an_empty_password(cert_pem: bytes, rsa_key_2048: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidMaterial, match="empty"):
        crypto.pkcs12(rsa_key_2048, cert_pem, b"", "modern", b"alice")


def test_pkcs12_refuses_a_certificate_of_another_key(
    cert_pem: bytes, rsa_key_1024: rsa.RSAPrivateKey
) -> None:
    with pytest.raises(InvalidMaterial, match="does not belong"):
        crypto.pkcs12(rsa_key_1024, cert_pem, b"pw", "modern", b"alice")


# --- keys ------------------------------------------------------------------------------


def test_generate_key(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    assert rsa_key_1024.key_size == 1024
    assert rsa_key_1024.public_key().public_numbers().e == 65537


def test_private_key_pem_is_what_openssl_genrsa_writes(
    tmp_path: Path, key_pem_2048: bytes, rsa_key_2048: rsa.RSAPrivateKey, openssl: RunOpenssl
) -> None:
    openssl("genrsa", "-out", tmp_path / "openssl.key", "1024")
    header = (tmp_path / "openssl.key").read_bytes().splitlines()[0]
    assert key_pem_2048.splitlines()[0] == header == b"-----BEGIN " + b"PRIVATE KEY-----"
    result = openssl("pkey", "-check", "-noout", "-in", _write(tmp_path / "k.key", key_pem_2048))
    assert "Key is valid" in result.stdout
    assert crypto.load_private_key(key_pem_2048).private_numbers() == (
        rsa_key_2048.private_numbers()
    )


@pytest.mark.parametrize(
    ("flags", "encoding", "header"),
    [
        ((), "pkcs8", b"-----BEGIN " + b"PRIVATE KEY-----"),
        (("-traditional",), "pkcs1", b"-----BEGIN " + b"RSA PRIVATE KEY-----"),
    ],
)
def test_inspect_key_reads_openssl_keys(
    flags: tuple[str, ...],
    encoding: str,
    header: bytes,
    tmp_path: Path,
    openssl: RunOpenssl,
) -> None:
    path = tmp_path / "client-1024.key"
    openssl("genrsa", *flags, "-out", path, "1024")
    pem = path.read_bytes()
    assert pem.startswith(header)
    facts = crypto.inspect_key(pem)
    assert (facts.algorithm, facts.bits, facts.encoding) == ("rsa", 1024, encoding)
    der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER", "-out", tmp_path / "p.der")
    assert der.returncode == 0
    assert facts.spki_sha256 == hashlib.sha256((tmp_path / "p.der").read_bytes()).hexdigest()
    assert crypto.spki_sha256_of(crypto.load_private_key(pem)) == facts.spki_sha256


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text",
        b"\x30\x82\x01\x00garbage",
        b"-----BEGIN " + b"PRIVATE KEY-----\nAAAAAAAA\n-----END " + b"PRIVATE KEY-----\n",
    ],
)
def test_inspect_key_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InvalidMaterial):
        crypto.inspect_key(data)
    with pytest.raises(InvalidMaterial):
        crypto.load_private_key(data)


@pytest.mark.parametrize(
    "command",
    [
        ("genrsa", "-aes256", "-passout", "pass:pw", "-out", "k.key", "1024"),
        ("genrsa", "-traditional", "-aes256", "-passout", "pass:pw", "-out", "k.key", "1024"),
    ],
    ids=["pkcs8", "pkcs1"],
)
def test_inspect_key_rejects_an_encrypted_key(
    command: tuple[str, ...], tmp_path: Path, openssl: RunOpenssl
) -> None:
    openssl(*command, cwd=tmp_path)
    pem = (tmp_path / "k.key").read_bytes()
    with pytest.raises(InvalidMaterial, match="encrypted"):
        crypto.inspect_key(pem)
    with pytest.raises(InvalidMaterial, match="encrypted"):
        crypto.load_private_key(pem)


def test_inspect_key_reports_an_ec_key_which_load_refuses(
    tmp_path: Path, openssl: RunOpenssl
) -> None:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.key",
            cwd=tmp_path)  # fmt: skip
    pem = (tmp_path / "k.key").read_bytes()
    facts = crypto.inspect_key(pem)
    assert (facts.algorithm, facts.bits, facts.encoding) == ("ec", 256, "pkcs8")
    with pytest.raises(InvalidMaterial, match="ec, not RSA"):
        crypto.load_private_key(pem)


def test_inspect_key_of_other_types() -> None:
    sec1 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert crypto.inspect_key(sec1).encoding == "sec1"
    assert crypto.inspect_key(sec1).bits == 384
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert (crypto.inspect_key(ed).algorithm, crypto.inspect_key(ed).bits) == ("ed25519", 0)


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _pem(label: bytes, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([b"-----BEGIN " + label + b"-----", *lines, b"-----END " + label + b"-----"])


def test_inspect_key_rejects_a_damaged_rsa_key(rsa_key_1024: rsa.RSAPrivateKey) -> None:
    # A well-formed PKCS#1 structure whose numbers do not fit together (d is off by 2):
    # parsing succeeds, so only the consistency check can catch it.
    n = rsa_key_1024.private_numbers()
    fields = (0, n.public_numbers.n, n.public_numbers.e, n.d + 2, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
    body = b"".join(_der_integer(v) for v in fields)
    pem = _pem(b"RSA PRIVATE KEY", b"\x30" + _der_length(len(body)) + body)
    with pytest.raises(InvalidMaterial, match="numbers do not fit") as caught:
        crypto.inspect_key(pem)
    assert pem.splitlines()[1].decode() not in str(caught.value)
    with pytest.raises(InvalidMaterial):
        crypto.load_private_key(pem)


def test_a_flipped_signature_byte_is_caught(rsa_key_2048: rsa.RSAPrivateKey) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = crypto.self_signed_certificate(
        rsa_key_2048, Subject(common_name="x"), 30, datetime.now(UTC)
    )
    assert crypto.inspect_certificate(pem).self_signature_valid
    der = bytearray(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # inside the signature value, the last field of the certificate
    tampered = x509.load_der_x509_certificate(bytes(der)).public_bytes(Encoding.PEM)
    facts = crypto.inspect_certificate(tampered)
    assert facts.spki_sha256 == crypto.inspect_certificate(pem).spki_sha256
    assert not facts.self_signature_valid


def test_key_usage_sets_only_the_flags_asked_for() -> None:
    usage = crypto.key_usage(key_cert_sign=True, crl_sign=True)
    assert (usage.key_cert_sign, usage.crl_sign) == (True, True)
    assert not any(
        getattr(usage, flag)
        for flag in ("digital_signature", "content_commitment", "key_encipherment",
                     "data_encipherment", "key_agreement")
    )  # fmt: skip


def _with_version(pem: bytes, old: bytes, new: bytes) -> bytes:
    """`pem` with the first DER occurrence of `old` (a version field) replaced by `new`."""
    der = (
        x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
        if (b"REQUEST" in pem)
        else x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    )
    assert old in der
    bad = der.replace(old, new, 1)
    label = b"CERTIFICATE REQUEST" if b"REQUEST" in pem else b"CERTIFICATE"
    body = base64.encodebytes(bad)
    return b"-----BEGIN " + label + b"-----\n" + body + b"-----END " + label + b"-----\n"


def test_a_request_or_certificate_with_an_unknown_version_is_unreadable_material(
    rsa_key_1024: rsa.RSAPrivateKey, cert_pem: bytes
) -> None:
    """Found by Hypothesis (a byte flipped in client-1024.csr): cryptography raises
    InvalidVersion, which is not a ValueError; it must be InvalidMaterial, never a crash."""
    csr = crypto.certificate_signing_request(rsa_key_1024, Subject(common_name="a"))
    with pytest.raises(InvalidMaterial):
        crypto.inspect_csr(_with_version(csr, b"\x02\x01\x00", b"\x02\x01\x05"))
    with pytest.raises(InvalidMaterial):
        crypto.inspect_certificate(
            _with_version(cert_pem, b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07")
        )
