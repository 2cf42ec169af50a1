"""Promises of publishing that a deliberate-break audit found unpinned, or pinned only once.

Each test was seen failing against the break its docstring names (made by hand, then
reverted). Most need no server binary: plain manifests, or a Vault address where nothing
listens; the others use the suite's real servers and fail, not skip, when `CI` is set.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support import needs
from tests.support.fleet import (
    SECRET_ENV,
    STEM,
    PublishFleet,
    kubernetes_target,
    leaks,
    vault_target,
)
from tests.support.proxy import Proxy
from tests.support.servers import AgeIdentity, Bao, free_port

if TYPE_CHECKING:
    from pathlib import Path

TOKEN_ENV = "PIN_VAULT_TOKEN"  # not BF_*: withheld from hooks because the profile names it
TOKEN = "s.pin-token-7f3a9c-SECRET"
HOOK = """\
import json, os, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    for name in ("BFPROV_OUTPUT_DIR", "BFPROV_PROFILES", "BFPROV_IDENTITY_URL"):
        monkeypatch.delenv(name, raising=False)


def hook_yaml(root: Path) -> str:
    (root / "hook.py").write_text(HOOK.format(log=str(root / "hooks.jsonl")))
    argv = json.dumps([sys.executable, str(root / "hook.py"), "{account}"])
    return f"    on_live: {argv}\n    on_failure: {argv}\n    timeout: 30s\n"


def hook_runs(root: Path) -> list[dict[str, object]]:
    log = root / "hooks.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def dead_vault() -> str:
    """A Vault address on loopback where nothing listens: every request is refused."""
    return vault_target(f"http://127.0.0.1:{free_port()}", TOKEN_ENV)


# --- sops: the plaintext manifest never touches a file -----------------------------------

_WRITE = re.compile(r"^\d+\s+(?:write|pwrite64|writev)\((\d+)<([^>]*)>, (.*)$")


