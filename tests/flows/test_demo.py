"""`bfprov demo` runs the whole lifecycle green against the emulator, with no environment."""

from __future__ import annotations

import pytest

from bfprov.cli import main


def test_demo_runs_green(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BFPROV_PROFILES", "BFPROV_OUTPUT_DIR", "BFPROV_IDENTITY_URL", "BFPROV_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["demo"]) == 0
    out = capfd.readouterr().out
    assert "$ bfprov apply --yes" in out
    assert "CERT_AUTH_REQUIRED" in out  # the staged pair before its upload
    assert "1 promoted" in out
    assert "No changes. 3 accounts match the profiles." in out
    assert "$ bfprov status" in out
    assert "Published alice to kubernetes " in out and "betfair-carmen.yaml" in out
    assert "Demo complete" in out
