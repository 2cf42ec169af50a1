"""The demo's scenario: the whole lifecycle, in a directory, against the emulator.

It runs the same commands a user would, each as its own `bfprov` process with the
environment a user would export, prints each as `$ bfprov ...`, and checks that each one
ends the way the runbook says it should.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import TYPE_CHECKING

from rich.rule import Rule

from bfprov import console
from bfprov.apply.files import write_file
from bfprov.errors import BfprovError
from bfprov.layout import PUBLIC_MODE, SECRET_MODE
from bfprov.publish.observe import read_deliveries
from bfprov.upload.client import UploadPage

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.sandbox import Emulator

ACCOUNTS = (("alice", "com"), ("bruno", "it"), ("carmen", "es"))

PROFILE = """\
# A three-account fleet for `bfprov demo`. Secrets come from files beside this one.
version: 1
output_dir: ../certs
defaults:
  app_key: {file: ../secrets/app_key}
  subject:
    country: GB
    organization: Demo Trading Ltd
  validity: {days: 365, renew_before: 30d}
  outputs: [key, crt, pem, p12, csr, cnf]
  p12: {profile: modern, password: {file: ../secrets/p12_password}}
  publish:                          # Secret manifests for a GitOps repository
    - kubernetes: {dir: ../k8s, namespace: bots, name: "betfair-{account}"}
accounts:
"""


def _write_fleet(root: Path) -> Path:
    """The demo's profile and secret files; returns the profile path."""
    profile = root / "profiles" / "demo.yaml"
    text = PROFILE
    for name, jurisdiction in ACCOUNTS:
        text += (
            f"  - name: {name}\n"
            f"    username: {name}@example.com\n"
            f"    password: {{file: ../secrets/{name}_password}}\n"
            f"    jurisdiction: {jurisdiction}\n"
            f"    subject: {{common_name: {name} bot}}\n"
        )
        # Each password carries the characters that must be URL-encoded.
        password = secrets.token_urlsafe(12).encode() + b"&=%+ /?#"
        _secret(root / "secrets" / f"{name}_password", password)
    _secret(root / "secrets" / "app_key", secrets.token_hex(8).encode())
    _secret(root / "secrets" / "p12_password", secrets.token_urlsafe(12).encode())
    write_file(profile, text.encode(), PUBLIC_MODE, overwrite=True)
    return profile


def _secret(path: Path, data: bytes) -> None:
    write_file(path, data, SECRET_MODE, overwrite=True)


class _Demo:
    def __init__(self, root: Path, emulator: Emulator) -> None:
        self.root = root
        self.emulator = emulator
        self.profile = _write_fleet(root)
        self.env = {
            **os.environ,
            "BFPROV_PROFILES": str(self.profile),
            "BFPROV_IDENTITY_URL": emulator.url,
            "BFPROV_CA_BUNDLE": str(emulator.ca_path),
        }
        self.env.pop("BFPROV_OUTPUT_DIR", None)
        for name, _ in ACCOUNTS:
            secret = (root / "secrets" / f"{name}_password").read_text()
            app_key = (root / "secrets" / "app_key").read_text()
            emulator.add_account(f"{name}@example.com", secret, app_key)

    def step(self, title: str, command: str, expect: int = 0) -> None:
        """Run `command` (`bfprov ...`) as its own process, as a user would."""
        console.say(Rule(title, align="left"))
        console.say(f"$ {command}")
        sys.stdout.flush()
        args = command.split()[1:]
        code = subprocess.run([sys.executable, "-m", "bfprov", *args], env=self.env).returncode
        if code != expect:
            raise BfprovError(f"demo step '{command}' exited {code}, expected {expect}")
        console.say("")

    def manifests(self) -> None:
        """What a GitOps repository would receive: one Secret manifest per account."""
        console.say(
            Rule("Delivered: Kubernetes Secret manifests (kubernetes.io/tls)", align="left")
        )
        for name, _ in ACCOUNTS:
            path = self.root / "k8s" / f"betfair-{name}.yaml"
            held = read_deliveries(self.root / "certs" / name)
            fingerprint = next((d.fingerprint for d in held.values()), None) or "-"
            console.say(f"{path}  (certificate {fingerprint[:16]}...)")
        console.say("")

    def upload(self, names: tuple[str, ...], staged: bool = False) -> None:
        sub = "staged/" if staged else ""
        console.say(Rule("On Betfair's website (here: the emulator), upload the certificate",
                         align="left"))  # fmt: skip
        for name in names:
            crt = self.root / "certs" / name / f"{sub}client-2048.crt"
            self.emulator.upload(f"{name}@example.com", crt.read_bytes())
            console.say(f"$ bfprov sandbox upload {name}{' --staged' if staged else ''}")
            console.say(f"Uploaded {crt} for {name}@example.com")
        console.say("")


def run(root: Path, emulator: Emulator, *, keep: bool) -> None:
    """Run the lifecycle in `root`; raise BfprovError when a step ends otherwise than
    the runbook says (`keep`: the directory outlives the demo)."""
    d = _Demo(root, emulator)
    console.say(f"bfprov demo in {root}, against the embedded emulator at {emulator.url}\n")
    d.step("Check the profile", "bfprov validate")
    d.step("Plan: three accounts to create", "bfprov plan --detailed-exitcode", 2)
    d.step("Create keys and certificates, and deliver them", "bfprov apply --yes")
    d.manifests()
    d.upload(tuple(name for name, _ in ACCOUNTS))
    d.step("Every account logs in", "bfprov verify")
    d.profile.write_text(d.profile.read_text().replace("alice bot", "alice trading bot"))
    d.step("Change alice's subject: the plan wants a rotation",
           "bfprov plan --detailed-exitcode", 2)  # fmt: skip
    d.step("The new pair is staged; the live pair keeps working", "bfprov apply --yes")
    d.step("The staged pair is refused until it is uploaded", "bfprov verify")
    d.step("Apply tries the staged pair and leaves the live one alone", "bfprov apply --yes")
    with UploadPage(d.env) as page:
        console.say(Rule("The upload session: a page that guides the manual step", align="left"))
        console.say("$ bfprov upload --no-browser")
        console.say(f"For a person watching, the page is at {page.url}")
        d.upload(("alice",), staged=True)
        console.say(Rule('On the page, "Check": the staged pair logs in, goes live', align="left"))
        console.say(f"alice: {page.check('alice')}\n")
    d.manifests()
    d.step("Every account logs in with its live pair", "bfprov verify")
    d.step("Nothing left to do", "bfprov plan --detailed-exitcode")
    d.step("Where every account stands", "bfprov status")
    console.say(f"Demo complete: the whole lifecycle ran green. Files: {root / 'certs'}"
                + ("" if keep else " (removed on exit; --keep keeps them)"))  # fmt: skip