def test_a_sops_manifest_is_never_written_in_plaintext_to_any_file(
    tmp_path: Path, sops_env: AgeIdentity, capsys: pytest.CaptureFixture[str]
) -> None:
    """strace sees every write of bfprov and its children: none to a file (as opposed to a
    pipe or socket) carries the manifest's plaintext data, wherever the file is and
    whether or not it is deleted afterwards. Broken on purpose: the plaintext written to
    a NamedTemporaryFile in $TMPDIR, then beside the manifest, handed to sops by name and
    deleted."""
    strace = needs.command("strace", "apt-get install strace")
    targets = (
        "    - kubernetes: {dir: k8s, namespace: bots, name: 'betfair-{account}', "
        f"sops_age_recipients: [{sops_env.recipient}]}}\n"
    )
    fleet = PublishFleet(tmp_path, capsys, targets=targets)
    trace = tmp_path / "strace.log"
    argv = [sys.executable, "-m", "bfprov", "apply", "--yes", "--no-verify"]
    done = subprocess.run(
        [strace, "-f", "-qq", "-y", "-s", "4000000", "-e", "trace=write,pwrite64,writev",
         "-o", str(trace), *argv, "--profiles", str(fleet.profile)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = (tmp_path / "k8s" / "betfair-alice.yaml").read_text()
    assert "ENC[" in manifest
    key = (fleet.directory("alice") / f"{STEM}.key").read_bytes()
    plaintext = base64.b64encode(key).decode()[100:160]  # as the manifest's tls.key holds it
    to_files, to_pipes = [], []
    for line in trace.read_text().splitlines():
        match = _WRITE.match(line)
        if match is None or plaintext not in match.group(3):
            continue
        (to_files if match.group(2).startswith("/") else to_pipes).append(match.group(2))
    assert to_files == [], "the plaintext manifest was written to a file"
    # The tracer does see the plaintext where it goes: down the pipe to sops's stdin.
    assert to_pipes, "the trace saw no plaintext at all"


# --- Vault: observing reads metadata, never the secret's data ------------------------------


def test_observing_vault_never_asks_for_the_secrets_data(
    tmp_path: Path,
    openbao: Bao,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request of a plan (and of an apply with nothing to do) goes through a proxy
    that records it: none reads `secret/data/...`. Broken on purpose: observe() also
    reading the data, its error swallowed (a metadata-only token does not catch that)."""
    monkeypatch.setenv(TOKEN_ENV, openbao.token)
    with Proxy(openbao.address) as proxy:
        fleet = PublishFleet(
            tmp_path, capsys, names=("alice", "bob"),
            targets=vault_target(proxy.address, TOKEN_ENV, path=f"{tmp_path.name}/{{account}}"),
        )  # fmt: skip
        fleet.ok("apply", "--yes", "--no-verify")
        assert any("/data/" in p for p in proxy.paths("POST") + proxy.paths("PUT"))
        proxy.requests.clear()
        assert fleet.plan()[0] == 0
        fleet.ok("apply", "--yes", "--no-verify")
        seen = proxy.paths()
    assert [p for p in seen if "/metadata/" in p], "the plan observed nothing"
    assert [p for p in seen if "/v1/secret/data/" in p] == []


# --- one account's failure is that account's only -----------------------------------------


def test_one_accounts_failed_target_stops_no_other_account_and_apply_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice (first) publishes to a Vault that refuses every connection; the others of the
    run still get their manifests, and the run exits 1 naming alice's target. Broken on
    purpose: deliveries skipped once one has failed in the run; a failed delivery raising
    out of the account's job (the run stops); delivery failures ignored (exit 0)."""
    needs.module("hvac", "pip install 'bfprov[vault]'")
    names = ("alice", "bob", "carol", "dave", "erin")
    fleet = PublishFleet(tmp_path, capsys, names=names, own_targets={"alice": dead_vault()})
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1, out + err
    assert re.search(
        r"alice: publication failed: vault http://127\.0\.0\.1:\d+ secret/t/alice", err
    )
    for name in names[1:]:
        assert fleet.manifest_fingerprint(name) == fleet.fingerprint(name), name
        assert f"Published {name} to kubernetes" in out
    assert fleet.fingerprint("alice") is not None  # the local pair stands
    code, plan = fleet.plan()
    assert code == 2
    assert [(c["account"], c["action"]) for c in plan["changes"]] == [("alice", "publish")]


# --- plan --no-refresh: bfprov's records stand for the targets ----------------------------


def test_plan_no_refresh_trusts_the_records_and_a_refresh_sees_the_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest removed out of band: `plan` sees it (exit 2), `plan --no-refresh` trusts
    the record of the delivery (exit 0); a failed delivery is on record as not delivered.
    Broken on purpose: --no-refresh ignored (targets observed anyway)."""
    fleet = PublishFleet(tmp_path, capsys, names=("alice", "bob"))
    fleet.ok("apply", "--yes", "--no-verify")
    (tmp_path / "k8s" / "betfair-alice.yaml").unlink()
    code, plan = fleet.plan()
    assert code == 2 and [c["account"] for c in plan["changes"]] == ["alice"]
    assert fleet.plan("--no-refresh") == (0, fleet.plan("--no-refresh")[1])
    assert fleet.plan("--no-refresh")[1]["changes"] == []
    # A delivery that failed is not on record as delivered: --no-refresh plans it.
    if not _immutable(tmp_path / "k8s", True):
        pytest.skip("cannot make a directory read-only here (no chattr)")
    try:
        code, _, _ = fleet.run("apply", "--yes", "--no-verify")
    finally:
        _immutable(tmp_path / "k8s", False)
    assert code == 1
    code, plan = fleet.plan("--no-refresh")
    assert code == 2 and "alice" in [c["account"] for c in plan["changes"]]


# --- rollback publishes the pair it brings back -------------------------------------------


def test_rollback_publishes_the_restored_pair_to_every_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Broken on purpose: rollback not delivering (its deliver_change call removed)."""
    fleet = PublishFleet(
        tmp_path, capsys, targets=kubernetes_target() + kubernetes_target("k8s-mirror")
    )
    fleet.ok("apply", "--yes", "--no-verify")
    first = fleet.fingerprint("alice")
    fleet.rotate()
    fleet.ok("apply", "--yes", "--no-verify")
    fleet.ok("promote", "alice", "--no-verify")
    second = fleet.fingerprint("alice")
    assert second != first
    assert fleet.manifest_fingerprint("alice") == second
    out = fleet.rollback("alice")
    assert fleet.fingerprint("alice") == first
    for directory in ("k8s", "k8s-mirror"):
        assert fleet.manifest_fingerprint("alice", directory) == first
        assert f"Published alice to kubernetes {tmp_path / directory}" in out
    fleet.generation = 1  # the profile describes the restored pair again
    fleet.write()
    assert fleet.plan()[0] == 0
    assert fleet.status() == {"alice": dict.fromkeys(fleet.status()["alice"], True)}
    rolled = [e for e in fleet.events() if e["event"] == "published"][-2:]
    assert [e["fingerprint"] for e in rolled] == [first, first]


# --- a hook never gets a token the profile names ------------------------------------------


def test_a_hook_never_gets_the_vault_token_the_profile_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The token's variable is not BF_*: it is withheld because the profile reads it.
    Broken on purpose: secret_variables() without the targets' tokens."""
    needs.module("hvac", "pip install 'bfprov[vault]'")
    fleet = PublishFleet(
        tmp_path, capsys, targets=kubernetes_target() + dead_vault(), hooks=hook_yaml(tmp_path)
    )
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1, out + err
    runs = hook_runs(tmp_path)
    assert runs, "no hook ran"
    for run in runs:
        env = run["env"]
        assert isinstance(env, dict)
        assert TOKEN_ENV not in env
        assert TOKEN not in json.dumps(env)
        assert not [name for name in SECRET_ENV if name in env]
    assert leaks(fleet, TOKEN) == []


# --- found by the state machine (test_publish_states.py) ----------------------------------


def test_a_target_deleted_while_a_staged_pair_awaits_upload_is_planned_and_restored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today the plan shows only the pending promotion, apply restores nothing, and
    status still says the manifest holds the live pair."""
    fleet = PublishFleet(tmp_path, capsys, names=("alice",))
    fleet.ok("apply", "--yes", "--no-verify")
    live = fleet.fingerprint("alice")
    fleet.ok("apply", "--yes", "--no-verify", "--replace", "alice")
    assert fleet.fingerprint("alice", staged=True) is not None
    (tmp_path / "k8s" / "betfair-alice.yaml").unlink()
    code, plan = fleet.plan()
    assert code == 2
    [change] = plan["changes"]
    label = f"kubernetes {tmp_path / 'k8s' / 'betfair-alice.yaml'}"
    assert f"{label} lacks the live pair" in change["reasons"]
    fleet.ok("apply", "--yes", "--no-verify")
    assert fleet.manifest_fingerprint("alice") == live
    assert fleet.status()["alice"] == {label: True}


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i: read-only even for root (permission bits do not stop root), so a
    delivery fails where preflight found nothing wrong."""
    import shutil
    import subprocess

    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    flag = "+i" if on else "-i"
    return subprocess.run([chattr, flag, str(path)], capture_output=True).returncode == 0
