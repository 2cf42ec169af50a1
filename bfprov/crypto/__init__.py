"""Keys, certificates, CSRs and PKCS#12 as values: nothing here touches the disk.

`make` builds material the way Betfair's certificate guide asks, `inspect` reads material
back into the small facts of `facts` that the planner compares; `pem` turns PEM data into
`cryptography` objects. Callers use the names below: `from bfprov import crypto`.
"""

from __future__ import annotations

from bfprov.crypto.facts import (
    NS_CERT_TYPE,
    CertFacts,
    CsrFacts,
    InvalidMaterial,
    KeyFacts,
    key_usage,
    subject_values,
)
from bfprov.crypto.inspect import (
    inspect_certificate,
    inspect_combined_pem,
    inspect_csr,
    inspect_key,
)
from bfprov.crypto.make import (
    certificate_signing_request,
    combined_pem,
    csr_for_certificate,
    generate_key,
    issue_certificate,
    key_facts_of,
    pkcs12,
    private_key_pem,
    self_signed_certificate,
    spki_sha256_of,
    x509_name,
)
from bfprov.crypto.pem import load_private_key

__all__ = [
    "NS_CERT_TYPE",
    "CertFacts",
    "CsrFacts",
    "InvalidMaterial",
    "KeyFacts",
    "certificate_signing_request",
    "combined_pem",
    "csr_for_certificate",
    "generate_key",
    "inspect_certificate",
    "inspect_combined_pem",
    "inspect_csr",
    "inspect_key",
    "issue_certificate",
    "key_facts_of",
    "key_usage",
    "load_private_key",
    "pkcs12",
    "private_key_pem",
    "self_signed_certificate",
    "spki_sha256_of",
    "subject_values",
    "x509_name",
]
