"""Hooks: real processes, their environment, argv without a shell, timeouts."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

import pytest

from bfprov.publish.hooks import TIMED_OUT, HookContext, HookEvent, HookResult, run_hook

if TYPE_CHECKING:
    from pathlib import Path

# A hook that writes its argv and environment as JSON to the file named by its last argument.
DUMP = (
    "import json, os, sys\n"
    "with open(sys.argv[-1], 'w') as fh:\n"
    "    json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, fh)\n"
)


def context(tmp_path: Path, event: HookEvent = HookEvent.CREATED) -> HookContext:
    account_dir = tmp_path / "certs" / "alice"
    return HookContext(
        account="alice",
        event=event,
        account_dir=account_dir,
        crt=account_dir / "client-2048.crt",
        key=account_dir / "client-2048.key",
        fingerprint="ab" * 32,
        jurisdiction="it",
    )


def test_environment_and_argv(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    base = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "BF_PASSWORD_ALICE": "hunter2",
        "VAULT_TOKEN": "s.secret",
        "BFPROV_EVENT": "stale",
    }
    argv = [sys.executable, "-c", DUMP, "bot@{account}", "$(touch pwned)", "`id`;", "*", str(out)]
    result = run_hook(
        argv,
        context(tmp_path, HookEvent.PROMOTED),
        timeout=20,
        withhold=("BF_PASSWORD_ALICE", "VAULT_TOKEN"),
        base_env=base,
    )
    assert result.ok, result.output
    assert (result.program, result.outcome) == (sys.executable, 0)
    seen = json.loads(out.read_text())
    # Each element is passed as it is, {account} replaced; nothing is interpreted by a shell.
    assert seen["argv"] == ["bot@alice", "$(touch pwned)", "`id`;", "*", str(out)]
    assert not (tmp_path / "pwned").exists()
    assert not any(p.name == "pwned" for p in tmp_path.parent.iterdir())
    account_dir = tmp_path / "certs" / "alice"
    expected = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "BFPROV_ACCOUNT": "alice",
        "BFPROV_EVENT": "promoted",
        "BFPROV_ACCOUNT_DIR": str(account_dir),
        "BFPROV_CRT": str(account_dir / "client-2048.crt"),
        "BFPROV_KEY": str(account_dir / "client-2048.key"),
        "BFPROV_FINGERPRINT": "ab" * 32,
        "BFPROV_JURISDICTION": "it",
    }
    # Python may add LC_CTYPE on its own when it coerces the C locale; nothing else appears.
    assert {k: v for k, v in seen["env"].items() if k != "LC_CTYPE"} == expected


def test_every_event_name(tmp_path: Path) -> None:
    names = [context(tmp_path, e).environment()["BFPROV_EVENT"] for e in HookEvent]
    assert names == ["created", "promoted", "rolled_back", "failed"]


def test_the_parents_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BFPROV_TEST_INHERITED", "yes")
    monkeypatch.setenv("BF_APP_KEY", "app-key-value")
    out = tmp_path / "out.json"
    result = run_hook(
        [sys.executable, "-c", DUMP, str(out)],
        context(tmp_path),
        timeout=20,
        withhold=["BF_APP_KEY"],
    )
    assert result.ok
    env = json.loads(out.read_text())["env"]
    assert env["BFPROV_TEST_INHERITED"] == "yes"
    assert "BF_APP_KEY" not in env
    assert "app-key-value" not in json.dumps(env)


def test_a_failing_hook_is_reported(tmp_path: Path) -> None:
    script = "import sys; print('restart failed'); sys.exit(3)"
    result = run_hook([sys.executable, "-c", script], context(tmp_path), timeout=20)
    assert (result.ok, result.outcome) == (False, 3)
    assert result.output.strip() == "restart failed"
    assert result.describe().startswith(f"hook {sys.executable}: exit status 3 after ")


def test_a_hook_that_cannot_start_is_reported(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-hook")
    result = run_hook([missing, "{account}"], context(tmp_path), timeout=20)
    assert result == HookResult(missing, "cannot run: No such file or directory", result.seconds)
    assert not result.ok


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    alive, marker = tmp_path / "grandchild-started", tmp_path / "grandchild-finished"
    # The hook starts a grandchild that says it started, and would finish after 1 s.
    grandchild = (
        f"import time; open({str(alive)!r}, 'w').close(); time.sleep(1); "
        f"open({str(marker)!r}, 'w').close()"
    )
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = run_hook([sys.executable, "-c", script], context(tmp_path), timeout=0.6)
    assert time.monotonic() - started < 5
    assert result.outcome == TIMED_OUT
    assert not result.ok
    assert result.describe().startswith(f"hook {sys.executable}: timed out after 0.")
    time.sleep(1.5)
    assert alive.exists()
    assert not marker.exists()  # the grandchild was killed with its group
