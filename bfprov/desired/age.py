"""age recipients (`age1...`), checked as age itself reads them: bech32 with its checksum.

A typo in a recipient would otherwise surface only when sops refuses it, after keys were
written; an age *secret* key given by mistake is recognised without being quoted.
"""

from __future__ import annotations

import re

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_RECIPIENT = re.compile(rf"age1[{_CHARSET}]{{58}}")  # 32 bytes and a 6-character checksum
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def is_secret_key(text: str) -> bool:
    """Whether `text` is an age identity (`AGE-SECRET-KEY-1...`), which must stay private."""
    return text.strip().upper().startswith("AGE-SECRET-KEY-")


def problem(text: str) -> str | None:
    """Why `text` is not an age recipient, or None when it is one. Never quotes a secret key."""
    if is_secret_key(text):
        return (
            "is an age secret key, not a recipient (not shown): give its public key, "
            "age1..., as `age-keygen -y` prints it"
        )
    if not _RECIPIENT.fullmatch(text):
        return "is not an age recipient (age1 and 58 characters)"
    if not _checksum_ok(text):
        return "is not an age recipient: its checksum is wrong (a typo?)"
    return None


def _checksum_ok(text: str) -> bool:
    """BIP 173's bech32 checksum, the one age recipients carry."""
    hrp, _, data = text.rpartition("1")
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    values += [_CHARSET.index(c) for c in data]
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= generator
    return check == 1
