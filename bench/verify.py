"""`bfprov verify` of a large fleet against the embedded emulator, both as separate processes.

    python bench/verify.py [--accounts 1000] [--repeat 3] [--parallel N] [--fleet-dir DIR]

1. A fleet of N accounts (2048-bit keys, key and crt) made once with `bfprov apply --yes
   --no-verify` and kept in `--fleet-dir` (default: a directory in the system's temporary
   directory, named after N) for the next runs: key generation is not what is measured.
2. Each round: `bfprov sandbox serve --upload-live` in a fresh state directory, as its own
   process; once it says it is listening, `bfprov verify --json` runs as its own process.
3. Measured per round: the verify process's CPU (user + system, from getrusage(RUSAGE_CHILDREN)), the
   emulator's CPU over the same span (utime + stime from /proc/<pid>/stat, read before
   verify starts and after it ends), the wall time of verify, and from verify's JSON
   whether every login succeeded at its first attempt.

Budgets (SPEC, "Performance budgets"): at most 10 ms of the verify process's CPU per
account, at most 10 ms of the emulator's CPU per login, every login at its first attempt.
Figures are medians of `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BFPROV = [sys.executable, "-m", "bfprov"]
TICK = os.sysconf("SC_CLK_TCK")

PROFILE_HEAD = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  key: {size: 2048}
  outputs: [key, crt]
accounts:
"""


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BFPROV_")}
    # This checkout's bfprov, also in the child processes.
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), e.get("PYTHONPATH")]))
    e.update(BF_APP_KEY="bench-app-key", BF_PASSWORD="bench-password", **extra)
    return e


def fleet(directory: Path, n: int) -> Path:
    """The profile of an N-account fleet in `directory`, its pairs made once."""
    directory.mkdir(parents=True, exist_ok=True)
    profile = directory / "fleet.yaml"
    done = directory / ".complete"
    if done.exists():
        return profile
    lines = [PROFILE_HEAD]
    for i in range(n):
        lines.append(
            f"  - name: bot{i:05d}\n    username: bot{i:05d}\n"
            f"    password: {{env: BF_PASSWORD}}\n    subject: {{common_name: bot {i}}}\n"
        )
    profile.write_text("".join(lines))
    print(f"making the fleet of {n} accounts in {directory} (once)...", flush=True)
    start = time.perf_counter()
    subprocess.run([*BFPROV, "apply", "--yes", "--no-verify", "--profiles", str(profile)],
                   env=env(), check=True, capture_output=True)  # fmt: skip
    print(f"  made in {time.perf_counter() - start:.0f} s", flush=True)
    done.touch()
    return profile


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process, from /proc (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_round(profile: Path, state: Path, parallel: int) -> dict[str, float]:
    server = subprocess.Popen(
        [*BFPROV, "sandbox", "serve", "--upload-live", "--port", "0",
         "--state-dir", str(state), "--profiles", str(profile)],
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = ""
        start = time.perf_counter()
        while not url:
            line = server.stdout.readline()
            if not line:
                sys.exit("the emulator stopped before it listened")
            if "BFPROV_IDENTITY_URL=" in line:
                url = line.split("=", 1)[1].strip()
        started = time.perf_counter() - start
        emulator_before = cpu_seconds(server.pid)
        # The emulator is not reaped before verify ends: the children's rusage delta
        # is verify's alone.
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        option = ["--parallel", str(parallel)] if parallel else []
        verify = subprocess.Popen(
            [*BFPROV, "verify", "--json", *option, "--profiles", str(profile)],
            env=env(BFPROV_IDENTITY_URL=url, BFPROV_CA_BUNDLE=str(state / "ca.pem")),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = verify.communicate()
        wall = time.perf_counter() - wall
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        emulator_cpu = cpu_seconds(server.pid) - emulator_before
    finally:
        # SIGTERM, not SIGINT: a shell's background job ignores SIGINT, and so would
        # the emulator it starts.
        server.terminate()
        server.wait(timeout=30)
    verify_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    results = json.loads(out)
    logins = sum(r["attempts"] for r in results)
    first = sum(1 for r in results if r["loginStatus"] == "SUCCESS" and r["attempts"] == 1)
    if verify.returncode != 0:
        print(err.decode()[-2000:], file=sys.stderr)
    return {
        "accounts": len(results),
        "first_attempt_ok": first,
        "logins": logins,
        "verify_cpu_s": verify_cpu,
        "emulator_cpu_s": emulator_cpu,
        "wall_s": wall,
        "emulator_start_s": started,
    }


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    version = subprocess.check_output(["openssl", "version"], text=True).strip()
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=0, help="0: verify's default")
    parser.add_argument("--fleet-dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write every round here")
    args = parser.parse_args()
    n = args.accounts
    directory = args.fleet_dir or Path(tempfile.gettempdir()) / f"bfprov-bench-verify-{n}"
    profile = fleet(directory, n)
    print(f"machine: {machine()}", flush=True)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bfprov-bench-sandbox-") as tmp:
        for i in range(args.repeat):
            r = one_round(profile, Path(tmp) / f"state-{i}", args.parallel)
            rounds.append(r)
            print(
                f"round {i + 1}: wall {r['wall_s']:.1f} s, verify CPU "
                f"{1000 * r['verify_cpu_s'] / r['accounts']:.2f} ms/account, emulator CPU "
                f"{1000 * r['emulator_cpu_s'] / max(r['logins'], 1):.2f} ms/login, "
                f"{r['first_attempt_ok']}/{r['accounts']} at the first attempt "
                f"(emulator ready in {r['emulator_start_s']:.1f} s)",
                flush=True,
            )

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    verify_ms = statistics.median(1000 * r["verify_cpu_s"] / r["accounts"] for r in rounds)
    emulator_ms = statistics.median(
        1000 * r["emulator_cpu_s"] / max(r["logins"], 1) for r in rounds
    )
    all_first = all(r["first_attempt_ok"] == r["accounts"] for r in rounds)
    rows = [
        ("verify process CPU per account", f"{verify_ms:.2f} ms",
         f"budget 10 ms {'OK' if verify_ms <= 10 else 'OVER'}"),
        ("emulator CPU per login", f"{emulator_ms:.2f} ms",
         f"budget 10 ms {'OK' if emulator_ms <= 10 else 'OVER'}"),
        ("verify wall time", f"{med('wall_s'):.1f} s",
         f"{n / med('wall_s'):.0f} accounts/s, --parallel {args.parallel or 'default'}"),
        ("logins at the first attempt", f"{min(r['first_attempt_ok'] for r in rounds)} of {n}",
         "every one OK" if all_first else "NOT all"),
    ]  # fmt: skip
    print(f"\n{n} accounts, medians of {len(rounds)} rounds\n")
    print("| measure | value | result |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps({"accounts": n, "rounds": rounds}, indent=2))
    return 0 if verify_ms <= 10 and emulator_ms <= 10 and all_first else 1


if __name__ == "__main__":
    sys.exit(main())
