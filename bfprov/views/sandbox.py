"""What `bfprov sandbox serve` says once the emulator listens."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def banner(url: str, ca_path: Path, profiles: Path, names: Sequence[str]) -> list[str]:
    """Where the emulator listens, how to point bfprov at it (the CA bundle by its
    absolute path: the exports work from any directory), and its accounts."""
    lines = [
        f"bfprov sandbox: Betfair identity emulator listening on {url}",
        "Point bfprov at it with:",
        f"  export BFPROV_IDENTITY_URL={url}",
        f"  export BFPROV_CA_BUNDLE={shlex.quote(str(ca_path.resolve()))}",
    ]
    if names:
        lines.append(f"Accounts from {profiles}: {', '.join(names)}")
    lines.append("Upload a certificate with `bfprov sandbox upload ACCOUNT [--staged]`.")
    return [*lines, "Press Ctrl-C to stop."]
