"""Where apply's CPU goes beyond key generation, per account, measured step by step.

    python bench/apply_breakdown.py [--accounts 100]

Runs bfprov's own functions for each step of creating an account, in this process, on
keys made beforehand (their cost is the floor's, measured by bench/run.py), and reports
the CPU time (`time.process_time`) of each step per account: the certificate, the
combined pem, the PKCS#12 file (modern profile), the openssl.cnf template, and writing
the five outputs and the record through the store (temporary file created 0600, fsync,
rename, directory fsync). The fixed cost of a run (interpreter, imports, profiles,
planning) is bench/run.py's no-op plan of one account.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bfprov import crypto
from bfprov.apply.store import AccountWriter
from bfprov.desired.models import Account, SecretRef, Subject
from bfprov.desired.render import render_openssl_cnf, template_dirs
from bfprov.layout import CNF_NAME, MODES
from bfprov.observed.facts import P12Facts, PemFacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    args = parser.parse_args()
    n = args.accounts
    keys = [crypto.generate_key(2048) for _ in range(n)]
    now = datetime.now(UTC)
    steps: dict[str, list[float]] = {}
    mark = time.process_time()

    def lap(name: str) -> None:
        nonlocal mark
        now_cpu = time.process_time()
        steps.setdefault(name, []).append(now_cpu - mark)
        mark = now_cpu

    with tempfile.TemporaryDirectory(prefix="bfprov-breakdown-") as tmp:
        out = Path(tmp)
        for i, key in enumerate(keys):
            name = f"bot{i:05d}"
            subject = Subject(common_name=f"bot {i}", country="GB", organization="Bench Ltd")
            account = Account(
                name=name, username=name, password=SecretRef(env="P"),
                app_key=SecretRef(env="A"), subject=subject,
            )  # fmt: skip
            mark = time.process_time()
            key_pem = crypto.private_key_pem(key)
            lap("key PEM")
            crt_pem, cert = crypto.issue_certificate(key, account.subject, 365, now)
            lap("certificate (first signature with a new key)")
            pem = crypto.combined_pem(crt_pem, key_pem)
            lap("combined pem")
            p12 = crypto.pkcs12(key, crt_pem, b"bench-p12", "modern", name.encode())
            lap("PKCS#12 (modern: PBKDF2, AES-256, MAC)")
            cnf = render_openssl_cnf(account, template_dirs(None))
            lap("openssl.cnf template")
            with AccountWriter(out, name, None) as w:
                w.write("client-2048.key", key_pem, MODES["key"], crypto.key_facts_of(key))
                w.write("client-2048.crt", crt_pem, MODES["crt"], cert)
                w.write("client-2048.pem", pem, MODES["pem"],
                        PemFacts(cert.fingerprint_sha256, cert.spki_sha256))  # fmt: skip
                w.write("client-2048.p12", p12, MODES["p12"],
                        P12Facts(cert.fingerprint_sha256, "modern"))  # fmt: skip
                w.write(CNF_NAME, cnf.encode(), MODES["cnf"])
                w.save_record()
            lap("writing 5 files + record (each synced, renamed)")
    total = 0.0
    print(f"CPU per account, median of {n} accounts (ms):")
    for name, values in steps.items():
        ms = statistics.median(values) * 1000
        total += ms
        print(f"  {name:50s} {ms:6.2f}")
    print(f"  {'total':50s} {total:6.2f}")


if __name__ == "__main__":
    main()
