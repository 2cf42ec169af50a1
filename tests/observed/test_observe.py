"""Observation (`observed.observe`, `observed.account`) of account directories built by
hand with real keys and certificates from `bfprov.crypto`: what is found, and that
nothing is written while looking."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bfprov import crypto
from bfprov.desired.models import Desired
from bfprov.observed.observe import archived_generations, observe
from tests.support.fleet import profile_text

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa

LoadDesired = Callable[[str], Desired]

PROFILE = profile_text("alice", "bob", outputs="key, crt, pem")


def pair(desired: Desired, key: rsa.RSAPrivateKey) -> tuple[bytes, bytes, str]:
    """key PEM, certificate PEM, certificate fingerprint, for alice's subject."""
    subject = desired.targets[0].account.subject
    crt, facts = crypto.issue_certificate(key, subject, 30, datetime.now(UTC))
    return crypto.private_key_pem(key), crt, facts.fingerprint_sha256


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def test_a_directory_built_by_hand_is_observed_as_it_is(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    desired = load_desired(PROFILE)
    other = crypto.generate_key(1024)
    key_pem, crt_pem, fingerprint = pair(desired, rsa_key_1024)
    _, other_crt, _ = pair(desired, other)
    alice = tmp_path / "certs" / "alice"
    (alice / "staged").mkdir(parents=True)
    (alice / "client-1024.key").write_bytes(key_pem)
    (alice / "client-1024.crt").write_bytes(crt_pem)
    (alice / "staged" / "client-1024.crt").write_bytes(other_crt)  # no staged key yet
    (alice / ".client-1024.key.0123456789ab.tmp").write_bytes(b"half a key")
    (alice / "old.key").write_bytes(key_pem)
    generation = alice / "archive" / "20260101T000000.000000Z"
    generation.mkdir(parents=True)
    (generation / "client-1024.key").write_bytes(key_pem)
    (generation / "client-1024.crt").write_bytes(crt_pem)
    mismatched = alice / "archive" / "20260102T000000.000000Z"
    mismatched.mkdir()
    (mismatched / "client-1024.key").write_bytes(key_pem)
    (mismatched / "client-1024.crt").write_bytes(other_crt)
    (tmp_path / "certs" / "carol").mkdir()  # no profile names it
    before = tree(tmp_path)

    found = observe(desired)

    assert tree(tmp_path) == before  # observing writes nothing
    assert found.orphans == {"carol": tmp_path / "certs"}
    bob = found.accounts["bob"]
    assert (bob.exists, bob.live.empty, bob.staged.empty) == (False, True, True)
    obs = found.accounts["alice"]
    assert obs.exists and obs.record is None
    assert (obs.live.stem, obs.live.complete, obs.live.matched) == ("client-1024", True, True)
    assert obs.live.crt_facts is not None and obs.live.crt_facts.fingerprint_sha256 == fingerprint
    assert obs.live.key_facts is not None
    assert obs.live.key_facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_1024)
    assert (obs.staged.complete, obs.staged.key, obs.staged.crt is not None) == (False, None, True)
    assert obs.leftovers == (".client-1024.key.0123456789ab.tmp",)
    assert [s.path for s in obs.strays] == ["old.key"]
    assert "pem" not in obs.derived
    [target] = [t for t in desired.targets if t.name == "alice"]
    assert [g.name for g in archived_generations(target)] == ["20260101T000000.000000Z"]


def test_a_certificate_of_another_key_is_found_but_not_matched(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    desired = load_desired(PROFILE)
    key_pem, _, _ = pair(desired, rsa_key_1024)
    _, other_crt, other_fingerprint = pair(desired, crypto.generate_key(1024))
    alice = tmp_path / "certs" / "alice"
    alice.mkdir(parents=True)
    (alice / "client-1024.key").write_bytes(key_pem)
    (alice / "client-1024.crt").write_bytes(other_crt)
    live = observe(desired, orphans=False).accounts["alice"].live
    assert (live.complete, live.matched) == (True, False)
    assert live.crt_facts is not None and live.crt_facts.fingerprint_sha256 == other_fingerprint


def test_the_digest_changes_with_a_file_and_not_without(
    load_desired: LoadDesired, rsa_key_1024: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    desired = load_desired(PROFILE)
    key_pem, crt_pem, _ = pair(desired, rsa_key_1024)
    alice = tmp_path / "certs" / "alice"
    alice.mkdir(parents=True)
    (alice / "client-1024.key").write_bytes(key_pem)
    (alice / "client-1024.crt").write_bytes(crt_pem)
    first = observe(desired).digests()
    assert observe(desired).digests() == first
    (alice / "client-1024.pem").write_bytes(crt_pem + key_pem)
    assert observe(desired).digests()["alice"] != first["alice"]
    assert observe(desired).digests()["bob"] == first["bob"]
