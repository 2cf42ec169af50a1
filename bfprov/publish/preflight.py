"""Everything a publishing target needs, checked before anything is written.

`validate`, `plan` and `apply` call `check` once the profiles are loaded (apply before its
lock, its first write): a profile that cannot publish writes nothing, and `plan` never
shows a missing token as drift. Checked here:

- identity: a target (Vault address, mount and path; AWS region, endpoint and name; a
  manifest's file) belongs to one account, once `{account}` is filled in;
- names once `{account}` is filled in: Vault paths without empty, `.` or `..` segments,
  Secrets Manager names, Kubernetes names;
- a manifest is never beside the profiles, and never replaces a file bfprov did not write;
- for the accounts about to be worked on: the Vault token (its variable set, its file
  readable) and `ca_bundle`, the packages a target needs, sops for encrypted manifests.

Each kind of target registers its checks in the tables at the bottom. What is static in
a target's settings (addresses, recipients, path segments of the template) is checked
where the profile is validated (`desired.targets`), with the value's line and column.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bfprov.desired.fields import quote
from bfprov.desired.profile import ProfileError
from bfprov.desired.secret import reveal
from bfprov.desired.targets import (
    AwsSecretsManagerConfig,
    KubernetesConfig,
    VaultConfig,
    render,
    segment_problem,
)
from bfprov.errors import BfprovError
from bfprov.publish.ownership import replaceable

if TYPE_CHECKING:
    from bfprov.desired.models import Desired, Target
    from bfprov.desired.targets import TargetConfig

_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a DNS subdomain
_AWS_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


@dataclass(frozen=True)
class Entry:
    """One publishing target of one account, placed in its profile."""

    target: Target
    config: TargetConfig
    place: str  # `file:line:col: path` of the item in the profile

    @property
    def account(self) -> str:
        return self.target.name

    @property
    def profile_dir(self) -> Path:
        return self.target.source.parent

    @property
    def label(self) -> str:
        return self.config.identity(self.account, self.profile_dir)

    def problem(self, why: str, more: str = "") -> str:
        return f"{self.place} ({self.account}{more}): {self.label}: {why}"


def check(desired: Desired, profiles: Path, selected: Desired | None = None) -> None:
    """Raise ProfileError listing every problem `preflight` finds."""
    problems = preflight(desired, profiles, selected)
    if problems:
        raise ProfileError(problems)


def preflight(desired: Desired, profiles: Path, selected: Desired | None = None) -> list[str]:
    """Every reason the publishing targets of `desired` (all accounts of the profiles)
    cannot be written, one line each. Secrets, files and packages are looked at for the
    accounts of `selected` only (all when None): a selection leaves the others alone."""
    entries = [
        Entry(t, entry.target, _place(t, i))
        for t in desired.targets
        for i, entry in enumerate(t.account.publish)
    ]
    chosen = {t.name for t in (selected or desired).targets}
    _installed.cache_clear()  # once per check, not per account; a test may uninstall one
    homes = _profile_dirs(desired, profiles)
    # One line per problem of a `publish` item, however many accounts share it (a token
    # missing for a whole fleet's defaults is one line, not thousands).
    found: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        kind = type(entry.config)
        whys = _NAMES[kind](entry, homes)
        if entry.account in chosen:
            whys += _NEEDS[kind](entry)
        for why in whys:
            found.setdefault((entry.place, why), []).append(entry)
    problems = _repeats(entries)
    for (_, why), alike in found.items():
        first, others = alike[0], len(alike) - 1
        more = f" and {others} other account{'s' if others != 1 else ''}" if others else ""
        problems.append(first.problem(why, more))
    return problems


def _place(target: Target, index: int) -> str:
    if index < len(target.publish_at):
        return target.publish_at[index]
    return f"{target.source}: publish[{index}]"


# --- identity ---------------------------------------------------------------------------


def _repeats(entries: list[Entry]) -> list[str]:
    """A target named twice: by two accounts, or twice in one account's list."""
    seen: dict[tuple[str, ...], Entry] = {}
    problems = []
    for entry in entries:
        key = _IDENTITY[type(entry.config)](entry)
        first = seen.setdefault(key, entry)
        if first is entry:
            continue
        if first.account == entry.account:
            why = f"listed twice for {entry.account} (first at {first.place})"
        else:
            why = (
                f"is also {first.account}'s target (at {first.place}): a target belongs to one "
                f"account, or {first.account} and {entry.account} would overwrite each other's "
                "pair on every run (put {account} in it)"
            )
        problems.append(entry.problem(why))
    return problems


def _address(address: str | None) -> str:
    """An address as a server sees it: scheme and host in lower case, the port explicit."""
    if address is None:
        return ""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}{parts.path}"


