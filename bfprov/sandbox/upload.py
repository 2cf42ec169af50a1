"""The client side of the emulator's upload step (its stand-in for Betfair's website)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bfprov.verify.transport import CONNECT_TIMEOUT, READ_TIMEOUT, connection_error, tls_error

if TYPE_CHECKING:
    from pathlib import Path


def sandbox_upload(base_url: str, ca_bundle: Path | None, username: str, cert_pem: bytes) -> str:
    """Upload a certificate to the embedded emulator (its stand-in for the website).

    Returns the fingerprint the emulator now holds for the account.
    """
    import requests

    from bfprov.errors import BfprovError

    parts = urlsplit(base_url)
    url = f"{parts.scheme}://{parts.netloc}/sandbox/upload"
    verify: str | bool = str(ca_bundle) if ca_bundle else True
    try:
        response = requests.post(
            url,
            data={"username": username, "certificate": cert_pem.decode("ascii")},
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            verify=verify,
        )
    except requests.exceptions.SSLError as exc:
        raise BfprovError(f"upload to {url} failed: {tls_error(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise BfprovError(f"upload to {url} failed: {connection_error(exc)}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or answer.get("status") != "SUCCESS":
        error = (answer.get("error") if isinstance(answer, dict) else None) or (
            f"HTTP {response.status_code}"
        )
        raise BfprovError(f"the emulator refused the upload for {username}: {error}")
    return str(answer.get("fingerprint", ""))
