"""HashiCorp Vault / OpenBao, KV version 2, through hvac.

The key material is the secret's data at `<mount>/data/<path>`; the description (SPEC's
metadata, plus the data version it describes) is the secret's `custom_metadata`, so
observing reads `<mount>/metadata/<path>` and never the data.

Delivery is idempotent, and survives a lost reply or a kill at any point, because the
description is written *before* the data it describes:
1. read the metadata: when the current version is described as holding the pair being
   delivered, it is delivered (whoever wrote it, whatever bfprov's record says);
2. write `custom_metadata` describing the version about to be written (current + 1), and
   keeping the description of the current one under `prior_*` keys;
3. write the data with check-and-set on the current version.
Whatever is lost or killed, the metadata describes the current version: after step 2
alone the current version is still the prior one, after step 3 it is the new one. So a
retry finds the pair there (step 1) or writes it (check-and-set on the version the
metadata, not a record that a kill may have lost, says bfprov wrote); a version the
description does not name was written by someone else, and only that is a conflict.
When Vault refuses step 3 on check-and-set (a write came in between), step 2 is undone.
One case stays ambiguous: a data write lost *before* reaching Vault, followed by an
out-of-band write before the next apply, would be taken for bfprov's version.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import requests
from pydantic import BaseModel, ValidationError

from bfprov.desired.secret import reveal
from bfprov.desired.targets import VaultConfig, render, segment_problem
from bfprov.errors import BfprovError
from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError, extra
from bfprov.publish.needs import address_key, package
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from bfprov.desired.targets import TargetRef
    from bfprov.publish.bundle import Bundle

# The custom_metadata key naming the data version the rest of the metadata describes: a
# `kv put` made out of band leaves custom_metadata alone, so without it the change
# would go unseen.
VERSION_KEY = "version"
# The description of the version before, kept while the next one is being written.
PRIOR = "prior_"
_DESCRIBED = (payload.FINGERPRINT, payload.NOT_AFTER, VERSION_KEY)


def make(config: VaultConfig, account: str, profile_dir: Path, timeout: float) -> VaultTarget:
    """The kind's entry point (see `bfprov.publish.kinds`)."""
    return VaultTarget(config, account, profile_dir, timeout, extra("hvac", "vault"))


