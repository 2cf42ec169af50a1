"""What a request to the emulator carries (a form's fields) and what is kept of it (an Event).

Both are judged by `identity`; the HTTP server only hands the raw pieces over.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from bfprov.sandbox.upload_page import multipart_fields

_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Event:
    """One request the emulator answered. Never holds a password or a session token."""

    path: str
    method: str
    username: str | None
    app_key: str | None
    cert_fingerprint: str | None
    content_type: str | None
    login_status: str | None  # loginStatus, or the status of logout, keepAlive, upload


def parse_form(body: bytes) -> dict[str, list[str]] | None:
    """The fields of an application/x-www-form-urlencoded body, or None if malformed."""
    try:
        return parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=16,
        )
    except ValueError:  # UnicodeDecodeError included
        return None


def form_of(content_type: str | None, body: bytes) -> dict[str, list[str]] | None:
    """The body's fields when it is declared a form (urlencoded, or multipart from the
    emulator's upload page); None otherwise or if malformed."""
    if is_form(content_type):
        return parse_form(body)
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        assert content_type is not None
        return multipart_fields(content_type, body)
    return None


def field(form: dict[str, list[str]] | None, name: str) -> str | None:
    """The field's one value; None when absent or ambiguous (given twice)."""
    values = (form or {}).get(name)
    return values[0] if values is not None and len(values) == 1 else None


def is_form(content_type: str | None) -> bool:
    """Whether the media type is application/x-www-form-urlencoded (parameters aside)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == _FORM
