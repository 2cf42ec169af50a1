"""--lock-timeout: apply, promote and rollback wait for the lock and say whose it was."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bfprov.apply.lock import apply_lock
from bfprov.cli import main

PROFILE = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  outputs: [key, crt]
accounts:
  - name: alice
    username: alice
    password: {env: BF_PASSWORD}
    subject: {common_name: alice}
"""


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BF_APP_KEY", "k")
    monkeypatch.setenv("BF_PASSWORD", "p")
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    return path


def _hold_lock(out: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holds the lock (as `bfprov apply`) for `seconds`."""
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom bfprov.apply.lock import apply_lock\n"
        f"with apply_lock(Path({str(out)!r}), command='apply'):\n"
        "    print('held', flush=True)\n"
        f"    time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_without_a_timeout_apply_is_refused_naming_the_holder(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = _hold_lock(profile.parent / "certs", 30)
    try:
        code = main(["apply", "--yes", "--no-verify", "--profiles", str(profile)])
        err = capsys.readouterr().err
        assert code == 1
        assert f"bfprov apply (pid {holder.pid}," in err and "--lock-timeout" in err
        assert not (profile.parent / "certs" / "alice").exists()
    finally:
        holder.kill()
        holder.wait()


def test_with_a_timeout_apply_waits_for_the_lock_and_says_whose(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = _hold_lock(profile.parent / "certs", 1.0)
    try:
        code = main(["apply", "--yes", "--no-verify", "--lock-timeout", "2m", "--profiles",
                     str(profile)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 0, err
        assert holder.poll() is not None  # it ran only once the holder had finished
        assert "waiting up to 120 s for the lock" in err
        assert f"held by bfprov apply (pid {holder.pid}," in err
        assert (profile.parent / "certs" / "alice" / "client-2048.key").is_file()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", [["promote", "alice"], ["rollback", "alice"]])
def test_promote_and_rollback_give_up_after_their_timeout(
    profile: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main(["apply", "--yes", "--no-verify", "--profiles", str(profile)]) == 0
    holder = _hold_lock(profile.parent / "certs", 30)
    try:
        capsys.readouterr()
        code = main([*command, "--lock-timeout", "0.3s", "--profiles", str(profile)])
        err = capsys.readouterr().err
        assert code == 1
        assert "gave up after 0.3 s waiting for the lock" in err
        assert f"bfprov apply (pid {holder.pid}," in err
        assert holder.poll() is None  # the holder was never disturbed
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("value", ["soon", "-5s", "5x"])
def test_a_bad_lock_timeout_is_one_clear_line(
    profile: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    code = main(["apply", "--yes", f"--lock-timeout={value}", "--profiles", str(profile)])
    err = capsys.readouterr().err
    assert code == 1
    assert repr(value) in err and err.count("\n") == 1
    assert not (profile.parent / "certs").exists()


def test_the_holder_file_goes_with_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    with apply_lock(out, command="promote"):
        assert (out / ".bfprov.lock.holder").is_file()
        assert oct((out / ".bfprov.lock.holder").stat().st_mode & 0o777) == "0o600"
    assert not (out / ".bfprov.lock.holder").exists()
