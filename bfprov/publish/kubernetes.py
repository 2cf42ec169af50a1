"""Kubernetes Secret manifests for GitOps (Flux, Argo CD), optionally SOPS-encrypted.

`<dir>/<name>.yaml`, 0600, written atomically by the store's writer. With age
recipients the plaintext manifest only ever exists in memory and on sops's stdin; the
file is sops's output, whose `data` is encrypted and whose annotations stay readable,
so observing never decrypts anything.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bfprov.apply.files import write_file
from bfprov.children import environment
from bfprov.desired.fields import quote
from bfprov.desired.targets import KubernetesConfig, render
from bfprov.errors import BfprovError
from bfprov.layout import SECRET_MODE
from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError
from bfprov.publish.needs import manifest_file
from bfprov.publish.ownership import MANAGED_BY, MAX_MANIFEST, replaceable

if TYPE_CHECKING:
    from pathlib import Path

    from bfprov.desired.targets import TargetRef
    from bfprov.publish.bundle import Bundle

FINGERPRINT = "bfprov.io/fingerprint"
NOT_AFTER = "bfprov.io/not-after"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a DNS subdomain
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")


def make(
    config: KubernetesConfig, account: str, profile_dir: Path, timeout: float
) -> KubernetesTarget:
    """The kind's entry point (see `bfprov.publish.kinds`)."""
    return KubernetesTarget(config, account, profile_dir, timeout)


class KubernetesTarget:
    """One account's Secret manifest in a GitOps directory."""

    def __init__(
        self, config: KubernetesConfig, account: str, profile_dir: Path, timeout: float
    ) -> None:
        self.name = render(config.name, account)
        self.namespace = config.namespace
        self.path = config.manifest(account, profile_dir)
        self.label = config.identity(account, profile_dir)
        self.recipients = tuple(config.sops_age_recipients or ())
        self.timeout = timeout
        if not _NAME.match(self.name):
            raise PublishError(
                self.label,
                f"{self.name!r} (from {config.name!r}) is not a valid Kubernetes name: "
                "lowercase letters, digits, '-' and '.'",
            )

    def observe(self) -> Published | None:
        """The fingerprint and expiry in the manifest's annotations; None when no file."""
        try:
            with self.path.open("rb") as fh:
                text = fh.read(MAX_MANIFEST)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PublishError(self.label, f"cannot read: {exc.strerror}") from None
        try:
            manifest = YAML(typ="safe").load(text)
            annotations = manifest["metadata"].get("annotations") or {}
        except (YAMLError, TypeError, KeyError, AttributeError):
            return Published(fingerprint=None, not_after=None)  # not a manifest bfprov wrote
        fingerprint, not_after = annotations.get(FINGERPRINT), annotations.get(NOT_AFTER)
        if not isinstance(fingerprint, str):
            return Published(fingerprint=None, not_after=None)
        return Published(fingerprint, payload.parse_time(not_after))

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Write the manifest (encrypted first when there are recipients)."""
        text = _dump(self.manifest(bundle))
        if self.recipients:
            text = self._encrypt(text)
        # Checked again here, just before the write: a file may have appeared since plan.
        refusal = replaceable(self.path)
        if refusal is not None:
            raise PublishError(self.label, refusal)
        try:
            write_file(self.path, text, SECRET_MODE, overwrite=True)
        except BfprovError as exc:
            raise PublishError(self.label, str(exc)) from None
        return Published(bundle.fingerprint, bundle.not_after)

    def stage(self, bundle: Bundle) -> Published | None:
        """A manifest holds the live pair only: a staged pair is not written."""
        return None

    def manifest(self, bundle: Bundle) -> dict[str, Any]:
        """The Secret, as a value: `kubernetes.io/tls`, the payload's data base64-encoded."""
        data = {
            key: base64.b64encode(value.encode("ascii")).decode("ascii")
            for key, value in payload.data(bundle).items()
            if key != payload.P12
        }
        if bundle.p12 is not None:
            data[payload.P12] = base64.b64encode(bundle.p12).decode("ascii")
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(MANAGED_BY),
                "annotations": {
                    FINGERPRINT: bundle.fingerprint,
                    NOT_AFTER: bundle.not_after_text,
                    "bfprov.io/account": bundle.account,
                    "bfprov.io/jurisdiction": bundle.jurisdiction,
                },
            },
            "data": data,
        }

    def _encrypt(self, plaintext: bytes) -> bytes:
        """sops's encryption of `plaintext`, through pipes: no plaintext file, ever."""
        argv = [
            "sops",
            "--encrypt",
            "--age",
            ",".join(self.recipients),
            "--encrypted-regex",
            "^(data|stringData)$",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ]
        try:
            # The allow-list only: with --age recipients sops needs no key, no token and
            # no SOPS_* setting (one, like SOPS_KMS_ARN, could even add a key to encrypt for).
            done = subprocess.run(
                argv,
                input=plaintext,
                capture_output=True,
                timeout=self.timeout,
                check=False,
                env=environment(),
            )
        except FileNotFoundError:
            raise PublishError(
                self.label, "needs the sops command on PATH (https://getsops.io)"
            ) from None
        except subprocess.TimeoutExpired:
            raise PublishError(
                self.label, f"sops did not finish within {self.timeout:g}s"
            ) from None
        if done.returncode != 0 or not done.stdout:
            raise PublishError(self.label, f"sops failed: {_sops_reason(done, self.recipients)}")
        return done.stdout


def _dump(manifest: dict[str, Any]) -> bytes:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(manifest, out)
    return out.getvalue().encode("utf-8")


def _sops_reason(done: subprocess.CompletedProcess[bytes], recipients: tuple[str, ...]) -> str:
    """sops's last words, unless they might carry data (a long base64 run, a PEM);
    the recipients (public keys, often what sops complains about) may be quoted."""
    text = done.stderr.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    probe = last
    for recipient in recipients:
        probe = probe.replace(recipient, "")
    if not last or "-----" in probe or _BASE64_RUN.search(probe):
        return f"exit status {done.returncode}"
    return last[:200]


# --- checked before anything is written (see `preflight`) -------------------------------


def key(ref: TargetRef) -> tuple[str, ...]:
    """What makes two manifests one: their file."""
    return ("kubernetes", str(manifest_file(_config(ref), ref)))


def names(ref: TargetRef, homes: set[Path]) -> list[str]:
    """A valid name once `{account}` is filled in, and a file outside the profiles' homes."""
    config = _config(ref)
    whys = []
    name = render(config.name, ref.account)
    if not _NAME.fullmatch(name):
        whys.append(
            f"{quote(name, 60)} (from {quote(config.name)}) is not a valid Kubernetes name: "
            "lowercase letters, digits, '-' and '.', at most 253"
        )
    path = manifest_file(config, ref)
    if path.parent in homes:
        whys.append(
            f"would be written in the profiles directory {path.parent}, where a manifest "
            "could replace a profile or be read as one; choose another dir"
        )
    return whys


def needs(ref: TargetRef) -> list[str]:
    """sops for encrypted manifests, and no file there that bfprov did not write."""
    config = _config(ref)
    whys = []
    if config.sops_age_recipients and shutil.which("sops") is None:
        whys.append("needs the sops command on PATH to encrypt (https://getsops.io)")
    why = replaceable(manifest_file(config, ref))
    if why is not None:
        whys.append(why)
    return whys


def _config(ref: TargetRef) -> KubernetesConfig:
    assert isinstance(ref.config, KubernetesConfig)  # the registry sends only these
    return ref.config
