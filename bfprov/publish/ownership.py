"""Whether a file may be replaced by a Kubernetes manifest: only one bfprov wrote.

bfprov knows its manifests by their label `app.kubernetes.io/managed-by: bfprov`, which a
sops-encrypted manifest keeps readable (sops encrypts `data` only). Anything else at a
manifest's path (a profile, a hand-written Secret, a directory, a symbolic link) is
refused, never overwritten.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

if TYPE_CHECKING:
    from pathlib import Path

MANAGED_BY = {"app.kubernetes.io/managed-by": "bfprov"}  # the label of every manifest bfprov writes
MAX_MANIFEST = 1024 * 1024
(_LABEL,) = MANAGED_BY
# `metadata.labels` as bfprov (and sops after it) writes it, in block style: found by this
# pattern at a tenth of the cost of parsing the file; any other form is parsed.
_OURS = re.compile(
    rb"^metadata:[ \t]*\r?\n(?:[ \t][^\n]*\n|\r?\n)*?  labels:[ \t]*\r?\n"
    rb"(?:    [^\n]*\n)*?    app\.kubernetes\.io/managed-by: bfprov[ \t]*\r?\n",
    re.M,
)


def replaceable(path: Path) -> str | None:
    """Why the file at `path` may not be replaced by a manifest, or None when there is no
    file or it is a manifest bfprov wrote (its managed-by label; a sops-encrypted manifest
    keeps its labels readable)."""
    refusal = f"{path} exists and bfprov did not write it"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return f"{path} cannot be written: a part of its directory is not a directory"
        what = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        return f"{refusal} ({what}): it is not replaced"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return f"{refusal} (not a regular file): it is not replaced"
    with os.fdopen(fd, "rb") as fh:
        text = fh.read(MAX_MANIFEST + 1)
    if _labelled(text):
        return None
    return (
        f"{refusal} (no label {_LABEL}: {MANAGED_BY[_LABEL]}): it is not replaced; "
        "move it away or choose another name"
    )


def _labelled(text: bytes) -> bool:
    if len(text) > MAX_MANIFEST:
        return False
    if _OURS.search(text):
        return True
    try:
        manifest: Any = YAML(typ="safe").load(text)
        labels = manifest["metadata"]["labels"]
        return bool(labels[_LABEL] == MANAGED_BY[_LABEL])
    except (YAMLError, TypeError, KeyError, IndexError, ValueError):
        return False
