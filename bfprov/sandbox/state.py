"""The emulator's accounts as kept in `state.json`, so a rehearsal survives a restart.

state.json holds the accounts' passwords in clear, mode 0600: the emulator must know
them to judge a login. It is a local rehearsal tool; never give it a real password.
Sessions are not here: they live in memory only, and tokens never touch the disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bfprov.crypto import InvalidMaterial, inspect_certificate
from bfprov.layout import SECRET_MODE
from bfprov.sandbox.tls import SandboxError, fingerprint, write_atomically

if TYPE_CHECKING:
    from pathlib import Path

_FORMAT_VERSION = 1
_WARNING = (
    "bfprov sandbox state: passwords are stored in clear so the emulator can judge "
    "logins. Use made-up passwords only, never a real Betfair one."
)


@dataclass
class Account:
    """One account of the emulator, as persisted."""

    password: str
    app_key: str | None = None
    certificate: str | None = None  # PEM of the uploaded certificate
    fingerprint: str | None = None
    failures: int = 0  # wrong passwords in a row
    locked: bool = False
    banned_until: float | None = None  # wall-clock time, so a ban survives a restart


def save_accounts(state_file: Path, accounts: dict[str, Account]) -> None:
    """Write every account to `state_file` (0600), atomically."""
    state = {
        "format_version": _FORMAT_VERSION,
        "warning": _WARNING,
        "accounts": {name: vars(account) for name, account in accounts.items()},
    }
    data = json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomically(state_file, data.encode("utf-8"), SECRET_MODE)


def load_accounts(state_file: Path) -> dict[str, Account]:
    """The accounts of `state_file` (none if it does not exist); SandboxError if unreadable."""
    if not state_file.exists():
        return {}
    problem = f"the sandbox state {state_file} cannot be read"
    try:
        state: Any = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SandboxError(f"{problem}; delete it to start afresh") from exc
    if not isinstance(state, dict) or state.get("format_version") != _FORMAT_VERSION:
        raise SandboxError(f"{problem}: unknown format; delete it to start afresh")
    try:
        accounts = {str(name): Account(**fields) for name, fields in state["accounts"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise SandboxError(f"{problem}: malformed; delete it to start afresh") from exc
    if not all(isinstance(account.password, str) for account in accounts.values()):
        raise SandboxError(f"{problem}: malformed; delete it to start afresh")
    if state_file.stat().st_mode & 0o077:
        state_file.chmod(SECRET_MODE)  # it holds passwords
    return accounts


def read_certificate(cert_pem: bytes) -> tuple[str, str]:
    """(normalised PEM, fingerprint) of one uploaded certificate; InvalidMaterial otherwise.

    A file that also holds a private key is refused: what gets uploaded is the .crt,
    which is meant to be shared.
    """
    inspect_certificate(cert_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise InvalidMaterial("the certificate cannot be read") from exc
    pem = cert.public_bytes(Encoding.PEM).decode("ascii")
    return pem, fingerprint(cert)
