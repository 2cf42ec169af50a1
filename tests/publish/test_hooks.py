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


def test_the_environment_is_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a fleet's shell holds: the AWS key, another account's password, a Vault token.
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "AWS_SESSION_TOKEN": "aws-session-value",
        "BOB_PASSWORD": "bob-password-value",
        "BF_APP_KEY": "app-key-value",
        "VAULT_TOKEN": "vault-token-value",
        "SOME_RANDOM_VARIABLE": "random-value",
        "BFPROV_PROFILES": "/etc/bfprov",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOOK_SETTING", "passed")
    monkeypatch.setenv("TZ", "Europe/Rome")
    monkeypatch.setenv("LC_TIME", "C")
    out = tmp_path / "out.json"
    result = run_hook(
        [sys.executable, "-c", DUMP, str(out)],
        context(tmp_path),
        timeout=20,
        pass_env=["HOOK_SETTING", "NOT_SET_ANYWHERE"],
    )
    assert result.ok, result.output
    env = json.loads(out.read_text())["env"]
    assert env["HOOK_SETTING"] == "passed"  # named in hooks.pass_env
    assert env["TZ"] == "Europe/Rome" and env["LC_TIME"] == "C"
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    assert "NOT_SET_ANYWHERE" not in env
    for name, value in secrets.items():
        assert name not in env
        assert value not in json.dumps(env)
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "HOOK_SETTING"}
    extra = {k for k in env if k not in allowed and not k.startswith(("LC_", "BFPROV_"))}
    assert extra == set()
    assert {k for k in env if k.startswith("BFPROV_")} == set(context(tmp_path).environment())


def test_a_failing_hook_is_reported(tmp_path: Path) -> None:
    script = "import sys; print('restart failed'); sys.exit(3)"
    result = run_hook([sys.executable, "-c", script], context(tmp_path), timeout=20)
    assert (result.ok, result.outcome) == (False, 3)
    assert result.output.strip() == "restart failed"
    assert result.describe().startswith(f"hook {sys.executable}: exit status 3 after ")


def test_a_failure_shows_the_last_lines_of_output_cleaned(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for i in range(1, 21): print(f'line {i}')\n"
        "print('\\x1b[31mred\\x1b[0m and a bell\\x07 and a\\x00nul')\n"
        "print('x' * 2000, file=sys.stderr)\n"
        "print('restart failed: bot@alice is not loaded', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    result = run_hook([sys.executable, "-u", "-c", script], context(tmp_path), timeout=20)
    assert result.outcome == 3
    lines = result.last_lines()
    assert lines[-1] == "restart failed: bot@alice is not loaded"
    assert "red and a bell and anul" in lines
    assert "line 20" in lines and "line 1" not in lines
    assert len(lines) <= 5 and sum(len(line) for line in lines) <= 500
    assert not any(ch < " " or ch == "\x7f" for line in lines for ch in line)
    assert "x" * 197 + "..." in lines  # a runaway line is cut
    described = result.describe()
    assert described.startswith(f"hook {sys.executable}: exit status 3 after ")
    assert "\n" not in described and "\x1b" not in described
    assert described.endswith("restart failed: bot@alice is not loaded")
    assert "last output: " in described and "line 20" in described


def test_a_hook_that_succeeds_is_described_without_its_output(tmp_path: Path) -> None:
    result = run_hook([sys.executable, "-c", "print('all good')"], context(tmp_path), timeout=20)
    assert result.ok and "all good" not in result.describe()


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
