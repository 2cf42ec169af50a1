"""What keeps bfprov cheap, tested for behaviour (the timings live in bench/, not here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bfprov import keypool
from bfprov.cli import main

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt, pem, csr, cnf]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
"""

HEAVY = ("requests", "rich.progress", "cryptography.hazmat.bindings._rust", "jinja2")


def _imported_after(args: list[str], tmp_path: Path) -> set[str]:
    code = (
        "import sys\nfrom bfprov.cli import main\n"
        f"code = main({args!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "BF_APP_KEY": "k", "BF_PASSWORD": "p"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))
    return set(loaded)


def test_help_and_validate_import_only_what_they_need(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert _imported_after(["--help"], tmp_path) == set()
    assert _imported_after(["validate", "--profiles", str(profile)], tmp_path) == set()


def test_plan_does_not_import_the_network_stack(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert "requests" not in _imported_after(["plan", "--profiles", str(profile)], tmp_path)


def test_the_key_pool_makes_only_what_is_needed() -> None:
    pool = keypool.KeyPool(bits=1024, ahead=2)
    try:
        key = None
        for _ in range(200):  # wait for the first key (well under a second)
            key = pool.take(1024)
            if key is not None:
                break
            __import__("time").sleep(0.01)
        assert key is not None and key.key_size == 1024
        assert pool.take(2048) is None  # another size: the caller makes its own
        pool.need(0)
        pool._thread.join(timeout=5)
        assert not pool._thread.is_alive()
    finally:
        pool.close()
    assert pool.take(1024) is None  # unused keys are dropped


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    return profile


def _plan(profile: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["plan", "--json", "--profiles", str(profile)]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_a_damaged_record_only_costs_a_deeper_look(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = fleet.parent / "certs" / "alice" / ".bfprov" / "record.json"
    for damage in (b"{not json", b'{"files": {"client-2048.key": {"size": "x"}}}', b"[]"):
        record.write_bytes(damage)
        assert _plan(fleet, capsys)["changes"] == [], damage


def test_a_same_size_change_with_the_mtime_restored_is_noticed(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crt = fleet.parent / "certs" / "alice" / "client-2048.csr"
    st = crt.stat()
    data = bytearray(crt.read_bytes())
    data[100] = ord("A") if data[100] != ord("A") else ord("B")  # same size, one byte
    crt.write_bytes(bytes(data))
    os.utime(crt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert crt.stat().st_size == st.st_size and crt.stat().st_mtime_ns == st.st_mtime_ns
    changes = _plan(fleet, capsys)["changes"]
    assert isinstance(changes, list) and changes, "a tampered file must be looked at again"
