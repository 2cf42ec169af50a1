"""Is key material about to land in git? Asks `git check-ignore`; reads, never writes."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from bfprov.children import environment

if TYPE_CHECKING:
    from pathlib import Path

GIT_TIMEOUT = 5.0
# Where git finds the user's ignore rules (core.excludesFile): besides HOME, which every
# child gets. Nothing else of bfprov's environment reaches git.
GIT_ENV = ("XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM")


def _worktree(path: Path) -> Path | None:
    """The git work tree holding `path` (which may not exist yet), if any."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def exposed(output_dir: Path, account: str) -> Path | None:
    """The work tree in which `output_dir` is not ignored, or None when it is safe.

    The probe is a key file's path, so that `certs/`, `*.key` or a `*` in the output
    directory's own .gitignore all count as ignoring it.
    """
    root = _worktree(output_dir)
    git = shutil.which("git")
    if root is None or git is None:
        return None
    probe = output_dir / account / "client-2048.key"
    try:
        result = subprocess.run(
            [git, "-C", str(root), "check-ignore", "-q", "--", str(probe.relative_to(root))],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env=environment(GIT_ENV),
        )
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    # 0: ignored; 1: not ignored; anything else: git could not tell (say nothing).
    return root if result.returncode == 1 else None
