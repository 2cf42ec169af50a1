"""Small helpers the target kinds share for the checks made before anything is written
(see `preflight`): a package installed, an address as a server sees it, a manifest's file.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.targets import KubernetesConfig, TargetRef


@functools.cache
def installed(module: str) -> bool:
    """Whether `module` can be imported (looked up once per check: see `preflight`)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def package(module: str, extra: str) -> list[str]:
    """The problem of a missing optional package, or none."""
    if installed(module):
        return []
    return [f"needs the {module} package: pip install 'bfprov[{extra}]'"]


def address_key(address: str | None) -> str:
    """An address as a server sees it: scheme and host in lower case, the port explicit."""
    if address is None:
        return ""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}{parts.path}"


def manifest_file(config: KubernetesConfig, ref: TargetRef) -> Path:
    """The manifest's file, one path however its directory is spelt."""
    path = config.manifest(ref.account, ref.profile_dir)
    try:
        return path.parent.resolve() / path.name
    except (OSError, RuntimeError):
        return path
