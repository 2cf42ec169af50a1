"""The embedded emulator of Betfair's identity service (`bfprov sandbox`).

`Emulator` is a real HTTPS server on loopback with client-certificate TLS: accounts
with a password and an uploaded certificate, `/api/certlogin`, `/api/logout`,
`/api/keepAlive`, and `/sandbox/upload` standing for the website's upload step.
"""

from __future__ import annotations

from bfprov.sandbox.request import Event
from bfprov.sandbox.server import Emulator
from bfprov.sandbox.tls import SandboxError

__all__ = ["Emulator", "Event", "SandboxError"]
