"""bfprov's performance budgets, measured in one run on this machine.

    python bench/run.py [--accounts 100] [--fleet 2000] [--memory-fleet 10000] [--repeat 5]

1. The floor: one process that just generates N RSA-2048 keys with the same
   `cryptography`, timed from spawn to exit like apply. Its key loop alone is also
   shown, with apply's ratio to it (a stricter floor: no process start-up or exit).
2. `bfprov apply --yes --no-verify` creating N accounts (key, crt, pem, p12 modern, cnf).
   Budget: at most 0.6x the floor (0.5x is keygen spread over both cores).
3. Betfair's documented openssl procedure for the same N accounts (genrsa, req,
   x509 -req, cat, pkcs12 -export), one account after the other, as a script would.
4. No-op `bfprov plan` of 1 and of `--fleet` accounts, start-up included.
   Budget: the large plan costs at most 3x the plan of one.
5. Peak memory of a no-op plan of `--memory-fleet` accounts. Budget: under 300 MiB.

Every bfprov run is a fresh `bfprov` process, as users run it. Times are wall-clock
medians of `--repeat` runs (the openssl procedure: one run); RSA key generation time
varies from run to run (random prime search), so use --repeat 5 or more for the README.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BFPROV = [sys.executable, "-m", "bfprov"]

PROFILE_HEAD = """\
version: 1
output_dir: certs
defaults:
  app_key: {env: BF_APP_KEY}
  key: {size: 2048}
  subject: {country: GB, organization: Bench Ltd}
  outputs: [key, crt, pem, p12, cnf]
  p12: {profile: modern, password: {env: BF_P12_PASSWORD}}
accounts:
"""

CNF = """\
[ req ]
prompt = no
distinguished_name = dn
[ dn ]
C = GB
O = Bench Ltd
CN = {name}
[ ssl_client ]
basicConstraints = CA:FALSE
nsCertType = client
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


