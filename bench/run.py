"""bfprov's performance budgets (SPEC "Performance budgets"), measured in one run.

    python bench/run.py [--accounts 200] [--fleet 2000] [--memory-fleet 10000] [--pairs 7]

Every bfprov run is a fresh `python -m bfprov` process, as users run it; CPU is the
process's user+system time (os.wait4), wall time from spawn to exit. Each budget is a
ratio against a floor measured in the same run, floor and bfprov alternating pair after
pair, and each figure is the median of its pairs:

1. `apply` creating N accounts (RSA-2048; key, crt, pem, p12, cnf) against the floor, one
   process generating N RSA-2048 keys: CPU at most 1.2x, wall time at most 0.65x.
2. `apply` with one account to create against a no-op `plan` of that account: at most
   the plan's CPU + one key's CPU (the floor's per key) + 0.1 s.
3. A no-op `plan` of `--fleet` accounts against a no-op plan of one: at most 3x, also for
   a profile whose defaults draw a warning (1024-bit keys).
4. Peak memory of a no-op plan of `--memory-fleet` accounts: under 300 MiB.
5. Betfair's documented openssl procedure for the same N accounts, and its ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BFPROV = [sys.executable, "-m", "bfprov"]

PROFILE_HEAD = """\
version: 1
output_dir: certs
defaults:
  app_key: {{env: BF_APP_KEY}}
  key: {{size: {bits}}}
  subject: {{country: GB, organization: Bench Ltd}}
  outputs: [key, crt, pem, p12, cnf]
  p12: {{profile: modern, password: {{env: BF_P12_PASSWORD}}}}
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

FLOOR = """\
from cryptography.hazmat.primitives.asymmetric import rsa
for _ in range({n}):
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
"""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + system of the process (and its children, none here)
    maxrss_mib: float


def write_profile(root: Path, n: int, bits: int = 2048) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [PROFILE_HEAD.format(bits=bits)]
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