def _vault_identity(entry: Entry) -> tuple[str, ...]:
    config = entry.config
    assert isinstance(config, VaultConfig)
    path = render(config.path, entry.account)
    return ("vault", _address(config.address), config.mount.strip("/"), path.strip("/"))


def _aws_identity(entry: Entry) -> tuple[str, ...]:
    config = entry.config
    assert isinstance(config, AwsSecretsManagerConfig)
    name = render(config.name, entry.account)
    return ("aws", config.region, _address(config.endpoint_url), name)


def _manifest(entry: Entry) -> Path:
    config = entry.config
    assert isinstance(config, KubernetesConfig)
    path = config.manifest(entry.account, entry.profile_dir)
    try:
        return path.parent.resolve() / path.name  # one file, however its directory is spelt
    except (OSError, RuntimeError):
        return path


def _kubernetes_identity(entry: Entry) -> tuple[str, ...]:
    return ("kubernetes", str(_manifest(entry)))


# --- names once {account} is filled in ----------------------------------------------------


def _vault_names(entry: Entry, homes: set[Path]) -> list[str]:
    config = entry.config
    assert isinstance(config, VaultConfig)
    why = segment_problem(render(config.path, entry.account))
    return [] if why is None else [f"path {why}"]


def _aws_names(entry: Entry, homes: set[Path]) -> list[str]:
    config = entry.config
    assert isinstance(config, AwsSecretsManagerConfig)
    name = render(config.name, entry.account)
    if _AWS_NAME.fullmatch(name):
        return []
    return [
        f"the name ({len(name)} characters, from {quote(config.name)}) is not a Secrets Manager "
        "name: at most 512 of letters, digits and /_+=.@-"
    ]


def _kubernetes_names(entry: Entry, homes: set[Path]) -> list[str]:
    config = entry.config
    assert isinstance(config, KubernetesConfig)
    whys = []
    name = render(config.name, entry.account)
    if not _K8S_NAME.fullmatch(name):
        whys.append(
            f"{quote(name, 60)} (from {quote(config.name)}) is not a valid Kubernetes name: "
            "lowercase letters, digits, '-' and '.', at most 253"
        )
    path = _manifest(entry)
    if path.parent in homes:
        whys.append(
            f"would be written in the profiles directory {path.parent}, where a manifest "
            "could replace a profile or be read as one; choose another dir"
        )
    return whys


def _profile_dirs(desired: Desired, profiles: Path) -> set[Path]:
    """The directory `--profiles` names (or holds the file it names), and every directory
    holding a profile file that was read."""
    dirs = {t.source.parent for t in desired.targets}
    try:
        given = profiles.resolve()
        dirs.add(given if given.is_dir() else given.parent)
    except (OSError, RuntimeError):
        pass
    return dirs


# --- what a target needs to be written -----------------------------------------------------


@functools.cache
def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _package(module: str, extra: str) -> list[str]:
    return (
        [] if _installed(module) else [f"needs the {module} package: pip install 'bfprov[{extra}]'"]
    )


def _vault_needs(entry: Entry) -> list[str]:
    config = entry.config
    assert isinstance(config, VaultConfig)
    whys = _package("hvac", "vault")
    try:
        reveal(config.token, entry.profile_dir, "token")  # read, then forgotten
    except BfprovError as exc:
        whys.append(str(exc))
    if config.ca_bundle is not None:
        bundle = entry.profile_dir / config.ca_bundle
        try:
            with bundle.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            whys.append(f"ca_bundle {bundle} cannot be read: {exc.strerror or exc}")
    return whys


def _aws_needs(entry: Entry) -> list[str]:
    return _package("boto3", "aws")


def _kubernetes_needs(entry: Entry) -> list[str]:
    config = entry.config
    assert isinstance(config, KubernetesConfig)
    whys = []
    if config.sops_age_recipients and shutil.which("sops") is None:
        whys.append("needs the sops command on PATH to encrypt (https://getsops.io)")
    why = replaceable(_manifest(entry))
    if why is not None:
        whys.append(why)
    return whys


# --- one line per kind of target ------------------------------------------------------------

Names = Callable[[Entry, set[Path]], list[str]]
_IDENTITY: dict[type, Callable[[Entry], tuple[str, ...]]] = {
    VaultConfig: _vault_identity,
    AwsSecretsManagerConfig: _aws_identity,
    KubernetesConfig: _kubernetes_identity,
}
_NAMES: dict[type, Names] = {
    VaultConfig: _vault_names,
    AwsSecretsManagerConfig: _aws_names,
    KubernetesConfig: _kubernetes_names,
}
_NEEDS: dict[type, Callable[[Entry], list[str]]] = {
    VaultConfig: _vault_needs,
    AwsSecretsManagerConfig: _aws_needs,
    KubernetesConfig: _kubernetes_needs,
}