class VaultTarget:
    """One account's secret in a KV v2 mount."""

    def __init__(
        self, config: VaultConfig, account: str, profile_dir: Path, timeout: float, hvac: ModuleType
    ) -> None:
        self.mount = config.mount
        self.path = render(config.path, account)
        self.label = config.identity(account, profile_dir)
        self._hvac = hvac
        verify: bool | str = True  # the server certificate is always verified
        if config.ca_bundle is not None:
            bundle_path = profile_dir / config.ca_bundle
            if not bundle_path.is_file():
                raise PublishError(self.label, f"ca_bundle {bundle_path} is not a file")
            verify = str(bundle_path)
        try:
            token = reveal(config.token, profile_dir, f"{account}: publish vault token")
        except BfprovError as exc:
            raise PublishError(self.label, str(exc)) from None
        self._client = hvac.Client(
            url=config.address,
            token=token.get_secret_value(),
            verify=verify,
            timeout=timeout,
        )
        self._kv = self._client.secrets.kv.v2

    def observe(self) -> Published | None:
        """The live version's fingerprint and expiry, from the metadata endpoint only."""
        return _described(self._metadata())

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Make the pair the secret's current version (nothing written when it is already).

        `last_version` (bfprov's record) is not used: the metadata says which version
        bfprov wrote last, even when a lost reply or a kill kept it from the record.
        """
        meta = self._metadata()
        held = _described(meta)
        custom_now: dict[str, str] = (meta or {}).get("custom_metadata") or {}
        if held is not None and held.fingerprint == bundle.fingerprint:
            # Already delivered (a lost reply, a kill, or another writer). Described only
            # as the prior version (the next one was never written): say so plainly.
            if custom_now.get(VERSION_KEY) != held.version:
                self._write_metadata(payload.metadata(bundle) | {VERSION_KEY: str(held.version)})
            return held
        if held is not None and held.fingerprint is None:
            raise PublishError(
                self.label,
                f"conflict: a secret bfprov did not write is there (version {held.version}); "
                "remove it or its newer versions",
            )
        current = int(meta.get("current_version") or 0) if meta else 0
        custom = payload.metadata(bundle) | {VERSION_KEY: str(current + 1)}
        if held is not None:
            custom |= {PRIOR + k: v for k, v in _description(held).items()}
        self._write_metadata(custom)
        try:
            reply = self._kv.create_or_update_secret(
                path=self.path, secret=payload.data(bundle), cas=current, mount_point=self.mount
            )
        except self._hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" not in str(exc):
                raise self._error(exc) from None
            self._write_metadata(custom_now)  # nothing was written: undo the description
            raise self._conflict(current) from None
        except Exception as exc:
            raise self._error(exc) from None
        return Published(bundle.fingerprint, bundle.not_after, self._written_version(reply))

    def stage(self, bundle: Bundle) -> Published | None:
        """KV v2 has no notion of a pending version: a staged pair is not published."""
        return None

    # --- helpers ----------------------------------------------------------------------

    def _write_metadata(self, custom: dict[str, str]) -> None:
        try:
            self._kv.update_metadata(path=self.path, custom_metadata=custom, mount_point=self.mount)
        except Exception as exc:
            raise self._error(exc) from None

    def _conflict(self, cas: int) -> PublishError:
        meta = self._metadata()
        now = f"now at version {meta.get('current_version')}" if meta else "now gone"
        return PublishError(
            self.label,
            f"conflict: the secret changed while bfprov wrote it (from version {cas}, {now})",
        )

    def _metadata(self) -> dict[str, Any] | None:
        try:
            reply = self._kv.read_secret_metadata(path=self.path, mount_point=self.mount)
        except self._hvac.exceptions.InvalidPath as exc:
            if _page(exc):  # a 404 page, not Vault's "no such secret"
                raise self._error(exc) from None
            return None
        except Exception as exc:
            raise self._error(exc) from None
        data = self._data(reply)
        try:
            _Metadata.model_validate(data)
        except ValidationError as exc:
            raise PublishError(self.label, _not_the_api(_shape(exc))) from None
        return data

    def _data(self, reply: object) -> dict[str, Any]:
        """A reply's `data` map; hvac hands back a reply that is not JSON as it came."""
        if isinstance(reply, dict) and isinstance(data := reply.get("data"), dict):
            return data
        if isinstance(reply, requests.Response):
            what = _http(reply)
        else:
            what = "JSON without a data map" if isinstance(reply, dict) else "JSON of another shape"
        raise PublishError(self.label, _not_the_api(what))

    def _written_version(self, reply: object) -> str:
        version = self._data(reply).get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PublishError(self.label, _not_the_api(f"data.version {version!r}"))
        return str(version)

    def _error(self, exc: Exception) -> Exception:
        """A PublishError for failures of the network or the server; anything else is a bug."""
        reason = _reason(exc, self._hvac)
        if reason is None:
            return exc
        timed_out = isinstance(exc, requests.exceptions.Timeout)
        return PublishError(self.label, reason, timed_out=timed_out)


def _described(meta: dict[str, Any] | None) -> Published | None:
    """What the current version holds, as the metadata describes it: the description of
    that version, or of the one before while the next is being written (fingerprint None:
    a version bfprov did not write); None when nothing is live."""
    if meta is None:
        return None
    current = int(meta.get("current_version") or 0)
    version = (meta.get("versions") or {}).get(str(current)) or {}
    if current == 0 or version.get("deletion_time") or version.get("destroyed"):
        return None  # deleted (or destroyed) out of band: nothing live there
    custom = meta.get("custom_metadata") or {}
    for prefix in ("", PRIOR):
        if custom.get(prefix + VERSION_KEY) == str(current):
            return Published(
                fingerprint=custom.get(prefix + payload.FINGERPRINT),
                not_after=payload.parse_time(custom.get(prefix + payload.NOT_AFTER)),
                version=str(current),
            )
    return Published(fingerprint=None, not_after=None, version=str(current))


def _description(held: Published) -> dict[str, str]:
    not_after = held.not_after.isoformat() if held.not_after else ""
    return dict(
        zip(_DESCRIBED, (held.fingerprint or "", not_after, held.version or ""), strict=True)
    )


class _Version(BaseModel):
    deletion_time: str = ""
    destroyed: bool = False


class _Metadata(BaseModel):
    """What observe reads of a metadata reply: checked before it is trusted."""

    current_version: int = 0
    versions: dict[str, _Version] = {}
    custom_metadata: dict[str, str] | None = None


def _not_the_api(what: str) -> str:
    return f"the reply is not the Vault API's: {what}"


def _page(exc: Exception) -> bool:
    """An error hvac made of a reply that was not JSON (hvac's own checks have no url)."""
    return getattr(exc, "url", None) is not None and getattr(exc, "json", None) is None


def _http(reply: requests.Response) -> str:
    kind = reply.headers.get("Content-Type") or "no content type"
    text = clean_text(reply.text, 80) if reply.content else "empty"
    return f"HTTP {reply.status_code}, {clean_text(kind, 60)}: {text}"


def _shape(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"data.{where}: {error['msg']}"


def _reason(exc: Exception, hvac: ModuleType) -> str | None:
    errors = hvac.exceptions
    if isinstance(exc, errors.VaultError) and _page(exc):
        # Vault answers errors in JSON: a page that is not came from something else.
        kind = type(exc).__name__
        text = clean_text(exc.text or "", 80) or "empty"
        return _not_the_api(f"an error page that is not JSON ({kind}): {text}")
    if isinstance(exc, errors.Forbidden):
        return "permission denied (check the token and its policy)"
    if isinstance(exc, errors.InvalidPath):
        return f"no such path (is {_first_line(exc)!r} a KV version 2 mount?)"
    if isinstance(exc, errors.VaultError):
        return f"refused: {_first_line(exc)}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failed: {_tls_reason(str(exc))}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"unreachable: {_errno_reason(str(exc))}"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"request failed: {type(exc).__name__}"
    if isinstance(exc, TypeError | AttributeError | ValueError):
        # Raised inside hvac while it read an error reply of the wrong shape.
        return _not_the_api(f"an error reply hvac could not read ({type(exc).__name__})")
    return None


def _first_line(exc: Exception) -> str:
    return clean_text((str(exc).splitlines() or [type(exc).__name__])[0])


def _tls_reason(text: str) -> str:
    m = re.search(r"\[SSL[^\]]*\] ([^(')\"]+)", text)
    return m[1].strip() if m else "the server certificate could not be verified"


def _errno_reason(text: str) -> str:
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return m[1].strip().lower() if m else "connection failed"


# --- checked before anything is written (see `preflight`) -------------------------------


def key(ref: TargetRef) -> tuple[str, ...]:
    """What makes two Vault targets one: the server, the mount and the path."""
    config = _config(ref)
    path = render(config.path, ref.account)
    return ("vault", address_key(config.address), config.mount.strip("/"), path.strip("/"))


def names(ref: TargetRef, homes: set[Path]) -> list[str]:
    """The path, once `{account}` is filled in, has no empty, `.` or `..` segment."""
    why = segment_problem(render(_config(ref).path, ref.account))
    return [] if why is None else [f"path {why}"]


def needs(ref: TargetRef) -> list[str]:
    """hvac, the token (its variable set or its file readable), the ca_bundle readable."""
    config = _config(ref)
    whys = package("hvac", "vault")
    try:
        reveal(config.token, ref.profile_dir, "token")  # read, then forgotten
    except BfprovError as exc:
        whys.append(str(exc))
    if config.ca_bundle is not None:
        bundle = ref.profile_dir / config.ca_bundle
        try:
            with bundle.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            whys.append(f"ca_bundle {bundle} cannot be read: {exc.strerror or exc}")
    return whys


def _config(ref: TargetRef) -> VaultConfig:
    assert isinstance(ref.config, VaultConfig)  # the registry sends only Vault targets here
    return ref.config
