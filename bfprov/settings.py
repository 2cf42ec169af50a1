"""The BFPROV_* environment (pydantic-settings); it overrides profile values."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bfprov.errors import BfprovError


class Settings(BaseSettings):
    """Settings read from the environment, prefix BFPROV_."""

    model_config = SettingsConfigDict(env_prefix="BFPROV_", extra="ignore", frozen=True)

    profiles: Path = Field(Path("profiles"), description="a profile file or a directory of them")
    output_dir: Path | None = Field(None, description="overrides every profile's output_dir")
    identity_url: str | None = Field(
        None, description="replaces scheme and host of every login and logout URL"
    )
    ca_bundle: Path | None = Field(None, description="PEM file of CAs to trust for the server")
    publish_timeout: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="seconds to connect to a publishing target and for each reply (default 10)",
    )


def load_settings(profiles: Path | None = None) -> Settings:
    """The environment's settings; a --profiles option beats BFPROV_PROFILES."""
    try:
        settings = Settings()
    except ValidationError as exc:
        # Settings hold no secret: the offending value may be quoted.
        error = exc.errors()[0]
        name = "BFPROV_" + "_".join(map(str, error["loc"])).upper()
        raise BfprovError(f"{name}: {error['input']!r}: {error['msg']}") from None
    if profiles is not None:
        settings = settings.model_copy(update={"profiles": profiles})
    return settings
