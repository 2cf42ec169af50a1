"""How a run delivers as a whole: a silent endpoint's cost, accounts that do not wait on
one another, the audit trail's order, what status shows after a repair, exit and summary.

Real targets only: Kubernetes manifests on disk (no sops), a Vault address that is a
loopback socket accepting connections and never answering (or refusing them), and moto's
Secrets Manager. Nothing here needs the `bao` or `sops` binaries.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.fleet import CliFleet
from tests.support.servers import REGION, Moto, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

hvac = pytest.importorskip("hvac")  # the [vault] extra

TOKEN_ENV = "RUN_VAULT_TOKEN"
HOOK = """\
import sys
with open(sys.argv[1], "a") as fh:
    fh.write(sys.argv[2] + "\\n")
"""


class Silent:
    """A loopback TCP server that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.accepted: list[float] = []  # time.monotonic() of each connection
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(time.monotonic())
            self._held.append(conn)  # held open, never read nor written

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()


def vault(address: str, name: str = "run/{account}") -> str:
    return f"{{vault: {{address: {address}, token: {{env: {TOKEN_ENV}}}, path: '{name}'}}}}"


def kubernetes() -> str:
    return "{kubernetes: {dir: k8s, namespace: bots, name: 'betfair-{account}'}}"


def aws_target(endpoint: str, name: str) -> str:
    return f"{{aws_secrets_manager: {{region: {REGION}, name: {name}, endpoint_url: {endpoint}}}}}"


