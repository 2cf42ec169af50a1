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
    # The staged pair goes live through the upload page, whose address is shown.
    assert "For a person watching, the page is at http://127.0.0.1:" in out
    assert "alice: live: promoted and published" in out
    assert "No changes. 3 accounts match the profiles." in out
    assert "$ bfprov status" in out
    assert "Published alice to kubernetes " in out and "betfair-carmen.yaml" in out
    assert "Demo complete" in out
