"""The emulator's stand-in for Betfair's "Automated Betting Program Access" page: a form
that uploads an account's certificate, so a whole upload day can be rehearsed in a
browser (`bfprov upload` links here when BFPROV_IDENTITY_URL points at the emulator).

The form posts multipart/form-data to /sandbox/upload, which also takes the
urlencoded form bfprov's own client sends.
"""

from __future__ import annotations

import html
from email.parser import BytesParser
from email.policy import HTTP

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Automated Betting Program Access (bfprov sandbox)</title></head>
<body>
<h1>Automated Betting Program Access</h1>
<p>The bfprov sandbox's stand-in for Betfair's certificate page: upload the account's
<code>.crt</code> (never its key).</p>
<form method="post" action="/sandbox/upload" enctype="multipart/form-data">
<p><label>Username <input name="username" value="{username}" required></label></p>
<p><label>Certificate <input type="file" name="certificate" accept=".crt,.pem" required></label></p>
<p><button type="submit">Upload certificate</button></p>
</form>
</body></html>
"""
MAX_FIELDS = 4


def page(username: str) -> bytes:
    """The form, its username filled in (escaped: it comes from the query string)."""
    return PAGE.format(username=html.escape(username[:256], quote=True)).encode("utf-8")


def multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]] | None:
    """The text fields of a multipart/form-data body (a file's content as text), or None
    when it is not one or is malformed."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        return None
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            return None
        try:
            fields.setdefault(name, []).append(payload.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if len(fields) > MAX_FIELDS:
            return None
    return fields
