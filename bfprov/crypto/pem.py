"""PEM data into `cryptography` objects, refusing anything bots could not use."""

from __future__ import annotations

import hashlib
import math
import re
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
    x448,
    x25519,
)

from bfprov.crypto.facts import InvalidMaterial

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_KEY_ENCODINGS = {b"PRIVATE KEY": "pkcs8", b"RSA PRIVATE KEY": "pkcs1", b"EC PRIVATE KEY": "sec1"}


def pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(label, whole block) for each PEM block, in order; text around them is ignored."""
    return [(m[1], m[0] + b"\n") for m in _PEM_BLOCK.finditer(data)]


def single_block(data: bytes, label: bytes, what: str) -> bytes:
    """The one PEM block labelled `label`; InvalidMaterial if there is none or several."""
    blocks = [block for found, block in pem_blocks(data) if found == label]
    if not blocks:
        raise InvalidMaterial(f"no PEM {what} found")
    if len(blocks) > 1:
        raise InvalidMaterial(f"expected one {what}, found {len(blocks)}")
    return blocks[0]


def describe_label(label: bytes) -> str:
    """A PEM label in words ("private key" for every kind of private key)."""
    text = label.decode("ascii").lower()
    return "private key" if text.endswith("private key") else text


def load_key(pem: bytes) -> tuple[PrivateKeyTypes, str]:
    """The one private key in `pem`, and its encoding; rejects encrypted keys."""
    blocks = [(label, block) for label, block in pem_blocks(pem) if label.endswith(b"PRIVATE KEY")]
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


def load_certificate(pem: bytes) -> x509.Certificate:
    """One PEM certificate block; InvalidMaterial if it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
        raise InvalidMaterial("the certificate cannot be read (damaged or not PEM)") from exc


def check_belongs(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
    """InvalidMaterial unless the certificate is for this key."""
    if certificate.public_key() != key.public_key():
        raise InvalidMaterial("the certificate does not belong to the private key")


def spki_sha256(public_key: PublicKeyTypes) -> str:
    """Lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo."""
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


def algorithm_of(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    """The key's algorithm in lowercase: "rsa", "ec", "ed25519", ..."""
    for types, name in _ALGORITHMS:
        if isinstance(key, types):
            return name
    return type(key).__name__.lower()


def bits_of(key: PrivateKeyTypes | PublicKeyTypes) -> int:
    """The key's size; 0 for Edwards and Montgomery keys, which have none."""
    size = getattr(key, "key_size", 0)
    return size if isinstance(size, int) else 0


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Read an unencrypted RSA key from PKCS#1 or PKCS#8 PEM.

    Raises InvalidMaterial if the data is unreadable, encrypted, or not an RSA key.
    """
    key, _ = load_key(pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidMaterial(f"the private key is {algorithm_of(key)}, not RSA")
    return key
