"""Settings of the attribution service (environment prefix `ATTRIBUTION_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class AttributionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", extra="ignore", frozen=True)

    settle_interval_s: float = Field(
        default=30.0, gt=0, description="How often held commission is checked for release."
    )
