"""Resolves secret references ({env: NAME} / {file: PATH}) when, and only when, needed.

Values come back as `SecretStr`; error messages name the reference, never a value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.models import SecretRef, Target

MAX_SECRET_FILE = 64 * 1024


def reveal(ref: SecretRef, base: Path, what: str) -> SecretStr:
    """The secret behind `ref`; relative file paths are relative to `base`.

    `what` names the field for messages, e.g. "alice: p12.password".
    """
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise BfprovError(f"{what}: environment variable {ref.env} is not set")
        if not value:
            raise BfprovError(f"{what}: environment variable {ref.env} is empty")
        return SecretStr(value)
    assert ref.file is not None
    path = base / ref.file
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SECRET_FILE + 1)
    except FileNotFoundError:
        raise BfprovError(f"{what}: secret file {path} does not exist") from None
    except OSError as exc:
        raise BfprovError(f"{what}: cannot read secret file {path}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise BfprovError(f"{what}: secret file {path} is larger than 64 KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BfprovError(f"{what}: secret file {path} is not UTF-8 text") from None
    # Files written by `echo` or editors end with a newline that is not part of the secret.
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise BfprovError(f"{what}: secret file {path} is empty")
    return SecretStr(text)


def p12_password(target: Target) -> SecretStr | None:
    """The account's PKCS#12 password when p12 is one of its outputs, else None."""
    from bfprov.desired.models import Output

    ref = target.account.p12.password
    if Output.P12 not in target.account.outputs or ref is None:
        return None
    return reveal(ref, target.source.parent, f"{target.name}: p12.password")
