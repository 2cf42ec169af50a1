"""The tests' one fleet builder: a profile, its output, and bfprov run in this process.

`CliFleet(root, capsys, profile_text)` writes the profile (`root/fleet.yaml` unless told)
and runs `bfprov ARGS --profiles PROFILE` through `bfprov.cli.main`, as a user runs it;
everything bfprov prints is kept (`texts`), to be searched for secrets. Tests that need
more helpers subclass it; conftest.py hands it out as the `cli_fleet` fixture.

`PublishFleet(root, capsys, targets=...)` is a CliFleet whose profile it writes itself:
accounts with fast 1024-bit keys, p12 as an output, the secrets in BF_* variables, and
the publishing `targets` (YAML list items, indented for `defaults.publish`) plus
per-account lists (the `publish_fleet` fixture).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from bfprov import crypto
from bfprov.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

BITS = 1024  # fast keys: these tests are about delivery
STEM = f"client-{BITS}"
PASSWORD = "Pw-5b0e &=%+ SECRET"
APP_KEY = "AppKey-6d1f2a-SECRET"
P12_PASSWORD = "P12-3c9e7d-SECRET"
SECRET_ENV = {"BF_PASSWORD": PASSWORD, "BF_APP_KEY": APP_KEY, "BF_P12_PASSWORD": P12_PASSWORD}


def kubernetes_target(directory: str = "k8s", name: str = "betfair-{account}") -> str:
    """A plain (not encrypted) manifest target, as a `defaults.publish` item."""
    return f"    - kubernetes: {{dir: {directory}, namespace: bots, name: '{name}'}}\n"


def vault_target(address: str, token_env: str, path: str = "t/{account}") -> str:
    return f"    - vault: {{address: {address}, token: {{env: {token_env}}}, path: '{path}'}}\n"


def aws_target(endpoint: str, region: str, name: str = "t/{account}") -> str:
    where = f"region: {region}, name: '{name}', endpoint_url: {endpoint}"
    return f"    - aws_secrets_manager: {{{where}}}\n"


class CliFleet:
    """`profile_text` written to `root/profile_path`; output in `certs` beside it."""

    def __init__(
        self,
        root: Path,
        capsys: pytest.CaptureFixture[str],
        profile_text: str,
        *,
        profile_path: str = "fleet.yaml",
    ) -> None:
        self.root = root
        self.capsys = capsys
        self.profile = root / profile_path
        self.profile.parent.mkdir(parents=True, exist_ok=True)
        self.profile.write_text(profile_text)
        self.out = self.profile.parent / "certs"
        self.texts: list[str] = []

    def run(self, *args: str) -> tuple[int, str, str]:
        """Run `bfprov ARGS --profiles PROFILE`: exit code, stdout, stderr."""
        code = main([*args, "--profiles", str(self.profile)])
        captured = self.capsys.readouterr()
        self.texts += [captured.out, captured.err]
        return code, captured.out, captured.err

    def ok(self, *args: str) -> str:
        """`run`, which must exit 0: its stdout."""
        code, out, err = self.run(*args)
        assert code == 0, f"{args}: exit {code}\n{out}\n{err}"
        return out

    def events(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first; empty before the first write."""
        path = self.out / ".bfprov" / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class PublishFleet(CliFleet):
    """A profile that publishes, its output, and every run's output."""

    root: Path
    capsys: pytest.CaptureFixture[str]
    names: tuple[str, ...] = ("alice",)
    targets: str = field(default_factory=kubernetes_target)
    own_targets: dict[str, str] = field(default_factory=dict)  # account -> publish items
    hooks: str = ""  # YAML under `defaults.hooks`, indented four spaces
    generation: int = 1
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.root, self.capsys, self.text())

    def write(self) -> None:
        self.profile.write_text(self.text())

    def text(self) -> str:
        """The profile, as `names`, `targets`, `hooks` and `generation` say."""
        accounts = ""
        for n in self.names:
            accounts += (
                f"  - name: {n}\n    username: {n}\n"
                f"    subject: {{common_name: {n} gen {self.generation}}}\n"
            )
            if n in self.own_targets:
                accounts += "    publish:\n" + self.own_targets[n].replace("    - ", "      - ")
        hooks = f"  hooks:\n{self.hooks}" if self.hooks else ""
        return (
            "version: 1\noutput_dir: certs\ndefaults:\n"
            "  password: {env: BF_PASSWORD}\n  app_key: {env: BF_APP_KEY}\n"
            f"  key: {{size: {BITS}}}\n  outputs: [key, crt, pem, p12]\n"
            "  p12: {password: {env: BF_P12_PASSWORD}}\n"
            f"  publish:\n{self.targets}{hooks}accounts:\n{accounts}"
        )

    def rotate(self) -> None:
        """A new subject for every account: the next apply stages new pairs."""
        self.generation += 1
        self.write()

    # --- running bfprov -------------------------------------------------------------------

    def rollback(self, name: str) -> str:
        """`bfprov rollback NAME --yes`."""
        code, out, err = self.run("rollback", name, "--yes")
        assert code == 0, f"rollback {name}: exit {code}\n{out}\n{err}"
        return out

    def plan(self, *extra: str) -> tuple[int, dict[str, Any]]:
        code, out, err = self.run("plan", "--json", "--detailed-exitcode", *extra)
        assert code in (0, 2), f"plan: exit {code}\n{err}"
        result: dict[str, Any] = json.loads(out)
        return code, result

    def status(self) -> dict[str, dict[str, bool]]:
        """Per account, per target label: does it hold the live pair, says `status --json`."""
        rows = json.loads(self.ok("status", "--json"))
        rows = rows["accounts"] if isinstance(rows, dict) else rows
        return {r["account"]: r.get("published") or {} for r in rows}

    def metrics(self) -> dict[str, dict[str, bool]]:
        """The same, from `bfprov_published` of `status --prometheus`."""
        text = self.ok("status", "--prometheus")
        found = re.findall(
            r'^bfprov_published\{account="([^"]+)",target="([^"]+)"\} (\S+)$', text, re.M
        )
        result: dict[str, dict[str, bool]] = {}
        for account, target, value in found:
            result.setdefault(account, {})[target] = float(value) == 1.0
        return result

    # --- what is where --------------------------------------------------------------------

    def directory(self, name: str) -> Path:
        return self.out / name

    def fingerprint(self, name: str, *, staged: bool = False) -> str | None:
        """The fingerprint of the account's live (or staged) certificate; None if none."""
        crt = self.directory(name) / ("staged" if staged else "") / f"{STEM}.crt"
        if not crt.exists():
            return None
        return crypto.inspect_certificate(crt.read_bytes()).fingerprint_sha256

    def manifest(self, name: str, directory: str = "k8s") -> dict[str, Any] | None:
        path = self.root / directory / f"betfair-{name}.yaml"
        if not path.exists():
            return None
        loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text())
        return loaded

    def manifest_fingerprint(self, name: str, directory: str = "k8s") -> str | None:
        manifest = self.manifest(name, directory)
        if manifest is None:
            return None
        fingerprint: str = manifest["metadata"]["annotations"]["bfprov.io/fingerprint"]
        return fingerprint

    def records(self) -> list[str]:
        """The text of every file bfprov keeps for itself (records, events, published)."""
        return [
            p.read_text(errors="replace")
            for p in self.out.rglob("*")
            if p.is_file() and ".bfprov" in p.parts
        ]