def run(args: list[str]) -> Run:
    """Run a process to its end; its wall time, CPU time and peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{err[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def bfprov(*args: str) -> Run:
    return run([*BFPROV, *args])


def floor(n: int) -> Run:
    """One process that just generates `n` RSA-2048 keys with the same cryptography."""
    return run([sys.executable, "-c", FLOOR.format(n=n)])


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


def clone_fleet(source: Path, target: Path, n: int, bits: int = 2048) -> Path:
    """A large fleet by copying account directories (no key generation)."""
    profile = write_profile(target, n, bits)
    out = target / "certs"
    out.mkdir()
    accounts = sorted(p for p in (source / "certs").iterdir() if p.is_dir())
    for i in range(n):
        shutil.copytree(accounts[i % len(accounts)], out / f"bot{i:05d}", symlinks=True)
    return profile


def med(values: list[float]) -> float:
    return statistics.median(values)


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

    openssl = subprocess.check_output(["openssl", "version"], text=True).strip()
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"cryptography {cryptography.__version__}; {openssl}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--fleet", type=int, default=2000)
    parser.add_argument("--memory-fleet", type=int, default=10000)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results (every pair) here")
    args = parser.parse_args()
    n, pairs = args.accounts, args.pairs
    r: dict[str, object] = {"machine": machine()}
    print(f"machine: {r['machine']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bfprov-bench-") as tmp:
        root = Path(tmp)
        # 1. apply of N new accounts against the floor, alternating.
        floors: list[Run] = []
        applies: list[Run] = []
        for i in range(pairs):
            floors.append(floor(n))
            profile = write_profile(root / f"apply-{i}", n)  # a fresh fleet each pair
            applies.append(bfprov("apply", "--yes", "--no-verify", "--profiles", str(profile)))
            print(f"pair {i + 1}: floor {floors[-1].wall:.2f} s wall {floors[-1].cpu:.2f} s CPU; "
                  f"apply {applies[-1].wall:.2f} s wall {applies[-1].cpu:.2f} s CPU", flush=True)  # fmt: skip
        fw, fc = med([f.wall for f in floors]), med([f.cpu for f in floors])
        aw, ac = med([a.wall for a in applies]), med([a.cpu for a in applies])
        r |= {"floor_wall": fw, "floor_cpu": fc, "apply_wall": aw, "apply_cpu": ac}
        r["pairs_apply"] = [
            [f.wall, f.cpu, a.wall, a.cpu] for f, a in zip(floors, applies, strict=True)
        ]

        # 2. apply of one new account against a no-op plan of one account, alternating.
        one = write_profile(root / "one", 1)
        bfprov("apply", "--yes", "--no-verify", "--profiles", str(one))
        plans1: list[Run] = []
        applies1: list[Run] = []
        for i in range(pairs):
            plans1.append(bfprov("plan", "--profiles", str(one)))
            fresh = write_profile(root / f"one-{i}", 1)
            applies1.append(bfprov("apply", "--yes", "--no-verify", "--profiles", str(fresh)))
        p1c, a1c = med([p.cpu for p in plans1]), med([a.cpu for a in applies1])
        key_cpu = fc / n  # the floor's CPU per key, start-up included (generous to bfprov)
        r |= {"plan1_cpu": p1c, "apply1_cpu": a1c, "key_cpu": key_cpu}

        # 3. no-op plans of 1 and of the fleet, plain and with a defaults warning.
        fleet = write_profile(root / "fleet", args.fleet)
        bfprov("apply", "--yes", "--no-verify", "--profiles", str(fleet))
        warned_one = clone_fleet(root / "fleet", root / "warned-one", 1, bits=1024)
        warned = clone_fleet(root / "fleet", root / "warned", args.fleet, bits=1024)
        for label, small, big in (("plan", one, fleet), ("warned", warned_one, warned)):
            smalls: list[Run] = []
            bigs: list[Run] = []
            for _ in range(pairs):
                smalls.append(bfprov("plan", "--profiles", str(small)))
                bigs.append(bfprov("plan", "--profiles", str(big)))
            r[f"{label}_1_wall"] = med([s.wall for s in smalls])
            r[f"{label}_fleet_wall"] = med([b.wall for b in bigs])
            r[f"{label}_1_cpu"] = med([s.cpu for s in smalls])
            r[f"{label}_fleet_cpu"] = med([b.cpu for b in bigs])
            print(f"{label}: 1 account {r[f'{label}_1_wall']:.3f} s, {args.fleet} accounts "
                  f"{r[f'{label}_fleet_wall']:.3f} s", flush=True)  # fmt: skip

        # 4. peak memory of a plan of the memory fleet.
        big = clone_fleet(root / "fleet", root / "memory", args.memory_fleet)
        r["memory_mib"] = bfprov("plan", "--profiles", str(big)).maxrss_mib

        # 5. the openssl procedure of Betfair's guide.
        r["openssl_wall"] = openssl_procedure(root / "openssl", n)

    budget1 = p1c + key_cpu + 0.1
    rows = [
        ("floor: one process generating keys", f"{n} keys", f"{fw:.2f} s wall, {fc:.2f} s CPU", ""),
        ("bfprov apply (key, crt, pem, p12, cnf)", f"{n} accounts", f"{aw:.2f} s wall, {ac:.2f} s CPU",
         f"CPU {ac / fc:.2f}x floor (budget 1.2x), wall {aw / fw:.2f}x floor (budget 0.65x)"),
        ("bfprov apply, one new account", "1 account", f"{a1c:.3f} s CPU",
         f"no-op plan {p1c:.3f} s + one key {key_cpu:.3f} s + 0.1 s = {budget1:.3f} s budget"),
        ("no-op plan", f"1 / {args.fleet} accounts",
         f"{r['plan_1_wall']:.3f} s / {r['plan_fleet_wall']:.3f} s",
         f"{r['plan_fleet_wall'] / r['plan_1_wall']:.2f}x (budget 3x)"),
        ("no-op plan, defaults warn (1024-bit)", f"1 / {args.fleet} accounts",
         f"{r['warned_1_wall']:.3f} s / {r['warned_fleet_wall']:.3f} s",
         f"{r['warned_fleet_wall'] / r['warned_1_wall']:.2f}x (budget 3x)"),
        ("no-op plan, peak memory", f"{args.memory_fleet} accounts", f"{r['memory_mib']:.0f} MiB",
         "budget 300 MiB"),
        ("openssl procedure of Betfair's guide", f"{n} accounts", f"{r['openssl_wall']:.1f} s wall",
         f"{r['openssl_wall'] / aw:.1f}x bfprov apply"),
    ]  # fmt: skip
    print("\n| measure | size | measured (medians) | against the budget |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    extra = ac - fc  # apply's CPU beyond the floor's (its keys and interpreter start)
    fixed = p1c  # a no-op plan: start-up, imports, profiles, observing one account
    print(f"\napply's CPU beyond key generation: {extra:.2f} s for {n} accounts; "
          f"fixed ~{fixed:.2f} s (a no-op plan of one), per account "
          f"~{(extra - fixed) / n * 1000:.1f} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    ok = (
        ac <= 1.2 * fc
        and aw <= 0.65 * fw
        and a1c <= budget1
        and r["plan_fleet_wall"] <= 3 * r["plan_1_wall"]  # type: ignore[operator]
        and r["warned_fleet_wall"] <= 3 * r["warned_1_wall"]  # type: ignore[operator]
        and r["memory_mib"] < 300  # type: ignore[operator]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
