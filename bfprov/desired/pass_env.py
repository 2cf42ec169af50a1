"""`hooks.pass_env` never names a secret: the check across every profile.

A hook's environment is an allow-list (`bfprov.children`) plus the names in
`hooks.pass_env`. A name that any secret reference of the profiles reads (any account's
password, app key, p12 password, a Vault token) would hand that secret to a program bfprov
does not control, so the profile is refused, naming the variable and who reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bfprov.desired.fields import SecretRef, quote

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from bfprov.desired.models import Account
    from bfprov.desired.yaml_reader import Loc


def secret_readers(accounts: Iterable[Account]) -> dict[str, str]:
    """Each environment variable a secret reference reads -> the first field that reads it
    (`bob: password`, `alice: publish[0].vault.token`)."""
    readers: dict[str, str] = {}
    for account in accounts:
        for where, ref in _references(account, ""):
            if ref.env is not None:
                readers.setdefault(ref.env, f"{account.name}: {where}")
    return readers


def _references(value: Any, where: str) -> Iterator[tuple[str, SecretRef]]:
    # Every SecretRef anywhere in the model: a new kind of secret is covered unasked.
    if isinstance(value, SecretRef):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            inner = getattr(value, name)
            if inner is not None:
                yield from _references(inner, f"{where}.{name}" if where else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _references(item, f"{where}[{index}]")


def refused(data: Any, readers: Mapping[str, str]) -> list[tuple[Loc, str]]:
    """Where a profile's `hooks.pass_env` (in `defaults` or an account) names a variable
    that a secret reference reads, with the message for it."""
    sections: list[tuple[Loc, Any]] = []
    if isinstance(data, dict):
        sections.append((("defaults",), data.get("defaults")))
        accounts = data.get("accounts")
        if isinstance(accounts, list):
            sections += [(("accounts", index), entry) for index, entry in enumerate(accounts)]
    problems: list[tuple[Loc, str]] = []
    for loc, section in sections:
        hooks = section.get("hooks") if isinstance(section, dict) else None
        names = hooks.get("pass_env") if isinstance(hooks, dict) else None
        for index, name in enumerate(names if isinstance(names, list) else ()):
            if isinstance(name, str) and name in readers:
                problems.append((
                    (*loc, "hooks", "pass_env", index),
                    f"{quote(name)} is read by a secret reference ({readers[name]}); "
                    "a hook never receives a secret",
                ))  # fmt: skip
    return problems
