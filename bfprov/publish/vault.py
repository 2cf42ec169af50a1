"""HashiCorp Vault / OpenBao, KV version 2, through hvac.

The key material is the secret's data at `<mount>/data/<path>`; the description (SPEC's
metadata, plus the data version it describes) is the secret's `custom_metadata`, so
observing reads `<mount>/metadata/<path>` and never the data. Writes use check-and-set
on the version bfprov last wrote.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import requests
from pydantic import BaseModel, ValidationError

from bfprov.desired.secret import reveal
from bfprov.errors import BfprovError
from bfprov.publish import bundle as payload
from bfprov.publish.base import Published, PublishError, target_label
from bfprov.publish.config import render
from bfprov.server_text import clean_text

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from bfprov.publish.bundle import Bundle
    from bfprov.publish.config import VaultConfig

# The custom_metadata key naming the data version the rest of the metadata describes: a
# `kv put` made out of band leaves custom_metadata alone, so without it the change
# would go unseen.
VERSION_KEY = "version"


class VaultTarget:
    """One account's secret in a KV v2 mount."""

    def __init__(
        self, config: VaultConfig, account: str, profile_dir: Path, timeout: float, hvac: ModuleType
    ) -> None:
        self.mount = config.mount
        self.path = render(config.path, account)
        self.label = target_label(config, account, profile_dir)
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
        meta = self._metadata()
        if meta is None:
            return None
        current = int(meta.get("current_version") or 0)
        version = (meta.get("versions") or {}).get(str(current)) or {}
        if current == 0 or version.get("deletion_time") or version.get("destroyed"):
            return None  # deleted (or destroyed) out of band: nothing live there
        custom = meta.get("custom_metadata") or {}
        if custom.get(VERSION_KEY) != str(current):
            return Published(fingerprint=None, not_after=None, version=str(current))
        return Published(
            fingerprint=custom.get(payload.FINGERPRINT),
            not_after=payload.parse_time(custom.get(payload.NOT_AFTER)),
            version=str(current),
        )

    def publish(self, bundle: Bundle, *, last_version: str | None) -> Published:
        """Write the pair as a new version, check-and-set on `last_version` (0: create)."""
        cas = self._cas(last_version)
        try:
            reply = self._kv.create_or_update_secret(
                path=self.path, secret=payload.data(bundle), cas=cas, mount_point=self.mount
            )
        except self._hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" not in str(exc):
                raise self._error(exc) from None
            if cas and self._metadata() is None:
                # Deleted out of band, metadata and every version: nothing is left for
                # check-and-set to protect, and the record's version can never match.
                return self.publish(bundle, last_version=None)
            raise self._conflict(cas) from None
        except Exception as exc:
            raise self._error(exc) from None
        version = self._written_version(reply)
        custom = payload.metadata(bundle) | {VERSION_KEY: version}
        try:
            self._kv.update_metadata(path=self.path, custom_metadata=custom, mount_point=self.mount)
        except Exception as exc:
            # The data is written: without this version on record, the next publish would
            # take bfprov's own write for an out-of-band change.
            error = self._error(exc)
            if not isinstance(error, PublishError):
                raise
            raise PublishError(
                self.label,
                f"wrote version {version} but not its metadata: {error.reason}",
                written_version=version,
            ) from None
        return Published(bundle.fingerprint, bundle.not_after, version)

    def stage(self, bundle: Bundle) -> Published | None:
        """KV v2 has no notion of a pending version: a staged pair is not published."""
        return None

    # --- helpers ----------------------------------------------------------------------

    def _cas(self, last_version: str | None) -> int:
        if last_version is None:
            return 0
        if not last_version.isdigit():
            raise PublishError(self.label, f"recorded version {last_version!r} is not a number")
        return int(last_version)

    def _conflict(self, cas: int) -> PublishError:
        meta = self._metadata()
        now = f"now at version {meta.get('current_version')}" if meta else "now gone"
        if cas == 0:
            return PublishError(
                self.label, f"conflict: a secret bfprov did not write is there ({now})"
            )
        return PublishError(
            self.label, f"conflict: the secret changed since bfprov wrote version {cas} ({now})"
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
        return PublishError(self.label, reason) if reason is not None else exc


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
