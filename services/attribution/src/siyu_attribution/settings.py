"""Settings of the attribution service (environment prefix `ATTRIBUTION_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class AttributionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", extra="ignore", frozen=True)