def write_profile(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [PROFILE_HEAD]
    for i in range(n):
        lines.append(
            f"  - name: bot{i:05d}\n    username: bot{i:05d}\n"
            f"    password: {{env: BF_PASSWORD}}\n    subject: {{common_name: bot {i}}}\n"
        )
    path = root / "fleet.yaml"
    path.write_text("".join(lines))
    return path


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BFPROV_")}
    e.update(BF_APP_KEY="bench", BF_P12_PASSWORD="bench-p12", BF_PASSWORD="bench")
    return e


def run(args: list[str], *, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def floor(n: int) -> tuple[float, float]:
    """One process that just generates `n` keys, as bfprov does (`crypto.generate_key`).

    Returns the process's wall-clock time, timed like apply's (from spawn to exit), and
    the time of its key loop alone (start-up and exit left out: a stricter floor).
    """
    code = (
        "import time\nfrom cryptography.hazmat.primitives.asymmetric import rsa\n"
        f"t = time.perf_counter()\nfor _ in range({n}):\n"
        "    rsa.generate_private_key(public_exponent=65537, key_size=2048)\n"
        "print(time.perf_counter() - t)"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, float(out.stdout)


def openssl_procedure(root: Path, n: int) -> float:
    """Betfair's guide, account after account, as a shell script would run it."""
    start = time.perf_counter()
    for i in range(n):
        d = root / f"bot{i:05d}"
        d.mkdir(parents=True)
        (d / "openssl.cnf").write_text(CNF.format(name=f"bot {i}"))
        for args in (
            ["genrsa", "-out", "client-2048.key", "2048"],
            ["req", "-new", "-config", "openssl.cnf", "-key", "client-2048.key",
             "-out", "client-2048.csr"],
            ["x509", "-req", "-days", "365", "-in", "client-2048.csr", "-signkey",
             "client-2048.key", "-out", "client-2048.crt", "-extfile", "openssl.cnf",
             "-extensions", "ssl_client"],
        ):  # fmt: skip
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
        (d / "client-2048.pem").write_bytes(
            (d / "client-2048.crt").read_bytes() + (d / "client-2048.key").read_bytes()
        )
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-in", "client-2048.crt", "-inkey",
             "client-2048.key", "-out", "client-2048.p12", "-passout", "pass:bench-p12"],
            cwd=d, check=True, capture_output=True,
        )  # fmt: skip
    return time.perf_counter() - start


def median_plan(profile: Path, repeat: int) -> float:
    times = [run([*BFPROV, "plan", "--profiles", str(profile)]) for _ in range(repeat)]
    return statistics.median(times)


def peak_plan_memory_mib(profile: Path) -> float:
    code = (
        "import resource, subprocess, sys\n"
        f"subprocess.run({[*BFPROV, 'plan', '--profiles', str(profile)]!r}, check=True,"
        " stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True,
                         text=True, check=True)  # fmt: skip
    return int(out.stdout) / 1024  # ru_maxrss is in KiB on Linux


def clone_fleet(source: Path, target: Path, n: int) -> Path:
    """A large fleet for the memory run, by copying account directories (no keygen)."""
    profile = write_profile(target, n)
    out = target / "certs"
    out.mkdir()
    accounts = sorted(p for p in (source / "certs").iterdir() if p.is_dir())
    for i in range(n):
        shutil.copytree(accounts[i % len(accounts)], out / f"bot{i:05d}", symlinks=True)
    return profile


def ratio_interval(
    applies: list[float], floors: list[float], draws: int = 2000
) -> tuple[float, float]:
    """A 90% bootstrap interval of median(apply) / median(floor): how far the ratio could
    move with other rounds of the same machine (key generation time is random)."""
    rng = random.Random(0)
    rounds = list(zip(applies, floors, strict=True))
    ratios = sorted(
        statistics.median(a for a, _ in sample) / statistics.median(f for _, f in sample)
        for sample in (rng.choices(rounds, k=len(rounds)) for _ in range(draws))
    )
    return ratios[int(0.05 * draws)], ratios[int(0.95 * draws) - 1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cryptography

    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"cryptography {cryptography.__version__}; {subprocess.check_output(['openssl', 'version'], text=True).strip()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--fleet", type=int, default=2000)
    parser.add_argument("--memory-fleet", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    results: dict[str, float] = {}
    # Bytecode compiled as `pip install` leaves it (an editable install, or a machine
    # with PYTHONDONTWRITEBYTECODE, would otherwise compile bfprov in every run).
    compileall.compile_dir(HERE.parent / "bfprov", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bfprov-bench-") as tmp:
        root = Path(tmp)
        n = args.accounts
        print(f"machine: {machine()}", flush=True)
        # Key generation time varies from run to run (random prime search): floor and
        # apply alternate, round after round, and each is the median of its rounds.
        floors: list[float] = []
        loops: list[float] = []
        applies: list[float] = []
        for i in range(args.repeat):
            process, loop = floor(n)
            floors.append(process)
            loops.append(loop)
            profile = write_profile(root / f"apply-{i}", n)  # a fresh fleet each round
            applies.append(
                run([*BFPROV, "apply", "--yes", "--no-verify", "--profiles", str(profile)])
            )
            print(
                f"round {i + 1}: floor {floors[-1]:.2f} s (key loop {loops[-1]:.2f} s), "
                f"apply {applies[-1]:.2f} s ({applies[-1] / floors[-1]:.2f}x)",
                flush=True,
            )
        results["floor_keygen_s"] = statistics.median(floors)
        results["floor_loop_s"] = statistics.median(loops)
        results["apply_s"] = statistics.median(applies)
        results["apply_ratio_low"], results["apply_ratio_high"] = ratio_interval(applies, floors)
        print(
            f"floor: {n} RSA-2048 keys in one process: {results['floor_keygen_s']:.2f} s "
            f"(key loop alone {results['floor_loop_s']:.2f} s); "
            f"bfprov apply, {n} accounts: {results['apply_s']:.2f} s",
            flush=True,
        )
        results["openssl_s"] = openssl_procedure(root / "openssl", n)
        print(f"openssl procedure, {n} accounts: {results['openssl_s']:.2f} s", flush=True)

        one = write_profile(root / "one", 1)
        run([*BFPROV, "apply", "--yes", "--no-verify", "--profiles", str(one)])
        fleet = write_profile(root / "fleet", args.fleet)
        results["fleet_apply_s"] = run(
            [*BFPROV, "apply", "--yes", "--no-verify", "--profiles", str(fleet)]
        )
        print(
            f"bfprov apply, {args.fleet} accounts (fixture): {results['fleet_apply_s']:.1f} s",
            flush=True,
        )
        results["plan_1_s"] = median_plan(one, args.repeat)
        results["plan_fleet_s"] = median_plan(fleet, args.repeat)
        print(f"no-op plan: 1 account {results['plan_1_s']:.3f} s, "
              f"{args.fleet} accounts {results['plan_fleet_s']:.3f} s", flush=True)  # fmt: skip
        big = clone_fleet(root / "fleet", root / "memory", args.memory_fleet)
        results["plan_memory_mib"] = peak_plan_memory_mib(big)
        print(
            f"peak memory, plan of {args.memory_fleet} accounts: {results['plan_memory_mib']:.0f} MiB",
            flush=True,
        )

    apply_ratio = results["apply_s"] / results["floor_keygen_s"]
    loop_ratio = results["apply_s"] / results["floor_loop_s"]
    plan_ratio = results["plan_fleet_s"] / results["plan_1_s"]
    openssl_ratio = results["openssl_s"] / results["apply_s"]
    rows = [
        ("floor: one process generating keys", f"{n} keys", f"{results['floor_keygen_s']:.2f} s",
         "spawn to exit, timed as apply is"),
        ("its key loop alone", f"{n} keys", f"{results['floor_loop_s']:.2f} s",
         f"apply is {loop_ratio:.2f}x this stricter floor"),
        ("bfprov apply (key, crt, pem, p12, cnf)", f"{n} accounts", f"{results['apply_s']:.2f} s",
         f"{apply_ratio:.2f}x floor (budget 0.60x) {'OK' if apply_ratio <= 0.6 else 'OVER'}; "
         f"90% interval {results['apply_ratio_low']:.2f}x to {results['apply_ratio_high']:.2f}x"),
        ("openssl procedure of Betfair's guide", f"{n} accounts", f"{results['openssl_s']:.2f} s",
         f"{openssl_ratio:.1f}x bfprov apply"),
        ("no-op plan", "1 account", f"{results['plan_1_s']:.3f} s", ""),
        ("no-op plan", f"{args.fleet} accounts", f"{results['plan_fleet_s']:.3f} s",
         f"{plan_ratio:.2f}x one account (budget 3x) {'OK' if plan_ratio <= 3 else 'OVER'}"),
        ("no-op plan, peak memory", f"{args.memory_fleet} accounts",
         f"{results['plan_memory_mib']:.0f} MiB",
         f"budget 300 MiB {'OK' if results['plan_memory_mib'] < 300 else 'OVER'}"),
    ]  # fmt: skip
    print("\n| measure | size | time | result |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        # Every round too, so that runs can be pooled.
        rounds = {"floor_s": floors, "floor_loop_s": loops, "apply_s": applies}
        args.json.write_text(json.dumps({**results, "rounds": rounds}, indent=2))
    ok = apply_ratio <= 0.6 and plan_ratio <= 3 and results["plan_memory_mib"] < 300
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
