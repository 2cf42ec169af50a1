"""`bfprov sandbox serve` prints exports that work from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_sandbox_serve_prints_an_absolute_ca_bundle(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "BFPROV_PROFILES": str(tmp_path / "none.yaml")}
    cmd = [sys.executable, "-m", "bfprov", "sandbox", "serve", "--port", "0"]
    cmd += ["--state-dir", "rel-state"]  # relative to where it runs
    with subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as serve:
        try:
            assert serve.stdout is not None
            for line in serve.stdout:
                if "BFPROV_CA_BUNDLE=" in line:
                    break
            else:
                raise AssertionError(serve.stderr.read() if serve.stderr else "no banner")
        finally:
            serve.terminate()
    bundle = Path(line.split("BFPROV_CA_BUNDLE=", 1)[1].strip())
    assert bundle.is_absolute(), line
    assert bundle == (tmp_path / "rel-state").resolve() / bundle.name
    assert bundle.is_file()