def secret_needles(fleet: PublishFleet, *tokens: str) -> list[str]:
    """What must never appear in an output, record or event: the tokens, the passwords,
    and every key on disk as PEM lines and in base64 (as a manifest holds it)."""
    needles = [*tokens, PASSWORD, APP_KEY, P12_PASSWORD, "PRIVATE KEY"]
    for key in fleet.out.rglob(f"{STEM}.key"):
        text = key.read_text()
        lines = [line for line in text.splitlines() if not line.startswith("-----")]
        needles += [lines[1], lines[-2]]
        needles.append(base64.b64encode(text.encode()).decode()[100:160])
    return needles


def leaks(fleet: PublishFleet, *tokens: str) -> list[tuple[str, str]]:
    """(needle, text) for every secret found in an output, record or event."""
    needles = secret_needles(fleet, *tokens)
    blobs = [*fleet.texts, *fleet.records()]
    return [(n[:10], b[:80]) for b in blobs for n in needles if n and n in b]


def profile_text(
    *names: str,
    outputs: str = "key, crt",
    defaults: str = "",
    own: dict[str, str] | None = None,
    common_name: str = "{name}",
) -> str:
    """A small profile for unit tests: fast 1024-bit keys, secrets in P and A (never read
    unless a test sets them), `outputs`, extra `defaults` lines (indented two spaces),
    and per account its `own` lines (indented four) after its subject."""
    accounts = "".join(
        f"  - name: {n}\n    username: {n}\n"
        f"    subject: {{common_name: {common_name.format(name=n)}}}\n" + (own or {}).get(n, "")
        for n in names
    )
    return (
        "version: 1\noutput_dir: certs\ndefaults:\n"
        "  password: {env: P}\n  app_key: {env: A}\n"
        f"  key: {{size: 1024}}\n  outputs: [{outputs}]\n{defaults}accounts:\n{accounts}"
    )
