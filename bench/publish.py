"""Publishing at fleet scale: `apply` and `plan` of N accounts with all three targets.

    python bench/publish.py [--accounts 1000] [--bits 1024] [--plans 3]

Targets: an OpenBao dev server (`bao server -dev`) and moto's Secrets Manager server
(`moto_server`), each behind a counting proxy on loopback (tests/support/loopback_http.py: every
call bfprov makes is counted there: Secrets Manager operations, Vault HTTP requests by
method), and plain Kubernetes manifests.
Each bfprov run is a fresh `python -m bfprov` process; CPU is that process's user+system
time (os.wait4), which leaves out the servers' own CPU; wall time from spawn to exit.
Absolute figures (no floor): one apply creating the fleet and publishing it, then
`--plans` no-op plans (each observes every target) and as many `plan --no-refresh` (no
target asked: what observation costs is the difference), reported with their medians.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from run import bfprov, machine, med  # noqa: E402 (bench/run.py's measuring helpers)

from tests.support.loopback_http import counting_proxy  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

TOKEN = secrets.token_hex(16)
REGION = "eu-west-1"

PROFILE_HEAD = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  key: {{size: {bits}}}
  outputs: [key, crt]
  publish:
    - vault:
        address: {vault}
        token: {{env: VAULT_TOKEN}}
        path: bench/{{account}}
    - aws_secrets_manager:
        region: {region}
        name: bench/{{account}}
        endpoint_url: {aws}
    - kubernetes:
        dir: k8s
        namespace: bots
        name: betfair-{{account}}
accounts:
"""


def wait_until(url: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not start")


def start_servers(work: Path) -> tuple[list[subprocess.Popen[bytes]], str, str]:
    bao_port, moto_port = free_port(), free_port()
    log = (work / "servers.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    bao = subprocess.Popen(
        ["bao", "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={TOKEN}",
         f"-dev-listen-address=127.0.0.1:{bao_port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env | {"HOME": str(work)},
    )  # fmt: skip
    moto = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)], stdout=log, stderr=log
    )
    vault, aws = f"http://127.0.0.1:{bao_port}", f"http://127.0.0.1:{moto_port}"
    wait_until(f"{vault}/v1/sys/health", "bao server -dev")
    wait_until(f"{aws}/moto-api/", "moto_server")
    return [bao, moto], vault, aws


def write_profile(root: Path, n: int, bits: int, vault: str, aws: str) -> Path:
    lines = [PROFILE_HEAD.format(bits=bits, vault=vault, region=REGION, aws=aws)]
    for i in range(n):
        lines.append(
            f"  - name: bot{i:05d}\n    username: bot{i:05d}\n"
            f"    password: {{env: BF_PASSWORD}}\n    subject: {{common_name: bot {i}}}\n"
        )
    path = root / "fleet.yaml"
    path.write_text("".join(lines))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=1024)
    parser.add_argument("--plans", type=int, default=3)
    args = parser.parse_args()
    for tool in ("bao", "moto_server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH")
    os.environ.update(
        VAULT_TOKEN=TOKEN,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    print(machine())
    print(f"{args.accounts} accounts, {args.bits}-bit keys, outputs key and crt, 3 targets")
    with tempfile.TemporaryDirectory(prefix="bfprov-bench-publish-") as tmp:
        work = Path(tmp)
        servers, vault, aws = start_servers(work)
        try:
            with counting_proxy(aws) as sm, counting_proxy(vault) as kv:
                profile = write_profile(work, args.accounts, args.bits, kv.url, sm.url)
                rows = []
                apply = bfprov("apply", "--yes", "--no-verify", "--profiles", str(profile))
                rows.append(("apply (create + publish)", [apply], sm.counts(), kv.counts()))
                for name, extra in (("no-op plan", ()), ("plan --no-refresh", ("--no-refresh",))):
                    runs = []
                    for _ in range(args.plans):
                        sm.reset()
                        kv.reset()
                        argv = ("plan", "--detailed-exitcode", *extra, "--profiles", str(profile))
                        runs.append(bfprov(*argv))
                    label = f"{name} (median of {args.plans})"
                    rows.append((label, runs, sm.counts(), kv.counts()))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
    print()
    print("| run | wall | CPU (bfprov process) | Secrets Manager calls | Vault requests |")
    print("|---|---|---|---|---|")
    for name, runs, ops, vault_ops in rows:
        wall = med([r.wall for r in runs])
        cpu = med([r.cpu for r in runs])
        spread = ""
        if len(runs) > 1:
            spread = f" ({', '.join(f'{r.wall:.2f}' for r in runs)})"
        print(
            f"| {name} | {wall:.2f} s{spread} | {cpu:.2f} s | {_calls(ops)} | {_calls(vault_ops)} |"
        )
    return 0


def _calls(ops: dict[str, int]) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()))
    return f"{sum(ops.values())}" + (f": {detail}" if detail else "")


if __name__ == "__main__":
    sys.exit(main())