def profile(
    names: list[str],
    publish: list[str],
    *,
    own: dict[str, list[str]] | None = None,
    hook: str | None = None,
    common_name: str = "{name} bot",
) -> str:
    """A profile of `names` publishing to `publish`; `own` gives an account its own list."""
    lines = [
        "version: 1",
        "output_dir: certs",
        "defaults:",
        "  app_key: {env: BF_APP_KEY}",
        "  password: {env: BF_PASSWORD}",
        "  key: {size: 1024}",
        "  outputs: [key, crt]",
    ]
    if publish:
        lines.append(f"  publish: [{', '.join(publish)}]")
    if hook is not None:
        lines += ["  hooks:", f"    on_live: {hook}", "    timeout: 30s"]
    lines.append("accounts:")
    for name in names:
        cn = common_name.format(name=name)
        account = f"  - {{name: {name}, username: {name}, subject: {{common_name: {cn}}}"
        if own and name in own:
            account += f", publish: [{', '.join(own[name])}]"
        lines.append(account + "}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("BF_APP_KEY", "run-app-key-secret")
    monkeypatch.setenv("BF_PASSWORD", "run-password-secret")
    monkeypatch.setenv(TOKEN_ENV, "run-token-secret")
    monkeypatch.delenv("BFPROV_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("BFPROV_PUBLISH_TIMEOUT", raising=False)
    return monkeypatch


def events(fleet: CliFleet) -> list[dict[str, Any]]:
    path = fleet.out / ".bfprov" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def status(fleet: CliFleet) -> dict[str, dict[str, bool]]:
    code, out, err = fleet.run("status", "--json")
    assert code == 0, err
    rows = json.loads(out)
    rows = rows["accounts"] if isinstance(rows, dict) else rows
    return {r["account"]: r["published"] for r in rows}


def published_metric(fleet: CliFleet) -> dict[tuple[str, str], float]:
    code, out, err = fleet.run("status", "--prometheus")
    assert code == 0, err
    found = re.findall(r'^bfprov_published\{account="([^"]+)",target="([^"]+)"\} (\S+)$', out,
                       re.M)  # fmt: skip
    return {(a, t): float(v) for a, t, v in found}


# --- a silent endpoint -----------------------------------------------------------------

TIMEOUT = 2.0  # seconds (BFPROV_PUBLISH_TIMEOUT); the product's default is 10


@pytest.mark.parametrize("kind", ["vault", "aws"])
def test_a_silent_endpoint_costs_the_run_at_most_two_timeouts(
    tmp_path: Path,
    env: pytest.MonkeyPatch,
    silent: Silent,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    env.setenv("BFPROV_PUBLISH_TIMEOUT", str(TIMEOUT))
    if kind == "aws":
        pytest.importorskip("boto3")  # the [aws] extra
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_CONFIG_FILE": str(tmp_path / "none")}.items():  # fmt: skip
            env.setenv(name, value)
        target = aws_target(silent.address, "'run/{account}'")
        label = f"aws_secrets_manager {silent.address} run/{{name}}"
    else:
        target, label = vault(silent.address), f"vault {silent.address} secret/run/{{name}}"
    names = [f"bot{i}" for i in range(6)]
    fleet = CliFleet(tmp_path, capsys, profile(names, [target, kubernetes()]))

    started = time.monotonic()
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    elapsed = time.monotonic() - started

    assert code == 1
    # No call to the silent endpoint started once two timeouts had passed since its
    # first; before, each account's delivery waited its own timeout, two at a time.
    assert silent.accepted
    assert max(silent.accepted) - min(silent.accepted) < 2 * TIMEOUT
    assert elapsed < 3.5 * TIMEOUT, f"the run took {elapsed:.1f}s"
    skipped = f"skipped: {silent.address} did not answer"
    for name in names:
        assert re.search(
            rf"^error: {name}: publication failed: {re.escape(label.format(name=name))}: "
            rf"({re.escape(skipped)}|no answer in time)$",
            err,
            re.M,
        ), err
        assert f"Published {name} to kubernetes {tmp_path / 'k8s'}" in out  # still delivered
        record = json.loads((fleet.out / name / ".bfprov" / "published.json").read_text())
        assert record[label.format(name=name)]["error"] in (skipped, "no answer in time")
    assert err.count(skipped) >= len(names) - 2
    failed = [e for e in events(fleet) if e["event"] == "publish_failed"]
    assert sorted(e["account"] for e in failed) == names
    assert all(not row[label.format(name=n)] for n, row in status(fleet).items())


# --- accounts do not wait on one another -----------------------------------------------


def test_one_accounts_failed_target_does_not_stop_the_others(
    tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first account's Vault refuses connections: its other target and every other
    account (more of them than deliveries run at once) are still delivered."""
    refused = f"http://127.0.0.1:{free_port()}"
    names = [f"bot{i:02}" for i in range(12)]
    own = {names[0]: [vault(refused), kubernetes()]}
    fleet = CliFleet(tmp_path, capsys, profile(names, [kubernetes()], own=own))

    code, out, err = fleet.run("apply", "--yes", "--no-verify")

    assert code == 1
    assert f"{names[0]}: publication failed: vault {refused} secret/run/{names[0]}: " in err
    for name in names:
        assert f"Published {name} to kubernetes {tmp_path / 'k8s' / f'betfair-{name}.yaml'}" in out
        assert (tmp_path / "k8s" / f"betfair-{name}.yaml").is_file()
    assert "publication failed" not in err.replace(f"error: {names[0]}: publication failed", "")


# --- the audit trail's order -----------------------------------------------------------


def test_the_trail_has_each_change_before_its_publications_before_its_hook(
    tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hook.py").write_text(HOOK)
    hook = json.dumps([sys.executable, str(tmp_path / "hook.py"), str(tmp_path / "hooks.log"),
                       "{account}"])  # fmt: skip
    names = ["alice", "bob", "carol"]
    text = profile(names, [kubernetes()], hook=hook)
    fleet = CliFleet(tmp_path, capsys, text)

    def check(kind: str, accounts: list[str], since: int) -> int:
        trail = events(fleet)[since:]
        for name in accounts:
            mine = [e["event"] for e in trail if e["account"] == name]
            assert mine == [kind, "published", "hook"], (name, mine)
        return since + len(trail)

    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    seen = check("created", names, 0)

    fleet.profile.write_text(profile(names, [kubernetes()], hook=hook, common_name="{name} 2"))
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    seen = len(events(fleet))
    assert fleet.run("promote", "alice", "bob", "--no-verify")[0] == 0
    seen = check("promoted", ["alice", "bob"], seen)
    assert fleet.run("rollback", "alice", "--yes")[0] == 0
    check("rolled_back", ["alice"], seen)
    runs = (tmp_path / "hooks.log").read_text().split()
    assert sorted(runs) == sorted([*names, "alice", "bob", "alice"])


# --- status after an out-of-band repair ------------------------------------------------


def test_a_target_repaired_out_of_band_counts_as_published_after_the_next_apply(
    tmp_path: Path, env: pytest.MonkeyPatch, aws: Moto, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3 = pytest.importorskip("boto3")
    name = f"run-repair-{free_port()}/alice"
    fleet = CliFleet(tmp_path, capsys, profile(["alice"], [aws_target(aws.endpoint, name)]))
    label = f"aws_secrets_manager {aws.endpoint} {name}"
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.endpoint)

    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert status(fleet) == {"alice": {label: True}}

    # Scheduled for deletion: the next apply cannot deliver, and says so.
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1 and "scheduled for deletion" in err
    assert status(fleet) == {"alice": {label: False}}
    assert published_metric(fleet) == {("alice", label): 0.0}

    # The operator restores it: the secret holds the live pair again, nothing to do.
    sm.restore_secret(SecretId=name)
    code, out, err = fleet.run("plan", "--detailed-exitcode")
    assert code == 0, out
    assert status(fleet) == {"alice": {label: False}}  # plan is read-only
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0
    assert status(fleet) == {"alice": {label: True}}
    assert published_metric(fleet) == {("alice", label): 1.0}


# --- exit code and summary -------------------------------------------------------------


def test_a_failed_publication_exits_1_and_is_not_counted_as_done(
    tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    fleet = CliFleet(tmp_path, capsys, profile(["alice", "bob"], []))
    assert fleet.run("apply", "--yes", "--no-verify")[0] == 0

    # A target appears for alice; it refuses connections: a publish change that fails.
    own = {"alice": [vault(refused)]}
    fleet.profile.write_text(profile(["alice", "bob"], [], own=own))
    code, out, err = fleet.run("apply", "--yes", "--no-verify")
    assert code == 1
    assert f"alice: publication failed: vault {refused} secret/run/alice: unreachable" in err
    summary = next(line for line in out.splitlines() if line.startswith("Apply complete"))
    assert "0 updated" in summary and "0 published" in summary, summary
    assert "1 failed to publish" in summary, summary
