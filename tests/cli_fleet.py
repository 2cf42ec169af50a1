"""A fleet driven through the command line, for tests: a profile, its output, and runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bfprov.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


class CliFleet:
    """`profile_text` written to `root/fleet.yaml`; output in `root/certs`."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str], profile_text: str) -> None:
        self.root = root
        self.profile = root / "fleet.yaml"
        self.profile.write_text(profile_text)
        self.out = root / "certs"
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        """Run `bfprov ARGS --profiles fleet.yaml`: exit code, stdout, stderr."""
        code = main([*args, "--profiles", str(self.profile)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err
