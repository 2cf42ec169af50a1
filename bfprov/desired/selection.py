"""Selections: which accounts a command works on (`--account NAME`, `--select KEY=VALUE`),
and which accounts are to get a new key whatever their state (`--replace NAME`).

One value, parsed once from the command line, used by every command and recorded in a
saved plan so that `apply FILE` works on exactly the accounts `plan --out` looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bfprov.desired.fields import _label_key, _label_value, quote
from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bfprov.desired.models import Desired


@dataclass(frozen=True)
class Selection:
    """Accounts by name, and label pairs every selected account must hold (all: AND)."""

    accounts: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def everything(self) -> bool:
        """No restriction: the whole fleet, orphaned directories included."""
        return not self.accounts and not self.labels

    def of(self, desired: Desired) -> Desired:
        """The selected part of `desired`; an error when it keeps no account."""
        return desired.select(self.accounts, dict(self.labels))

    def to_json(self) -> dict[str, object]:
        return {"accounts": list(self.accounts), "labels": dict(self.labels)}

    @classmethod
    def from_json(cls, data: object) -> Selection:
        """The selection a saved plan recorded (none recorded: everything)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("selection is not a mapping")
        accounts, labels = data.get("accounts", []), data.get("labels", {})
        if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
            raise ValueError("selection.accounts is not a list of names")
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise ValueError("selection.labels is not a mapping of strings")
        return selection(accounts, [f"{k}={v}" for k, v in labels.items()])

    def __str__(self) -> str:
        parts = [f"--account {a}" for a in self.accounts]
        parts += [f"--select {k}={v}" for k, v in self.labels]
        return " ".join(parts) or "every account"


def parse_label(value: str) -> tuple[str, str]:
    """`KEY=VALUE` -> (key, value): a key a profile could hold; the value may be empty."""
    key, sep, label = value.partition("=")
    if not sep or not key:
        raise BfprovError(f"--select {quote(value)}: expected KEY=VALUE (for example tier=gold)")
    try:
        _label_key(key)
        _label_value(label)
    except ValueError as exc:
        raise BfprovError(f"--select {quote(value)}: {exc}") from None
    return key, label


def selection(accounts: Iterable[str] = (), selects: Iterable[str] = ()) -> Selection:
    """The selection the command line asks for; names and labels sorted, duplicates merged.

    The same key given twice with two values can match no account: refused here.
    """
    labels: dict[str, str] = {}
    for value in selects:
        key, label = parse_label(value)
        if labels.get(key, label) != label:
            raise BfprovError(
                f"--select {key}={labels[key]} and --select {value} cannot both match"
            )
        labels[key] = label
    return Selection(tuple(sorted(set(accounts))), tuple(sorted(labels.items())))


def replacements(everything: Desired, selected: Desired, names: Iterable[str]) -> frozenset[str]:
    """The accounts of `--replace NAME`: each an account of the profiles, and selected."""
    chosen = frozenset(names)
    if not chosen:
        return chosen
    unknown = sorted(chosen - {t.name for t in everything.targets})
    if unknown:
        raise BfprovError(f"--replace: no account named {', '.join(unknown)} in the profiles")
    outside = sorted(chosen - {t.name for t in selected.targets})
    if outside:
        raise BfprovError(
            f"--replace {', '.join(outside)}: not among the selected accounts; "
            "select it too, or drop --replace"
        )
    return chosen
