"""What a profile reader costs: `bfprov validate` of a large profile, two revisions compared.

    python bench/profile_reader.py [--accounts 10000] [--rounds 9] [REV_A [REV_B]]

Each revision (default: HEAD~1 and HEAD; with one given, it and the work tree `.`) is
exported with `git archive` to a temporary directory, and `python -m bfprov validate
--profiles FILE` runs from it as a fresh process, as a user runs it, on one generated
profile of `--accounts` accounts shaped like profiles/example.yaml (defaults, then a few lines per account, some
overriding jurisdiction, subject or p12). The two revisions alternate, A then B, round
after round; the figure is the median CPU time (user + system of the child, from
os.wait4) and wall time of each, and B's ratio to A.

Used for issue #13: the libyaml event reader against the one strict composer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEAD = """\
version: 1
output_dir: ../certs
defaults:
  jurisdiction: com
  app_key: {env: BF_APP_KEY}
  key: {size: 2048}
  subject:
    country: GB
    state: London
    locality: London
    organization: Example Trading Ltd
    organizational_unit: Security Team
  validity:
    days: 365
    renew_before: 30d
  outputs: [key, crt, pem, p12, csr, cnf]
  p12: {profile: modern, password: {env: BF_P12_PASSWORD}}
accounts:
"""

JURISDICTIONS = ["it", "es", "ro", "se"]


def account(i: int) -> str:
    """One account, a few lines; every few accounts override something of the defaults."""
    name = f"bot-{i:05d}"
    lines = [
        f"  - name: {name}",
        f"    username: {name}@example.com",
        f"    password: {{env: BF_PASSWORD_{i:05d}}}"
        if i % 3
        else f"    password: {{file: /run/secrets/{name}}}",
    ]
    if i % 5 == 1:
        lines.append(f"    jurisdiction: {JURISDICTIONS[i % len(JURISDICTIONS)]}")
    if i % 7 == 2:
        lines.append(f"    subject: {{common_name: {name} bot, locality: Manchester}}")
    else:
        lines.append(f"    subject: {{common_name: {name} bot}}")
    if i % 11 == 3:
        lines.append("    p12: {profile: legacy}")
    return "\n".join(lines) + "\n"


def profile(accounts: int) -> str:
    return HEAD + "".join(account(i) for i in range(accounts))


def export(rev: str, into: Path) -> Path:
    """The package at `rev` (or the work tree for `.`), as a directory to put on PYTHONPATH."""
    into.mkdir()
    if rev == ".":
        os.symlink(ROOT / "bfprov", into / "bfprov")
        os.symlink(ROOT / "templates", into / "templates")
    else:
        archive = into / "src.tar"
        with archive.open("wb") as fh:
            subprocess.run(
                ["git", "-C", str(ROOT), "archive", rev, "bfprov", "templates"],
                stdout=fh,
                check=True,
            )
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
        archive.unlink()
    # Compile once, so the first timed run does not pay for it.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into / "bfprov")], check=True)
    return into


def run(tree: Path, profile_path: Path) -> tuple[float, float]:
    """CPU (user + system) and wall seconds of one `bfprov validate`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BFPROV_")}
    env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bfprov", "validate", "--profiles", str(profile_path)],
            env=env,
            cwd=tree,  # `python -m` puts the working directory first on sys.path
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"validate failed with {tree}:\n{out.read().decode()}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revs", nargs="*", default=["HEAD~1", "HEAD"])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    revs: list[str] = [*args.revs, "."][:2]

    with tempfile.TemporaryDirectory(prefix="bfprov-bench-") as tmp:
        base = Path(tmp)
        profile_path = base / "profiles" / "fleet.yaml"
        profile_path.parent.mkdir()
        profile_path.write_text(profile(args.accounts), encoding="utf-8")
        trees = [export(rev, base / f"tree{i}") for i, rev in enumerate(revs)]
        for tree in trees:  # warm the page cache and check both revisions accept the profile
            run(tree, profile_path)
        cpu: list[list[float]] = [[], []]
        wall: list[list[float]] = [[], []]
        for _ in range(args.rounds):
            for i, tree in enumerate(trees):
                c, w = run(tree, profile_path)
                cpu[i].append(c)
                wall[i].append(w)
        size = profile_path.stat().st_size
    print(f"bfprov validate, {args.accounts} accounts ({size / 1e6:.1f} MB), {args.rounds} rounds")
    for i, rev in enumerate(revs):
        print(
            f"  {rev:>12}: CPU median {statistics.median(cpu[i]):.3f} s "
            f"(min {min(cpu[i]):.3f}), wall median {statistics.median(wall[i]):.3f} s"
        )
    ratio = statistics.median(cpu[1]) / statistics.median(cpu[0])
    print(f"  CPU {revs[1]} / {revs[0]}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
