"""The environment of every process bfprov starts (hooks, sops, git): an allow-list.

bfprov's own environment holds the secrets of a whole fleet: every account's password and
app key, Vault tokens, the AWS keys boto3 reads. A child gets none of that: only what any
program needs to run as the user (the names below), plus the few names its caller adds
(a hook's `hooks.pass_env`, git's configuration paths). Everything else is left out,
whatever its name, so a secret kept under an unusual name is not given away either.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

ALLOWED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR")
ALLOWED_PREFIXES = ("LC_",)  # the locale's categories: LC_ALL, LC_CTYPE, LC_TIME, ...


def allowed(name: str) -> bool:
    """Whether every child may receive the variable `name`."""
    return name in ALLOWED or name.startswith(ALLOWED_PREFIXES)


def environment(
    extra: Iterable[str] = (), *, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allowed variables of `source` (default: this process's environment), plus the
    ones named in `extra` that are set there."""
    env = os.environ if source is None else source
    wanted = set(extra)
    return {name: value for name, value in env.items() if allowed(name) or name in wanted}
