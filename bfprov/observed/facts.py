"""What a file of an account directory was found to hold: one typed value per kind of file.

Keys, certificates and CSRs are described by crypto's facts. A combined PEM and a PKCS#12
have facts of their own here: a PEM is judged by the pair it holds, and a PKCS#12 cannot
be opened without its password, so only the facts bfprov recorded when it wrote one count.
"""

from __future__ import annotations

from dataclasses import dataclass

from bfprov.crypto import CertFacts, CsrFacts, KeyFacts
from bfprov.desired.models import P12Profile


@dataclass(frozen=True)
class PemFacts:
    """A combined PEM file: the certificate and the key it holds."""

    fingerprint_sha256: str  # of the certificate
    spki_sha256: str  # of the key


@dataclass(frozen=True)
class P12Facts:
    """A PKCS#12 file bfprov wrote: the certificate it holds and the profile it used."""

    fingerprint_sha256: str  # of the certificate
    profile: P12Profile


@dataclass(frozen=True)
class Unreadable:
    """A file whose content cannot be used; `problem` says why, in the user's words."""

    problem: str


# What bfprov's records keep for a file it wrote or found sound. A problem is never
# recorded: a file found unreadable is looked at again by the next plan.
RecordedFacts = KeyFacts | CertFacts | CsrFacts | PemFacts | P12Facts
# What observing a file can find.
FileFacts = RecordedFacts | Unreadable
