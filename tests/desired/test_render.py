"""bfprov.desired.render: the openssl.cnf, run through Betfair's procedure with real openssl."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from bfprov import crypto
from bfprov.desired import render
from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import rsa

    from bfprov.desired.models import Account

    Procedure = Callable[[Path, str, bytes, int], tuple[bytes, bytes]]

BUNDLED = render.template_dirs(None)
SPECIAL = "Ex $HOME ${ENV::PATH} #1 \\ \\n \"q\" 'a' é"
KEY_IDENTIFIERS = {ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}


def _extensions(pem: bytes) -> list[tuple[x509.ObjectIdentifier, bool, x509.ExtensionType]]:
    cert = x509.load_pem_x509_certificate(pem)
    return [(e.oid, e.critical, e.value) for e in cert.extensions if e.oid not in KEY_IDENTIFIERS]


def test_bundled_templates_are_the_repository_templates() -> None:
    assert (render.BUNDLED_TEMPLATES / "openssl.cnf.j2").is_file()
    assert BUNDLED == (render.BUNDLED_TEMPLATES,)


def test_template_dirs_put_a_custom_directory_first(tmp_path: Path) -> None:
    assert render.template_dirs(tmp_path) == (tmp_path, render.BUNDLED_TEMPLATES)


def test_special_characters_survive_betfairs_procedure(
    tmp_path: Path,
    make_account: Callable[..., Account],
    rsa_key_2048: rsa.RSAPrivateKey,
    key_pem_2048: bytes,
    betfair_procedure: Procedure,
) -> None:
    account = make_account(
        subject={
            "country": "FR",
            "state": "Île-de-France",
            "locality": "Paris #75",
            "organization": SPECIAL,
            "organizational_unit": 'R&D = "bots" ; [ssl_client]',
            "common_name": "alice $bot 'é' 日本 🤖",
            "email_address": "alice+bots@example.com",
        }
    )
    cnf = render.render_openssl_cnf(account, BUNDLED)
    _, crt = betfair_procedure(tmp_path, cnf, key_pem_2048, account.validity.days)

    facts = crypto.inspect_certificate(crt)
    assert facts.subject == crypto.subject_values(account.subject)
    assert facts.extension_problems == ()
    assert facts.signature_hash == "sha256"
    assert facts.spki_sha256 == crypto.spki_sha256_of(rsa_key_2048)
    # Byte for byte the name bfprov writes itself: same order, same string types.
    ours = crypto.self_signed_certificate(
        rsa_key_2048, account.subject, account.validity.days, datetime.now(UTC)
    )
    ours_cert = x509.load_pem_x509_certificate(ours)
    theirs_cert = x509.load_pem_x509_certificate(crt)
    assert theirs_cert.subject.public_bytes() == ours_cert.subject.public_bytes()
    assert _extensions(crt) == _extensions(ours)


def test_a_subject_with_only_a_common_name(
    tmp_path: Path,
    make_account: Callable[..., Account],
    key_pem_2048: bytes,
    betfair_procedure: Procedure,
) -> None:
    account = make_account(subject={"common_name": "bob bot"})
    cnf = render.render_openssl_cnf(account, BUNDLED)
    dn = cnf.split("[ client_dn ]")[1].split("[ ssl_client ]")[0]
    assert [line.split("=")[0].strip() for line in dn.splitlines() if line.strip()] == ["CN"]
    csr, crt = betfair_procedure(tmp_path, cnf, key_pem_2048, 30)
    assert crypto.inspect_certificate(crt).subject == (("common_name", "bob bot"),)
    assert crypto.inspect_csr(csr).signature_valid


def test_the_file_documents_itself_and_keeps_the_guides_section(
    make_account: Callable[..., Account],
) -> None:
    account = make_account(name="carol", key={"size": 1024}, validity={"days": 90})
    cnf = render.render_openssl_cnf(account, BUNDLED)
    assert "carol" in cnf.splitlines()[0]
    assert "bfprov" in cnf.splitlines()[0]
    assert "openssl req -new -config openssl.cnf -key client-1024.key -out client-1024.csr" in cnf
    assert (
        "openssl x509 -req -days 90 -in client-1024.csr -signkey client-1024.key "
        "-out client-1024.crt -extfile openssl.cnf -extensions ssl_client" in cnf
    )
    assert "default_bits       = 1024" in cnf
    assert cnf.endswith(
        "[ ssl_client ]\n"
        "basicConstraints = CA:FALSE\n"
        "nsCertType = client\n"
        "keyUsage = digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = clientAuth\n"
    )


def test_rendering_is_deterministic(make_account: Callable[..., Account]) -> None:
    account = make_account(subject={"common_name": "alice bot", "organization": SPECIAL})
    first = render.render_openssl_cnf(account, BUNDLED)
    render._template.cache_clear()
    render._environment.cache_clear()
    assert render.render_openssl_cnf(account, BUNDLED) == first
    assert render.render_openssl_cnf(make_account(), BUNDLED) != first


def test_a_custom_template_directory_overrides_the_bundled_one(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    (tmp_path / "openssl.cnf.j2").write_text("# custom for {{ account.name }}: {{ stem }}\n")
    dirs = render.template_dirs(tmp_path)
    assert render.render_openssl_cnf(make_account(), dirs) == "# custom for alice: client-2048\n"


def test_a_custom_directory_without_the_template_falls_back(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    (tmp_path / "other.j2").write_text("unused")
    account = make_account()
    assert render.render_openssl_cnf(account, render.template_dirs(tmp_path)) == (
        render.render_openssl_cnf(account, BUNDLED)
    )


def test_an_undefined_variable_is_a_bfprov_error(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    (tmp_path / "openssl.cnf.j2").write_text("CN = {{ subject.common_name }}\nX = {{ nope }}\n")
    with pytest.raises(BfprovError, match=r"openssl\.cnf\.j2") as caught:
        render.render_openssl_cnf(make_account(), render.template_dirs(tmp_path))
    message = str(caught.value)
    assert "'nope' is undefined" in message
    assert "\n" not in message


def test_an_unset_subject_field_is_not_an_error_but_a_misspelt_one_is(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    (tmp_path / "openssl.cnf.j2").write_text("{{ subject.organisation }}")
    with pytest.raises(BfprovError, match="organisation"):
        render.render_openssl_cnf(make_account(), render.template_dirs(tmp_path))


def test_a_missing_template_is_a_bfprov_error(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    with pytest.raises(BfprovError, match=r"template openssl\.cnf\.j2 not found"):
        render.render_openssl_cnf(make_account(), (tmp_path,))


def test_a_missing_template_directory_is_a_bfprov_error(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    with pytest.raises(BfprovError, match="does not exist"):
        render.render_openssl_cnf(make_account(), render.template_dirs(tmp_path / "nowhere"))


def test_a_template_syntax_error_names_file_and_line(
    tmp_path: Path, make_account: Callable[..., Account]
) -> None:
    (tmp_path / "openssl.cnf.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(BfprovError, match=r"openssl\.cnf\.j2, line 2") as caught:
        render.render_openssl_cnf(make_account(), render.template_dirs(tmp_path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain text", "plain text"),
        ("Ex $ #ample", "Ex \\$ \\#ample"),
        ("a\\b", "a\\\\b"),
        ("\"q\" 'a'", "\\\"q\\\" \\'a\\'"),
        ("`cmd`", "\\`cmd\\`"),
        ("é ; = , + [x]", "é ; = , + [x]"),
        (2048, "2048"),
    ],
)
def test_cnf_escape(value: object, escaped: str) -> None:
    assert render.cnf_escape(value) == escaped


@pytest.mark.parametrize("value", ["line\nbreak", "tab\there", " leading", "trailing "])
def test_cnf_escape_refuses_what_a_config_value_cannot_hold(value: str) -> None:
    with pytest.raises(BfprovError):
        render.cnf_escape(value)


def test_every_printable_ascii_character_round_trips_through_openssl(
    tmp_path: Path,
    make_account: Callable[..., Account],
    key_pem_2048: bytes,
    betfair_procedure: Procedure,
) -> None:
    printable = "".join(chr(c) for c in range(33, 127))
    subject = {"common_name": printable[:64], "organization": printable[64:] + " x"}
    account = make_account(subject=subject)
    _, crt = betfair_procedure(tmp_path, render.render_openssl_cnf(account, BUNDLED), key_pem_2048)
    assert crypto.inspect_certificate(crt).subject == crypto.subject_values(account.subject)
